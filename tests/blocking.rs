//! Blocking command (XEP-0191): the blocklist iqs and their pushes, and the
//! enforcement on messages, presence and iqs in both directions, talking to
//! the real server over TLS; the store's contract and the checks on SQLite
//! and PostgreSQL.

mod common;
use common::client::{attr, next, wait_for};
use common::client::{iq, is_error, reply};

use common::Server;
use common::client::{self, Client, WAIT};
use jaseur::features::blocking::{self, BlockingStore, Cache, Verdict};
use jaseur::storage::Storage;
use jid::BareJid;

/// Everything received before the stanza with id `marker` (a ping answered by the server).
async fn before_marker(c: &mut Client, marker: &str) -> Vec<String> {
    c.send(&format!(
        "<iq type='get' id='{marker}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let mut seen = Vec::new();
    loop {
        let s = next(c, WAIT)
            .await
            .unwrap_or_else(|e| panic!("no {marker}: {e}"));
        if attr(&s, "id").as_deref() == Some(marker) {
            return seen;
        }
        seen.push(s);
    }
}

fn is_push(s: &str, command: &str) -> bool {
    s.starts_with("<iq")
        && s.contains("type='set'")
        && s.contains(&format!("<{command} xmlns='urn:xmpp:blocking'"))
}

const GET: &str = "<iq type='get' id='ID'><blocklist xmlns='urn:xmpp:blocking'/></iq>";

#[tokio::test]
async fn blocklist_get_block_unblock_with_pushes() {
    let server = Server::start();
    server.add_user("juliet@localhost", "secret");
    server.add_user("nurse@localhost", "secret");
    let mut chamber = client::login(&server, "juliet@localhost", "secret", "chamber").await;
    let mut balcony = client::login(&server, "juliet@localhost", "secret", "balcony").await;

    // XEP-0191 §3.3: pushes go to resources that asked for the blocklist.
    let _ = iq(&mut balcony, "lb", GET).await;
    let mut window = client::login(&server, "juliet@localhost", "secret", "window").await;
    let r = iq(&mut chamber, "l0", GET).await;
    assert!(r.contains("type='result'"), "{r}");
    assert!(
        r.contains("<blocklist xmlns='urn:xmpp:blocking'/>"),
        "empty list: {r}"
    );

    chamber
        .send(
            "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'>\
             <item jid='romeo@montague.net'/><item jid='Iago@Shakespeare.lit'/></block></iq>",
        )
        .await;
    // The requesting resource gets the result and the push, in either order.
    let (mut result, mut push) = (None, None);
    while result.is_none() || push.is_none() {
        let s = next(&mut chamber, WAIT)
            .await
            .unwrap_or_else(|e| panic!("result and push: {e}; {result:?} {push:?}"));
        if attr(&s, "id").as_deref() == Some("b1") {
            result = Some(s);
        } else if is_push(&s, "block") {
            push = Some(s);
        }
    }
    let r = result.unwrap_or_default();
    assert!(r.contains("type='result'"), "{r}");
    let mut chamber_push = push;
    // Both resources get the push, addressed from the account to the resource.
    for (c, res) in [(&mut chamber, "chamber"), (&mut balcony, "balcony")] {
        let push = match chamber_push.take() {
            Some(p) => p,
            None => wait_for(c, "block push", |s| is_push(s, "block")).await,
        };
        assert_eq!(
            attr(&push, "to"),
            Some(format!("juliet@localhost/{res}")),
            "{push}"
        );
        assert_eq!(
            attr(&push, "from").as_deref(),
            Some("juliet@localhost"),
            "{push}"
        );
        assert!(push.contains("<item jid='romeo@montague.net'/>"), "{push}");
        assert!(
            push.contains("<item jid='iago@shakespeare.lit'/>"),
            "normalised: {push}"
        );
        // A client acknowledges the push; the server takes the result silently.
        let id = attr(&push, "id").expect("push id");
        c.send(&format!(
            "<iq type='result' id='{id}' to='juliet@localhost'/>"
        ))
        .await;
    }

    // The resource that never asked for the blocklist got no push.
    let seen = before_marker(&mut window, "w1").await;
    assert!(!seen.iter().any(|s| is_push(s, "block")), "{seen:?}");

    let r = iq(&mut balcony, "l1", GET).await;
    assert!(r.contains("<item jid='romeo@montague.net'/>"), "{r}");
    assert!(r.contains("<item jid='iago@shakespeare.lit'/>"), "{r}");

    // Blocking again is harmless.
    let r = iq(
        &mut balcony,
        "b2",
        "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></block></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");

    // Errors: nothing to block, a malformed JID, oneself, the wrong iq type.
    for (id, body, condition) in [
        (
            "e1",
            "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'/></iq>",
            "bad-request",
        ),
        (
            "e2",
            "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='a@@b'/></block></iq>",
            "jid-malformed",
        ),
        (
            "e3",
            "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='juliet@localhost'/></block></iq>",
            "not-acceptable",
        ),
        (
            "e4",
            "<iq type='set' id='ID'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
            "bad-request",
        ),
    ] {
        let r = iq(&mut chamber, id, body).await;
        assert!(is_error(&r, condition), "{id}: {r}");
    }

    // Only the owner.
    let mut nurse = client::login(&server, "nurse@localhost", "secret", "n").await;
    let r = iq(
        &mut nurse,
        "f1",
        "<iq type='get' id='ID' to='juliet@localhost'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
    )
    .await;
    assert!(is_error(&r, "forbidden"), "{r}");

    // Unblock one.
    let r = iq(
        &mut chamber,
        "u1",
        "<iq type='set' id='ID'><unblock xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></unblock></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let push = wait_for(&mut balcony, "unblock push", |s| is_push(s, "unblock")).await;
    assert!(push.contains("<item jid='romeo@montague.net'/>"), "{push}");
    let r = iq(&mut chamber, "l2", GET).await;
    assert!(
        !r.contains("romeo") && r.contains("iago@shakespeare.lit"),
        "{r}"
    );

    // Unblock all: an empty <unblock/>, pushed as such.
    let r = iq(
        &mut chamber,
        "u2",
        "<iq type='set' id='ID'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let push = wait_for(&mut balcony, "unblock-all push", |s| is_push(s, "unblock")).await;
    assert!(
        push.contains("<unblock xmlns='urn:xmpp:blocking'/>"),
        "{push}"
    );
    let r = iq(&mut balcony, "l3", GET).await;
    assert!(r.contains("<blocklist xmlns='urn:xmpp:blocking'/>"), "{r}");
}

#[tokio::test]
async fn blocklist_is_bounded() {
    let server = Server::start_with("[limits]\nblocklist_items = 2\n");
    server.add_user("juliet@localhost", "secret");
    let mut c = client::login(&server, "juliet@localhost", "secret", "c").await;
    let block = |jids: &[&str]| {
        let items: String = jids.iter().map(|j| format!("<item jid='{j}'/>")).collect();
        format!("<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'>{items}</block></iq>")
    };
    let r = iq(&mut c, "b1", &block(&["a@x.example", "b@x.example"])).await;
    assert!(r.contains("type='result'"), "{r}");
    let r = iq(&mut c, "b2", &block(&["c@x.example"])).await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    assert!(r.contains("at most 2"), "the error says the limit: {r}");
    let r = iq(&mut c, "l1", GET).await;
    assert!(!r.contains("c@x.example"), "nothing was added: {r}");
    // Already blocked JIDs do not count twice.
    let r = iq(&mut c, "b3", &block(&["a@x.example"])).await;
    assert!(r.contains("type='result'"), "{r}");
}

/// XEP-0191 (blocking and unblocking a contact): a subscribed contact sees
/// the user go offline when blocked, and come back when unblocked.
#[tokio::test]
async fn blocked_contact_sees_the_user_leave_and_come_back() {
    let server = Server::start();
    server.add_user("juliet@localhost", "secret");
    server.add_user("romeo@localhost", "secret");
    let mut juliet = client::login(&server, "juliet@localhost", "secret", "balcony").await;
    let mut romeo = client::login(&server, "romeo@localhost", "secret", "orchard").await;
    juliet
        .send("<presence><status>here</status></presence>")
        .await;
    romeo.send("<presence/>").await;
    // Romeo subscribes to juliet's presence; she approves.
    romeo
        .send("<presence to='juliet@localhost' type='subscribe'/>")
        .await;
    wait_for(&mut juliet, "the request", |s| {
        s.starts_with("<presence") && s.contains("type='subscribe'")
    })
    .await;
    juliet
        .send("<presence to='romeo@localhost' type='subscribed'/>")
        .await;
    let from_juliet = |t: Option<&'static str>| {
        move |s: &str| {
            s.starts_with("<presence")
                && attr(s, "from").as_deref() == Some("juliet@localhost/balcony")
                && attr(s, "type").as_deref() == t
        }
    };
    wait_for(&mut romeo, "juliet's presence", from_juliet(None)).await;

    let r = iq(
        &mut juliet,
        "b1",
        "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    wait_for(
        &mut romeo,
        "unavailable on block",
        from_juliet(Some("unavailable")),
    )
    .await;

    let r = iq(
        &mut juliet,
        "u1",
        "<iq type='set' id='ID'><unblock xmlns='urn:xmpp:blocking'/></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    let back = wait_for(&mut romeo, "presence on unblock", from_juliet(None)).await;
    assert!(
        back.contains("<status>here</status>"),
        "her current presence: {back}"
    );
}

/// Enforcement needs the cache in the server state (see `blocking::cache_of`).
#[tokio::test]
async fn blocked_contact_cannot_reach_the_user() {
    let server = Server::start();
    for u in ["juliet", "romeo", "nurse"] {
        server.add_user(&format!("{u}@localhost"), "secret");
    }
    let mut juliet = client::login(&server, "juliet@localhost", "secret", "balcony").await;
    let mut romeo = client::login(&server, "romeo@localhost", "secret", "orchard").await;
    let mut nurse = client::login(&server, "nurse@localhost", "secret", "n").await;
    let r = iq(
        &mut juliet,
        "b1",
        "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></block></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");

    // Message: bounced with service-unavailable, as if juliet had no session.
    romeo
        .send("<message to='juliet@localhost/balcony' type='chat' id='m1'><body>hear me</body></message>")
        .await;
    let r = reply(&mut romeo, "m1").await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
    // Iq get: service-unavailable too.
    let r = iq(
        &mut romeo,
        "i1",
        "<iq type='get' id='ID' to='juliet@localhost/balcony'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
    // Also on the bare JID, answered by the server for the account.
    let r = iq(
        &mut romeo,
        "i2",
        "<iq type='get' id='ID' to='juliet@localhost'><vCard xmlns='vcard-temp'/></iq>",
    )
    .await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
    // Presence: silently dropped, no error either.
    romeo
        .send("<presence to='juliet@localhost/balcony'/>")
        .await;
    let seen = before_marker(&mut romeo, "mark1").await;
    assert!(seen.is_empty(), "no error for presence: {seen:#?}");

    // Juliet got none of it (romeo's stanzas were all routed before the
    // nurse sends), but still hears from others.
    nurse
        .send("<message to='juliet@localhost/balcony' type='chat' id='n1'><body>from the nurse</body></message>")
        .await;
    let mut seen = Vec::new();
    loop {
        let s = next(&mut juliet, WAIT)
            .await
            .unwrap_or_else(|e| panic!("no message: {e}; {seen:#?}"));
        if s.contains("from the nurse") {
            break;
        }
        if !is_push(&s, "block") {
            seen.push(s);
        }
    }
    assert!(seen.iter().all(|s| !s.contains("romeo")), "{seen:#?}");

    // Unblocked, romeo gets through.
    let r = iq(
        &mut juliet,
        "u1",
        "<iq type='set' id='ID'><unblock xmlns='urn:xmpp:blocking'><item jid='romeo@localhost'/></unblock></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    romeo
        .send("<message to='juliet@localhost/balcony' type='chat' id='m2'><body>at last</body></message>")
        .await;
    let got = wait_for(&mut juliet, "romeo's message", |s| {
        s.starts_with("<message")
    })
    .await;
    assert!(got.contains("at last"), "{got}");
}

/// Enforcement needs the cache in the server state (see `blocking::cache_of`).
#[tokio::test]
async fn user_cannot_reach_a_blocked_contact() {
    let server = Server::start();
    server.add_user("juliet@localhost", "secret");
    server.add_user("romeo@localhost", "secret");
    let mut juliet = client::login(&server, "juliet@localhost", "secret", "balcony").await;
    let mut romeo = client::login(&server, "romeo@localhost", "secret", "orchard").await;
    // Available, so that messages to other resources of romeo reach this one.
    romeo.send("<presence/>").await;
    let r = iq(
        &mut juliet,
        "b1",
        "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='romeo@localhost/orchard'/></block></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");

    // Message, presence and iq to the blocked full JID: not-acceptable.
    for (id, stanza) in [
        (
            "m1",
            "<message to='romeo@localhost/orchard' type='chat' id='m1'><body>x</body></message>",
        ),
        ("p1", "<presence to='romeo@localhost/orchard' id='p1'/>"),
        (
            "i1",
            "<iq type='get' id='i1' to='romeo@localhost/orchard'><ping xmlns='urn:xmpp:ping'/></iq>",
        ),
    ] {
        juliet.send(stanza).await;
        let r = reply(&mut juliet, id).await;
        assert!(is_error(&r, "not-acceptable"), "{id}: {r}");
        assert!(r.contains("type='cancel'"), "{id}: {r}");
    }
    let seen = before_marker(&mut romeo, "mark").await;
    assert!(
        seen.iter().all(|s| !s.contains("juliet")),
        "romeo got nothing from juliet: {seen:#?}"
    );

    // Only that resource is blocked (XEP-0191 "JID Matching").
    juliet
        .send("<message to='romeo@localhost/garden' type='chat' id='m2'><body>to the garden</body></message>")
        .await;
    let got = wait_for(&mut romeo, "the message via the bare JID", |s| {
        s.starts_with("<message")
    })
    .await;
    assert!(got.contains("to the garden"), "{got}");
}

/// XEP-0191 ("User Blocks Contact") asks for
/// `<blocked xmlns='urn:xmpp:blocking:errors'/>` in the error.
#[tokio::test]
async fn outbound_error_names_the_block() {
    let server = Server::start();
    server.add_user("juliet@localhost", "secret");
    let mut juliet = client::login(&server, "juliet@localhost", "secret", "balcony").await;
    let r = iq(
        &mut juliet,
        "b1",
        "<iq type='set' id='ID'><block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></block></iq>",
    )
    .await;
    assert!(r.contains("type='result'"), "{r}");
    juliet
        .send("<message to='romeo@montague.net' type='chat' id='m1'><body>x</body></message>")
        .await;
    let r = reply(&mut juliet, "m1").await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    assert!(
        r.contains("<blocked xmlns='urn:xmpp:blocking:errors'/>"),
        "{r}"
    );
}

// ---------------------------------------------------------------------------
// The store's contract, and the checks over a real store.

fn bare(s: &str) -> BareJid {
    BareJid::new(s).expect("jid")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn contract(storage: &Storage) {
    let juliet = bare("juliet@capulet.lit");
    let nurse = bare("nurse@capulet.lit");
    assert!(storage.blocklist(&juliet).await.expect("list").is_empty());
    assert!(
        storage
            .block(
                &juliet,
                &strings(&["romeo@montague.lit", "montague.lit"]),
                3
            )
            .await
            .expect("block")
    );
    assert!(
        storage
            .block(&nurse, &strings(&["tybalt@capulet.lit"]), 3)
            .await
            .expect("block")
    );
    // A duplicate is not a second item.
    assert!(
        storage
            .block(&juliet, &strings(&["romeo@montague.lit"]), 2)
            .await
            .expect("dup")
    );
    assert_eq!(storage.blocklist(&juliet).await.expect("list").len(), 2);
    // Over the limit: nothing added.
    assert!(
        !storage
            .block(&juliet, &strings(&["a@x.lit", "b@x.lit"]), 3)
            .await
            .expect("over")
    );
    assert!(
        storage
            .block(&juliet, &strings(&["iago@venice.lit/pda"]), 3)
            .await
            .expect("block")
    );
    let list = storage.blocklist(&juliet).await.expect("list");
    assert_eq!(list.len(), 3);
    assert_eq!(
        list.last().map(String::as_str),
        Some("iago@venice.lit/pda"),
        "oldest first: {list:?}"
    );
    storage
        .unblock(&juliet, &strings(&["montague.lit", "never@blocked.lit"]))
        .await
        .expect("unblock");
    let mut list = storage.blocklist(&juliet).await.expect("list");
    list.sort();
    assert_eq!(list, ["iago@venice.lit/pda", "romeo@montague.lit"]);
    storage.unblock_all(&juliet).await.expect("unblock all");
    assert!(storage.blocklist(&juliet).await.expect("list").is_empty());
    storage
        .block(&juliet, &strings(&["x@y.lit"]), 3)
        .await
        .expect("block");
    BlockingStore::remove_user(storage, &juliet)
        .await
        .expect("remove");
    assert!(storage.blocklist(&juliet).await.expect("list").is_empty());
    assert_eq!(
        storage.blocklist(&nurse).await.expect("list"),
        ["tybalt@capulet.lit"]
    );
}

fn stanza(xml: &str) -> minidom::Element {
    xml.parse().expect("xml")
}

/// The checks as the router and sessions run them, over a real store.
async fn checks(storage: &Storage) {
    let juliet = bare("juliet@capulet.lit");
    storage
        .block(
            &juliet,
            &strings(&["romeo@montague.lit", "spam.example"]),
            10,
        )
        .await
        .expect("block");
    let cache = Cache::new(16);
    let from_romeo = stanza(
        "<message xmlns='jabber:client' from='romeo@montague.lit/orchard' to='juliet@capulet.lit' type='chat'/>",
    );
    assert!(matches!(
        blocking::check_inbound(&cache, storage, &juliet, &from_romeo).await,
        Verdict::Reject(_)
    ));
    assert_eq!(cache.len(), 1, "loaded once, then cached");
    let from_spam = stanza(
        "<presence xmlns='jabber:client' from='bot@eu.spam.example/x' to='juliet@capulet.lit'/>",
    );
    assert!(matches!(
        blocking::check_inbound(&cache, storage, &juliet, &from_spam).await,
        Verdict::Drop
    ));
    let from_nurse = stanza(
        "<message xmlns='jabber:client' from='nurse@capulet.lit/n' to='juliet@capulet.lit'/>",
    );
    assert!(matches!(
        blocking::check_inbound(&cache, storage, &juliet, &from_nurse).await,
        Verdict::Allow
    ));
    let to_romeo = stanza(
        "<message xmlns='jabber:client' from='juliet@capulet.lit/b' to='romeo@montague.lit'/>",
    );
    assert!(matches!(
        blocking::check_outbound(&cache, storage, &juliet, &to_romeo).await,
        Verdict::Blocked
    ));
    // After a change the cache is told to forget, and the next check sees the store.
    storage.unblock_all(&juliet).await.expect("unblock");
    cache.forget(&juliet);
    assert!(matches!(
        blocking::check_outbound(&cache, storage, &juliet, &to_romeo).await,
        Verdict::Allow
    ));
}

#[tokio::test]
async fn contract_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("j.db").display());
    let storage = Storage::open(&url, 4).await.expect("open sqlite");
    contract(&storage).await;
    checks(&storage).await;
    storage.close().await;
}

#[tokio::test]
async fn contract_on_postgres() {
    let url = common::fresh_pg().await;
    let storage = Storage::open(&url, 4).await.expect("open postgres");
    contract(&storage).await;
    checks(&storage).await;
    storage.close().await;
}
