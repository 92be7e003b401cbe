//! vCards of directory users (XEP-0054 from LDAP): client conversations with
//! the real server, which reads a real slapd (tests/common/ldap.rs).

mod common;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::Server;
use common::client::{self, Client, attr, inner, iq, is_error};
use common::ldap::{self, DOMAIN, Slapd};

/// A server for `localhost` (internal accounts) and `univ-lille.fr` (the
/// directory of `slapd`, with `ldap_keys` added to its `[auth.ldap]`).
fn start(slapd: &Slapd, ldap_keys: &str) -> Server {
    slapd.jaseur("\"ldap\"", ldap_keys, "")
}

async fn login(server: &Server, user: &str, password: &str) -> Client {
    client::login_to(server, DOMAIN, user, password, "r").await
}

fn get_vcard(to: &str) -> String {
    format!("<iq type='get' id='ID' to='{to}'><vCard xmlns='vcard-temp'/></iq>")
}

/// The text of the first `<tag>` inside the first `<parent>`.
fn field(xml: &str, parent: &str, tag: &str) -> String {
    inner(inner(xml, parent), tag).to_owned()
}

#[tokio::test]
async fn directory_users_get_their_vcard_from_the_directory() {
    let slapd = Slapd::start();
    let server = start(&slapd, "");
    let mut marie = login(&server, "marie.curie", ldap::PASSWORD_OF_MARIE).await;

    // Jean never set a vCard: the directory's is there for anyone.
    let r = iq(&mut marie, "v1", &get_vcard("jean.dupont@univ-lille.fr")).await;
    assert!(r.contains("type='result'"), "{r}");
    assert_eq!(
        attr(&r, "from").as_deref(),
        Some("jean.dupont@univ-lille.fr")
    );
    assert_eq!(inner(&r, "FN"), "Jean Dupont", "{r}");
    assert_eq!(field(&r, "N", "FAMILY"), "Dupont", "{r}");
    assert_eq!(field(&r, "N", "GIVEN"), "Jean", "{r}");
    assert_eq!(
        field(&r, "EMAIL", "USERID"),
        "jean.dupont@univ-lille.fr",
        "{r}"
    );
    assert!(inner(&r, "EMAIL").contains("<INTERNET/>"), "{r}");
    assert_eq!(field(&r, "TEL", "NUMBER"), "+33 3 20 00 00 01", "{r}");
    assert!(inner(&r, "TEL").contains("<WORK/>"), "{r}");
    assert_eq!(field(&r, "ORG", "ORGUNIT"), "Informatique", "{r}");
    assert_eq!(inner(&r, "TITLE"), "Ingénieur systèmes", "{r}");
    assert_eq!(field(&r, "PHOTO", "TYPE"), "image/jpeg", "{r}");
    let binval = field(&r, "PHOTO", "BINVAL");
    assert!(!binval.contains('\n'), "no line breaks in BINVAL");
    assert_eq!(B64.decode(&binval).expect("base64"), ldap::jean_photo());

    // The mixed-case login of the directory is the lower-case localpart.
    let r = iq(&mut marie, "v2", &get_vcard("paul.martin@univ-lille.fr")).await;
    assert_eq!(inner(&r, "FN"), "Paul Martin", "{r}");
    assert!(!r.contains("<PHOTO"), "no photo in the directory: {r}");

    // Marie's own, asked without 'to'.
    let r = iq(
        &mut marie,
        "v3",
        "<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert_eq!(field(&r, "ORG", "ORGUNIT"), "Physique", "{r}");
    assert_eq!(inner(&r, "TITLE"), "Professeure", "{r}");

    // A locked account is no account: the router refuses before vCards.
    let r = iq(&mut marie, "v4", &get_vcard("luc.bloque@univ-lille.fr")).await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
}

#[tokio::test]
async fn users_own_vcard_fills_in_but_directory_fields_win() {
    let slapd = Slapd::start();
    let server = start(&slapd, "");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    let mut marie = login(&server, "marie.curie", ldap::PASSWORD_OF_MARIE).await;

    // What Gajim does: the whole vCard back, with changes.
    let r = iq(
        &mut jean,
        "s1",
        "<iq type='set' id='ID'><vCard xmlns='vcard-temp'><FN>Hacker</FN>\
         <NICKNAME>jd</NICKNAME><TITLE>Président</TITLE>\
         <EMAIL><INTERNET/><USERID>evil@example.org</USERID></EMAIL>\
         <DESC>Sysadmin, vélo.</DESC></vCard></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "the set is accepted: {r}");

    for (c, id) in [(&mut marie, "g1"), (&mut jean, "g2")] {
        let r = iq(c, id, &get_vcard("jean.dupont@univ-lille.fr")).await;
        assert_eq!(inner(&r, "FN"), "Jean Dupont", "{r}");
        assert_eq!(inner(&r, "TITLE"), "Ingénieur systèmes", "{r}");
        assert_eq!(
            field(&r, "EMAIL", "USERID"),
            "jean.dupont@univ-lille.fr",
            "{r}"
        );
        assert!(!r.contains("Hacker") && !r.contains("evil@"), "{r}");
        assert_eq!(inner(&r, "NICKNAME"), "jd", "{r}");
        assert_eq!(inner(&r, "DESC"), "Sysadmin, vélo.", "{r}");
        assert!(r.contains("<BINVAL>"), "the directory's photo: {r}");
    }

    // Marie has no photo in the directory: her own avatar is kept.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let r = iq(
        &mut marie,
        "s2",
        &format!(
            "<iq type='set' id='ID'><vCard xmlns='vcard-temp'>\
             <PHOTO><TYPE>image/png</TYPE><BINVAL>{png}</BINVAL></PHOTO></vCard></iq>"
        ),
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(&mut jean, "g3", &get_vcard("marie.curie@univ-lille.fr")).await;
    assert_eq!(field(&r, "PHOTO", "BINVAL"), png, "{r}");
    assert_eq!(inner(&r, "FN"), "Marie Curie", "{r}");

    // Nobody sets another's vCard, directory or not.
    let r = iq(
        &mut marie,
        "s3",
        "<iq type='set' id='ID' to='jean.dupont@univ-lille.fr'><vCard xmlns='vcard-temp'><FN>X</FN></vCard></iq>",
    )
    .await;
    assert!(is_error(&r, "forbidden"), "{r}");
}

#[tokio::test]
async fn stored_vcard_is_served_while_the_directory_is_down() {
    let mut slapd = Slapd::start();
    // No cache: each read asks the directory.
    let server = start(&slapd, "cache_ttl = 0\ntimeout = 2\n");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    let r = iq(
        &mut jean,
        "s1",
        "<iq type='set' id='ID'><vCard xmlns='vcard-temp'><FN>Jean D.</FN><NICKNAME>jd</NICKNAME></vCard></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(&mut jean, "g1", &get_vcard("jean.dupont@univ-lille.fr")).await;
    assert_eq!(inner(&r, "FN"), "Jean Dupont", "{r}");

    slapd.stop();
    // Jean's own session proves the account exists; the vCard falls back.
    let r = iq(&mut jean, "g2", &get_vcard("jean.dupont@univ-lille.fr")).await;
    assert!(r.contains("type='result'"), "{r}");
    assert_eq!(inner(&r, "FN"), "Jean D.", "{r}");
    assert_eq!(inner(&r, "NICKNAME"), "jd", "{r}");

    slapd.restart();
    // The pool reconnects with back-off: give it a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    for n in 0.. {
        let r = iq(
            &mut jean,
            &format!("g3-{n}"),
            &get_vcard("jean.dupont@univ-lille.fr"),
        )
        .await;
        if inner(&r, "FN") == "Jean Dupont" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the directory's vCard never came back: {r}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn internal_domain_vcards_are_unchanged() {
    let slapd = Slapd::start();
    let server = start(&slapd, "");
    server.add_user("alice@localhost", "secret");
    server.add_user("bob@localhost", "secret");
    let mut alice = client::login(&server, "alice@localhost", "secret", "a").await;
    let r = iq(
        &mut alice,
        "g1",
        "<iq type='get' id='ID'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(r.contains("<vCard xmlns='vcard-temp'/>"), "{r}");
    let r = iq(&mut alice, "g2", &get_vcard("bob@localhost")).await;
    assert!(is_error(&r, "item-not-found"), "{r}");
    // A directory user reads a local one, and the other way round.
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    let r = iq(
        &mut alice,
        "s1",
        "<iq type='set' id='ID'><vCard xmlns='vcard-temp'><FN>Alice</FN></vCard></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(&mut jean, "g3", &get_vcard("alice@localhost")).await;
    assert_eq!(inner(&r, "FN"), "Alice", "{r}");
    let r = iq(&mut alice, "g4", &get_vcard("jean.dupont@univ-lille.fr")).await;
    assert_eq!(inner(&r, "FN"), "Jean Dupont", "{r}");
}
