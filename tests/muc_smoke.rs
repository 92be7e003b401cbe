//! The MUC service end to end, briefly: create, join, talk, history, leave.
//! (Each XEP-0045 area has its own test file.)

mod common;

use common::Server;
use common::client::{self, iq};

#[tokio::test]
async fn create_join_talk_and_history() {
    let server = Server::start();
    for u in ["alice", "bob", "carol"] {
        server.add_user(&format!("{u}@localhost"), "pw");
    }
    let mut alice = client::login(&server, "alice@localhost", "pw", "a").await;
    alice
        .send("<presence to='salon@conference.localhost/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    let me = client::wait_for(&mut alice, "self-presence", |s| {
        s.contains("code='110'") || s.contains("code=\"110\"")
    })
    .await;
    let me = client::norm(&me);
    assert!(me.contains("code='201'"), "{me}");
    assert!(
        me.contains("affiliation='owner'") && me.contains("role='moderator'"),
        "{me}"
    );
    // Locked until configured: bob cannot enter yet.
    let mut bob = client::login(&server, "bob@localhost", "pw", "b").await;
    bob.send("<presence to='salon@conference.localhost/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    let e = client::wait_for(&mut bob, "error", |s| s.starts_with("<presence")).await;
    assert!(client::is_error(&e, "item-not-found"), "{e}");
    let r = iq(
        &mut alice,
        "c1",
        "<iq type='set' id='c1' to='salon@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
    )
    .await;
    assert!(client::norm(&r).contains("type='result'"), "{r}");
    alice
        .send("<message to='salon@conference.localhost' type='groupchat' id='m1'><body>bonjour</body></message>")
        .await;
    let echo = client::wait_for(&mut alice, "reflection", |s| s.contains("bonjour")).await;
    let echo = client::norm(&echo);
    assert!(
        echo.contains("from='salon@conference.localhost/Alice'"),
        "{echo}"
    );
    assert!(echo.contains("urn:xmpp:sid:0"), "{echo}");
    assert!(echo.contains("urn:xmpp:occupant-id:0"), "{echo}");

    bob.send("<presence to='salon@conference.localhost/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    client::wait_for(&mut bob, "alice's presence", |s| {
        s.contains("salon@conference.localhost/Alice")
    })
    .await;
    client::wait_for(&mut bob, "own presence", |s| {
        s.contains("code='110'") || s.contains("code=\"110\"")
    })
    .await;
    let h = client::wait_for(&mut bob, "history", |s| s.contains("bonjour")).await;
    assert!(h.contains("urn:xmpp:delay"), "{h}");
    client::wait_for(&mut bob, "subject", |s| s.contains("<subject")).await;
    client::wait_for(&mut alice, "bob joined", |s| {
        s.contains("salon@conference.localhost/Bob")
    })
    .await;

    bob.send(
        "<message to='salon@conference.localhost' type='groupchat'><body>salut</body></message>",
    )
    .await;
    client::wait_for(&mut alice, "bob's message", |s| s.contains("salut")).await;
    // A nick taken by someone else.
    let mut carol = client::login(&server, "carol@localhost", "pw", "c").await;
    carol
        .send("<presence to='salon@conference.localhost/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
        .await;
    let e = client::wait_for(&mut carol, "conflict", |s| {
        s.starts_with("<presence") && s.contains("type='error'") || s.contains("type=\"error\"")
    })
    .await;
    assert!(client::is_error(&e, "conflict"), "{e}");
    // Leaving.
    bob.send("<presence to='salon@conference.localhost/Bob' type='unavailable'/>")
        .await;
    let gone = client::wait_for(&mut alice, "bob left", |s| {
        s.contains("salon@conference.localhost/Bob") && s.contains("unavailable")
    })
    .await;
    assert!(
        gone.contains("role='none'") || gone.contains("role=\"none\""),
        "{gone}"
    );
}
