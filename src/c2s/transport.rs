//! What a client session needs from whatever carries its XML: an XML
//! stream over TLS on TCP (RFC 6120, `c2s/tcp.rs`) or WebSocket messages
//! (RFC 7395, `http/websocket.rs`), and later BOSH or a resumed session.
//!
//! The session, its negotiation (SASL, bind) and its one outbound path are
//! written once against this interface. A transport owns its framing: TCP
//! writes everything pushed since the last flush in one write; WebSocket
//! sends one message per element. Sessions are generic over the transport
//! rather than holding a boxed trait object: the idle memory of tens of
//! thousands of sessions is the budget, and a generic costs nothing per
//! session.

use crate::sasl::scram::ChannelBinding;
use crate::stream::connection::{Incoming, ReadError};
use crate::stream::error::StreamError;
use crate::stream::header::StreamHeader;
use std::future::Future;
use std::io;

/// Why a stream ended.
#[derive(Debug)]
pub enum End {
    /// The peer closed its stream (`</stream:stream>` or `<close/>`).
    PeerClosed,
    /// The connection closed or broke.
    Closed,
    Io(io::Error),
    /// We end the stream with this error.
    Error(StreamError),
}

impl From<ReadError> for End {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Closed => End::Closed,
            ReadError::Io(e) => End::Io(e),
            ReadError::Stream(e) => End::Error(e),
        }
    }
}

/// Our stream open: the domain we speak for, the peer's `from` echoed
/// back as our `to`, and the stream id.
#[derive(Debug, Clone, Copy)]
pub struct Open<'a> {
    pub from: &'a str,
    pub to: Option<&'a str>,
    pub id: &'a str,
}

/// What is known of the connection under a transport.
#[derive(Debug, Clone)]
pub struct Connection {
    pub peer: std::net::SocketAddr,
    /// Channel-binding data of the TLS connection, when there is one.
    pub channel_binding: ChannelBinding,
    /// Whether the channel is confidential (TLS here, or at a trusted
    /// proxy): SASL PLAIN is only offered on such channels.
    pub secure: bool,
}

/// A client session's carrier of XML (see the module documentation).
pub trait Transport: Send + 'static {
    /// Read the peer's stream open (`<stream:stream>` or `<open/>`).
    fn read_open(&mut self) -> impl Future<Output = Result<StreamHeader, End>> + Send;

    /// Queue our stream open (the features that follow it go out with it
    /// on the next flush).
    fn open(&mut self, open: Open<'_>);

    /// The start tag of `<stream:features>` on this transport (a WebSocket
    /// message stands alone, so it declares the `stream` prefix itself).
    fn features_tag(&self) -> &'static str {
        "<stream:features>"
    }

    /// The peer's next top-level element. Cancel-safe: nothing read is lost
    /// if the future is dropped.
    fn read(&mut self) -> impl Future<Output = Result<Incoming, End>> + Send;

    /// Queue one top-level element (a stanza or a negotiation element such
    /// as `<success/>`) for the next flush, serialised by `write` into the
    /// buffer it is given (the transport's own on TCP, so a queued stanza is
    /// copied once).
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>));

    /// Queue one serialised top-level element for the next flush.
    fn push(&mut self, element: &[u8]) {
        self.push_with(|out| out.extend_from_slice(element));
    }

    /// Bytes pushed and not flushed yet.
    fn pending(&self) -> usize;

    /// Write what was pushed. Cancel-safe only in that a dropped flush
    /// leaves the stream unusable; callers close the session then.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Start a new stream on the same connection (after SASL success):
    /// the peer sends a new stream open.
    fn restart(&mut self);

    /// End our stream, after the stream error if there is one (preceded by
    /// our stream open from `domain` if none was sent), and shut the
    /// connection down.
    fn close(
        &mut self,
        error: Option<&StreamError>,
        domain: &str,
    ) -> impl Future<Output = io::Result<()>> + Send;
}

/// Push one element and flush it.
pub async fn send<T: Transport>(transport: &mut T, element: &[u8]) -> Result<(), End> {
    transport.push(element);
    transport.flush().await.map_err(End::Io)
}

/// Serialise `el`, push it and flush it (an element holding a character
/// XML forbids is an error, and nothing is written).
pub async fn send_element<T: Transport>(
    transport: &mut T,
    el: &minidom::Element,
) -> Result<(), End> {
    let bytes = crate::xmpp::stanza::to_bytes(el)
        .map_err(|e| End::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    send(transport, &bytes).await
}

/// Read the next element, which must be a stanza-level element (not the
/// end of the stream).
pub async fn read_element<T: Transport>(transport: &mut T) -> Result<minidom::Element, End> {
    match transport.read().await? {
        Incoming::Element(el) => Ok(el),
        Incoming::End => Err(End::PeerClosed),
    }
}
