//! XMPP over WebSocket (RFC 7395) and its discovery (XEP-0156), against the
//! real server: framing, negotiation, a WebSocket session chatting with a
//! TCP one, the endpoint's refusals, and bad input. (Real web clients,
//! xmpp.js and Converse.js, are in websocket_clients.rs.)

mod common;

use common::client;
use common::{Server, ws};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server whose `[http]` section (every test server has an HTTP
/// listener on a free port) gets `http_keys`.
fn server_with(http_keys: &str) -> Server {
    let server = Server::start_with_http(http_keys);
    server.add_user("alice@localhost", "apw");
    server.add_user("bob@localhost", "bpw");
    server
}

/// A plain HTTP/1.1 GET; returns the whole response.
async fn get(server: &Server, path: &str) -> String {
    let addr = server.http.expect("http listener");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(ws::WAIT, tcp.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_websocket_session_chats_with_a_tcp_session() {
    let server = server_with("");
    let mut alice = ws::login(&server, "alice", "apw", "web").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "tcp").await;
    alice.send("<presence xmlns='jabber:client'/>").await;
    bob.send("<presence/>").await;
    alice
        .send("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat' id='w1'><body>from the web</body></message>")
        .await;
    let got = client::wait_for(&mut bob, "alice's message", |s| s.contains("from the web")).await;
    assert_eq!(
        client::attr(&got, "from").as_deref(),
        Some("alice@localhost/web")
    );
    bob.send(
        "<message to='alice@localhost/web' type='chat' id='t1'><body>from tcp</body></message>",
    )
    .await;
    let got = alice.expect("from tcp").await;
    // Each message is one element that stands alone: it declares its namespace.
    assert!(got.starts_with("<message"), "{got}");
    assert!(got.contains("xmlns='jabber:client'"), "{got}");
    assert!(got.contains("from='bob@localhost/tcp'"), "{got}");
    // iq round trip, then the client closes; the server answers <close/>.
    alice
        .send("<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
        .await;
    let roster = alice.expect("r1").await;
    assert!(roster.contains("type='result'"), "{roster}");
    alice.send(ws::CLOSE).await;
    let rest = alice.read_to_close().await;
    assert!(
        rest.iter()
            .any(|m| m.contains("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn host_meta_names_the_endpoint() {
    let server = server_with("");
    let addr = server.http.expect("http");
    let xrd = get(&server, "/.well-known/host-meta").await;
    assert!(xrd.starts_with("HTTP/1.1 200"), "{xrd}");
    assert!(
        xrd.to_ascii_lowercase()
            .contains("content-type: application/xrd+xml"),
        "{xrd}"
    );
    assert!(
        xrd.to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{xrd}"
    );
    assert!(
        xrd.contains(&format!(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='ws://{addr}/xmpp-websocket'/>"
        )),
        "{xrd}"
    );
    let jrd = get(&server, "/.well-known/host-meta.json").await;
    assert!(jrd.starts_with("HTTP/1.1 200"), "{jrd}");
    assert!(
        jrd.contains(&format!(
            "{{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"ws://{addr}/xmpp-websocket\"}}"
        )),
        "{jrd}"
    );
    let missing = get(&server, "/nothing-here").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // Behind a proxy, clients are given the public URL.
    let proxied = server_with("public_url = \"https://chat.example.org/\"\n");
    let xrd = get(&proxied, "/.well-known/host-meta").await;
    assert!(
        xrd.contains("href='wss://chat.example.org/xmpp-websocket'"),
        "{xrd}"
    );
}

/// With `http.tls`, the listener speaks HTTPS with the server's own
/// certificate, and clients are given wss:// addresses.
#[tokio::test]
async fn the_listener_can_do_tls_itself() {
    let server = server_with("tls = true\n");
    let addr = server.http.expect("http");
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(client::tls_config(&server));
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(
        b"GET /.well-known/host-meta HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(ws::WAIT, tls.read_to_end(&mut out))
        .await
        .expect("in time")
        .ok();
    let xrd = String::from_utf8_lossy(&out);
    assert!(xrd.starts_with("HTTP/1.1 200"), "{xrd}");
    assert!(
        xrd.contains(&format!("href='wss://{addr}/xmpp-websocket'")),
        "{xrd}"
    );
    // Plain HTTP on a TLS listener gets nothing useful.
    let plain = get(&server, "/.well-known/host-meta").await;
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
}

#[tokio::test]
async fn the_endpoint_refuses_what_rfc_7395_and_the_configuration_refuse() {
    let server = server_with("allowed_origins = [\"https://chat.example.org\"]\n");
    // No xmpp subprotocol: no upgrade.
    let e = ws::connect_with(&server, None, None)
        .await
        .err()
        .expect("refused");
    assert!(format!("{e}").contains("400"), "{e}");
    // An origin that is not allowed.
    let e = ws::connect_with(&server, Some("xmpp"), Some("https://evil.example"))
        .await
        .err()
        .expect("refused");
    assert!(format!("{e}").contains("403"), "{e}");
    // An allowed one (and a client sending none, such as a native app).
    ws::connect_with(&server, Some("xmpp"), Some("https://chat.example.org"))
        .await
        .expect("allowed origin");
    ws::connect_with(&server, Some("xmpp"), None)
        .await
        .expect("no origin");
}

#[tokio::test]
async fn plain_is_offered_only_on_a_channel_known_to_be_secure() {
    let server = server_with("");
    let mut c = ws::connect(&server).await;
    let features = c.open().await;
    assert!(
        !features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
    assert!(
        !features.contains("-PLUS"),
        "no channel binding without TLS: {features}"
    );
    let behind_tls = server_with("consider_secure = true\n");
    let mut c = ws::connect(&behind_tls).await;
    let features = c.open().await;
    assert!(
        features.contains("<mechanism>PLAIN</mechanism>"),
        "{features}"
    );
}

#[tokio::test]
async fn bad_input_ends_the_stream_with_the_right_error() {
    use futures_util::SinkExt;
    let server = server_with("");
    let cases: [(&[u8], bool, &str); 5] = [
        (
            b"<message xmlns='jabber:client'/><message xmlns='jabber:client'/>",
            false,
            "not-well-formed",
        ),
        (
            b"<message xmlns='jabber:client'><body>a\x00b</body></message>",
            false,
            "not-well-formed",
        ),
        (
            b"<message xmlns='jabber:client'><body>",
            false,
            "not-well-formed",
        ),
        (
            b"<!-- hello --><message xmlns='jabber:client'/>",
            false,
            "restricted-xml",
        ),
        (b"<message xmlns='jabber:client'/>", true, "bad-format"),
    ];
    for (bytes, binary, condition) in cases {
        let mut c = ws::login(&server, "alice", "apw", "bad").await;
        let msg = if binary {
            tokio_tungstenite::tungstenite::Message::binary(bytes.to_vec())
        } else {
            tokio_tungstenite::tungstenite::Message::text(
                String::from_utf8_lossy(bytes).into_owned(),
            )
        };
        c.ws.send(msg).await.expect("send");
        let rest = c.read_to_close().await;
        let all = rest.join("\n");
        assert!(
            all.contains(&format!(
                "<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            )),
            "{}: {all}",
            String::from_utf8_lossy(bytes)
        );
        // The error message stands alone: it declares the stream prefix.
        assert!(
            all.contains("<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"),
            "{all}"
        );
        assert!(
            all.contains("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'"),
            "{all}"
        );
    }
}

#[tokio::test]
async fn each_address_holds_a_bounded_number_of_connections() {
    let server = server_with("max_connections_per_ip = 2\n");
    let _a = ws::connect(&server).await;
    let _b = ws::connect(&server).await;
    let third = tokio::time::timeout(
        Duration::from_secs(5),
        ws::connect_with(&server, Some("xmpp"), None),
    )
    .await
    .expect("refused in time, not hung");
    assert!(
        third.is_err(),
        "a third connection from the same address is refused"
    );
    drop(_a);
    // The place is given back when a connection closes.
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = ws::connect_with(&server, Some("xmpp"), None).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a place came back");
}

/// XEP-0280 across transports: one resource on WebSocket, one on TCP; the
/// WebSocket one enables carbons and sees what the TCP one sends and gets.
#[tokio::test]
async fn carbons_between_a_websocket_and_a_tcp_resource() {
    let server = server_with("");
    let mut web = ws::login(&server, "alice", "apw", "web").await;
    let mut tcp = client::login(&server, "alice@localhost", "apw", "tcp").await;
    let mut bob = client::login(&server, "bob@localhost", "bpw", "b").await;
    web.send("<presence xmlns='jabber:client'/>").await;
    tcp.send("<presence/>").await;
    web.send(
        "<iq xmlns='jabber:client' type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>",
    )
    .await;
    let enabled = web.expect("c1").await;
    assert!(enabled.contains("type='result'"), "{enabled}");
    // Sent by the TCP resource: a <sent/> copy on the WebSocket.
    tcp.send(
        "<message to='bob@localhost/b' type='chat' id='s1'><body>sent from tcp</body></message>",
    )
    .await;
    client::wait_for(&mut bob, "the original", |s| s.contains("sent from tcp")).await;
    let copy = web.expect("sent from tcp").await;
    assert!(copy.contains("<sent xmlns='urn:xmpp:carbons:2'>"), "{copy}");
    assert!(copy.contains("from='alice@localhost'"), "{copy}");
    assert!(copy.contains("to='alice@localhost/web'"), "{copy}");
    // Received by the TCP resource: a <received/> copy on the WebSocket.
    bob.send("<message to='alice@localhost/tcp' type='chat' id='r1'><body>to tcp</body></message>")
        .await;
    client::wait_for(&mut tcp, "the original", |s| s.contains("to tcp")).await;
    let copy = web.expect("to tcp").await;
    assert!(
        copy.contains("<received xmlns='urn:xmpp:carbons:2'>"),
        "{copy}"
    );
    // Disabled: nothing more, checked after a round trip on the WebSocket.
    web.send(
        "<iq xmlns='jabber:client' type='set' id='c2'><disable xmlns='urn:xmpp:carbons:2'/></iq>",
    )
    .await;
    web.expect("c2").await;
    bob.send(
        "<message to='alice@localhost/tcp' type='chat' id='r2'><body>not copied</body></message>",
    )
    .await;
    client::wait_for(&mut tcp, "the original", |s| s.contains("not copied")).await;
    web.send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    loop {
        let m = web.next().await;
        assert!(!m.contains("not copied"), "no copy once disabled: {m}");
        if m.contains("p1") {
            break;
        }
    }
    assert!(
        web.next_within(Duration::from_millis(300))
            .await
            .ok()
            .flatten()
            .is_none(),
        "no copy once disabled"
    );
}
