//! Directory search (XEP-0055 over LDAP, at `search.DOMAIN`): client
//! conversations with the real server, which searches a real slapd
//! (tests/common/ldap.rs).

mod common;
use common::Server;
use common::client::{self, Client, attr, iq, is_error};
use common::ldap::{self, DOMAIN, Slapd};

/// A server for `localhost` (internal accounts) and `univ-lille.fr` (the
/// directory of `slapd`, with `ldap_keys` added to its `[auth.ldap]`).
fn start(slapd: &Slapd, ldap_keys: &str) -> Server {
    slapd.jaseur("\"ldap\"", ldap_keys, "")
}

async fn login(server: &Server, user: &str, password: &str) -> Client {
    client::login_to(server, DOMAIN, user, password, "r").await
}

const SERVICE: &str = "search.univ-lille.fr";

/// A form search for the AND of `fields` (var, value).
fn form(fields: &[(&str, &str)]) -> String {
    let mut x = String::from(
        "<field type='hidden' var='FORM_TYPE'><value>jabber:iq:search</value></field>",
    );
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    format!(
        "<iq type='set' id='ID' to='{SERVICE}'><query xmlns='jabber:iq:search'>\
         <x xmlns='jabber:x:data' type='submit'>{x}</x></query></iq>"
    )
}

/// The JIDs of a form result's items, in order.
fn found(result: &str) -> Vec<String> {
    assert!(result.contains("type='result'"), "{result}");
    result
        .split("<item>")
        .skip(1)
        .filter_map(|item| {
            let start = item.find("var='jid'><value>")? + "var='jid'><value>".len();
            let len = item[start..].find('<')?;
            Some(item[start..start + len].to_owned())
        })
        .collect()
}

async fn search(c: &mut Client, id: &str, fields: &[(&str, &str)]) -> String {
    iq(c, id, &form(fields)).await
}

#[tokio::test]
async fn search_service_is_listed_and_describes_itself() {
    let slapd = Slapd::start();
    let server = start(&slapd, "");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;

    let r = iq(
        &mut jean,
        "i1",
        &format!("<iq type='get' id='ID' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"),
    )
    .await;
    assert!(r.contains(&format!("<item jid='{SERVICE}'")), "{r}");
    assert!(r.contains("name='Annuaire / Directory'"), "{r}");

    let r = iq(
        &mut jean,
        "i2",
        &format!("<iq type='get' id='ID' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
    )
    .await;
    assert_eq!(attr(&r, "from").as_deref(), Some(SERVICE), "{r}");
    assert!(
        r.contains("category='directory'") && r.contains("type='user'"),
        "{r}"
    );
    for feature in [
        "jabber:iq:search",
        "jabber:x:data",
        "http://jabber.org/protocol/disco#info",
    ] {
        assert!(
            r.contains(&format!("<feature var='{feature}'/>")),
            "{feature}: {r}"
        );
    }
    let r = iq(
        &mut jean,
        "i3",
        &format!("<iq type='get' id='ID' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"),
    )
    .await;
    assert!(r.contains("type='result'") && !r.contains("<item"), "{r}");

    // The fields: legacy ones and a form (XEP-0055 §2, §3).
    let r = iq(
        &mut jean,
        "f1",
        &format!("<iq type='get' id='ID' to='{SERVICE}'><query xmlns='jabber:iq:search'/></iq>"),
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    for legacy in [
        "<first/>",
        "<last/>",
        "<nick/>",
        "<email/>",
        "<instructions>",
    ] {
        assert!(r.contains(legacy), "{legacy}: {r}");
    }
    assert!(r.contains("<x xmlns='jabber:x:data' type='form'>"), "{r}");
    assert!(r.contains("<value>jabber:iq:search</value>"), "{r}");
    for var in ["user", "fn", "email", "ou"] {
        assert!(r.contains(&format!("var='{var}'")), "{var}: {r}");
    }

    // Other iqs to the service, and anything to a user at it.
    let r = iq(
        &mut jean,
        "x1",
        &format!("<iq type='get' id='ID' to='{SERVICE}'><query xmlns='jabber:iq:version'/></iq>"),
    )
    .await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
    let r = iq(
        &mut jean,
        "x2",
        &format!(
            "<iq type='get' id='ID' to='someone@{SERVICE}'><query xmlns='jabber:iq:search'/></iq>"
        ),
    )
    .await;
    assert!(is_error(&r, "service-unavailable"), "{r}");

    // Only the domain's users search its directory.
    server.add_user("alice@localhost", "secret");
    let mut alice = client::login(&server, "alice@localhost", "secret", "a").await;
    let r = search(&mut alice, "a1", &[("fn", "Dupont")]).await;
    assert!(is_error(&r, "forbidden"), "{r}");
    // localhost has no directory, so no search service.
    let r = iq(
        &mut alice,
        "a2",
        "<iq type='get' id='ID' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    )
    .await;
    assert!(r.contains("type='result'") && !r.contains("search."), "{r}");
}

#[tokio::test]
async fn search_finds_people_by_department_name_login_and_email() {
    let slapd = Slapd::start();
    let server = start(&slapd, "search_max_results = 5\nsearch_per_minute = 1000\n");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;

    let r = search(&mut jean, "s1", &[("ou", "Physique")]).await;
    assert_eq!(found(&r), ["marie.curie@univ-lille.fr"], "{r}");
    // A result form: FORM_TYPE, the columns, then the people.
    assert!(r.contains("<x xmlns='jabber:x:data' type='result'>"), "{r}");
    assert!(r.contains("<reported>"), "{r}");
    for var in ["jid", "fn", "email", "ou", "title"] {
        assert!(r.contains(&format!("var='{var}'")), "{var}: {r}");
    }
    assert!(r.contains("<value>Marie Curie</value>"), "{r}");
    assert!(r.contains("<value>Professeure</value>"), "{r}");
    assert!(
        r.contains("<value>marie.curie@univ-lille.fr</value>"),
        "{r}"
    );

    let r = search(&mut jean, "s2", &[("fn", "Dupont")]).await;
    assert_eq!(found(&r), ["jean.dupont@univ-lille.fr"], "{r}");
    assert!(r.contains("<value>Ingénieur systèmes</value>"), "{r}");

    // Case-insensitive, the JID lower-cased; the filter's locked account is absent.
    let r = search(&mut jean, "s3", &[("user", "PAUL")]).await;
    assert_eq!(found(&r), ["paul.martin@univ-lille.fr"], "{r}");
    let r = search(&mut jean, "s4", &[("fn", "Bloque")]).await;
    assert!(found(&r).is_empty(), "luc.bloque is excluded: {r}");
    let r = search(&mut jean, "s5", &[("email", "marie.curie@")]).await;
    assert_eq!(found(&r), ["marie.curie@univ-lille.fr"], "{r}");

    // Terms are ANDed.
    let r = search(&mut jean, "s6", &[("ou", "Informatique"), ("fn", "Martin")]).await;
    assert_eq!(found(&r), ["paul.martin@univ-lille.fr"], "{r}");

    // At most search_max_results, out of 200 students.
    let r = search(&mut jean, "s7", &[("ou", "Licence")]).await;
    let students = found(&r);
    assert_eq!(students.len(), 5, "{r}");
    assert!(
        students.iter().all(|s| s.starts_with("etu")),
        "{students:?}"
    );

    // Filter syntax in terms is only text: nothing found, no error.
    for (n, term) in ["**", ")(uid=*", "*)(|(uid=*", "\\2a", "jean*"]
        .iter()
        .enumerate()
    {
        let escaped = term.replace('&', "&amp;").replace('<', "&lt;");
        let r = search(&mut jean, &format!("l{n}"), &[("fn", &escaped)]).await;
        assert!(found(&r).is_empty(), "{term}: {r}");
        let r = search(&mut jean, &format!("u{n}"), &[("user", &escaped)]).await;
        assert!(found(&r).is_empty(), "{term}: {r}");
    }

    // Too short, or nothing at all.
    let r = search(&mut jean, "e1", &[("fn", "D")]).await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    assert!(r.contains("2 characters"), "the error says why: {r}");
    let r = search(&mut jean, "e2", &[("fn", " D ")]).await;
    assert!(is_error(&r, "not-acceptable"), "trimmed first: {r}");
    let r = search(&mut jean, "e3", &[]).await;
    assert!(is_error(&r, "bad-request"), "{r}");
    let r = search(&mut jean, "e4", &[("fn", "   ")]).await;
    assert!(is_error(&r, "bad-request"), "{r}");

    // The legacy fields (XEP-0055 §2), answered in kind.
    let r = iq(
        &mut jean,
        "g1",
        &format!("<iq type='set' id='ID' to='{SERVICE}'><query xmlns='jabber:iq:search'><last>Curie</last></query></iq>"),
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    assert!(!r.contains("jabber:x:data"), "{r}");
    assert!(r.contains("<item jid='marie.curie@univ-lille.fr'>"), "{r}");
    assert!(r.contains("<first>Marie</first>"), "{r}");
    assert!(r.contains("<last>Curie</last>"), "{r}");
    assert!(r.contains("<nick>marie.curie</nick>"), "{r}");
    assert!(
        r.contains("<email>marie.curie@univ-lille.fr</email>"),
        "{r}"
    );
    assert_eq!(r.matches("<item ").count(), 1, "{r}");
    let r = iq(
        &mut jean,
        "g2",
        &format!("<iq type='set' id='ID' to='{SERVICE}'><query xmlns='jabber:iq:search'><last>Personne</last></query></iq>"),
    )
    .await;
    assert!(
        r.contains("type='result'") && !r.contains("<item"),
        "no match, empty query: {r}"
    );
}

#[tokio::test]
async fn searches_are_rate_limited_per_user() {
    let slapd = Slapd::start();
    let server = start(&slapd, "search_per_minute = 2\n");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    let mut marie = login(&server, "marie.curie", ldap::PASSWORD_OF_MARIE).await;
    for id in ["r1", "r2"] {
        let r = search(&mut jean, id, &[("fn", "Curie")]).await;
        assert_eq!(found(&r), ["marie.curie@univ-lille.fr"], "{r}");
    }
    let r = search(&mut jean, "r3", &[("fn", "Curie")]).await;
    assert!(is_error(&r, "resource-constraint"), "{r}");
    assert!(r.contains("type='wait'"), "{r}");
    // Another user has her own allowance.
    let r = search(&mut marie, "m1", &[("fn", "Dupont")]).await;
    assert_eq!(found(&r), ["jean.dupont@univ-lille.fr"], "{r}");
}

#[tokio::test]
async fn search_reports_an_unavailable_directory() {
    let mut slapd = Slapd::start();
    let server = start(&slapd, "timeout = 2\n");
    let mut jean = login(&server, "jean.dupont", ldap::PASSWORD_OF_JEAN).await;
    slapd.stop();
    let started = std::time::Instant::now();
    let r = search(&mut jean, "d1", &[("fn", "Curie")]).await;
    assert!(is_error(&r, "internal-server-error"), "{r}");
    assert!(r.contains("type='wait'"), "{r}");
    assert!(r.contains("the directory is unavailable"), "{r}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "within the timeout"
    );
    // The service itself still answers what needs no directory.
    let r = iq(
        &mut jean,
        "d2",
        &format!("<iq type='get' id='ID' to='{SERVICE}'><query xmlns='jabber:iq:search'/></iq>"),
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
}
