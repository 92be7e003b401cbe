//! Message Carbons (XEP-0280, `urn:xmpp:carbons:2`): discovery, enabling
//! and disabling, received and sent copies, `<private/>`, the eligibility
//! rules of §6.1 (`urn:xmpp:carbons:rules:0`, MUC included), offline
//! storage, and the absence of loops and bounces, as client conversations
//! with the real server over TLS.
//!
//! Negative checks ("gets no copy") come after a positive synchronisation
//! point: the original reached its recipient, so a copy made while routing
//! it was queued for the other resources before that; the checked client
//! then pings the server and looks at everything that arrived before the
//! answer, and during a short grace period after it.

mod common;

use common::Server;
use common::client::{self, Client, WAIT, attr, next};
use common::muc::{
    self, CLIENT_NS, NS_INFO, NS_USER, create_instant, features, iq, join, parse, wait_for,
    wait_groupchat,
};
use minidom::Element;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const NS_CARBONS: &str = "urn:xmpp:carbons:2";
const NS_RULES: &str = "urn:xmpp:carbons:rules:0";
const NS_FORWARD: &str = "urn:xmpp:forward:0";
const ENABLE: &str = "<iq type='set' id='ID'><enable xmlns='urn:xmpp:carbons:2'/></iq>";
const DISABLE: &str = "<iq type='set' id='ID'><disable xmlns='urn:xmpp:carbons:2'/></iq>";
const PW: &str = "pw";
const ROOM: &str = "lounge";
/// How long a client keeps listening after its synchronisation ping.
const GRACE: Duration = Duration::from_millis(150);

static IDS: AtomicUsize = AtomicUsize::new(0);

fn fresh_id(prefix: &str) -> String {
    format!("{prefix}{}", IDS.fetch_add(1, Ordering::Relaxed))
}

/// A server with accounts `name@localhost`, password "pw".
fn server_with(users: &[&str]) -> Server {
    let server = Server::start();
    for u in users {
        server.add_user(&format!("{u}@localhost"), PW);
    }
    server
}

#[track_caller]
fn assert_result(r: &str, what: &str) {
    assert_eq!(
        attr(r, "type").as_deref(),
        Some("result"),
        "{what}: expected an iq result, got {r}"
    );
}

/// Enable carbons on this session (XEP-0280 §4).
async fn enable(c: &mut Client) {
    let r = iq(c, &fresh_id("en"), ENABLE).await;
    assert_result(&r, "enabling carbons");
}

/// Disable carbons on this session (XEP-0280 §5).
async fn disable(c: &mut Client) {
    let r = iq(c, &fresh_id("dis"), DISABLE).await;
    assert_result(&r, "disabling carbons");
}

/// Log `user@localhost` in as `resource`, enable carbons if `carbons`, and
/// send available presence with `priority`; all of it processed by the
/// server when this returns.
async fn session(
    server: &Server,
    user: &str,
    resource: &str,
    priority: i8,
    carbons: bool,
) -> Client {
    let mut c = client::login(server, &format!("{user}@localhost"), PW, resource).await;
    if carbons {
        enable(&mut c).await;
    }
    c.send(&format!(
        "<presence><priority>{priority}</priority></presence>"
    ))
    .await;
    // The session handles its stanzas in order: once the ping is answered,
    // the presence (and the priority) is in force.
    let r = iq(
        &mut c,
        &fresh_id("up"),
        "<iq type='get' id='ID' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert_result(&r, "ping");
    c
}

/// Everything `c` received up to the answer to a ping of its own, and
/// during `GRACE` after it.
async fn settle(c: &mut Client) -> Vec<String> {
    let id = fresh_id("settle");
    c.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let mut seen = Vec::new();
    loop {
        let s = next(c, WAIT)
            .await
            .unwrap_or_else(|e| panic!("no answer to {id}: {e}\nseen: {seen:#?}"));
        if attr(&s, "id").as_deref() == Some(id.as_str()) && s.starts_with("<iq") {
            break;
        }
        seen.push(s);
    }
    let deadline = tokio::time::Instant::now() + GRACE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(c, left).await {
            Ok(s) => seen.push(s),
            Err(_) => return seen,
        }
    }
}

fn is_message(s: &str) -> bool {
    s.starts_with("<message")
}

/// Whether a message carries a carbons `<sent/>` or `<received/>` wrapper.
fn is_carbon(s: &str) -> bool {
    is_message(s)
        && parse(s)
            .children()
            .any(|c| c.is("sent", NS_CARBONS) || c.is("received", NS_CARBONS))
}

/// A stanza cut short for a failure message (some carry 200 KiB bodies).
fn short(s: &str) -> String {
    match s.char_indices().nth(600) {
        Some((i, _)) => format!("{}[... {} bytes]", &s[..i], s.len()),
        None => s.to_owned(),
    }
}

fn bare(full: &str) -> &str {
    full.split('/').next().unwrap_or(full)
}

/// Check that `s` is a well-formed carbon copy for the resource `me`
/// (XEP-0280 §7, §8: from the bare JID, to the resource's full JID, one
/// `<sent/>` or `<received/>` holding an XEP-0297 `<forwarded/>` with the
/// original `jabber:client` message, itself not a copy); returns the kind
/// and the forwarded message.
#[track_caller]
fn check_copy(s: &str, me: &str) -> (String, Element) {
    let el = parse(s);
    let text = short(s);
    assert_eq!(
        attr(s, "from").as_deref(),
        Some(bare(me)),
        "a carbon comes from the account's bare JID: {text}"
    );
    assert_eq!(
        attr(s, "to").as_deref(),
        Some(me),
        "a carbon is addressed to the receiving resource's full JID: {text}"
    );
    let wrappers: Vec<&Element> = el
        .children()
        .filter(|c| c.is("sent", NS_CARBONS) || c.is("received", NS_CARBONS))
        .collect();
    assert_eq!(wrappers.len(), 1, "one <sent/> or <received/>: {text}");
    let w = wrappers[0];
    let forwarded = w
        .get_child("forwarded", NS_FORWARD)
        .unwrap_or_else(|| panic!("no <forwarded xmlns='{NS_FORWARD}'/> in the wrapper: {text}"));
    let inner = forwarded
        .get_child("message", CLIENT_NS)
        .unwrap_or_else(|| panic!("no jabber:client <message/> in <forwarded/>: {text}"))
        .clone();
    assert!(
        !inner
            .children()
            .any(|c| c.is("sent", NS_CARBONS) || c.is("received", NS_CARBONS)),
        "a copy of a copy: {text}"
    );
    (w.name().to_owned(), inner)
}

/// Wait for the carbon copy of `kind` ("sent" or "received") of the message
/// with id `id` at the resource `me` (other stanzas stay buffered); returns
/// the wrapper stanza and the forwarded message.
async fn wait_copy(c: &mut Client, me: &str, kind: &str, id: &str) -> (String, Element) {
    let s = wait_for(c, &format!("the {kind} copy of {id:?} at {me}"), |s| {
        is_carbon(s)
            && parse(s)
                .get_child(kind, NS_CARBONS)
                .and_then(|w| w.get_child("forwarded", NS_FORWARD))
                .and_then(|f| f.get_child("message", CLIENT_NS))
                .is_some_and(|m| m.attr("id") == Some(id))
    })
    .await;
    let (_, inner) = check_copy(&s, me);
    (s, inner)
}

/// Wait for the original (not a copy) message with id `id`.
async fn wait_original(c: &mut Client, id: &str) -> String {
    wait_for(c, &format!("message {id:?}"), |s| {
        is_message(s) && !is_carbon(s) && attr(s, "id").as_deref() == Some(id)
    })
    .await
}

/// The messages a client got by now, sorted: the ids of the plain ones,
/// and (kind, id of the forwarded message) of the well-formed copies.
#[derive(Debug, Default)]
struct Got {
    originals: Vec<String>,
    copies: Vec<(String, String)>,
    all: Vec<String>,
}

/// Settle `c` (resource `me`) and sort what it got.
async fn got(c: &mut Client, me: &str) -> Got {
    let all = settle(c).await;
    let mut g = Got::default();
    for s in all.iter().filter(|s| is_message(s)) {
        if is_carbon(s) {
            let (kind, inner) = check_copy(s, me);
            g.copies
                .push((kind, inner.attr("id").unwrap_or_default().to_owned()));
        } else {
            g.originals.push(attr(s, "id").unwrap_or_default());
        }
    }
    g.originals.sort();
    g.copies.sort();
    g.all = all;
    g
}

/// Nothing more arrived for any of `clients` (named by their full JIDs):
/// neither an original nor a copy. `why` is printed with the JID.
async fn assert_quiet(clients: &mut [(&mut Client, &str)], why: &str) {
    for (c, me) in clients.iter_mut() {
        let g = got(c, me).await;
        assert!(
            g.originals.is_empty() && g.copies.is_empty(),
            "{me}: {why}: {:#?}",
            g.all
        );
    }
}

fn copies(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(k, id)| ((*k).to_owned(), (*id).to_owned()))
        .collect();
    v.sort();
    v
}

/// Assert that `c` (resource `me`) got no message at all by now.
async fn assert_no_message(c: &mut Client, me: &str) {
    let g = got(c, me).await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "{me} should have got no message: {:#?}",
        g.all
    );
}

fn child_text(m: &Element, name: &str) -> Option<String> {
    m.get_child(name, CLIENT_NS).map(Element::text)
}

// ---------------------------------------------------------------- discovery, enable, disable

#[tokio::test]
async fn server_advertises_carbons_and_the_rules() {
    let server = server_with(&["alice"]);
    let mut a = session(&server, "alice", "A1", 0, false).await;
    let r = muc::disco_info(&mut a, "info1", "localhost").await;
    assert_result(&r, "disco#info on the server");
    let f = features(&r);
    assert!(f.iter().any(|v| v == NS_INFO), "sanity: {r}");
    assert!(
        f.iter().any(|v| v == NS_CARBONS),
        "XEP-0280 §3: {NS_CARBONS} in the server's features: {f:?}"
    );
    assert!(
        f.iter().any(|v| v == NS_RULES),
        "XEP-0280 §6.2: {NS_RULES} in the server's features: {f:?}"
    );
}

#[tokio::test]
async fn enable_and_disable_answer_results_any_number_of_times() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 0, false).await;
    for (id, body) in [
        ("e1", ENABLE),
        // §9.1: a second enable is not an error.
        ("e2", ENABLE),
        ("d1", DISABLE),
        ("d2", DISABLE),
        ("e3", ENABLE),
        // Addressed to the user's own bare JID: the same request (RFC 6120 §10.3.3).
        (
            "e4",
            "<iq type='set' id='ID' to='alice@localhost'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
        ),
    ] {
        let r = iq(&mut a1, id, body).await;
        assert_result(&r, id);
        assert_eq!(
            attr(&r, "to").as_deref(),
            Some("alice@localhost/A1"),
            "{id}: {r}"
        );
        assert!(
            !r.contains(NS_CARBONS),
            "{id}: an empty result (XEP-0280 §4, §5): {r}"
        );
    }

    // Nobody can switch carbons on for another account's resources.
    let mut b1 = session(&server, "bob", "B1", 0, false).await;
    let mut b2 = session(&server, "bob", "B2", 0, false).await;
    let r = iq(
        &mut a1,
        "x1",
        "<iq type='set' id='ID' to='bob@localhost'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
    )
    .await;
    assert_eq!(
        attr(&r, "type").as_deref(),
        Some("error"),
        "enabling carbons for bob: {r}"
    );
    a1.send("<message to='bob@localhost/B1' type='chat' id='m1'><body>hi</body></message>")
        .await;
    wait_original(&mut b1, "m1").await;
    assert_no_message(&mut b2, "bob@localhost/B2").await;
}

// ---------------------------------------------------------------- received copies

#[tokio::test]
async fn received_copy_of_a_message_to_a_full_jid() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut a3 = session(&server, "alice", "A3", 0, false).await;
    let mut bob = session(&server, "bob", "B", 0, false).await;

    bob.send(
        "<message to='alice@localhost/A1' type='chat' id='r1'>\
         <body>Hello A1</body><thread>t-r1</thread></message>",
    )
    .await;
    let m = wait_original(&mut a1, "r1").await;
    assert_eq!(attr(&m, "from").as_deref(), Some("bob@localhost/B"), "{m}");

    let (outer, inner) = wait_copy(&mut a2, "alice@localhost/A2", "received", "r1").await;
    assert_eq!(
        attr(&outer, "type").as_deref(),
        Some("chat"),
        "the wrapper keeps the type (§7): {outer}"
    );
    assert_eq!(inner.attr("from"), Some("bob@localhost/B"), "{outer}");
    assert_eq!(inner.attr("to"), Some("alice@localhost/A1"), "{outer}");
    assert_eq!(inner.attr("type"), Some("chat"), "{outer}");
    assert_eq!(
        child_text(&inner, "body").as_deref(),
        Some("Hello A1"),
        "{outer}"
    );
    assert_eq!(
        child_text(&inner, "thread").as_deref(),
        Some("t-r1"),
        "{outer}"
    );

    // The addressee (carbons enabled) gets the original only, once; A2 one
    // copy and no original; A3 (carbons off) nothing; bob nothing back.
    let g = got(&mut a1, "alice@localhost/A1").await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "A1: {:#?}",
        g.all
    );
    let g = got(&mut a2, "alice@localhost/A2").await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "A2: {:#?}",
        g.all
    );
    assert_no_message(&mut a3, "alice@localhost/A3").await;
    assert_no_message(&mut bob, "bob@localhost/B").await;
}

#[tokio::test]
async fn message_to_the_bare_jid_copied_to_the_resources_that_did_not_get_it() {
    let server = server_with(&["alice", "bob"]);
    // RFC 6121 §8.5.2.1.1: the message goes to the highest non-negative
    // priority (5: A1 and A1b); the other carbons-enabled resources, the
    // negative one included, get a copy; A4 (carbons off) nothing.
    let mut a1 = session(&server, "alice", "A1", 5, true).await;
    let mut a1b = session(&server, "alice", "A1b", 5, true).await;
    let mut a2 = session(&server, "alice", "A2", 1, true).await;
    let mut a3 = session(&server, "alice", "A3", -1, true).await;
    let mut a4 = session(&server, "alice", "A4", 1, false).await;
    let mut bob = session(&server, "bob", "B", 0, false).await;

    bob.send(
        "<message to='alice@localhost' type='chat' id='b1'><body>to the account</body></message>",
    )
    .await;
    for c in [&mut a1, &mut a1b] {
        let m = wait_original(c, "b1").await;
        assert_eq!(attr(&m, "from").as_deref(), Some("bob@localhost/B"), "{m}");
    }
    for (c, me) in [
        (&mut a2, "alice@localhost/A2"),
        (&mut a3, "alice@localhost/A3"),
    ] {
        let (outer, inner) = wait_copy(c, me, "received", "b1").await;
        assert_eq!(inner.attr("from"), Some("bob@localhost/B"), "{outer}");
        assert_eq!(
            inner.attr("to"),
            Some("alice@localhost"),
            "the original as addressed: {outer}"
        );
        assert_eq!(
            child_text(&inner, "body").as_deref(),
            Some("to the account"),
            "{outer}"
        );
    }
    assert_quiet(
        &mut [
            (&mut a1, "alice@localhost/A1"),
            (&mut a1b, "alice@localhost/A1b"),
            (&mut a2, "alice@localhost/A2"),
            (&mut a3, "alice@localhost/A3"),
        ],
        "one original or one copy, not both",
    )
    .await;
    assert_no_message(&mut a4, "alice@localhost/A4").await;
    assert_no_message(&mut bob, "bob@localhost/B").await;
}

// ---------------------------------------------------------------- sent copies

#[tokio::test]
async fn sent_copies_go_to_the_other_enabled_resources() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut a3 = session(&server, "alice", "A3", 0, false).await;
    let mut bob = session(&server, "bob", "B", 0, false).await;

    a1.send("<message to='bob@localhost' type='chat' id='s1'><body>from A1</body></message>")
        .await;
    let m = wait_original(&mut bob, "s1").await;
    assert_eq!(
        attr(&m, "from").as_deref(),
        Some("alice@localhost/A1"),
        "{m}"
    );
    let (outer, inner) = wait_copy(&mut a2, "alice@localhost/A2", "sent", "s1").await;
    assert_eq!(attr(&outer, "type").as_deref(), Some("chat"), "{outer}");
    assert_eq!(
        inner.attr("from"),
        Some("alice@localhost/A1"),
        "the sender's full JID: {outer}"
    );
    assert_eq!(inner.attr("to"), Some("bob@localhost"), "{outer}");
    assert_eq!(
        child_text(&inner, "body").as_deref(),
        Some("from A1"),
        "{outer}"
    );

    // §8: also when the sender has not enabled carbons itself.
    a3.send("<message to='bob@localhost/B' type='chat' id='s2'><body>from A3</body></message>")
        .await;
    wait_original(&mut bob, "s2").await;
    for (c, me) in [
        (&mut a1, "alice@localhost/A1"),
        (&mut a2, "alice@localhost/A2"),
    ] {
        let (outer, inner) = wait_copy(c, me, "sent", "s2").await;
        assert_eq!(inner.attr("from"), Some("alice@localhost/A3"), "{outer}");
        assert_eq!(inner.attr("to"), Some("bob@localhost/B"), "{outer}");
    }

    // The sender never gets a copy of its own message (A1 of s1, A3 of s2),
    // nobody gets two, bob gets each message once.
    assert_quiet(
        &mut [
            (&mut a1, "alice@localhost/A1"),
            (&mut a2, "alice@localhost/A2"),
            (&mut a3, "alice@localhost/A3"),
        ],
        "nothing more",
    )
    .await;
    assert_no_message(&mut bob, "bob@localhost/B").await;
}

// ---------------------------------------------------------------- off by default, disabled

#[tokio::test]
async fn resources_without_carbons_get_no_copies() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut bob = session(&server, "bob", "B", 0, false).await;

    // Disabled again (twice: not an error either).
    disable(&mut a2).await;
    disable(&mut a2).await;
    bob.send("<message to='alice@localhost/A1' type='chat' id='d1'><body>one</body></message>")
        .await;
    a1.send("<message to='bob@localhost/B' type='chat' id='d2'><body>two</body></message>")
        .await;
    wait_original(&mut a1, "d1").await;
    wait_original(&mut bob, "d2").await;
    assert_no_message(&mut a2, "alice@localhost/A2").await;

    // Enabled again within the same session (§9.1): copies again.
    enable(&mut a2).await;
    bob.send("<message to='alice@localhost/A1' type='chat' id='d3'><body>three</body></message>")
        .await;
    wait_original(&mut a1, "d3").await;
    wait_copy(&mut a2, "alice@localhost/A2", "received", "d3").await;

    // A new session on the same resource starts with carbons off.
    drop(a2);
    let mut a2 = session(&server, "alice", "A2", 0, false).await;
    bob.send("<message to='alice@localhost/A1' type='chat' id='d4'><body>four</body></message>")
        .await;
    a1.send("<message to='bob@localhost/B' type='chat' id='d5'><body>five</body></message>")
        .await;
    wait_original(&mut a1, "d4").await;
    wait_original(&mut bob, "d5").await;
    assert_no_message(&mut a2, "alice@localhost/A2").await;
}

// ---------------------------------------------------------------- <private/>

#[tokio::test]
async fn private_messages_are_not_copied() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut b1 = session(&server, "bob", "B1", 0, true).await;
    let mut b2 = session(&server, "bob", "B2", 0, true).await;
    const HINTS: &str = "<private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/>";

    // §7 of the sender and of the recipient, in both directions (the same
    // server is the sending and the receiving one).
    a1.send(&format!(
        "<message to='bob@localhost/B1' type='chat' id='p1'><body>secret 1</body>{HINTS}</message>"
    ))
    .await;
    b1.send(&format!(
        "<message to='alice@localhost/A1' type='chat' id='p2'><body>secret 2</body>{HINTS}</message>"
    ))
    .await;
    // §6.1: a <private/> child alone makes the message ineligible.
    b1.send(
        "<message to='alice@localhost/A1' type='chat' id='p3'><body>secret 3</body>\
         <private xmlns='urn:xmpp:carbons:2'/></message>",
    )
    .await;
    // Controls: the same without the element are copied.
    b1.send("<message to='alice@localhost/A1' type='chat' id='p4'><body>open 4</body></message>")
        .await;
    a1.send("<message to='bob@localhost/B1' type='chat' id='p5'><body>open 5</body></message>")
        .await;
    for id in ["p2", "p3", "p4"] {
        wait_original(&mut a1, id).await;
    }
    for id in ["p1", "p5"] {
        wait_original(&mut b1, id).await;
    }
    let g = got(&mut a2, "alice@localhost/A2").await;
    assert_eq!(
        g.copies,
        copies(&[("received", "p4"), ("sent", "p5")]),
        "A2: {:#?}",
        g.all
    );
    assert!(g.originals.is_empty(), "A2: {:#?}", g.all);
    let g = got(&mut b2, "bob@localhost/B2").await;
    assert_eq!(
        g.copies,
        copies(&[("sent", "p4"), ("received", "p5")]),
        "B2: {:#?}",
        g.all
    );
    assert!(g.originals.is_empty(), "B2: {:#?}", g.all);
}

// ---------------------------------------------------------------- eligibility (§6.1)

#[tokio::test]
async fn eligible_messages_are_the_instant_messaging_ones() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut b1 = session(&server, "bob", "B1", 0, false).await;
    let mut b2 = session(&server, "bob", "B2", 0, true).await;

    // (id, payload, copied?) from bob to alice/A1.
    let to_alice = [
        (
            "e1",
            "type='normal'",
            "<body>normal with a body</body>",
            true,
        ),
        ("e2", "", "<body>no type: normal</body>", true),
        (
            "e3",
            "type='normal'",
            "<active xmlns='http://jabber.org/protocol/chatstates'/>",
            true,
        ),
        (
            "e4",
            "",
            "<received xmlns='urn:xmpp:receipts' id='e1'/>",
            true,
        ),
        (
            "e5",
            "",
            "<displayed xmlns='urn:xmpp:chat-markers:0' id='e2'/>",
            true,
        ),
        (
            "e6",
            "type='chat'",
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
            true,
        ),
        ("e7", "type='headline'", "<body>news</body>", false),
        (
            "e8",
            "type='normal'",
            "<x xmlns='urn:example:not-im'><data>1</data></x>",
            false,
        ),
    ];
    // From alice/A1 to bob/B1.
    let to_bob = [
        (
            "e9",
            "",
            "<received xmlns='urn:xmpp:receipts' id='e2'/>",
            true,
        ),
        ("e10", "type='headline'", "<body>news</body>", false),
        ("e11", "type='normal'", "<body>a normal one</body>", true),
    ];
    for (id, ty, payload, _) in to_alice {
        b1.send(&format!(
            "<message to='alice@localhost/A1' {ty} id='{id}'>{payload}</message>"
        ))
        .await;
    }
    for (id, ty, payload, _) in to_bob {
        a1.send(&format!(
            "<message to='bob@localhost/B1' {ty} id='{id}'>{payload}</message>"
        ))
        .await;
    }
    for (id, ..) in to_alice {
        wait_original(&mut a1, id).await;
    }
    for (id, ..) in to_bob {
        wait_original(&mut b1, id).await;
    }
    let copied = |list: &[(&'static str, &str, &str, bool)], kind: &'static str| {
        list.iter()
            .filter(|m| m.3)
            .map(|m| (kind, m.0))
            .collect::<Vec<_>>()
    };
    let mut want_a2 = copied(&to_alice, "received");
    want_a2.extend(copied(&to_bob, "sent"));
    let mut want_b2 = copied(&to_alice, "sent");
    want_b2.extend(copied(&to_bob, "received"));

    let g = got(&mut a2, "alice@localhost/A2").await;
    assert_eq!(
        g.copies,
        copies(&want_a2),
        "A2 (e7, e10: headline; e8: no IM payload): {:#?}",
        g.all
    );
    assert!(g.originals.is_empty(), "A2: {:#?}", g.all);
    let g = got(&mut b2, "bob@localhost/B2").await;
    assert_eq!(g.copies, copies(&want_b2), "B2: {:#?}", g.all);
    assert!(g.originals.is_empty(), "B2: {:#?}", g.all);
    assert_quiet(
        &mut [
            (&mut a1, "alice@localhost/A1"),
            (&mut b1, "bob@localhost/B1"),
        ],
        "nothing more",
    )
    .await;
}

#[tokio::test]
async fn muc_rules_groupchat_and_private_messages() {
    let server = server_with(&["alice", "bob"]);
    let mut bob = session(&server, "bob", "B", 0, false).await;
    create_instant(&mut bob, ROOM, "bob").await;
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut a3 = session(&server, "alice", "A3", 0, true).await;
    // A1 and A2 share the nick (XEP-0045 multi-session); A3 is not in the room.
    join(&mut a1, ROOM, "alice").await;
    join(&mut a2, ROOM, "alice").await;
    let room = muc::room(ROOM);

    // Groupchat, both ways: never copied.
    muc::send_groupchat(&mut bob, ROOM, "g1", "hello room").await;
    muc::send_groupchat(&mut a1, ROOM, "g2", "hello from alice").await;
    for c in [&mut a1, &mut a2] {
        wait_groupchat(c, ROOM, "bob", "hello room").await;
        wait_groupchat(c, ROOM, "alice", "hello from alice").await;
    }
    wait_groupchat(&mut bob, ROOM, "alice", "hello from alice").await;

    // A private message from an occupant: the room delivers it to every
    // session of the nick; not copied (§6.1).
    bob.send(&format!(
        "<message to='{room}/alice' type='chat' id='pm1'><body>psst</body>\
         <x xmlns='{NS_USER}'/></message>"
    ))
    .await;
    for c in [&mut a1, &mut a2] {
        let m = wait_original(c, "pm1").await;
        assert_eq!(attr(&m, "from"), Some(format!("{room}/bob")), "{m}");
    }
    // A private message to an occupant: copied (§6.1), at least to the
    // resource sharing the nick.
    a1.send(&format!(
        "<message to='{room}/bob' type='chat' id='pm2'><body>psst back</body>\
         <x xmlns='{NS_USER}'/></message>"
    ))
    .await;
    let m = wait_original(&mut bob, "pm2").await;
    assert_eq!(attr(&m, "from"), Some(format!("{room}/alice")), "{m}");
    let (outer, inner) = wait_copy(&mut a2, "alice@localhost/A2", "sent", "pm2").await;
    assert_eq!(inner.attr("from"), Some("alice@localhost/A1"), "{outer}");
    assert_eq!(
        inner.attr("to"),
        Some(format!("{room}/bob").as_str()),
        "{outer}"
    );
    assert_eq!(
        child_text(&inner, "body").as_deref(),
        Some("psst back"),
        "{outer}"
    );

    let g = got(&mut a1, "alice@localhost/A1").await;
    assert!(g.copies.is_empty(), "A1: {:#?}", g.all);
    let g = got(&mut a2, "alice@localhost/A2").await;
    assert!(g.copies.is_empty(), "A2: {:#?}", g.all);
    // A3 is not in the room: no groupchat, no received private message; a
    // copy of pm2 is allowed (the footnote of §6.1 only says SHOULD limit).
    let g = got(&mut a3, "alice@localhost/A3").await;
    assert!(
        g.copies.iter().all(|(k, id)| k == "sent" && id == "pm2"),
        "A3: {:#?}",
        g.all
    );
    assert!(g.originals.is_empty(), "A3: {:#?}", g.all);
}

#[tokio::test]
async fn invitations_are_copied() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 5, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut b1 = session(&server, "bob", "B1", 1, false).await;
    let mut b2 = session(&server, "bob", "B2", 0, true).await;
    create_instant(&mut b1, ROOM, "bob").await;
    wait_for(&mut b1, "the room's subject", |s| muc::subject(s).is_some()).await;
    let room = muc::room(ROOM);

    // A mediated invitation (XEP-0045 §7.8.2): bob to the room, the room to
    // alice's bare JID (A1 has the highest priority).
    b1.send(&format!(
        "<message to='{room}' id='inv1'><x xmlns='{NS_USER}'>\
         <invite to='alice@localhost'><reason>join us</reason></invite></x></message>"
    ))
    .await;
    let m = wait_original(&mut a1, "inv1").await;
    assert!(m.contains("<invite"), "{m}");
    // A direct invitation (XEP-0249) from alice to bob's bare JID (B1 has
    // the highest priority).
    a1.send(&format!(
        "<message to='bob@localhost' id='dinv'>\
         <x xmlns='jabber:x:conference' jid='{room}' reason='come'/></message>"
    ))
    .await;
    wait_original(&mut b1, "dinv").await;

    let g = got(&mut a2, "alice@localhost/A2").await;
    assert_eq!(
        g.copies,
        copies(&[("received", "inv1"), ("sent", "dinv")]),
        "A2: {:#?}",
        g.all
    );
    let g = got(&mut b2, "bob@localhost/B2").await;
    assert_eq!(
        g.copies,
        copies(&[("sent", "inv1"), ("received", "dinv")]),
        "B2: {:#?}",
        g.all
    );
    assert_quiet(
        &mut [
            (&mut a1, "alice@localhost/A1"),
            (&mut b1, "bob@localhost/B1"),
        ],
        "nothing more",
    )
    .await;
}

// ---------------------------------------------------------------- offline, errors, loops

#[tokio::test]
async fn message_to_an_offline_account_is_stored_not_copied() {
    let server = server_with(&["alice", "bob"]);
    let mut b1 = session(&server, "bob", "B1", 0, false).await;
    let mut b2 = session(&server, "bob", "B2", 0, true).await;
    b1.send(
        "<message to='alice@localhost' type='chat' id='o1'><body>are you there?</body></message>",
    )
    .await;
    b1.send(
        "<message to='alice@localhost/phone' type='chat' id='o2'><body>and there?</body></message>",
    )
    .await;
    // The sender's own side is unaffected by the recipient being offline.
    wait_copy(&mut b2, "bob@localhost/B2", "sent", "o1").await;
    wait_copy(&mut b2, "bob@localhost/B2", "sent", "o2").await;
    assert_no_message(&mut b1, "bob@localhost/B1").await;

    // A2 (carbons on, negative priority: no offline delivery) is online
    // when A1 comes and gets the stored messages: no copies of those.
    let mut a2 = session(&server, "alice", "A2", -1, true).await;
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    for id in ["o1", "o2"] {
        let m = wait_original(&mut a1, id).await;
        assert!(m.contains("urn:xmpp:delay"), "stored offline: {m}");
        assert_eq!(attr(&m, "from").as_deref(), Some("bob@localhost/B1"), "{m}");
    }
    let g = got(&mut a1, "alice@localhost/A1").await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "A1: {:#?}",
        g.all
    );
    assert_no_message(&mut a2, "alice@localhost/A2").await;
    let g = got(&mut b2, "bob@localhost/B2").await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "B2: {:#?}",
        g.all
    );
}

#[tokio::test]
async fn copies_never_loop_or_bounce() {
    let server = server_with(&["alice", "bob"]);
    let mut a1 = session(&server, "alice", "A1", 1, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    let mut a3 = session(&server, "alice", "A3", 0, true).await;
    let mut b1 = session(&server, "bob", "B1", 0, true).await;
    let mut b2 = session(&server, "bob", "B2", 0, true).await;

    a1.send("<message to='bob@localhost/B1' type='chat' id='m1'><body>ping</body></message>")
        .await;
    wait_original(&mut b1, "m1").await;
    b1.send("<message to='alice@localhost' type='chat' id='m2'><body>pong</body></message>")
        .await;
    wait_original(&mut a1, "m2").await;

    // Exactly these, nothing more: no copy of a copy, no error anywhere.
    for (c, me, want) in [
        (&mut a1, "alice@localhost/A1", vec![]),
        (
            &mut a2,
            "alice@localhost/A2",
            vec![("sent", "m1"), ("received", "m2")],
        ),
        (
            &mut a3,
            "alice@localhost/A3",
            vec![("sent", "m1"), ("received", "m2")],
        ),
        (&mut b1, "bob@localhost/B1", vec![]),
        (
            &mut b2,
            "bob@localhost/B2",
            vec![("received", "m1"), ("sent", "m2")],
        ),
    ] {
        let g = got(c, me).await;
        assert_eq!(g.copies, copies(&want), "{me}: {:#?}", g.all);
        assert!(g.originals.is_empty(), "{me}: {:#?}", g.all);
    }
}

/// What A1 reads in the slow-resource test: the original with id `until`
/// ends a read; other messages are kept in `seen`, A2's unavailable presence
/// sets `a2_gone`. Returns whether `until` came before `deadline`.
async fn read_a1(
    a1: &mut Client,
    until: Option<&str>,
    deadline: tokio::time::Instant,
    seen: &mut Vec<String>,
    a2_gone: &mut bool,
) -> bool {
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let s = match next(a1, left).await {
            Ok(s) => s,
            Err(e) if e.starts_with("Err(Elapsed") => return false,
            Err(e) => panic!(
                "A1 waiting for {until:?}: {}\nmessages so far: {seen:#?}",
                short(&e)
            ),
        };
        if s.starts_with("<presence")
            && attr(&s, "from").as_deref() == Some("alice@localhost/A2")
            && attr(&s, "type").as_deref() == Some("unavailable")
        {
            *a2_gone = true;
            if until.is_none() {
                return true;
            }
        } else if is_message(&s) && !is_carbon(&s) && attr(&s, "id").as_deref() == until {
            return true;
        } else if is_message(&s) {
            seen.push(short(&s));
        }
    }
}

/// bob sends message `c{i}` (body `filler`) to A1, and A1 reads up to it.
async fn burst_one(
    bob: &mut Client,
    a1: &mut Client,
    i: usize,
    filler: &str,
    seen: &mut Vec<String>,
    a2_gone: &mut bool,
) {
    let id = format!("c{i}");
    bob.send(&format!(
        "<message to='alice@localhost/A1' type='chat' id='{id}'><body>{filler}</body></message>"
    ))
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    assert!(
        read_a1(a1, Some(&id), deadline, seen, a2_gone).await,
        "A1 did not get {id}; messages so far: {seen:#?}"
    );
}

/// §9.3: a copy that cannot be delivered is dropped: not re-routed to the
/// account's other resources nor stored, and no error reaches the sender.
/// A2 enables carbons and stops reading until its socket buffers and its
/// (short) session queue are full of copies, then goes away: the server
/// must not re-route what it still held for A2 as it does with messages.
#[tokio::test]
async fn copies_for_a_session_that_cannot_take_them_are_dropped() {
    const SIZE: usize = 200 * 1024;
    let server = Server::start_edited(|t| {
        // Rooms need long queues (joining queues the occupant list): off here.
        t.replacen("[c2s]\n", "[c2s]\nqueue_size = 4\n", 1) + "[muc]\nenabled = false\n"
    });
    server.add_user("alice@localhost", PW);
    server.add_user("bob@localhost", PW);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = client::direct_tls_small_window(&server).await;
    let outcome = a2.auth_plain("alice", PW).await;
    assert!(outcome.contains("<success"), "{outcome}");
    a2.bind(Some("A2")).await;
    enable(&mut a2).await;
    a2.send("<presence><priority>0</priority></presence>").await;
    let r = iq(
        &mut a2,
        "a2up",
        "<iq type='get' id='ID' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert_result(&r, "ping");
    let mut bob = session(&server, "bob", "B", 0, false).await;

    // More than the server's socket buffer for A2 can take (the kernel's
    // send buffer limit), plus its queue. A1 reads every message before the
    // next is sent.
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    let n = (wmem + (3 << 20)) / SIZE + 1;
    let filler = "x".repeat(SIZE);
    let mut seen = Vec::new();
    let mut a2_gone = false;
    for i in 0..n {
        burst_one(&mut bob, &mut a1, i, &filler, &mut seen, &mut a2_gone).await;
        if !seen.is_empty() {
            break;
        }
    }
    // A2 goes away with copies still queued for it, if the server did not
    // close it as too slow already: either way its session ends.
    drop(a2);
    let deadline = tokio::time::Instant::now() + WAIT;
    if seen.is_empty() && !a2_gone {
        assert!(
            read_a1(&mut a1, None, deadline, &mut seen, &mut a2_gone).await,
            "A1 did not see A2 go"
        );
    }
    // And after it.
    for i in n..n + 3 {
        if seen.is_empty() {
            burst_one(&mut bob, &mut a1, i, &filler, &mut seen, &mut a2_gone).await;
        }
    }
    seen.extend(
        settle(&mut a1)
            .await
            .iter()
            .filter(|s| is_message(s))
            .map(|s| short(s)),
    );
    assert!(
        seen.is_empty(),
        "A1 got a re-routed copy or a duplicate: {seen:#?}"
    );
    assert_no_message(&mut bob, "bob@localhost/B").await;
    // Nothing was stored for the account either.
    drop(a1);
    let mut a3 = session(&server, "alice", "A3", 0, false).await;
    assert_no_message(&mut a3, "alice@localhost/A3").await;
}

/// §6.1: an error bounced in reply to an eligible message is eligible too
/// (required with `urn:xmpp:carbons:rules:0`).
#[tokio::test]
async fn error_reply_to_an_eligible_message_is_copied() {
    let server = server_with(&["alice"]);
    let mut a1 = session(&server, "alice", "A1", 0, true).await;
    let mut a2 = session(&server, "alice", "A2", 0, true).await;
    a1.send("<message to='nobody@localhost' type='chat' id='x1'><body>anyone?</body></message>")
        .await;
    let e = wait_original(&mut a1, "x1").await;
    assert_eq!(attr(&e, "type").as_deref(), Some("error"), "{e}");
    let (_, sent) = wait_copy(&mut a2, "alice@localhost/A2", "sent", "x1").await;
    assert_eq!(sent.attr("type"), Some("chat"));
    let (outer, bounce) = wait_copy(&mut a2, "alice@localhost/A2", "received", "x1").await;
    assert_eq!(bounce.attr("type"), Some("error"), "{outer}");
    assert_eq!(bounce.attr("from"), Some("nobody@localhost"), "{outer}");
    assert_eq!(bounce.attr("to"), Some("alice@localhost/A1"), "{outer}");
    let g = got(&mut a2, "alice@localhost/A2").await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "A2: {:#?}",
        g.all
    );
    let g = got(&mut a1, "alice@localhost/A1").await;
    assert!(
        g.originals.is_empty() && g.copies.is_empty(),
        "A1: {:#?}",
        g.all
    );
}
