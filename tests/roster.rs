//! RFC 6121 roster, subscriptions and presence, over real connections with
//! the raw test client.

mod common;

use common::Server;
use common::client::{self, Client};
use std::time::Duration;

/// Log in and ask for the roster (so the session gets roster pushes).
async fn online(server: &Server, user: &str, resource: &str) -> Client {
    let mut c = client::login(server, user, "pw", resource).await;
    c.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    c.expect("id='r0'").await;
    c.expect("</iq>").await;
    c
}

async fn available(c: &mut Client, id: &str) {
    c.send(&format!("<presence id='{id}'/>")).await;
}

/// The end of the first complete top-level element in `buf`, if any.
fn stanza_end(buf: &str) -> Option<usize> {
    let b = buf.as_bytes();
    let mut i = buf.find('<')?;
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let mut j = i + 1;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'\'' | b'"') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        if j >= b.len() {
            return None;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if b[j - 1] != b'/' {
            depth += 1;
        }
        if depth == 0 {
            return Some(j + 1);
        }
        i = j + 1;
    }
    None
}

/// The next stanza containing every fragment; others are skipped. Panics after 10 s.
async fn stanza_with(c: &mut Client, frags: &[&str]) -> String {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut skipped = Vec::new();
    loop {
        while let Some(end) = stanza_end(&c.buf) {
            let stanza: String = c.buf.drain(..end).collect();
            if frags.iter().all(|f| stanza.contains(f)) {
                return stanza;
            }
            skipped.push(stanza);
        }
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout_at(deadline, c.io.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => c.buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            _ => panic!(
                "no stanza with {frags:?}; skipped: {skipped:#?}; pending: {:?}",
                c.buf
            ),
        }
    }
}

/// Everything the client receives until `needle`, which must come.
async fn until(c: &mut Client, needle: &str) -> String {
    c.expect(needle).await
}

fn users(server: &Server, names: &[&str]) {
    for n in names {
        server.add_user(&format!("{n}@localhost"), "pw");
    }
}

/// Alice and Bob add each other (with a nickname and a group) and both
/// approve: the subscription ends as "both" on each side.
async fn befriend(alice: &mut Client, bob: &mut Client) {
    alice
        .send("<iq type='set' id='a1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bobby'><group>Collègues</group></item></query></iq>")
        .await;
    // RFC 6121 §2.3.2: the result, then the push.
    let result = stanza_with(alice, &["<iq"]).await;
    assert!(
        result.contains("id='a1'") && result.contains("type='result'"),
        "{result}"
    );
    let push = stanza_with(alice, &["<iq"]).await;
    assert!(
        push.contains("jid='bob@localhost'") && push.contains("name='Bobby'"),
        "{push}"
    );
    assert!(
        push.contains("<group>Collègues</group>") && push.contains("subscription='none'"),
        "{push}"
    );
    alice
        .send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    let push = until(alice, "ask='subscribe'").await;
    assert!(push.contains("type='set'"), "{push}");
    stanza_with(bob, &["from='alice@localhost'", "type='subscribe'"]).await;
    // Bob approves and adds Alice back.
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    stanza_with(alice, &["subscription='to'"]).await;
    stanza_with(alice, &["from='bob@localhost'", "type='subscribed'"]).await;
    bob.send("<iq type='set' id='b1'><query xmlns='jabber:iq:roster'><item jid='alice@localhost' name='Alice'><group>Amis</group></item></query></iq>").await;
    until(bob, "id='b1'").await;
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    stanza_with(alice, &["from='bob@localhost'", "type='subscribe'"]).await;
    alice
        .send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    stanza_with(bob, &["subscription='both'"]).await;
    stanza_with(alice, &["subscription='both'"]).await;
}

#[tokio::test]
async fn contacts_subscribe_see_status_and_get_offline_messages() {
    let server = Server::start();
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice@localhost", "laptop").await;
    let mut bob = online(&server, "bob@localhost", "phone").await;
    available(&mut alice, "pa").await;
    available(&mut bob, "pb").await;
    befriend(&mut alice, &mut bob).await;

    // Each roster now holds the other, with nickname, group and subscription both.
    alice
        .send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let roster = until(&mut alice, "</query>").await;
    assert!(
        roster.contains("jid='bob@localhost'") && roster.contains("name='Bobby'"),
        "{roster}"
    );
    assert!(
        roster.contains("subscription='both'") && roster.contains("<group>Collègues</group>"),
        "{roster}"
    );

    // Status changes reach the contact: away, dnd, back.
    for (show, text) in [("away", "au déjeuner"), ("dnd", "en réunion")] {
        bob.send(&format!(
            "<presence><show>{show}</show><status>{text}</status></presence>"
        ))
        .await;
        let show = format!("<show>{show}</show>");
        let status = format!("<status>{text}</status>");
        stanza_with(&mut alice, &["from='bob@localhost/phone'", &show, &status]).await;
    }
    bob.send("<presence><status>back</status></presence>").await;
    let p = stanza_with(
        &mut alice,
        &["from='bob@localhost/phone'", "<status>back</status>"],
    )
    .await;
    assert!(!p.contains("<show>"), "{p}");

    // Bob leaves cleanly: Alice sees him go.
    bob.send("</stream:stream>").await;
    stanza_with(
        &mut alice,
        &["from='bob@localhost/phone'", "type='unavailable'"],
    )
    .await;

    // Three messages while Bob is offline arrive in order, stamped, at his next login.
    for i in 1..=3 {
        alice.send(&format!("<message to='bob@localhost' type='chat' id='m{i}'><body>message {i}</body></message>")).await;
    }
    alice
        .send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    until(&mut alice, "id='sync'").await;
    let mut bob = online(&server, "bob@localhost", "phone").await;
    available(&mut bob, "pb2").await;
    let mut seen = String::new();
    for i in 1..=3 {
        seen.push_str(&until(&mut bob, &format!("message {i}</body>")).await);
        let rest = until(&mut bob, "</message>").await;
        assert!(
            rest.contains("urn:xmpp:delay") && rest.contains("stamp="),
            "{rest}"
        );
    }
    let _ = seen;
    // Alice learns Bob is back.
    stanza_with(&mut alice, &["<presence", "from='bob@localhost/phone'"]).await;
}

#[tokio::test]
async fn roster_versioning_returns_only_changes() {
    let server = Server::start();
    users(&server, &["alice"]);
    let mut alice = online(&server, "alice@localhost", "r").await;
    for (i, contact) in ["a", "b", "c"].iter().enumerate() {
        alice
            .send(&format!("<iq type='set' id='s{i}'><query xmlns='jabber:iq:roster'><item jid='{contact}@example.org'/></query></iq>"))
            .await;
        // RFC 6121 §2.3.2: the result, then the push.
        stanza_with(&mut alice, &[&format!("id='s{i}'"), "type='result'"]).await;
        let push = stanza_with(&mut alice, &["<iq"]).await;
        assert!(
            push.contains("type='set'") && push.contains(&format!("{contact}@example.org")),
            "{push}"
        );
    }
    alice
        .send("<iq type='get' id='full'><query xmlns='jabber:iq:roster' ver=''/></iq>")
        .await;
    let full = until(&mut alice, "</query>").await;
    assert!(
        full.contains("a@example.org") && full.contains("c@example.org"),
        "{full}"
    );
    let ver: String = full
        .split("ver='")
        .nth(1)
        .and_then(|v| v.split('\'').next())
        .expect("a version")
        .to_owned();
    // Unchanged: an empty result.
    alice
        .send(&format!(
            "<iq type='get' id='same'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>"
        ))
        .await;
    let same = until(&mut alice, "id='same'").await;
    let same = format!("{same}{}", until(&mut alice, ">").await);
    assert!(!same.contains("<query"), "{same}");
    // One change, one removal: an empty result then exactly those pushes.
    alice.send("<iq type='set' id='d'><query xmlns='jabber:iq:roster'><item jid='d@example.org'/></query></iq>").await;
    until(&mut alice, "id='d'").await;
    alice.send("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='a@example.org' subscription='remove'/></query></iq>").await;
    until(&mut alice, "id='rm'").await;
    alice
        .send(&format!(
            "<iq type='get' id='since'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>"
        ))
        .await;
    until(&mut alice, "id='since'").await;
    alice
        .send("<iq type='get' id='end' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let pushes = until(&mut alice, "id='end'").await;
    assert!(pushes.contains("jid='d@example.org'"), "{pushes}");
    assert!(
        pushes.contains("jid='a@example.org'") && pushes.contains("subscription='remove'"),
        "{pushes}"
    );
    assert!(
        !pushes.contains("b@example.org") && !pushes.contains("c@example.org"),
        "only changes: {pushes}"
    );
}

#[tokio::test]
async fn cut_connection_and_silent_client_produce_unavailable() {
    let server = Server::start_with_c2s("ping_interval = 1\nping_timeout = 1\n");
    users(&server, &["alice", "bob", "carol"]);
    let mut alice = online(&server, "alice@localhost", "a").await;
    available(&mut alice, "pa").await;
    let mut bob = online(&server, "bob@localhost", "b").await;
    available(&mut bob, "pb").await;
    befriend(&mut alice, &mut bob).await;
    // Bob's TCP connection is cut without a closing stream.
    drop(bob);
    stanza_with(
        &mut alice,
        &["from='bob@localhost/b'", "type='unavailable'"],
    )
    .await;

    // Carol stays connected but stops answering: the server's ping finds out.
    let mut carol = online(&server, "carol@localhost", "c").await;
    available(&mut carol, "pc").await;
    // Alice subscribes to Carol's presence; Carol approves.
    alice
        .send("<presence to='carol@localhost' type='subscribe'/>")
        .await;
    stanza_with(&mut carol, &["from='alice@localhost'", "type='subscribe'"]).await;
    carol
        .send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    stanza_with(&mut alice, &["<presence", "from='carol@localhost/c'"]).await;
    // Alice answers the server's pings while she waits; Carol never does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no unavailable presence for carol"
        );
        let s = stanza_with(&mut alice, &["<"]).await;
        if s.contains("jaseur-ping") {
            alice
                .send("<iq type='result' id='jaseur-ping' to='localhost'/>")
                .await;
        }
        if s.contains("from='carol@localhost/c'") && s.contains("type='unavailable'") {
            break;
        }
    }
    let closed = carol
        .read_to_close(Duration::from_secs(10))
        .await
        .expect("carol's stream closed");
    assert!(closed.contains("connection-timeout"), "{closed}");
}

#[tokio::test]
async fn requests_wait_for_login_and_preapproval_and_removal() {
    let server = Server::start();
    users(&server, &["alice", "bob", "dave"]);
    // Alice asks Bob while he is offline: he gets the request at login.
    let mut alice = online(&server, "alice@localhost", "a").await;
    available(&mut alice, "pa").await;
    alice
        .send(
            "<presence to='bob@localhost' type='subscribe'><status>C'est Alice</status></presence>",
        )
        .await;
    until(&mut alice, "ask='subscribe'").await;
    let mut bob = online(&server, "bob@localhost", "b").await;
    available(&mut bob, "pb").await;
    stanza_with(
        &mut bob,
        &["from='alice@localhost'", "type='subscribe'", "C'est Alice"],
    )
    .await;
    // It is delivered again at every login until answered.
    drop(bob);
    let mut bob = online(&server, "bob@localhost", "b2").await;
    available(&mut bob, "pb2").await;
    stanza_with(&mut bob, &["from='alice@localhost'", "type='subscribe'"]).await;
    // Bob refuses: Alice's pending request is cancelled.
    bob.send("<presence to='alice@localhost' type='unsubscribed'/>")
        .await;
    stanza_with(&mut alice, &["from='bob@localhost'", "type='unsubscribed'"]).await;

    // Dave pre-approves Alice ("allow this contact to see my status"): her request is approved at once.
    let mut dave = online(&server, "dave@localhost", "d").await;
    available(&mut dave, "pd").await;
    dave.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    // Sessions work in parallel: make sure the pre-approval is stored first.
    dave.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    stanza_with(&mut dave, &["id='sync'"]).await;
    alice
        .send("<presence to='dave@localhost' type='subscribe'/>")
        .await;
    stanza_with(&mut alice, &["from='dave@localhost'", "type='subscribed'"]).await;
    stanza_with(&mut dave, &["subscription='from'"]).await;
    // Alice sees Dave's presence right away.
    stanza_with(&mut alice, &["<presence", "from='dave@localhost/d'"]).await;

    // Alice removes Dave: Dave's side learns the subscription is gone.
    alice.send("<iq type='set' id='rm'><query xmlns='jabber:iq:roster'><item jid='dave@localhost' subscription='remove'/></query></iq>").await;
    stanza_with(
        &mut alice,
        &["jid='dave@localhost'", "subscription='remove'"],
    )
    .await;
    stanza_with(&mut dave, &["jid='alice@localhost'", "subscription='none'"]).await;
}

#[tokio::test]
async fn offline_messages_wait_for_a_non_negative_priority() {
    let server = Server::start();
    users(&server, &["alice", "bob"]);
    let mut alice = online(&server, "alice@localhost", "a").await;
    alice
        .send(
            "<message to='bob@localhost' type='chat' id='m1'><body>pour plus tard</body></message>",
        )
        .await;
    alice
        .send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    stanza_with(&mut alice, &["id='sync'"]).await;
    let mut bob = online(&server, "bob@localhost", "b").await;
    // RFC 6121 §4.7.2.3: a negative priority takes no bare-JID messages...
    bob.send("<presence><priority>-1</priority></presence>")
        .await;
    bob.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let before = stanza_with(&mut bob, &["id='p1'"]).await;
    assert!(!bob.buf.contains("pour plus tard") && !before.contains("pour plus tard"));
    // ...so the stored message waits for the priority to become non-negative.
    bob.send("<presence><priority>1</priority></presence>")
        .await;
    let m = stanza_with(&mut bob, &["<message", "pour plus tard"]).await;
    assert!(m.contains("urn:xmpp:delay"), "{m}");
}
