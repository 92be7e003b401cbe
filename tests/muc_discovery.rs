//! Discovery of the multi-user chat service and its rooms (XEP-0045 §6 with
//! XEP-0030 and XEP-0059 paging), against the real server.

mod common;

use common::Server;
use common::client::Client;
use common::muc::*;
use minidom::Element;

const RSM: &str = "http://jabber.org/protocol/rsm";

/// disco#items on the service with `set` (RSM, may be empty): the reply.
async fn items(c: &mut Client, id: &str, set: &str) -> String {
    iq(
        c,
        id,
        &format!(
            "<iq type='get' id='ID' to='{SERVICE}'><query xmlns='{NS_ITEMS}'>{set}</query></iq>"
        ),
    )
    .await
}

/// (jid, name) of the items of a disco#items reply.
fn item_list(s: &str) -> Vec<(String, Option<String>)> {
    let el = parse(s);
    let mut out = Vec::new();
    find_all(&el, "item", NS_ITEMS, &mut out);
    out.iter()
        .map(|i| {
            (
                i.attr("jid").unwrap_or_default().to_owned(),
                i.attr("name").map(str::to_owned),
            )
        })
        .collect()
}

/// The text of `<set><name/>` in the reply.
fn rsm(s: &str, name: &str) -> Option<String> {
    let el = parse(s);
    let set = find(&el, "set", RSM)?;
    set.children().find(|c| c.name() == name).map(Element::text)
}

fn identity(s: &str) -> (Option<String>, Option<String>, Option<String>) {
    let el = parse(s);
    let id = find(&el, "identity", NS_INFO).unwrap_or_else(|| panic!("no identity: {s}"));
    (
        id.attr("category").map(str::to_owned),
        id.attr("type").map(str::to_owned),
        id.attr("name").map(str::to_owned),
    )
}

/// The value of `var` in the muc#roominfo form of a disco#info reply.
fn roominfo(s: &str, var: &str) -> Option<String> {
    let el = parse(s);
    let mut forms = Vec::new();
    find_all(&el, "x", NS_DATA, &mut forms);
    let form = forms.into_iter().find(|f| {
        f.children().any(|fl| {
            fl.attr("var") == Some("FORM_TYPE")
                && fl
                    .children()
                    .any(|v| v.text() == "http://jabber.org/protocol/muc#roominfo")
        })
    })?;
    let field = form
        .children()
        .find(|f| f.name() == "field" && f.attr("var") == Some(var))?;
    field
        .children()
        .find(|v| v.name() == "value")
        .map(Element::text)
}

#[tokio::test]
async fn the_service_is_a_text_conference_service() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let r = disco_info(&mut alice, "i1", SERVICE).await;
    assert_result(&r);
    // §6.2
    let (category, kind, _) = identity(&r);
    assert_eq!(category.as_deref(), Some("conference"), "{r}");
    assert_eq!(kind.as_deref(), Some("text"), "{r}");
    assert!(features(&r).iter().any(|f| f == NS_MUC), "{r}");
}

#[tokio::test]
async fn the_server_lists_the_service_in_its_items() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    // §6.1: the service is discoverable from the server.
    let r = iq(
        &mut alice,
        "si",
        &format!("<iq type='get' id='ID' to='localhost'><query xmlns='{NS_ITEMS}'/></iq>"),
    )
    .await;
    assert_result(&r);
    assert!(item_list(&r).iter().any(|(j, _)| j == SERVICE), "{r}");
}

#[tokio::test]
async fn public_rooms_are_listed_and_hidden_ones_are_not() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[("muc#roomconfig_roomname", "Tea Room")],
    )
    .await;
    create_room(
        &mut alice,
        "secret",
        "Alice",
        &[("muc#roomconfig_publicroom", "0")],
    )
    .await;
    let mut bob = user(&server, "bob").await;
    // §6.3
    let r = items(&mut bob, "l1", "").await;
    assert_result(&r);
    let list = item_list(&r);
    assert!(
        list.contains(&(room("tea"), Some("Tea Room".to_owned()))),
        "public room with its name: {r}"
    );
    assert!(
        !list.iter().any(|(j, _)| *j == room("secret")),
        "hidden room listed: {r}"
    );
    // A room made hidden later disappears from the list.
    configure(&mut alice, "tea", &[("muc#roomconfig_publicroom", "0")]).await;
    let r = items(&mut bob, "l2", "").await;
    assert!(!item_list(&r).iter().any(|(j, _)| *j == room("tea")), "{r}");
}

#[tokio::test]
async fn a_locked_room_is_not_listed() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_locked(&mut alice, "tea", "Alice").await;
    let r = items(&mut alice, "l1", "").await;
    assert!(!item_list(&r).iter().any(|(j, _)| *j == room("tea")), "{r}");
}

#[tokio::test]
async fn the_room_list_pages_with_rsm() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let names = ["r1", "r2", "r3", "r4", "r5"];
    for n in names {
        create_room(
            &mut alice,
            n,
            "Alice",
            &[("muc#roomconfig_roomname", &format!("Room {n}"))],
        )
        .await;
    }
    // XEP-0059 §2.1: max=2 gives two items and the set's first/last/count.
    let mut seen = Vec::new();
    let r = items(
        &mut alice,
        "p1",
        &format!("<set xmlns='{RSM}'><max>2</max></set>"),
    )
    .await;
    assert_result(&r);
    let page = item_list(&r);
    assert_eq!(page.len(), 2, "{r}");
    assert_eq!(rsm(&r, "count").as_deref(), Some("5"), "{r}");
    assert!(rsm(&r, "first").is_some(), "{r}");
    let mut last = rsm(&r, "last").unwrap_or_else(|| panic!("no last: {r}"));
    seen.extend(page.into_iter().map(|(j, _)| j));
    // §2.2: <after/> pages on.
    for (i, expected) in [(2, 2), (3, 1)] {
        let r = items(
            &mut alice,
            &format!("p{i}"),
            &format!("<set xmlns='{RSM}'><max>2</max><after>{last}</after></set>"),
        )
        .await;
        assert_result(&r);
        let page = item_list(&r);
        assert_eq!(page.len(), expected, "page {i}: {r}");
        seen.extend(page.into_iter().map(|(j, _)| j));
        if let Some(l) = rsm(&r, "last") {
            last = l;
        }
    }
    let seen_order = seen.clone();
    seen.sort();
    let mut all: Vec<String> = names.iter().map(|n| room(n)).collect();
    all.sort();
    assert_eq!(seen, all, "every room exactly once");
    // An empty <before/> asks for the last page (§2.5).
    let r = items(
        &mut alice,
        "pb",
        &format!("<set xmlns='{RSM}'><max>2</max><before/></set>"),
    )
    .await;
    assert_result(&r);
    let page: Vec<String> = item_list(&r).into_iter().map(|(j, _)| j).collect();
    assert_eq!(page.len(), 2, "{r}");
    assert_eq!(
        page.last(),
        seen_order.last(),
        "the last page ends with the last room: {r}"
    );
    // max=0 gives just the count (§2.7).
    let r = items(
        &mut alice,
        "p0",
        &format!("<set xmlns='{RSM}'><max>0</max></set>"),
    )
    .await;
    assert_eq!(item_list(&r).len(), 0, "{r}");
    assert_eq!(rsm(&r, "count").as_deref(), Some("5"), "{r}");
}

#[tokio::test]
async fn room_info_shows_the_default_features() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_roomname", "Tea Room"),
            ("muc#roomconfig_roomdesc", "Talk about tea"),
        ],
    )
    .await;
    let mut bob = user(&server, "bob").await;
    join(&mut bob, "tea", "Bob").await;
    let r = disco_info(&mut bob, "ri", &room("tea")).await;
    assert_result(&r);
    // §6.4
    let (category, kind, name) = identity(&r);
    assert_eq!(category.as_deref(), Some("conference"), "{r}");
    assert_eq!(kind.as_deref(), Some("text"), "{r}");
    assert_eq!(name.as_deref(), Some("Tea Room"), "{r}");
    let f = features(&r);
    for want in [
        NS_MUC,
        "muc_public",
        "muc_open",
        "muc_unsecured",
        "muc_temporary",
        "muc_unmoderated",
        "muc_semianonymous",
        "urn:xmpp:occupant-id:0",
        "urn:xmpp:sid:0",
        "urn:xmpp:message-moderate:1",
    ] {
        assert!(f.iter().any(|x| x == want), "missing {want}: {r}");
    }
    for unwanted in [
        "muc_hidden",
        "muc_membersonly",
        "muc_passwordprotected",
        "muc_persistent",
        "muc_moderated",
        "muc_nonanonymous",
    ] {
        assert!(
            !f.iter().any(|x| x == unwanted),
            "unexpected {unwanted}: {r}"
        );
    }
    // The muc#roominfo form.
    assert_eq!(
        roominfo(&r, "muc#roominfo_occupants").as_deref(),
        Some("2"),
        "{r}"
    );
    assert_eq!(
        roominfo(&r, "muc#roominfo_description").as_deref(),
        Some("Talk about tea"),
        "{r}"
    );
}

#[tokio::test]
async fn room_info_reflects_the_configuration() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    create_room(
        &mut alice,
        "tea",
        "Alice",
        &[
            ("muc#roomconfig_publicroom", "0"),
            ("muc#roomconfig_membersonly", "1"),
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "oolong"),
            ("muc#roomconfig_persistentroom", "1"),
            ("muc#roomconfig_moderatedroom", "1"),
            ("muc#roomconfig_whois", "anyone"),
        ],
    )
    .await;
    let r = disco_info(&mut alice, "ri", &room("tea")).await;
    assert_result(&r);
    let f = features(&r);
    for want in [
        "muc_hidden",
        "muc_membersonly",
        "muc_passwordprotected",
        "muc_persistent",
        "muc_moderated",
        "muc_nonanonymous",
    ] {
        assert!(f.iter().any(|x| x == want), "missing {want}: {r}");
    }
    for unwanted in [
        "muc_public",
        "muc_open",
        "muc_unsecured",
        "muc_temporary",
        "muc_unmoderated",
        "muc_semianonymous",
    ] {
        assert!(
            !f.iter().any(|x| x == unwanted),
            "unexpected {unwanted}: {r}"
        );
    }
    assert_eq!(
        roominfo(&r, "muc#roominfo_occupants").as_deref(),
        Some("1"),
        "{r}"
    );
    // The room id is used as its name when none is set... or at least there is an identity.
    let (category, _, _) = identity(&r);
    assert_eq!(category.as_deref(), Some("conference"), "{r}");
}

#[tokio::test]
async fn a_nonexistent_room_is_item_not_found() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let r = disco_info(&mut alice, "ri", &room("nothere")).await;
    // §6.4 with XEP-0030: no such entity.
    assert_error(&r, "item-not-found", "");
}

#[tokio::test]
async fn the_service_is_off_when_disabled() {
    let server = Server::start_with("[muc]\nenabled = false\n");
    let mut alice = user(&server, "alice").await;
    let r = disco_info(&mut alice, "i1", SERVICE).await;
    assert!(error_of(&r).is_some(), "no MUC service when disabled: {r}");
}

#[tokio::test]
async fn the_occupant_count_follows_joins_and_leaves() {
    let server = Server::start();
    let mut alice = user(&server, "alice").await;
    let mut bob = user(&server, "bob").await;
    create_instant(&mut alice, "tea", "Alice").await;
    join(&mut bob, "tea", "Bob").await;
    let r = disco_info(&mut alice, "i1", &room("tea")).await;
    assert_eq!(
        roominfo(&r, "muc#roominfo_occupants").as_deref(),
        Some("2"),
        "{r}"
    );
    leave(&mut bob, "tea", "Bob").await;
    let r = disco_info(&mut alice, "i2", &room("tea")).await;
    assert_eq!(
        roominfo(&r, "muc#roominfo_occupants").as_deref(),
        Some("1"),
        "{r}"
    );
}
