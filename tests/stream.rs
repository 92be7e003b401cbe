//! RFC 6120 stream layer and robustness, over real TCP and TLS connections:
//! stream errors (§4.9), restricted XML (§11.1), STARTTLS rules (§5), limits,
//! and a server that stays up and small under hostile or broken peers.

mod common;
use common::client::{self, Conn, HEADER, WAIT};
use common::{Server, client::Client};
use rustls_pki_types::ServerName;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const STREAMS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// KiB in a MiB (rss_kib reports KiB).
const MIB: u64 = 1024;
/// How long a server that answers at once gets to send its stream error and close.
const ERROR_WAIT: Duration = Duration::from_secs(5);

/// Read until the server closes; assert it sent `<stream:error><condition/>`
/// followed by `</stream:stream>`. Returns everything read.
async fn expect_stream_error<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<S>,
    condition: &str,
) -> String {
    let all = c
        .read_to_close(ERROR_WAIT)
        .await
        .unwrap_or_else(|e| panic!("server did not close after {condition}: {e}"));
    assert_stream_error(&all, condition);
    all
}

fn assert_stream_error(all: &str, condition: &str) {
    let error = format!("<stream:error><{condition} xmlns='{STREAMS_NS}'/>");
    let at = all
        .find(&error)
        .unwrap_or_else(|| panic!("no {error} in {all:?}"));
    let after = &all[at..];
    let close = after
        .find("</stream:error>")
        .unwrap_or_else(|| panic!("unterminated stream error in {all:?}"));
    assert_eq!(
        after[close..].trim_end(),
        "</stream:error></stream:stream>",
        "the stream must close right after the error: {all:?}"
    );
}

/// Our header must come before the error when the peer's header was refused.
fn assert_header_first(all: &str) {
    let header = all
        .find("<stream:stream ")
        .unwrap_or_else(|| panic!("no stream header in {all:?}"));
    let error = all.find("<stream:error>").expect("error");
    assert!(header < error, "header after error: {all:?}");
    assert!(
        all[header..].contains("xmlns:stream='http://etherx.jabber.org/streams'"),
        "{all:?}"
    );
}

/// Send the first bytes of a plaintext connection and expect a stream error.
async fn plain_error(server: &Server, first: &str, condition: &str) -> String {
    let mut c = client::tcp(server).await;
    // The server may close before reading all of it.
    let _ = c.send_bytes(first.as_bytes()).await;
    let all = expect_stream_error(&mut c, condition).await;
    assert_header_first(&all);
    all
}

async fn alice(server: &Server, resource: &str) -> Client {
    client::login(server, "alice@localhost", "secret", resource).await
}

fn server_with_alice() -> Server {
    let server = Server::start();
    server.add_user("alice@localhost", "secret");
    server
}

/// A ping to the server gets a result (the reply may be self-closing).
async fn ping_any(c: &mut Client, id: &str) {
    c.send(&format!(
        "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    let got = c.expect(&format!("id='{id}'")).await;
    let rest = c.expect(">").await;
    let iq = format!("{}{rest}", &got[got.rfind("<iq").expect("an iq")..]);
    assert!(iq.contains("type='result'"), "{iq}");
}

/// Write `total` bytes of `body` as one stanza while reading what the server
/// says; tolerate the server closing mid-write. Returns what was read.
async fn flood<S>(io: S, opening: &str, filler: u8, total: usize) -> String
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match tokio::time::timeout(WAIT, rd.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return (String::from_utf8_lossy(&out).into_owned(), true);
                }
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
            }
        }
    });
    let chunk = vec![filler; 64 * 1024];
    let writer = async {
        if wr.write_all(opening.as_bytes()).await.is_err() {
            return;
        }
        let mut sent = 0;
        while sent < total {
            if wr.write_all(&chunk).await.is_err() {
                return;
            }
            sent += chunk.len();
        }
        let _ = wr.flush().await;
    };
    let _ = tokio::time::timeout(WAIT, writer).await;
    let (all, closed) = reader.await.expect("reader task");
    assert!(closed, "server kept the connection open; got {all:?}");
    all
}

// ---------------------------------------------------------------------------
// Malformed XML

#[tokio::test]
async fn mismatched_end_tag_is_not_well_formed() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("<message to='alice@localhost'><body></message>")
        .await;
    expect_stream_error(&mut c, "not-well-formed").await;
    // The server still serves new logins.
    let mut again = alice(&server, "r2").await;
    ping_any(&mut again, "p2").await;
}

#[tokio::test]
async fn stray_end_tag_is_not_well_formed() {
    // `</message>` between stanzas is not the end of the stream.
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("</message>").await;
    expect_stream_error(&mut c, "not-well-formed").await;
}

#[tokio::test]
async fn broken_tag_syntax_is_not_well_formed() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("<message to='alice@localhost' a='1' a='2'><body>x</body></message>")
        .await;
    expect_stream_error(&mut c, "not-well-formed").await;
    let mut again = alice(&server, "r2").await;
    ping_any(&mut again, "p2").await;
}

#[tokio::test]
async fn undeclared_entity_is_not_well_formed() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("<message to='alice@localhost/r1'><body>&lol;</body></message>")
        .await;
    let all = expect_stream_error(&mut c, "not-well-formed").await;
    assert!(!all.contains("<message"), "entity was delivered: {all}");
}

// ---------------------------------------------------------------------------
// Restricted XML (RFC 6120 §11.1)

const BILLION_LAUGHS: &str = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>\
    <!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>\
    <!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>";

#[tokio::test]
async fn doctype_before_stream_header_is_restricted() {
    let server = Server::start();
    plain_error(
        &server,
        &format!("{BILLION_LAUGHS}{}<lolz>&lol3;</lolz>", &HEADER[21..]),
        "restricted-xml",
    )
    .await;
    // The server is fine afterwards.
    let mut c = client::starttls(&server).await;
    c.send("</stream:stream>").await;
}

#[tokio::test]
async fn doctype_inside_stream_is_restricted() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send(&format!(
        "{}<message to='alice@localhost/r1'><body>&lol3;</body></message>",
        &BILLION_LAUGHS[21..]
    ))
    .await;
    let all = expect_stream_error(&mut c, "restricted-xml").await;
    assert!(!all.contains("lollol"), "entities expanded: {all}");
}

#[tokio::test]
async fn doctype_in_plaintext_stream_is_restricted() {
    let server = Server::start();
    let mut c = client::tcp(&server).await;
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    c.send(&BILLION_LAUGHS[21..]).await;
    expect_stream_error(&mut c, "restricted-xml").await;
}

#[tokio::test]
async fn comment_is_restricted() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("<!-- a comment -->").await;
    expect_stream_error(&mut c, "restricted-xml").await;

    let mut c = alice(&server, "r2").await;
    c.send("<message to='alice@localhost/r2'><body>a<!-- inside -->b</body></message>")
        .await;
    let all = expect_stream_error(&mut c, "restricted-xml").await;
    assert!(!all.contains("<message"), "{all}");
}

#[tokio::test]
async fn processing_instruction_is_restricted() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("<?evil data?>").await;
    expect_stream_error(&mut c, "restricted-xml").await;

    let mut c = alice(&server, "r2").await;
    c.send("<message to='alice@localhost/r2'><?evil data?><body>x</body></message>")
        .await;
    let all = expect_stream_error(&mut c, "restricted-xml").await;
    assert!(!all.contains("<message"), "{all}");
}

#[tokio::test]
async fn processing_instruction_before_header_is_restricted() {
    let server = Server::start();
    plain_error(
        &server,
        &format!("<?evil data?>{}", &HEADER[21..]),
        "restricted-xml",
    )
    .await;
}

// ---------------------------------------------------------------------------
// Limits

#[tokio::test]
async fn oversized_stanza_is_policy_violation_and_memory_stays_bounded() {
    let server = server_with_alice();
    let c = alice(&server, "r1").await;
    let before = server.rss_kib();
    let all = flood(
        c.io,
        "<message to='alice@localhost/r1'><body>",
        b'a',
        10 * 1024 * 1024,
    )
    .await;
    assert_stream_error(&all, "policy-violation");
    assert!(!all.contains("<message"), "{}", &all[..all.len().min(300)]);
    let mut again = alice(&server, "r2").await;
    ping_any(&mut again, "p2").await;
    let after = server.rss_kib();
    eprintln!("RSS before {before} KiB, after {after} KiB");
    assert!(
        after <= before + 20 * MIB,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test]
async fn oversized_stanza_before_tls_is_policy_violation() {
    let server = Server::start();
    let mut c = client::tcp(&server).await;
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    let all = flood(c.io, "<message><body>", b'a', 2 * 1024 * 1024).await;
    assert_stream_error(&all, "policy-violation");
}

#[tokio::test]
async fn deep_nesting_is_policy_violation() {
    let server = server_with_alice();
    let c = alice(&server, "r1").await;
    let deep = "<a>".repeat(100_000);
    let all = flood(c.io, &deep, b' ', 0).await;
    assert_stream_error(&all, "policy-violation");
    let mut again = alice(&server, "r2").await;
    ping_any(&mut again, "p2").await;
}

#[tokio::test]
async fn oversized_header_is_policy_violation() {
    let server = Server::start();
    let c = client::tcp(&server).await;
    let all = flood(c.io, "<stream:stream a='", b'b', 1024 * 1024).await;
    assert_stream_error(&all, "policy-violation");
}

// ---------------------------------------------------------------------------
// Stream header problems (RFC 6120 §4.7, §4.9.3)

fn header_with(attrs: &str) -> String {
    format!("<?xml version='1.0'?><stream:stream {attrs}>")
}

#[tokio::test]
async fn wrong_stream_namespace_is_invalid_namespace() {
    let server = Server::start();
    plain_error(
        &server,
        &header_with(
            "to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='urn:example:wrong'",
        ),
        "invalid-namespace",
    )
    .await;
}

#[tokio::test]
async fn wrong_content_namespace_is_invalid_namespace() {
    let server = Server::start();
    plain_error(
        &server,
        &header_with(
            "to='localhost' version='1.0' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'",
        ),
        "invalid-namespace",
    )
    .await;
}

#[tokio::test]
async fn unknown_host_is_host_unknown() {
    let server = Server::start();
    let all = plain_error(
        &server,
        &header_with(
            "to='unknown.example' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'",
        ),
        "host-unknown",
    )
    .await;
    assert!(!all.contains("<stream:features>"), "{all}");
}

#[tokio::test]
async fn missing_version_is_unsupported_version() {
    let server = Server::start();
    let all = plain_error(
        &server,
        &header_with(
            "to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'",
        ),
        "unsupported-version",
    )
    .await;
    assert!(!all.contains("<stream:features>"), "{all}");
}

#[tokio::test]
async fn old_version_is_unsupported_version() {
    let server = Server::start();
    plain_error(
        &server,
        &header_with(
            "to='localhost' version='0.9' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'",
        ),
        "unsupported-version",
    )
    .await;
}

#[tokio::test]
async fn host_unknown_on_direct_tls() {
    let server = Server::start();
    let tcp = TcpStream::connect(server.direct_tls)
        .await
        .expect("connect");
    let tls = tokio_rustls::TlsConnector::from(client::tls_config(&server))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS");
    let mut c = Conn::new(tls);
    c.send(&header_with(
        "to='unknown.example' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'",
    ))
    .await;
    let all = expect_stream_error(&mut c, "host-unknown").await;
    assert_header_first(&all);
}

// ---------------------------------------------------------------------------
// STARTTLS (RFC 6120 §5)

#[tokio::test]
async fn auth_before_starttls_is_refused() {
    let server = server_with_alice();
    let mut c = client::tcp(&server).await;
    c.send(HEADER).await;
    let features = c.expect("</stream:features>").await;
    assert!(!features.contains("<mechanisms"), "{features}");
    // "\0alice\0secret"
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>")
        .await;
    let all = expect_stream_error(&mut c, "policy-violation").await;
    assert!(!all.contains("<success"), "{all}");
}

#[tokio::test]
async fn data_pipelined_after_starttls_closes_the_connection() {
    let server = server_with_alice();
    let mut c = client::tcp(&server).await;
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    // One write: the request and plaintext that must never count as encrypted.
    c.send(&format!(
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{HEADER}\
         <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>"
    ))
    .await;
    // Whether or not <proceed/> came first, no TLS session may follow.
    let _ = c
        .wait_for("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", WAIT)
        .await;
    let connector = tokio_rustls::TlsConnector::from(client::tls_config(&server));
    let handshake = tokio::time::timeout(
        WAIT,
        connector.connect(ServerName::try_from("localhost").expect("name"), c.io),
    )
    .await
    .expect("the server neither closed nor answered");
    match handshake {
        Err(_) => {}
        Ok(tls) => {
            let mut t = Conn::new(tls);
            let rest = t.read_to_close(WAIT).await.unwrap_or_else(|e| e);
            panic!("TLS went ahead after injected plaintext; then got {rest:?}");
        }
    }
    assert!(!c.buf.contains("<success"), "{}", c.buf);
}

// ---------------------------------------------------------------------------
// Broken peers

#[tokio::test]
async fn disconnect_mid_stanza_leaves_other_sessions_working() {
    let mut server = server_with_alice();
    server.add_user("bob@localhost", "secret");
    let mut bob = client::login(&server, "bob@localhost", "secret", "b").await;
    let mut c = alice(&server, "r1").await;
    c.send("<message to='bob@localhost/b' type='chat'><body>half a mess")
        .await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.is_running());
    ping_any(&mut bob, "b1").await;
    let mut a2 = alice(&server, "r2").await;
    a2.send("<message to='bob@localhost/b' type='chat' id='m2'><body>whole</body></message>")
        .await;
    let m = bob.expect("</message>").await;
    assert!(m.contains("<body>whole</body>"), "{m}");
    assert!(!m.contains("half a mess"), "{m}");
}

/// The first flight of a real TLS client, to cut in half.
fn client_hello(server: &Server) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        client::tls_config(server),
        ServerName::try_from("localhost").expect("name").to_owned(),
    )
    .expect("client connection");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("client hello");
    assert!(hello.len() > 100);
    hello
}

/// Open one connection, get it part-way through negotiation, drop it.
async fn abandon(server: &Server, kind: usize, hello: &[u8]) {
    match kind % 5 {
        0 => {
            let _tcp = TcpStream::connect(server.c2s).await.expect("connect");
        }
        1 => {
            let mut c = client::tcp(server).await;
            c.send(HEADER).await;
        }
        2 => {
            let mut c = client::tcp(server).await;
            c.send(HEADER).await;
            c.expect("</stream:features>").await;
            c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await;
            c.expect("<proceed").await;
        }
        3 => {
            let mut c = Conn::new(
                TcpStream::connect(server.direct_tls)
                    .await
                    .expect("connect"),
            );
            let _ = c.send_bytes(&hello[..hello.len() / 2]).await;
        }
        _ => {
            let mut c = client::tcp(server).await;
            c.send(HEADER).await;
            c.expect("</stream:features>").await;
            c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                .await;
            c.expect("<proceed").await;
            let _ = c.send_bytes(&hello[..hello.len() / 2]).await;
        }
    }
}

async fn abandon_many(server: &Server, count: usize, hello: &[u8]) {
    const BATCH: usize = 100;
    for start in (0..count).step_by(BATCH) {
        let batch: Vec<_> = (start..(start + BATCH).min(count))
            .map(|i| abandon(server, i, hello))
            .collect();
        futures_join_all(batch).await;
    }
}

/// A minimal join_all (no `futures` dependency in this crate).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: Vec<F>) {
    let set: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    done = false;
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_handshakes_leave_server_healthy_and_small() {
    let mut server = server_with_alice();
    let hello = client_hello(&server);
    // Warm up: one full login and a few abandoned handshakes of each kind.
    let mut warm = alice(&server, "warm").await;
    ping_any(&mut warm, "w1").await;
    abandon_many(&server, 50, &hello).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    abandon_many(&server, 1000, &hello).await;
    // A second pass lets the allocator reuse what the first one freed.
    abandon_many(&server, 300, &hello).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.is_running(), "{}", server.log());
    let mut c = alice(&server, "after").await;
    ping_any(&mut c, "a1").await;
    ping_any(&mut warm, "w2").await;
    let after = server.rss_kib();
    eprintln!("RSS before {before} KiB, after {after} KiB");
    assert!(
        after <= before + 20 * MIB,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test]
async fn silent_client_is_closed_after_handshake_timeout() {
    let server = Server::start_with_c2s("handshake_timeout = 2");
    let start = Instant::now();
    let mut silent = client::tcp(&server).await;
    let mut stalled = client::tcp(&server).await;
    stalled.send(HEADER).await;
    stalled.expect("</stream:features>").await;
    silent
        .read_to_close(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("silent client not closed: {e}"));
    stalled
        .read_to_close(Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("stalled client not closed: {e}"));
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "closed before the timeout: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn handshake_timeout_does_not_cut_bound_sessions() {
    let server = Server::start_with_c2s("handshake_timeout = 1");
    server.add_user("alice@localhost", "secret");
    let mut c = alice(&server, "r1").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ping_any(&mut c, "late").await;
}

// ---------------------------------------------------------------------------
// Keepalives and closing

#[tokio::test]
async fn whitespace_keepalives_are_accepted() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send(" \n ").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.send("\n").await;
    ping_any(&mut c, "p1").await;
    c.send(" \r\n\t ").await;
    ping_any(&mut c, "p2").await;
}

#[tokio::test]
async fn text_between_stanzas_is_bad_format() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("hello").await;
    expect_stream_error(&mut c, "bad-format").await;
}

#[tokio::test]
async fn client_close_gets_close_back() {
    let server = server_with_alice();
    let mut c = alice(&server, "r1").await;
    c.send("</stream:stream>").await;
    let all = c
        .read_to_close(WAIT)
        .await
        .unwrap_or_else(|e| panic!("socket not closed: {e}"));
    assert_eq!(all.trim(), "</stream:stream>");
}

#[tokio::test]
async fn client_close_before_tls_gets_close_back() {
    let server = Server::start();
    let mut c = client::tcp(&server).await;
    c.send(HEADER).await;
    c.expect("</stream:features>").await;
    c.send("</stream:stream>").await;
    let all = c
        .read_to_close(WAIT)
        .await
        .unwrap_or_else(|e| panic!("socket not closed: {e}"));
    assert_eq!(all.trim(), "</stream:stream>");
}
