//! Shared roster groups from the directory: members of a configured group
//! see each other, with presence, and an oversized group is left out.

mod common;

use common::client::{self, iq};
use common::ldap::{self, DOMAIN, Slapd};

fn item<'a>(roster: &'a str, jid: &str) -> Option<&'a str> {
    let start = roster
        .find(&format!("jid='{jid}'"))
        .or_else(|| roster.find(&format!("jid=\"{jid}\"")))?;
    let open = roster[..start].rfind("<item")?;
    let end = roster[open..]
        .find("</item>")
        .map(|e| open + e + 7)
        .or_else(|| roster[open..].find("/>").map(|e| open + e + 2))?;
    Some(&roster[open..end])
}

#[tokio::test]
async fn directory_groups_fill_rosters_and_share_presence() {
    let slapd = Slapd::start();
    let groups = format!(
        "shared_group_max = 100\nshared_groups = [{{ name = \"DSI\", dn = \"{}\" }}, \
         {{ name = \"Physique\", ou = \"Physique\" }}, {{ name = \"L3\", dn = \"{}\" }}]",
        ldap::group_dn("dsi"),
        ldap::group_dn("etudiants-l3"),
    );
    let server = slapd.jaseur("\"ldap\"", &groups, "");

    let mut paul =
        client::login_to(&server, DOMAIN, "paul.martin", ldap::PASSWORD_OF_PAUL, "p").await;
    paul.send("<presence><status>au bureau</status></presence>")
        .await;
    let mut jean =
        client::login_to(&server, DOMAIN, "jean.dupont", ldap::PASSWORD_OF_JEAN, "j").await;
    // A versioned request still gets the whole roster with the shared items.
    let roster = iq(
        &mut jean,
        "r1",
        "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver='0'/></iq>",
    )
    .await;
    let roster = client::norm(&roster);
    let p =
        item(&roster, "paul.martin@univ-lille.fr").unwrap_or_else(|| panic!("no paul in {roster}"));
    assert!(p.contains("subscription='both'"), "{p}");
    assert!(p.contains("<group>DSI</group>"), "{p}");
    assert!(p.contains("name='"), "the directory's name: {p}");
    assert!(
        item(&roster, "marie.curie@univ-lille.fr").is_none(),
        "{roster}"
    );
    assert!(
        item(&roster, "etu0001@univ-lille.fr").is_none(),
        "the oversized group is left out: {roster}"
    );
    assert!(
        item(&roster, "jean.dupont@univ-lille.fr").is_none(),
        "not oneself: {roster}"
    );

    // Initial presence: jean learns paul's presence (probe) and paul gets jean's.
    jean.send("<presence/>").await;
    let got = client::wait_for(&mut jean, "paul's presence", |s| {
        s.starts_with("<presence")
            && s.contains("paul.martin@univ-lille.fr/p")
            && s.contains("au bureau")
    })
    .await;
    assert!(!got.contains("type="), "{got}");
    client::wait_for(&mut paul, "jean's presence", |s| {
        s.starts_with("<presence") && s.contains("jean.dupont@univ-lille.fr/j")
    })
    .await;

    // Marie's only group has no one else in it.
    let mut marie =
        client::login_to(&server, DOMAIN, "marie.curie", ldap::PASSWORD_OF_MARIE, "m").await;
    let roster = iq(
        &mut marie,
        "r2",
        "<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    assert!(!roster.contains("<item"), "{roster}");
    assert!(
        server.log().contains("shared roster group left out"),
        "{}",
        server.log()
    );
}
