//! A connection as the scenarios see it, whatever carries it: bytes come
//! in (read by substring, cut by `scan::Splitter`), whole elements go out.
//! Over TCP that is a TLS stream after STARTTLS; over XMPP over WebSocket
//! (RFC 7395), one element per text message.
use super::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// An established TCP session: TLS after STARTTLS.
pub type TlsSession = TlsStream<TcpStream>;

/// The subprotocol RFC 7395 §3.1 asks for.
const SUBPROTOCOL: &str = "xmpp";
/// Stanza namespace declaration every stanza carries over WebSocket
/// (RFC 7395 §3.3.3: each message stands alone).
pub const WS_STANZA_NS: &str = " xmlns='jabber:client'";

/// A connection, from the first byte to the end of the session.
pub enum Session {
    /// TCP before STARTTLS: only while logging in.
    Plain(TcpStream),
    /// TCP after STARTTLS. Boxed, as the WebSocket: the session is held
    /// for its whole life, the box costs one allocation per login.
    Tls(Box<TlsSession>),
    /// XMPP over WebSocket.
    Ws(Box<WsSession>),
}

/// A WebSocket read as a byte stream: messages one after the other.
pub struct WsSession {
    ws: WebSocketStream<TcpStream>,
    /// The last message read, and how much of it was handed out: a read
    /// buffer smaller than a message gets it in parts.
    pending: Utf8Bytes,
    taken: usize,
}

impl Session {
    /// Read what comes next into `buf`; Ok(0) when the peer closed.
    /// Cancel-safe, so it can be one branch of a `select!`.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Session::Plain(s) => s.read(buf).await,
            Session::Tls(s) => s.read(buf).await,
            Session::Ws(w) => w.read(buf).await,
        }
    }

    /// Send one element (or, over TCP, any bytes) and flush.
    pub async fn send(&mut self, element: &[u8]) -> std::io::Result<()> {
        match self {
            Session::Plain(s) => write_flush(s, element).await,
            Session::Tls(s) => write_flush(s.as_mut(), element).await,
            Session::Ws(w) => {
                w.ws.send(text(element)?)
                    .await
                    .map_err(std::io::Error::other)
            }
        }
    }

    /// Send a batch of elements: one write over TCP, one message per
    /// element over WebSocket, and one flush.
    pub async fn send_batch(&mut self, batch: &Batch) -> std::io::Result<()> {
        match self {
            Session::Plain(s) => write_flush(s, &batch.bytes).await,
            Session::Tls(s) => write_flush(s.as_mut(), &batch.bytes).await,
            Session::Ws(w) => {
                for element in batch.elements() {
                    w.ws.feed(text(element)?)
                        .await
                        .map_err(std::io::Error::other)?;
                }
                w.ws.flush().await.map_err(std::io::Error::other)
            }
        }
    }

    /// A keepalive that makes the server read: whitespace over TCP, a
    /// ping frame over WebSocket (whose messages are whole elements, not
    /// whitespace, RFC 7395).
    pub async fn keepalive(&mut self) -> std::io::Result<()> {
        match self {
            Session::Ws(w) => {
                w.ws.send(Message::Ping(Default::default()))
                    .await
                    .map_err(std::io::Error::other)
            }
            _ => self.send(b" ").await,
        }
    }

    /// Close the connection: TLS close_notify and FIN, or a WebSocket close frame.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Session::Plain(s) => s.shutdown().await,
            Session::Tls(s) => s.shutdown().await,
            Session::Ws(w) => w.ws.close(None).await.map_err(std::io::Error::other),
        }
    }

    /// What a stanza adds to its start tag: the namespace declaration over
    /// WebSocket, nothing inside a TCP stream (whose header declares it).
    pub fn stanza_ns(&self) -> &'static str {
        match self {
            Session::Ws(_) => WS_STANZA_NS,
            _ => "",
        }
    }

    /// What the server sends when it ends the stream.
    pub fn stream_end(&self) -> &'static [u8] {
        match self {
            Session::Ws(_) => b"<close",
            _ => b"</stream:stream>",
        }
    }

    /// The TLS stream of a TCP session, for the scenarios that need one
    /// (they refuse `--transport websocket` first).
    pub fn into_tls(self) -> anyhow::Result<TlsSession> {
        match self {
            Session::Tls(s) => Ok(*s),
            _ => bail!("this scenario runs over TCP with STARTTLS only (--transport tcp)"),
        }
    }
}

async fn write_flush<S: AsyncWrite + Unpin>(s: &mut S, data: &[u8]) -> std::io::Result<()> {
    s.write_all(data).await?;
    s.flush().await
}

/// One element as a text message.
fn text(element: &[u8]) -> std::io::Result<Message> {
    let text = Utf8Bytes::try_from(element.to_vec()).map_err(std::io::Error::other)?;
    Ok(Message::Text(text))
}

impl WsSession {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let rest = &self.pending.as_bytes()[self.taken..];
            if !rest.is_empty() {
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                self.taken += n;
                return Ok(n);
            }
            // `next` is cancel-safe: a message is either returned whole or left unread.
            match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Ok(0),
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                Some(Ok(Message::Text(t))) => {
                    self.pending = t;
                    self.taken = 0;
                }
                // Pings are answered by tungstenite; XMPP uses no binary messages.
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Elements to send together, written back to back with their ends noted.
#[derive(Default)]
pub struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    pub fn with_capacity(bytes: usize) -> Self {
        Batch {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The buffer to append the next element to; `end` closes it.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Mark the end of the element appended since the last one.
    pub fn end(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// Append a whole element.
    pub fn push(&mut self, element: &[u8]) {
        self.bytes.extend_from_slice(element);
        self.end();
    }

    fn elements(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

/// Where and how to open WebSocket sessions, checked once.
pub struct WsTarget {
    uri: Uri,
    config: WebSocketConfig,
}

impl WsTarget {
    /// `url`: a `ws://` URL (the HTTP listener's own, without TLS).
    pub fn new(url: &str) -> anyhow::Result<WsTarget> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("{url} is not a valid URL"))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => bail!(
                "{url}: wss:// is not supported; measure the server's own listener over ws://"
            ),
            _ => bail!("{url}: a WebSocket URL starts with ws://"),
        }
        // Checked here rather than at every connection.
        uri.clone()
            .into_client_request()
            .with_context(|| format!("{url} cannot be requested"))?;
        // tungstenite allocates its read buffer up front (128 KiB by
        // default): thousands of held sessions would make the generator
        // heavier than the server. Replies are small; large ones still fit
        // (the buffer grows), up to the message limit.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        Ok(WsTarget { uri, config })
    }

    /// The WebSocket handshake on a connected socket, with the `xmpp`
    /// subprotocol; the server must select it.
    pub async fn handshake(&self, tcp: TcpStream) -> anyhow::Result<Session> {
        // A new request per connection: it carries a fresh random key.
        let mut request = self.uri.clone().into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(self.config))
                .await
                .context("WebSocket handshake")?;
        let selected = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if selected != Some(SUBPROTOCOL) {
            bail!("the server did not select the xmpp subprotocol: {selected:?}");
        }
        Ok(Session::Ws(Box::new(WsSession {
            ws,
            pending: Utf8Bytes::default(),
            taken: 0,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_its_elements_apart() {
        let mut b = Batch::with_capacity(64);
        assert!(b.is_empty());
        b.push(b"<a/>");
        b.buf().extend_from_slice(b"<b>x");
        b.buf().extend_from_slice(b"</b>");
        b.end();
        let parts: Vec<&[u8]> = b.elements().collect();
        assert_eq!(parts, vec![&b"<a/>"[..], b"<b>x</b>"]);
        assert_eq!(b.bytes, b"<a/><b>x</b>");
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.elements().count(), 0);
    }

    #[test]
    fn only_plain_websocket_urls() {
        assert!(WsTarget::new("ws://127.0.0.1:5280/xmpp-websocket").is_ok());
        assert!(WsTarget::new("wss://chat.example.org/xmpp-websocket").is_err());
        assert!(WsTarget::new("http://127.0.0.1:5280/").is_err());
        assert!(WsTarget::new("not a url").is_err());
    }
}
