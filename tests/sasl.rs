//! RFC 6120 §6 SASL negotiation over real connections: the offered
//! mechanisms and XEP-0440 channel-binding types, every mechanism over STARTTLS
//! and direct TLS, failures and retries, channel-binding downgrade detection
//! (RFC 5802 §6), the tls-unique fallback, throttling and attempt limits.

mod common;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::Server;
use common::client::{self, Cb, Client, Conn, HEADER, WAIT};
use rustls_pki_types::ServerName;
use sasl::client::Mechanism;
use sasl::client::mechanisms::Scram;
use sasl::common::ChannelBinding;
use sasl::common::scram::Sha256;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NOT_AUTHORIZED: &str = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>";

fn server_with_alice() -> Server {
    let server = Server::start();
    server.add_user("alice@localhost", "secret");
    server
}

/// The stream features the server sends after the TLS handshake of a STARTTLS connection.
async fn starttls_features(server: &Server) -> String {
    let mut c = client::tcp(server).await;
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    c.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await;
    let tls = tokio_rustls::TlsConnector::from(client::tls_config(server))
        .connect(ServerName::try_from("localhost").expect("name"), c.io)
        .await
        .expect("TLS");
    let mut c = Conn::new(tls);
    c.send(HEADER).await;
    c.expect("</stream:features>").await
}

/// The stream features on a direct TLS connection.
async fn direct_tls_features(server: &Server) -> String {
    let tcp = TcpStream::connect(server.direct_tls)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(client::tls_config(server))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS");
    let mut c = Conn::new(tls);
    c.send(HEADER).await;
    c.expect("</stream:features>").await
}

/// The mechanism names offered, in order.
fn mechanisms(features: &str) -> Vec<String> {
    let f = features.replace('"', "'");
    let start = f
        .find(&format!("<mechanisms xmlns='{SASL_NS}'>"))
        .unwrap_or_else(|| panic!("no mechanisms in {features}"));
    let end = start + f[start..].find("</mechanisms>").expect("end");
    f[start..end]
        .split("<mechanism>")
        .skip(1)
        .map(|m| m.split("</mechanism>").next().expect("name").to_owned())
        .collect()
}

/// The XEP-0440 channel-binding types offered.
fn channel_bindings(features: &str) -> Vec<String> {
    let f = features.replace('"', "'");
    let start = f
        .find("<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>")
        .unwrap_or_else(|| panic!("no XEP-0440 element in {features}"));
    let end = start + f[start..].find("</sasl-channel-binding>").expect("end");
    f[start..end]
        .split("<channel-binding type='")
        .skip(1)
        .map(|m| m.split('\'').next().expect("type").to_owned())
        .collect()
}

fn assert_full_offer(features: &str) {
    assert_eq!(
        mechanisms(features),
        [
            "SCRAM-SHA-256-PLUS",
            "SCRAM-SHA-1-PLUS",
            "SCRAM-SHA-256",
            "SCRAM-SHA-1",
            "PLAIN"
        ],
        "{features}"
    );
    let mut cb = channel_bindings(features);
    cb.sort();
    assert_eq!(cb, ["tls-exporter", "tls-server-end-point"], "{features}");
}

/// Send `<auth mechanism=...>` with already-encoded content.
async fn send_auth<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<S>, mech: &str, b64: &str) {
    c.send(&format!(
        "<auth xmlns='{SASL_NS}' mechanism='{mech}'>{b64}</auth>"
    ))
    .await;
}

/// The next `<failure>...</failure>`, failing on anything else.
async fn failure<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<S>) -> String {
    let got = c.expect("</failure>").await;
    let at = got
        .find("<failure ")
        .unwrap_or_else(|| panic!("expected a SASL failure, got {got}"));
    assert!(!got[..at].contains('<'), "unexpected before failure: {got}");
    got[at..].to_owned()
}

fn assert_failure(got: &str, condition: &str) {
    let want = format!("<failure xmlns='{SASL_NS}'><{condition}/>");
    assert!(got.starts_with(&want), "expected {want}, got {got}");
}

async fn plain_ok(c: &mut Client, user: &str, pw: &str) {
    let r = c.auth_plain(user, pw).await;
    assert!(r.contains("<success"), "{r}");
}

/// SCRAM step one by hand: send the client-first-message, return the decoded server-first-message.
async fn scram_first(c: &mut Client, user: &str) -> String {
    let mut mech = Scram::<Sha256>::new(user, "whatever", ChannelBinding::None).expect("mech");
    send_auth(c, "SCRAM-SHA-256", &B64.encode(mech.initial())).await;
    let got = c.expect("</challenge>").await;
    let data = B64
        .decode(client::inner(&got, "challenge"))
        .expect("challenge base64");
    String::from_utf8(data).expect("utf-8")
}

/// A whole SCRAM-SHA-256 exchange that tolerates a failure at any step;
/// returns the final `<failure>` or `<success>` element.
async fn scram_any_step(c: &mut Client, binding: ChannelBinding, user: &str, pw: &str) -> String {
    let mut mech = Scram::<Sha256>::new(user, pw, binding).expect("mech");
    let name = mech.name().to_owned();
    send_auth(c, &name, &B64.encode(mech.initial())).await;
    let got = next_sasl(c).await;
    if !got.starts_with("<challenge") {
        return got;
    }
    let data = B64
        .decode(client::inner(&got, "challenge"))
        .expect("challenge base64");
    let reply = mech.response(&data).expect("response");
    c.send(&format!(
        "<response xmlns='{SASL_NS}'>{}</response>",
        B64.encode(reply)
    ))
    .await;
    next_sasl(c).await
}

/// The next complete `<challenge>`, `<success>` or `<failure>` element.
async fn next_sasl(c: &mut Client) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(start) = c.buf.find('<') {
            let head = &c.buf[start..];
            let tag = ["challenge", "failure", "success"]
                .into_iter()
                .find(|t| head.starts_with(&format!("<{t}")))
                .unwrap_or_else(|| panic!("unexpected {head}"));
            let open_end = head.find('>');
            let end = match open_end {
                Some(e) if head[..e].ends_with('/') => Some(start + e + 1),
                Some(_) => head
                    .find(&format!("</{tag}>"))
                    .map(|e| start + e + tag.len() + 3),
                None => None,
            };
            if let Some(end) = end {
                let out = c.buf[start..end].to_owned();
                c.buf.drain(..end);
                return out;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, c.io.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no SASL answer; got {:?}", c.buf))
            .expect("read");
        assert!(n > 0, "closed during SASL; got {:?}", c.buf);
        c.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

fn scram_attr<'a>(msg: &'a str, key: &str) -> &'a str {
    msg.split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {msg}"))
}

// ---------------------------------------------------------------------------
// What is offered

#[tokio::test]
async fn no_mechanisms_before_tls() {
    let server = Server::start();
    let mut c = client::tcp(&server).await;
    c.send(HEADER).await;
    let features = c.expect("</stream:features>").await;
    assert!(
        features.contains("urn:ietf:params:xml:ns:xmpp-tls"),
        "{features}"
    );
    assert!(!features.contains(SASL_NS), "{features}");
    assert!(!features.contains("<mechanism"), "{features}");
    assert!(!features.contains("sasl-cb"), "{features}");
}

#[tokio::test]
async fn mechanisms_and_channel_bindings_after_starttls() {
    let server = Server::start();
    let features = starttls_features(&server).await;
    assert_full_offer(&features);
    assert!(!features.contains("xmpp-tls"), "{features}");
}

#[tokio::test]
async fn mechanisms_and_channel_bindings_on_direct_tls() {
    let server = Server::start();
    assert_full_offer(&direct_tls_features(&server).await);
}

// ---------------------------------------------------------------------------
// Every mechanism works, then bind

#[derive(Clone, Copy, Debug)]
enum Way {
    Plain,
    Scram { sha256: bool, cb: Cb },
}

const WAYS: [Way; 5] = [
    Way::Plain,
    Way::Scram {
        sha256: false,
        cb: Cb::None,
    },
    Way::Scram {
        sha256: true,
        cb: Cb::None,
    },
    Way::Scram {
        sha256: true,
        cb: Cb::Exporter,
    },
    Way::Scram {
        sha256: false,
        cb: Cb::Exporter,
    },
];

async fn authenticate(c: &mut Client, way: Way, user: &str, pw: &str) -> String {
    match way {
        Way::Plain => c.auth_plain(user, pw).await,
        Way::Scram { sha256, cb } => c.auth_scram(sha256, cb, user, pw).await,
    }
}

async fn every_way(direct: bool) {
    let server = server_with_alice();
    for (i, way) in WAYS.into_iter().enumerate() {
        let mut c = if direct {
            client::direct_tls(&server).await
        } else {
            client::starttls(&server).await
        };
        let outcome = authenticate(&mut c, way, "alice", "secret").await;
        assert!(outcome.contains("<success"), "{way:?}: {outcome}");
        let resource = format!("r{i}");
        let jid = c.bind(Some(&resource)).await;
        assert_eq!(jid, format!("alice@localhost/{resource}"), "{way:?}");
    }
}

#[tokio::test]
async fn every_mechanism_over_starttls() {
    every_way(false).await;
}

#[tokio::test]
async fn every_mechanism_over_direct_tls() {
    every_way(true).await;
}

#[tokio::test]
async fn non_ascii_password_saslprep() {
    let server = Server::start();
    server.add_user("carol@localhost", "pässwörd\u{00AD}");
    for way in WAYS {
        let mut c = client::starttls(&server).await;
        // U+00AD (soft hyphen) is mapped to nothing by SASLprep.
        let outcome = authenticate(&mut c, way, "carol", "pässwörd").await;
        assert!(outcome.contains("<success"), "{way:?}: {outcome}");
    }
}

// ---------------------------------------------------------------------------
// Failures

#[tokio::test]
async fn wrong_password_then_retry_on_same_stream() {
    let server = server_with_alice();
    for way in WAYS {
        let mut c = client::starttls(&server).await;
        let outcome = authenticate(&mut c, way, "alice", "wrong").await;
        assert!(outcome.starts_with(NOT_AUTHORIZED), "{way:?}: {outcome}");
        let outcome = authenticate(&mut c, way, "alice", "secret").await;
        assert!(outcome.contains("<success"), "{way:?}: {outcome}");
        c.bind(Some("r")).await;
    }
}

#[tokio::test]
async fn unknown_user_is_not_authorized() {
    let server = server_with_alice();
    for way in WAYS {
        let mut c = client::starttls(&server).await;
        // auth_scram only returns after a challenge the client accepted (salt, iterations, nonce).
        let outcome = authenticate(&mut c, way, "nobody", "secret").await;
        assert!(outcome.starts_with(NOT_AUTHORIZED), "{way:?}: {outcome}");
        plain_ok(&mut c, "alice", "secret").await;
    }
}

#[tokio::test]
async fn scram_challenge_does_not_reveal_existence() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    let known = scram_first(&mut c, "alice").await;
    c.send(&format!("<abort xmlns='{SASL_NS}'/>")).await;
    assert_failure(&failure(&mut c).await, "aborted");
    let unknown = scram_first(&mut c, "nobody").await;
    c.send(&format!("<abort xmlns='{SASL_NS}'/>")).await;
    assert_failure(&failure(&mut c).await, "aborted");

    let mut c = client::starttls(&server).await;
    let unknown_again = scram_first(&mut c, "nobody").await;
    for msg in [&known, &unknown, &unknown_again] {
        let salt = B64.decode(scram_attr(msg, "s")).expect("salt base64");
        assert!(salt.len() >= 12, "short salt in {msg}");
    }
    assert_eq!(scram_attr(&known, "i"), scram_attr(&unknown, "i"));
    // A salt that changed per attempt would tell an unknown account from a known one.
    assert_eq!(scram_attr(&unknown, "s"), scram_attr(&unknown_again, "s"));
}

#[tokio::test]
async fn y_flag_when_plus_was_offered_is_a_downgrade() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    // The server may refuse at the first or the last step; either way not-authorized.
    let outcome = scram_any_step(&mut c, ChannelBinding::Unsupported, "alice", "secret").await;
    assert!(outcome.starts_with(NOT_AUTHORIZED), "{outcome}");
    // Retrying "y" on the same stream stays refused.
    let outcome = scram_any_step(&mut c, ChannelBinding::Unsupported, "alice", "secret").await;
    assert!(outcome.starts_with(NOT_AUTHORIZED), "{outcome}");
    // SCRAM-SHA-1 too, by hand: "y,,n=alice,r=..." on a fresh stream.
    let mut c1 = client::starttls(&server).await;
    send_auth(
        &mut c1,
        "SCRAM-SHA-1",
        &B64.encode("y,,n=alice,r=0123456789abcdef"),
    )
    .await;
    let outcome = next_sasl(&mut c1).await;
    if outcome.starts_with("<challenge") {
        // Refusing only at the final step is allowed; the proof cannot be right anyway.
        c1.send(&format!("<abort xmlns='{SASL_NS}'/>")).await;
        assert_failure(&failure(&mut c1).await, "aborted");
    } else {
        assert!(outcome.starts_with(NOT_AUTHORIZED), "{outcome}");
    }
    // The honest -PLUS exchange still works on the first stream.
    let outcome = c.auth_scram(true, Cb::Exporter, "alice", "secret").await;
    assert!(outcome.contains("<success"), "{outcome}");
}

#[tokio::test]
async fn wrong_channel_binding_data_is_not_authorized() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    // The exporter of another TLS session: what a man in the middle would have.
    let other = client::starttls(&server).await.exporter();
    assert_ne!(other, c.exporter());
    let mut mech =
        Scram::<Sha256>::new("alice", "secret", ChannelBinding::TlsExporter(other)).expect("mech");
    send_auth(&mut c, "SCRAM-SHA-256-PLUS", &B64.encode(mech.initial())).await;
    let challenge = c.expect("</challenge>").await;
    let data = B64
        .decode(client::inner(&challenge, "challenge"))
        .expect("base64");
    let reply = mech.response(&data).expect("response");
    c.send(&format!(
        "<response xmlns='{SASL_NS}'>{}</response>",
        B64.encode(reply)
    ))
    .await;
    assert_failure(&failure(&mut c).await, "not-authorized");
}

#[tokio::test]
async fn tls_unique_falls_back_to_y_flag() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    send_auth(
        &mut c,
        "SCRAM-SHA-256-PLUS",
        &B64.encode("p=tls-unique,,n=alice,r=abcdef"),
    )
    .await;
    assert_failure(&failure(&mut c).await, "malformed-request");
    let outcome = c.auth_scram(true, Cb::Unsupported, "alice", "secret").await;
    assert!(outcome.contains("<success"), "{outcome}");
    assert_eq!(c.bind(Some("slix")).await, "alice@localhost/slix");
}

#[tokio::test]
async fn throttling_delays_but_never_locks_out() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    let start = Instant::now();
    plain_ok(&mut c, "alice", "secret").await;
    let unthrottled = start.elapsed();
    let mut c = client::starttls(&server).await;
    for _ in 0..4 {
        let r = c.auth_plain("alice", "wrong").await;
        assert!(r.starts_with(NOT_AUTHORIZED), "{r}");
    }
    // 20 ms doubling per failure: the fifth answer waits 160 ms (ceiling 200 ms).
    let start = Instant::now();
    plain_ok(&mut c, "alice", "secret").await;
    let throttled = start.elapsed();
    assert!(
        throttled >= Duration::from_millis(100),
        "no delay after 4 failures: {throttled:?} (first login took {unthrottled:?})"
    );
    c.bind(Some("r")).await;

    // SCRAM is throttled too, on a new stream.
    let mut c = client::starttls(&server).await;
    for _ in 0..4 {
        let r = c.auth_scram(true, Cb::Exporter, "alice", "wrong").await;
        assert!(r.starts_with(NOT_AUTHORIZED), "{r}");
    }
    let start = Instant::now();
    let r = c.auth_scram(true, Cb::Exporter, "alice", "secret").await;
    let throttled = start.elapsed();
    assert!(r.contains("<success"), "{r}");
    assert!(
        throttled >= Duration::from_millis(100),
        "no delay after 4 SCRAM failures: {throttled:?}"
    );
}

#[tokio::test]
async fn invalid_mechanism() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    // Unknown, wrong case (RFC 4422 §3.1: names are case-sensitive), not offered.
    for mech in ["DIGEST-MD5", "scram-sha-1", "EXTERNAL", ""] {
        send_auth(&mut c, mech, "=").await;
        assert_failure(&failure(&mut c).await, "invalid-mechanism");
    }
    c.send(&format!("<auth xmlns='{SASL_NS}'>=</auth>")).await;
    assert_failure(&failure(&mut c).await, "invalid-mechanism");
}

#[tokio::test]
async fn bad_base64_is_incorrect_encoding() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    send_auth(&mut c, "PLAIN", "!!not*base64!!").await;
    assert_failure(&failure(&mut c).await, "incorrect-encoding");
    // And in a SCRAM response.
    let mut mech = Scram::<Sha256>::new("alice", "secret", ChannelBinding::None).expect("mech");
    send_auth(&mut c, "SCRAM-SHA-256", &B64.encode(mech.initial())).await;
    c.expect("</challenge>").await;
    c.send(&format!("<response xmlns='{SASL_NS}'>@@@@</response>"))
        .await;
    assert_failure(&failure(&mut c).await, "incorrect-encoding");
    plain_ok(&mut c, "alice", "secret").await;
}

#[tokio::test]
async fn abort_during_scram() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    let first = scram_first(&mut c, "alice").await;
    assert!(first.starts_with("r="), "{first}");
    c.send(&format!("<abort xmlns='{SASL_NS}'/>")).await;
    assert_failure(&failure(&mut c).await, "aborted");
    let r = c.auth_scram(true, Cb::Exporter, "alice", "secret").await;
    assert!(r.contains("<success"), "{r}");
}

#[tokio::test]
async fn plain_without_initial_response() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    c.send(&format!("<auth xmlns='{SASL_NS}' mechanism='PLAIN'/>"))
        .await;
    c.expect("</challenge>").await;
    c.send(&format!(
        "<response xmlns='{SASL_NS}'>{}</response>",
        B64.encode("\0alice\0secret")
    ))
    .await;
    c.expect("<success").await;
}

#[tokio::test]
async fn plain_authzid_must_match() {
    let server = server_with_alice();
    server.add_user("bob@localhost", "secret");
    let mut c = client::starttls(&server).await;
    send_auth(&mut c, "PLAIN", &B64.encode("bob@localhost\0alice\0secret")).await;
    assert_failure(&failure(&mut c).await, "invalid-authzid");
    send_auth(
        &mut c,
        "PLAIN",
        &B64.encode("alice@localhost\0alice\0secret"),
    )
    .await;
    c.expect("<success").await;
    assert_eq!(c.bind(Some("z")).await, "alice@localhost/z");
}

#[tokio::test]
async fn too_many_attempts_end_the_stream() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    for _ in 0..5 {
        send_auth(&mut c, "PLAIN", &B64.encode("\0alice\0wrong")).await;
        assert_failure(&failure(&mut c).await, "not-authorized");
    }
    let rest = c
        .read_to_close(WAIT)
        .await
        .unwrap_or_else(|e| panic!("stream not closed after 5 failures: {e}"));
    assert!(
        rest.contains(
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        ),
        "{rest}"
    );
    assert!(rest.trim_end().ends_with("</stream:stream>"), "{rest}");
    // Not a lockout: a new stream with the right password works.
    let mut c = client::starttls(&server).await;
    plain_ok(&mut c, "alice", "secret").await;
}

#[tokio::test]
async fn stanza_before_auth_is_refused() {
    let server = server_with_alice();
    let mut c = client::starttls(&server).await;
    c.send("<message to='alice@localhost'><body>hi</body></message>")
        .await;
    let rest = c
        .read_to_close(WAIT)
        .await
        .unwrap_or_else(|e| panic!("stream not closed: {e}"));
    assert!(
        rest.contains(
            "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        ),
        "{rest}"
    );
}
