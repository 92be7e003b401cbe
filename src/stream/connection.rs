//! One XML stream over a byte transport: read elements, write elements, close.
//!
//! An idle connection holds no read buffer: each read copies from a
//! temporary on the stack of the poll into the framer, whose buffer is freed
//! as soon as it holds no partial element.

use super::builder::{StreamNamespaces, parse_element};
use super::error::{StreamCondition, StreamError};
use super::framer::{Frame, Framer, Limits};
use super::header::{self, StreamHeader};
use minidom::Element;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes taken from the transport per read.
const READ_CHUNK: usize = 4096;

/// What went wrong while reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("connection closed")]
    Closed,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("stream error: {0}")]
    Stream(StreamError),
}

impl From<StreamError> for ReadError {
    fn from(e: StreamError) -> Self {
        ReadError::Stream(e)
    }
}

/// What the peer sent next.
#[derive(Debug)]
pub enum Incoming {
    Element(Element),
    /// The peer closed its stream with `</stream:stream>`.
    End,
}

/// Parsing limits for a stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub framing: Limits,
    pub max_attributes: usize,
}

/// An XML stream on transport `S`.
pub struct XmlStream<S> {
    io: S,
    framer: Framer,
    limits: StreamLimits,
    namespaces: StreamNamespaces,
}

impl<S: AsyncRead + AsyncWrite + Unpin> XmlStream<S> {
    /// Wrap a transport at the start of a stream.
    pub fn new(io: S, limits: StreamLimits) -> Self {
        XmlStream {
            io,
            framer: Framer::new(limits.framing),
            limits,
            namespaces: StreamNamespaces::client(),
        }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Fails if the peer sent more than whitespace after the element just
    /// read: before STARTTLS such bytes would be plaintext injected into the
    /// TLS session (clients commonly end `<starttls/>` with a newline).
    pub fn check_nothing_pending(&self) -> Result<(), StreamError> {
        if self.framer.pending_is_whitespace() {
            return Ok(());
        }
        Err(StreamError::new(
            StreamCondition::PolicyViolation,
            "data after <starttls/>",
        ))
    }

    /// Unwrap the transport (for STARTTLS), dropping pending whitespace.
    pub fn into_inner(self) -> S {
        self.io
    }

    /// Start a new stream on the same transport (after SASL success).
    pub fn restart(&mut self) {
        self.framer = Framer::new(self.limits.framing);
    }

    /// Read one chunk from the transport into the framer. Cancel-safe.
    async fn fill(&mut self) -> Result<(), ReadError> {
        let io = &mut self.io;
        let framer = &mut self.framer;
        std::future::poll_fn(|cx| {
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    if buf.filled().is_empty() {
                        return Poll::Ready(Err(ReadError::Closed));
                    }
                    framer.feed(buf.filled());
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(ReadError::Io(e))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Read the peer's stream header.
    pub async fn read_header(&mut self) -> Result<StreamHeader, ReadError> {
        loop {
            match self.framer.next_frame().map_err(frame_error)? {
                Some(Frame::Header(range)) => {
                    let parsed = header::parse(self.framer.slice(range.clone()));
                    self.framer.consume(range.end);
                    let parsed = parsed?;
                    self.namespaces = parsed.namespaces();
                    return Ok(parsed);
                }
                Some(_) => {
                    return Err(StreamError::new(
                        StreamCondition::NotWellFormed,
                        "expected a stream header",
                    )
                    .into());
                }
                None => self.fill().await?,
            }
        }
    }

    /// Read the next top-level element. Cancel-safe: nothing read is lost if
    /// the future is dropped.
    pub async fn read_element(&mut self) -> Result<Incoming, ReadError> {
        loop {
            match self.framer.next_frame().map_err(frame_error)? {
                Some(Frame::Element(range)) => {
                    crate::memory::note_stanza(range.len());
                    let parsed = parse_element(
                        self.framer.slice(range.clone()),
                        &self.namespaces,
                        self.limits.max_attributes,
                    );
                    self.framer.consume(range.end);
                    return Ok(Incoming::Element(parsed?));
                }
                Some(Frame::End) => return Ok(Incoming::End),
                Some(Frame::Header(_)) => {
                    return Err(StreamError::new(
                        StreamCondition::NotWellFormed,
                        "unexpected stream header",
                    )
                    .into());
                }
                None => self.fill().await?,
            }
        }
    }

    /// Write raw XML text.
    pub async fn write_str(&mut self, s: &str) -> io::Result<()> {
        self.write_bytes(s.as_bytes()).await
    }

    /// Write raw bytes and flush them to the peer.
    pub async fn write_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.io.write_all(b).await?;
        self.io.flush().await
    }

    /// Write one element (an element holding a character XML forbids is
    /// an `InvalidData` error, and nothing is written).
    pub async fn write_element(&mut self, el: &Element) -> io::Result<()> {
        let bytes = crate::xmpp::stanza::to_bytes(el)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.write_bytes(&bytes).await
    }

    /// Send a stream error and close our stream (the header must already be sent).
    pub async fn send_error(&mut self, error: &StreamError) -> io::Result<()> {
        let mut out = error.to_xml();
        out.push_str("</stream:stream>");
        self.write_str(&out).await?;
        self.io.shutdown().await
    }

    /// Shut the connection down (after our last words).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }

    /// Close our stream cleanly.
    pub async fn close(&mut self) -> io::Result<()> {
        self.write_str("</stream:stream>").await?;
        self.io.shutdown().await
    }
}

fn frame_error(e: super::framer::FrameError) -> ReadError {
    ReadError::Stream(StreamError::new(e.condition, e.text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limits() -> StreamLimits {
        StreamLimits {
            framing: Limits {
                max_stanza_size: 4096,
                max_depth: 16,
            },
            max_attributes: 16,
        }
    }

    #[tokio::test]
    async fn reads_trickled_stream() {
        let (client, server) = tokio::io::duplex(16);
        let writer = tokio::spawn(async move {
            let mut client = client;
            let data = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='x' version='1.0'><message to='a@x'><body>hi</body></message></stream:stream>";
            for piece in data.chunks(7) {
                client.write_all(piece).await.expect("write");
            }
            client
        });
        let mut s = XmlStream::new(server, limits());
        let h = s.read_header().await.expect("header");
        assert_eq!(h.to.as_deref(), Some("x"));
        match s.read_element().await.expect("element") {
            Incoming::Element(el) => assert_eq!(el.name(), "message"),
            Incoming::End => panic!("expected a message"),
        }
        assert!(matches!(s.read_element().await, Ok(Incoming::End)));
        drop(writer.await);
    }

    #[tokio::test]
    async fn eof_mid_stanza_is_closed() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            client
                .write_all(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><bo")
                .await
                .expect("write");
        });
        let mut s = XmlStream::new(server, limits());
        s.read_header().await.expect("header");
        assert!(matches!(s.read_element().await, Err(ReadError::Closed)));
    }
}
