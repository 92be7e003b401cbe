//! RFC 6121 behaviours real clients rely on (issue 13): the unavailable
//! echo to the resource that sent it (§4.5.2), the presence echo before
//! stored messages and requests (§4.2.2), the roster set's result before
//! its push (§2.3.2), and presence probes sent by clients (§4.3, §8.5.1).
//! Over real connections; where storage is involved, on SQLite and on
//! PostgreSQL.

mod common;

use common::Server;
use common::client::{self, Client, WAIT, attr, next, wait_for};
use std::time::Duration;

fn on_postgres(url: &str) -> Server {
    Server::start_with(&format!("[storage]\nurl = \"{url}\"\n"))
}

fn users(server: &Server, names: &[&str]) {
    for n in names {
        server.add_user(&format!("{n}@localhost"), "pw");
    }
}

async fn login(server: &Server, name: &str, resource: &str) -> Client {
    client::login(server, &format!("{name}@localhost"), "pw", resource).await
}

/// Log in, fetch the roster (to get pushes) and become available.
async fn online(server: &Server, name: &str, resource: &str) -> Client {
    let mut c = login(server, name, resource).await;
    client::iq(
        &mut c,
        "roster",
        "<iq type='get' id='ID'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await;
    c.send("<presence/>").await;
    let me = format!("{name}@localhost/{resource}");
    wait_for(&mut c, "own presence", |s| {
        s.starts_with("<presence") && attr(s, "from").as_deref() == Some(me.as_str())
    })
    .await;
    c
}

/// Whether nothing arrives within `wait` (None) or what did.
async fn quiet(c: &mut Client, wait: Duration) -> Option<String> {
    next(c, wait).await.ok()
}

/// Alice and Bob subscribe to each other (both ways), through the protocol.
async fn befriend(alice: &mut Client, bob: &mut Client) {
    alice
        .send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    wait_for(bob, "alice's request", |s| {
        attr(s, "type").as_deref() == Some("subscribe")
    })
    .await;
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    wait_for(alice, "bob's request", |s| {
        attr(s, "type").as_deref() == Some("subscribe")
    })
    .await;
    alice
        .send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    wait_for(alice, "both", |s| s.contains("subscription='both'")).await;
    wait_for(bob, "both", |s| s.contains("subscription='both'")).await;
}

// ---- 1. RFC 6121 §4.5.2: unavailable reflected to its sender -----------------

#[tokio::test]
async fn unavailable_presence_is_echoed_to_the_resource_that_sent_it() {
    let server = Server::start();
    users(&server, &["alice"]);
    let mut laptop = online(&server, "alice", "laptop").await;
    let mut phone = online(&server, "alice", "phone").await;
    wait_for(&mut laptop, "phone's presence", |s| {
        attr(s, "from").as_deref() == Some("alice@localhost/phone")
    })
    .await;
    laptop
        .send("<presence type='unavailable'><status>brb</status></presence>")
        .await;
    // The sender itself, still connected, learns it is offline...
    let echo = wait_for(&mut laptop, "own unavailable", |s| {
        s.starts_with("<presence") && attr(s, "type").as_deref() == Some("unavailable")
    })
    .await;
    assert_eq!(
        attr(&echo, "from").as_deref(),
        Some("alice@localhost/laptop"),
        "{echo}"
    );
    assert!(echo.contains("brb"), "{echo}");
    // ...as do the account's other resources.
    let other = wait_for(&mut phone, "laptop's unavailable", |s| {
        attr(s, "from").as_deref() == Some("alice@localhost/laptop")
            && attr(s, "type").as_deref() == Some("unavailable")
    })
    .await;
    assert!(other.contains("brb"), "{other}");
    // The connection stays usable, and the echo came once.
    let pong = client::iq(
        &mut laptop,
        "p1",
        "<iq type='get' id='ID' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert_eq!(attr(&pong, "type").as_deref(), Some("result"), "{pong}");
    assert_eq!(quiet(&mut laptop, Duration::from_millis(500)).await, None);
}

#[tokio::test]
async fn unavailable_from_a_resource_never_available_is_not_echoed() {
    let server = Server::start();
    users(&server, &["alice"]);
    let mut c = login(&server, "alice", "quiet").await;
    c.send("<presence type='unavailable'/>").await;
    assert_eq!(quiet(&mut c, Duration::from_millis(800)).await, None);
}

// ---- 7. RFC 6121 §4.2.2: the echo before stored stanzas -----------------------

async fn echo_comes_before_stored_stanzas(server: Server) {
    users(&server, &["alice", "bob", "carol"]);
    let mut bob = online(&server, "bob", "b").await;
    let mut carol = online(&server, "carol", "c").await;
    // While Alice is offline: a message and a subscription request wait.
    bob.send("<message to='alice@localhost' type='chat' id='m1'><body>pendant ton absence</body></message>")
        .await;
    carol
        .send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    for c in [&mut bob, &mut carol] {
        client::iq(
            c,
            "sync",
            "<iq type='get' id='ID' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    }
    let mut alice = login(&server, "alice", "res").await;
    alice.send("<presence/>").await;
    let first = next(&mut alice, WAIT).await.expect("a stanza");
    assert!(
        first.starts_with("<presence")
            && attr(&first, "from").as_deref() == Some("alice@localhost/res")
            && attr(&first, "type").is_none(),
        "the first stanza after initial presence must be its echo, got {first}"
    );
    // Both stored stanzas still come.
    let mut got_message = false;
    let mut got_request = false;
    while !(got_message && got_request) {
        let s = next(&mut alice, WAIT)
            .await
            .unwrap_or_else(|e| panic!("stored stanzas: {e}"));
        got_message |= s.starts_with("<message") && s.contains("pendant ton absence");
        got_request |= attr(&s, "type").as_deref() == Some("subscribe")
            && attr(&s, "from").as_deref() == Some("carol@localhost");
    }
}

#[tokio::test]
async fn echo_comes_before_stored_stanzas_sqlite() {
    echo_comes_before_stored_stanzas(Server::start()).await;
}

#[tokio::test]
async fn echo_comes_before_stored_stanzas_postgres() {
    let url = common::fresh_pg().await;
    echo_comes_before_stored_stanzas(on_postgres(&url)).await;
}

// ---- 8. RFC 6121 §2.3.2: the roster set's result before its push --------------

async fn roster_result_comes_before_push(server: Server) {
    users(&server, &["alice"]);
    let mut laptop = online(&server, "alice", "laptop").await;
    let mut phone = online(&server, "alice", "phone").await;
    laptop
        .send("<iq type='set' id='set1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>Amis</group></item></query></iq>")
        .await;
    let first = wait_for(&mut laptop, "the roster set's answer or push", |s| {
        s.starts_with("<iq")
    })
    .await;
    assert_eq!(
        (
            attr(&first, "id").as_deref(),
            attr(&first, "type").as_deref()
        ),
        (Some("set1"), Some("result")),
        "the result must come before the push: {first}"
    );
    let push = next(&mut laptop, WAIT).await.expect("the push");
    assert!(
        attr(&push, "type").as_deref() == Some("set") && push.contains("jid='bob@localhost'"),
        "{push}"
    );
    // The other resource gets its push as before.
    let other = wait_for(&mut phone, "the push", |s| {
        s.contains("jid='bob@localhost'")
    })
    .await;
    assert!(other.contains("name='Bob'"), "{other}");
    // Removing: the same order.
    laptop
        .send("<iq type='set' id='rm1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>")
        .await;
    let first = wait_for(&mut laptop, "the remove's answer or push", |s| {
        s.starts_with("<iq")
    })
    .await;
    assert_eq!(
        (
            attr(&first, "id").as_deref(),
            attr(&first, "type").as_deref()
        ),
        (Some("rm1"), Some("result")),
        "{first}"
    );
    let push = next(&mut laptop, WAIT).await.expect("the push");
    assert!(push.contains("subscription='remove'"), "{push}");
    wait_for(&mut phone, "the remove push", |s| {
        s.contains("subscription='remove'")
    })
    .await;
}

#[tokio::test]
async fn roster_result_comes_before_push_sqlite() {
    roster_result_comes_before_push(Server::start()).await;
}

#[tokio::test]
async fn roster_result_comes_before_push_postgres() {
    let url = common::fresh_pg().await;
    roster_result_comes_before_push(on_postgres(&url)).await;
}

// ---- 10. RFC 6121 §4.3: probes sent by clients ------------------------------

/// `c` probes `contact`, an account that does not exist: `unsubscribed`
/// comes back from it. Returns the roster afterwards.
async fn probe_gets_unsubscribed(c: &mut Client, contact: &str) -> String {
    c.send(&format!("<presence to='{contact}' type='probe'/>"))
        .await;
    let gone = wait_for(c, "unsubscribed", |s| {
        attr(s, "type").as_deref() == Some("unsubscribed")
    })
    .await;
    assert_eq!(attr(&gone, "from").as_deref(), Some(contact), "{gone}");
    client::iq(
        c,
        "roster-after",
        "<iq type='get' id='ID'><query xmlns='jabber:iq:roster'/></iq>",
    )
    .await
}

async fn client_probes(server: Server) {
    users(&server, &["alice", "bob", "carol"]);
    let mut alice = online(&server, "alice", "a").await;
    let mut bob = online(&server, "bob", "b").await;
    befriend(&mut alice, &mut bob).await;
    bob.send("<presence><show>dnd</show><status>en réunion</status></presence>")
        .await;
    wait_for(&mut alice, "bob's dnd", |s| s.contains("en réunion")).await;
    // A subscribed contact's probe is answered with the current presence.
    alice
        .send("<presence to='bob@localhost' type='probe'/>")
        .await;
    let answer = wait_for(&mut alice, "the probe's answer", |s| {
        s.starts_with("<presence") && attr(s, "from").as_deref() == Some("bob@localhost/b")
    })
    .await;
    assert!(answer.contains("en réunion"), "{answer}");
    // Not subscribed: nothing is revealed.
    let mut carol = online(&server, "carol", "c").await;
    carol
        .send("<presence to='bob@localhost' type='probe'/>")
        .await;
    assert_eq!(quiet(&mut carol, Duration::from_millis(800)).await, None);
    // Bob's account is deleted: a probe gets 'unsubscribed', and Alice's
    // server cancels her subscription to the account that is gone.
    drop(bob);
    let out = server.cli(&["user", "del", "bob@localhost"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let roster = probe_gets_unsubscribed(&mut alice, "bob@localhost").await;
    assert!(
        roster.contains("jid='bob@localhost'") && !roster.contains("subscription='both'"),
        "{roster}"
    );
    assert!(!roster.contains("subscription='to'"), "{roster}");
}

#[tokio::test]
async fn client_probes_are_answered_sqlite() {
    client_probes(Server::start()).await;
}

#[tokio::test]
async fn client_probes_are_answered_postgres() {
    let url = common::fresh_pg().await;
    client_probes(on_postgres(&url)).await;
}

#[tokio::test]
async fn a_probe_for_an_unknown_account_gets_unsubscribed() {
    let server = Server::start();
    users(&server, &["alice"]);
    let mut alice = online(&server, "alice", "a").await;
    // A request to an account that does not exist waits (nothing answers)...
    alice
        .send("<presence to='ghost@localhost' type='subscribe'/>")
        .await;
    wait_for(&mut alice, "the pending push", |s| {
        s.contains("ask='subscribe'")
    })
    .await;
    // ...until a probe learns that there is no such account.
    let roster = probe_gets_unsubscribed(&mut alice, "ghost@localhost").await;
    assert!(!roster.contains("ask='subscribe'"), "{roster}");
    // Nothing was kept for the missing account: once created, it finds no
    // request from Alice.
    server.add_user("ghost@localhost", "pw");
    let mut ghost = login(&server, "ghost", "g").await;
    ghost.send("<presence/>").await;
    wait_for(&mut ghost, "own presence", |s| {
        attr(s, "from").as_deref() == Some("ghost@localhost/g")
    })
    .await;
    assert_eq!(quiet(&mut ghost, Duration::from_millis(800)).await, None);
}
