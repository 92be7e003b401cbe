//! In-band registration (XEP-0077): account creation before authentication,
//! password change and account removal, as client conversations with the
//! real server over TLS.

mod common;
use common::client::{attr, norm};
use common::client::{iq, is_error};

use common::Server;
use common::client::{self, Client, HEADER, WAIT};

const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
const FEATURE: &str = "<register xmlns='http://jabber.org/features/iq-register'/>";

/// A server whose configuration gets `lines` under `[auth]` (TOML forbids a
/// second `[auth]` table), started the way `Server::start_with_c2s` does.
fn start_with_auth(lines: &str) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("jaseur.toml");
    let text = common::config_text(&dir.path().join("data"), "").replacen(
        "[auth]\n",
        &format!("[auth]\n{}\n", lines.trim_end()),
        1,
    );
    std::fs::write(&config, text).expect("config");
    let mut s = Server {
        dir,
        config,
        child: None,
        c2s: "127.0.0.1:1".parse().expect("addr"),
        direct_tls: "127.0.0.1:1".parse().expect("addr"),
        http: None,
    };
    s.launch();
    s
}

fn open_server() -> Server {
    start_with_auth("allow_registration = true")
}

fn is_result(stanza: &str) -> bool {
    attr(stanza, "type").as_deref() == Some("result")
}

fn register_set(user: &str, password: &str) -> String {
    format!(
        "<iq type='set' id='ID'><query xmlns='jabber:iq:register'>\
         <username>{user}</username><password>{password}</password></query></iq>"
    )
}

const REGISTER_GET: &str = "<iq type='get' id='ID'><query xmlns='jabber:iq:register'/></iq>";

/// STARTTLS by hand, returning the client and the post-TLS features.
async fn tls_with_features(server: &Server) -> (Client, String) {
    let mut c = client::tcp(server).await;
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    c.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    let tls = tokio_rustls::TlsConnector::from(client::tls_config(server))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").expect("name"),
            c.io,
        )
        .await
        .expect("TLS");
    let mut c = client::Conn::new(tls);
    c.send(HEADER).await;
    let features = norm(&c.expect("</stream:features>").await);
    (c, features)
}

/// PLAIN on a fresh connection; returns the server's answer.
async fn try_login(server: &Server, user: &str, password: &str) -> String {
    let mut c = client::starttls(server).await;
    c.auth_plain(user, password).await
}

// ------------------------------------------------------ before authentication

#[tokio::test]
async fn registration_disabled_refuses_before_login() {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    let (mut c, features) = tls_with_features(&server).await;
    assert!(!features.contains(FEATURE), "{features}");
    let r = iq(&mut c, "r1", REGISTER_GET).await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
    let r = iq(&mut c, "r2", &register_set("mallory", "secret")).await;
    assert!(is_error(&r, "service-unavailable"), "{r}");
    // The stream is still usable for logging in, and nothing was created.
    let outcome = c.auth_plain("alice", "apw").await;
    assert!(outcome.contains("<success"), "{outcome}");
    assert!(
        try_login(&server, "mallory", "secret")
            .await
            .contains("<failure")
    );
}

#[tokio::test]
async fn register_then_log_in_on_the_same_stream() {
    let server = open_server();
    let (mut c, features) = tls_with_features(&server).await;
    assert!(features.contains(FEATURE), "{features}");
    let form = iq(&mut c, "r1", REGISTER_GET).await;
    assert!(is_result(&form), "{form}");
    for field in ["<instructions>", "<username/>", "<password/>"] {
        assert!(form.contains(field), "{field} missing: {form}");
    }
    // The username is nodeprepped: "Newbie" becomes "newbie".
    let r = iq(&mut c, "r2", &register_set("Newbie", "fresh pw")).await;
    assert!(is_result(&r), "{r}");
    let outcome = c.auth_plain("newbie", "fresh pw").await;
    assert!(outcome.contains("<success"), "{outcome}");
    let jid = c.bind(Some("r")).await;
    assert_eq!(jid, "newbie@localhost/r");
    // Once logged in, the account shows as registered.
    let r = iq(
        &mut c,
        "g1",
        "<iq type='get' id='ID' to='localhost'><query xmlns='jabber:iq:register'/></iq>",
    )
    .await;
    assert!(r.contains("<registered/>"), "{r}");
    assert!(r.contains("<username>newbie</username>"), "{r}");
}

#[tokio::test]
async fn taken_and_invalid_names_are_refused() {
    let server = open_server();
    server.add_user("alice@localhost", "apw");
    let (mut c, _) = tls_with_features(&server).await;
    let r = iq(&mut c, "r1", &register_set("alice", "other")).await;
    assert!(is_error(&r, "conflict"), "{r}");
    // Same name after nodeprep.
    let r = iq(&mut c, "r2", &register_set("ALICE", "other")).await;
    assert!(is_error(&r, "conflict"), "{r}");
    let r = iq(&mut c, "r3", &register_set("a@b", "pw")).await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    let r = iq(&mut c, "r4", &register_set("carol", "")).await;
    assert!(is_error(&r, "not-acceptable"), "{r}");
    // alice keeps her password.
    assert!(
        try_login(&server, "alice", "apw")
            .await
            .contains("<success")
    );
    assert!(
        try_login(&server, "alice", "other")
            .await
            .contains("<failure")
    );
}

#[tokio::test]
async fn registrations_are_throttled_per_address() {
    let server = open_server();
    let mut answers = Vec::new();
    for pair in [["u1", "u2"], ["u3", "u4"]] {
        let (mut c, _) = tls_with_features(&server).await;
        for user in pair {
            answers.push(iq(&mut c, user, &register_set(user, "pw")).await);
        }
    }
    for a in &answers[..3] {
        assert!(is_result(a), "{a}");
    }
    assert!(is_error(&answers[3], "policy-violation"), "{}", answers[3]);
    assert!(answers[3].contains("type='wait'"), "{}", answers[3]);
    assert!(try_login(&server, "u4", "pw").await.contains("<failure"));
}

// ------------------------------------------------------- after authentication

#[tokio::test]
async fn password_change() {
    let server = Server::start();
    server.add_user("alice@localhost", "old");
    server.add_user("bob@localhost", "bpw");
    let mut c = client::login(&server, "alice@localhost", "old", "r").await;
    let r = iq(
        &mut c,
        "g1",
        "<iq type='get' id='ID' to='localhost'><query xmlns='jabber:iq:register'/></iq>",
    )
    .await;
    assert!(is_result(&r), "{r}");
    assert!(r.contains("<registered/>"), "{r}");
    assert!(r.contains("<username>alice</username>"), "{r}");
    // Someone else's password: refused.
    let other = register_set("bob", "hijack").replace("type='set'", "type='set' to='localhost'");
    let r = iq(&mut c, "c0", &other).await;
    assert!(is_error(&r, "bad-request"), "{r}");
    // §3.3: an empty password never replaces the existing one.
    let empty = register_set("alice", "").replace("type='set'", "type='set' to='localhost'");
    let r = iq(&mut c, "c1", &empty).await;
    assert!(attr(&r, "type").as_deref() == Some("error"), "{r}");
    let change = register_set("alice", "new").replace("type='set'", "type='set' to='localhost'");
    let r = iq(&mut c, "c2", &change).await;
    assert!(is_result(&r), "{r}");
    assert!(
        try_login(&server, "alice", "old")
            .await
            .contains("<failure")
    );
    assert!(
        try_login(&server, "alice", "new")
            .await
            .contains("<success")
    );
    assert!(try_login(&server, "bob", "bpw").await.contains("<success"));
}

/// §3.2 asks clients to send `<remove/>` with no 'to' (to their own account);
/// clients also query without one.
#[tokio::test]
async fn requests_without_to_are_answered() {
    let server = Server::start();
    server.add_user("alice@localhost", "old");
    let mut c = client::login(&server, "alice@localhost", "old", "r").await;
    let r = iq(&mut c, "g1", REGISTER_GET).await;
    assert!(r.contains("<registered/>"), "{r}");
    let r = iq(&mut c, "c1", &register_set("alice", "new")).await;
    assert!(is_result(&r), "{r}");
    assert!(
        try_login(&server, "alice", "new")
            .await
            .contains("<success")
    );
}

#[tokio::test]
async fn remove_refused_when_registration_is_off() {
    let server = Server::start();
    server.add_user("alice@localhost", "apw");
    let mut c = client::login(&server, "alice@localhost", "apw", "r").await;
    let r = iq(
        &mut c,
        "u1",
        "<iq type='set' id='ID' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>",
    )
    .await;
    assert!(is_error(&r, "not-allowed"), "{r}");
    assert!(
        try_login(&server, "alice", "apw")
            .await
            .contains("<success")
    );
}

#[tokio::test]
async fn remove_deletes_the_account_and_ends_its_sessions() {
    let server = open_server();
    server.add_user("alice@localhost", "apw");
    let mut c = client::login(&server, "alice@localhost", "apw", "one").await;
    let mut other = client::login(&server, "alice@localhost", "apw", "two").await;
    c.send(
        "<iq type='set' id='u1' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>",
    )
    .await;
    for s in [&mut c, &mut other] {
        let closed = norm(&s.read_to_close(WAIT).await.expect("session ended"));
        assert!(
            closed.contains(&format!("<not-authorized xmlns='{STREAMS}'/>")),
            "{closed}"
        );
    }
    assert!(
        try_login(&server, "alice", "apw")
            .await
            .contains("<failure")
    );
}

/// §3.2 shows the result before the stream error; it is queued before the
/// sessions close, and reaches the client once the session writes what is
/// queued before its stream error (integration note for c2s/session.rs).
#[tokio::test]
async fn remove_answers_before_closing() {
    let server = open_server();
    server.add_user("alice@localhost", "apw");
    let mut c = client::login(&server, "alice@localhost", "apw", "one").await;
    c.send("<iq type='set' id='u1' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>")
        .await;
    let closed = norm(&c.read_to_close(WAIT).await.expect("session ended"));
    let error = closed.find("<stream:error>").expect("stream error");
    let result = closed
        .find("id='u1'")
        .unwrap_or_else(|| panic!("no result for the removal: {closed}"));
    assert!(result < error, "{closed}");
}

/// XEP-0077 §3.2: a removed account's contacts learn their subscriptions are
/// cancelled (their roster item for it drops to "none") and see it go.
#[tokio::test]
async fn remove_cancels_the_contacts_subscriptions() {
    let server = open_server();
    server.add_user("alice@localhost", "apw");
    server.add_user("bob@localhost", "bpw");
    let mut alice = client::login(&server, "alice@localhost", "apw", "a").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;
    for c in [&mut alice, &mut bob] {
        c.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
            .await;
        c.expect("</iq>").await;
        c.send("<presence/>").await;
    }
    // Mutual subscription.
    bob.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    alice.expect("type='subscribe'").await;
    alice
        .send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    alice
        .send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    bob.expect("subscription='to'").await;
    bob.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    bob.expect("subscription='both'").await;
    alice.send(
        "<iq type='set' id='u1' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>",
    )
    .await;
    let pushed = bob.expect("subscription='none'").await;
    assert!(pushed.contains("jid='alice@localhost'"), "{pushed}");
}
