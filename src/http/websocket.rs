//! RFC 7395: XMPP over WebSocket. The endpoint (`/xmpp-websocket`, the
//! path Prosody uses) upgrades the HTTP connection with the `xmpp`
//! subprotocol and runs a client session over it: one WebSocket text
//! message per element, `<open/>` and `<close/>` in the framing namespace
//! instead of the stream header and `</stream:stream>`, and the same
//! negotiation (SASL, bind) and session as over TCP.

use super::ConnInfo;
use crate::c2s::transport::{Connection, End, Open, Transport};
use crate::sasl::scram::ChannelBinding;
use crate::state::{ConnectionSlot, ServerState};
use crate::stream::builder::{self, StreamNamespaces};
use crate::stream::connection::{Incoming, StreamLimits};
use crate::stream::error::{StreamCondition, StreamError};
use crate::stream::framer::{Frame, Framer};
use crate::stream::header::StreamHeader;
use crate::xmpp::{escape, ns};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use minidom::Element;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// RFC 7395 §3.3.1: the framing namespace of `<open/>` and `<close/>`.
pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// The subprotocol a client must ask for (RFC 7395 §3.1).
const SUBPROTOCOL: &str = "xmpp";
/// Bytes read from the socket at a time. tungstenite allocates its read
/// buffer up front (128 KiB by default): every idle session would keep it.
const READ_BUFFER: usize = 2048;
/// Bytes of frames buffered before a write reaches the socket (a flush
/// always writes everything).
const WRITE_BUFFER: usize = 16 * 1024;
/// How long a closing peer gets to read our last words.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The endpoint: check the origin and subprotocol, then upgrade and run a
/// client session on the WebSocket.
pub async fn upgrade(
    State(state): State<Arc<ServerState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin_allowed(&state.config.http.allowed_origins, origin)
    {
        tracing::info!(peer = %conn.peer, origin = ?origin, "WebSocket refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let ws = ws.protocols([SUBPROTOCOL]);
    if ws.selected_protocol().is_none() {
        return (
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol 'xmpp' is required (RFC 7395)\n",
        )
            .into_response();
    }
    let Some(guard) = conn.take_guard() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "connection already upgraded\n",
        )
            .into_response();
    };
    let Some(slot) = state.try_connect() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n").into_response();
    };
    let c2s = &state.config.c2s;
    let tasks = conn.tasks.clone();
    let connection = Connection {
        peer: conn.peer,
        channel_binding: ChannelBinding::default(),
        secure: state.config.http.secure(),
    };
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(c2s.max_stanza_size)
        .max_frame_size(c2s.max_stanza_size)
        .on_upgrade(move |socket| {
            let span =
                tracing::info_span!("ws", peer = %connection.peer, jid = tracing::field::Empty);
            // Tracked: shutdown waits for WebSocket sessions as for TCP ones.
            tasks.track_future(
                async move {
                    // The per-IP place is held for the session's life.
                    let _guard = guard;
                    run(slot, socket, connection).await
                }
                .instrument(span),
            )
        })
}

/// Whether `origin` may open a WebSocket (`*` allows any).
fn origin_allowed(allowed: &[String], origin: &HeaderValue) -> bool {
    let origin = origin.to_str().unwrap_or("");
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

async fn run(slot: ConnectionSlot, socket: WebSocket, connection: Connection) {
    let state = slot.state().clone();
    let limits = crate::c2s::session::limits(&state.config);
    let transport = WsTransport::new(socket, limits);
    // Boxed, as for TCP: the negotiation's state is freed once bound.
    let negotiation = Box::pin(async move {
        crate::c2s::negotiation::negotiate(&state, transport, connection, None).await
    });
    crate::c2s::session::run(slot, negotiation).await;
}

/// A client session's transport over a WebSocket.
pub struct WsTransport {
    ws: WebSocket,
    /// Messages pushed since the last flush.
    out: Vec<Utf8Bytes>,
    pending: usize,
    limits: StreamLimits,
    opened: bool,
}

impl WsTransport {
    fn new(ws: WebSocket, limits: StreamLimits) -> Self {
        WsTransport {
            ws,
            out: Vec::new(),
            pending: 0,
            limits,
            opened: false,
        }
    }

    /// The next text message, parsed as one element.
    async fn next_element(&mut self) -> Result<Option<Element>, End> {
        loop {
            let text = match self.ws.recv().await {
                None => return Err(End::Closed),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket error");
                    return Err(End::Closed);
                }
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    return Err(End::Error(StreamError::new(
                        StreamCondition::BadFormat,
                        "XMPP over WebSocket uses text messages (RFC 7395 §3.3.3)",
                    )));
                }
                // Answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) => return Ok(None),
            };
            if text.as_str().trim().is_empty() {
                // Whitespace keepalives, as on TCP.
                continue;
            }
            return parse_message(text.as_str().as_bytes(), self.limits)
                .map(Some)
                .map_err(End::Error);
        }
    }
}

/// One message as one complete element, with the limits of a stream
/// (size, depth, restricted XML, characters) and `jabber:client` as the
/// default namespace of stanzas that do not declare it.
fn parse_message(bytes: &[u8], limits: StreamLimits) -> Result<Element, StreamError> {
    let mut framer = Framer::inside_stream(limits.framing);
    framer.feed(bytes);
    let range = match framer.next_frame() {
        Ok(Some(Frame::Element(range))) => range,
        Ok(_) => {
            return Err(StreamError::new(
                StreamCondition::NotWellFormed,
                "a WebSocket message holds one complete element (RFC 7395 §3.3.3)",
            ));
        }
        Err(e) => return Err(StreamError::new(e.condition, e.text)),
    };
    let end = range.end;
    let el = builder::parse_element(
        framer.slice(range),
        &StreamNamespaces::client(),
        limits.max_attributes,
    )?;
    framer.consume(end);
    if !framer.pending_is_whitespace() {
        return Err(StreamError::new(
            StreamCondition::NotWellFormed,
            "a WebSocket message holds one element (RFC 7395 §3.3.3)",
        ));
    }
    Ok(el)
}

/// `<open/>` as a stream header (RFC 7395 §3.4).
fn open_header(el: &Element) -> Result<StreamHeader, StreamError> {
    if !el.is("open", FRAMING) {
        return Err(StreamError::new(
            StreamCondition::InvalidNamespace,
            "expected <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ));
    }
    Ok(StreamHeader {
        to: el.attr("to").map(str::to_owned),
        from: el.attr("from").map(str::to_owned),
        version: el.attr("version").map(str::to_owned),
        lang: el.attr_ns(ns::XML, "lang").map(str::to_owned),
        // The framing has no default namespace: stanzas are jabber:client.
        default_ns: Some(ns::CLIENT.to_owned()),
        stream_prefix: "stream".to_owned(),
    })
}

/// A stream error as a message of its own: it declares the `stream` prefix.
fn error_message(e: &StreamError) -> String {
    e.to_xml().replacen(
        "<stream:error>",
        &format!("<stream:error xmlns:stream='{}'>", ns::STREAMS),
        1,
    )
}

impl Transport for WsTransport {
    async fn read_open(&mut self) -> Result<StreamHeader, End> {
        match self.next_element().await? {
            Some(el) => open_header(&el).map_err(End::Error),
            None => Err(End::Closed),
        }
    }

    fn open(&mut self, open: Open<'_>) {
        let to = open
            .to
            .map(|t| format!(" to='{}'", escape(t)))
            .unwrap_or_default();
        let xml = format!(
            "<open xmlns='{FRAMING}' from='{}'{to} id='{}' version='1.0' xml:lang='en'/>",
            escape(open.from),
            escape(open.id)
        );
        self.push(xml.as_bytes());
        self.opened = true;
    }

    fn features_tag(&self) -> &'static str {
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
    }

    async fn read(&mut self) -> Result<Incoming, End> {
        match self.next_element().await? {
            None => Ok(Incoming::End),
            Some(el) if el.is("close", FRAMING) => Ok(Incoming::End),
            Some(el) if el.is("open", FRAMING) => Err(End::Error(StreamError::new(
                StreamCondition::NotWellFormed,
                "unexpected <open/>",
            ))),
            Some(el) => Ok(Incoming::Element(el)),
        }
    }

    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut buf = Vec::new();
        write(&mut buf);
        self.pending += buf.len();
        // Our serialiser writes UTF-8; a lossy conversion keeps this path
        // free of a panic all the same.
        let text = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        self.out.push(Utf8Bytes::from(text));
    }

    fn pending(&self) -> usize {
        self.pending
    }

    async fn flush(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        self.pending = 0;
        for text in out {
            self.ws
                .feed(Message::Text(text))
                .await
                .map_err(io::Error::other)?;
        }
        self.ws.flush().await.map_err(io::Error::other)
    }

    fn restart(&mut self) {}

    async fn close(&mut self, error: Option<&StreamError>, domain: &str) -> io::Result<()> {
        if !self.opened {
            let id = crate::c2s::negotiation::stream_id();
            self.open(Open {
                from: domain,
                to: None,
                id: &id,
            });
        }
        if let Some(e) = error {
            self.push(error_message(e).as_bytes());
        }
        self.push(format!("<close xmlns='{FRAMING}'/>").as_bytes());
        let flushed = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.send(Message::Close(None))).await;
        match flushed {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::framer::Limits;

    fn limits() -> StreamLimits {
        StreamLimits {
            framing: Limits {
                max_stanza_size: 4096,
                max_depth: 8,
            },
            max_attributes: 16,
        }
    }

    #[test]
    fn one_element_per_message() {
        let el = parse_message(
            b"<message xmlns='jabber:client' to='a@b'><body>x</body></message>",
            limits(),
        )
        .expect("valid");
        assert_eq!(el.ns(), ns::CLIENT);
        // Without a namespace, a stanza is jabber:client.
        let el = parse_message(b"<iq type='get' id='1'/>", limits()).expect("valid");
        assert_eq!(el.ns(), ns::CLIENT);
        let open = parse_message(
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
            limits(),
        )
        .expect("open");
        let h = open_header(&open).expect("header");
        assert_eq!(h.to.as_deref(), Some("localhost"));
        for bad in [
            &b"<a/><b/>"[..],
            b"<message><body>x",
            b"<!-- c --><a/>",
            b"</stream:stream>",
            b"<a>\x00</a>",
            b"text",
        ] {
            assert!(parse_message(bad, limits()).is_err(), "{:?}", bad);
        }
        let deep = format!("<a>{}{}</a>", "<b>".repeat(20), "</b>".repeat(20));
        assert_eq!(
            parse_message(deep.as_bytes(), limits())
                .expect_err("deep")
                .condition,
            StreamCondition::PolicyViolation
        );
    }

    #[test]
    fn errors_declare_their_prefix() {
        let e = StreamError::new(StreamCondition::NotWellFormed, "x");
        let xml = error_message(&e);
        let el: Element = xml.parse().expect("parses alone");
        assert!(el.is("error", ns::STREAMS));
    }
}
