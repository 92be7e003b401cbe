//! A WebSocket test client (RFC 7395) on tokio-tungstenite: text messages
//! matched as strings, SCRAM with the independent `sasl` crate. It shares
//! no code with the server.

use super::Server;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Default wait for an expected message.
pub const WAIT: Duration = Duration::from_secs(10);

pub const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
pub const CLOSE: &str = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";

/// A WebSocket connection to the server's endpoint.
pub struct Ws {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The endpoint's URL on `server`.
pub fn url(server: &Server) -> String {
    let addr = server.http.expect("the server has an HTTP listener");
    format!("ws://{addr}/xmpp-websocket")
}

/// Connect with the `xmpp` subprotocol (and `origin`, when given).
pub async fn connect_with(
    server: &Server,
    protocol: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut request = url(server).into_client_request()?;
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    if let Some(o) = origin {
        request
            .headers_mut()
            .insert("Origin", o.parse().expect("header"));
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    if protocol.is_some() {
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok()),
            Some("xmpp"),
            "the server selects the xmpp subprotocol"
        );
    }
    Ok(Ws { ws })
}

/// Connect with the `xmpp` subprotocol.
pub async fn connect(server: &Server) -> Ws {
    connect_with(server, Some("xmpp"), None)
        .await
        .expect("WebSocket handshake")
}

impl Ws {
    /// Send one text message.
    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next text message (None when the connection closed), within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<String>, String> {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return Err("timed out".into()),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(format!("{e}")),
                Ok(Some(Ok(Message::Text(t)))) => return Ok(Some(t.to_string())),
                Ok(Some(Ok(Message::Close(_)))) => return Ok(None),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next text message, normalised to single quotes; panics after `WAIT`.
    pub async fn next(&mut self) -> String {
        match self.next_within(WAIT).await {
            Ok(Some(t)) => t.replace('"', "'"),
            other => panic!("expected a message: {other:?}"),
        }
    }

    /// The first message containing `needle` (others are skipped).
    pub async fn expect(&mut self, needle: &str) -> String {
        let mut skipped = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Ok(Some(t)) => {
                    let t = t.replace('"', "'");
                    if t.contains(needle) {
                        return t;
                    }
                    skipped.push(t);
                }
                other => panic!("expected {needle:?}: {other:?}; skipped {skipped:#?}"),
            }
        }
    }

    /// Everything until the server closes the connection.
    pub async fn read_to_close(&mut self) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            match self.next_within(WAIT).await {
                Ok(Some(t)) => all.push(t.replace('"', "'")),
                Ok(None) | Err(_) => return all,
            }
        }
    }

    /// Open the stream and read the features.
    pub async fn open(&mut self) -> String {
        self.send(OPEN).await;
        let open = self.next().await;
        assert!(open.starts_with("<open"), "{open}");
        assert!(
            open.contains("urn:ietf:params:xml:ns:xmpp-framing"),
            "{open}"
        );
        self.expect("stream:features").await
    }

    /// SCRAM-SHA-256 (no channel binding: the test listener has no TLS).
    pub async fn auth_scram(&mut self, user: &str, password: &str) -> String {
        use sasl::client::Mechanism;
        use sasl::client::mechanisms::Scram;
        use sasl::common::ChannelBinding;
        use sasl::common::scram::Sha256;
        let mut mech = Scram::<Sha256>::new(user, password, ChannelBinding::None).expect("mech");
        let first = B64.encode(mech.initial());
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{first}</auth>"
        ))
        .await;
        let challenge = self.next().await;
        assert!(challenge.contains("<challenge"), "{challenge}");
        let data = B64
            .decode(super::client::inner(&challenge, "challenge"))
            .expect("base64");
        let reply = mech.response(&data).expect("challenge accepted");
        self.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(reply)
        ))
        .await;
        self.next().await
    }

    /// Bind after authentication: a new open, then the bind request.
    pub async fn bind(&mut self, resource: &str) -> String {
        let features = self.open().await;
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
            "{features}"
        );
        self.send(&format!(
            "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        let reply = self.expect("bind1").await;
        assert!(reply.contains("type='result'"), "{reply}");
        super::client::inner(&reply, "jid").to_owned()
    }
}

/// Connect, open, authenticate with SCRAM-SHA-256 and bind.
pub async fn login(server: &Server, user: &str, password: &str, resource: &str) -> Ws {
    let mut ws = connect(server).await;
    let features = ws.open().await;
    assert!(features.contains("SCRAM-SHA-256"), "{features}");
    let outcome = ws.auth_scram(user, password).await;
    assert!(outcome.contains("<success"), "{outcome}");
    ws.bind(resource).await;
    ws
}
