//! Client streams over TCP (RFC 6120): STARTTLS (§5) on the client port or
//! direct TLS (XEP-0368), then the XML stream as a session's `Transport`.

use super::negotiation;
use super::transport::{Connection, End, Open, Transport};
use crate::sasl::scram::ChannelBinding;
use crate::state::{ConnectionSlot, ServerState};
use crate::stream::connection::{Incoming, StreamLimits, XmlStream};
use crate::stream::error::{StreamCondition, StreamError};
use crate::stream::header::{self, StreamHeader};
use crate::stream::tls;
use crate::xmpp::ns;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tracing::Instrument;

/// The TLS connection of a client stream.
pub type Tls = tokio_rustls::server::TlsStream<TcpStream>;

/// How long a closing peer gets to read our last words.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// An XML stream over TLS: the TCP transport of a client session.
pub struct TcpTransport {
    stream: XmlStream<Tls>,
    /// What was pushed since the last flush: written in one write.
    out: Vec<u8>,
    opened: bool,
}

impl TcpTransport {
    fn new(tls: Tls, limits: StreamLimits) -> Self {
        TcpTransport {
            stream: XmlStream::new(tls, limits),
            out: Vec::new(),
            opened: false,
        }
    }
}

impl Transport for TcpTransport {
    async fn read_open(&mut self) -> Result<StreamHeader, End> {
        Ok(self.stream.read_header().await?)
    }

    fn open(&mut self, open: Open<'_>) {
        let h = header::client_response(open.from, open.to, open.id);
        self.out.extend_from_slice(h.as_bytes());
        self.opened = true;
    }

    async fn read(&mut self) -> Result<Incoming, End> {
        Ok(self.stream.read_element().await?)
    }

    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.out);
    }

    fn pending(&self) -> usize {
        self.out.len()
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_bytes(&self.out).await;
        // An idle session keeps no write buffer.
        self.out = Vec::new();
        result
    }

    fn restart(&mut self) {
        self.stream.restart();
    }

    async fn close(&mut self, error: Option<&StreamError>, domain: &str) -> io::Result<()> {
        if !self.opened {
            // RFC 6120 §4.9.1.1: our header goes out even when an error follows it.
            let id = negotiation::stream_id();
            self.open(Open {
                from: domain,
                to: None,
                id: &id,
            });
        }
        if let Some(e) = error {
            self.out.extend_from_slice(e.to_xml().as_bytes());
        }
        self.out.extend_from_slice(b"</stream:stream>");
        let flushed = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.shutdown()).await;
        match flushed {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}

/// Serve one accepted TCP connection until it closes.
pub async fn run(slot: ConnectionSlot, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let span = tracing::info_span!("c2s", %peer, jid = tracing::field::Empty);
    async move {
        let _ = tcp.set_nodelay(true);
        let state = slot.state().clone();
        // Boxed so that the negotiation's large state (TLS handshake, SASL) is
        // freed once bound instead of sizing the session task for its lifetime.
        let negotiation = Box::pin(connect(state.clone(), tcp, peer, direct_tls));
        super::session::run(slot, negotiation).await;
    }
    .instrument(span)
    .await
}

/// TLS (STARTTLS or direct), then the negotiation every transport shares.
async fn connect(
    state: Arc<ServerState>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) -> Option<super::session::Established<TcpTransport>> {
    let limits = super::session::limits(&state.config);
    let (tls_stream, domain) = if direct_tls {
        let tls = state
            .tls
            .acceptor()
            .accept(tcp)
            .await
            .map_err(|e| tracing::debug!(error = %e, "TLS handshake failed"))
            .ok()?;
        (tls, None)
    } else {
        starttls(&state, tcp, limits).await?
    };
    let conn = tls_stream.get_ref().1;
    let connection = Connection {
        peer,
        channel_binding: ChannelBinding {
            tls_exporter: tls::exporter(conn),
            tls_server_end_point: state.tls.end_point_binding(conn.server_name()),
            plus_advertised: false,
        },
        secure: true,
    };
    let transport = TcpTransport::new(tls_stream, limits);
    negotiation::negotiate(&state, transport, connection, domain).await
}

/// The plaintext stream up to `<proceed/>` (RFC 6120 §5.4), then the TLS
/// handshake; returns the TLS connection and the domain the client named.
async fn starttls(
    state: &Arc<ServerState>,
    tcp: TcpStream,
    limits: StreamLimits,
) -> Option<(Tls, Option<String>)> {
    let mut plain = XmlStream::new(tcp, limits);
    let mut opened = false;
    let mut domain = None;
    let result: Result<(), End> = async {
        let h = plain.read_header().await?;
        let checked = negotiation::check_open(state, &h, None);
        let ours = match &checked {
            Ok(d) => d.clone(),
            Err(_) => state.config.default_domain().to_owned(),
        };
        let response = header::client_response(&ours, h.from.as_deref(), &negotiation::stream_id());
        plain.write_str(&response).await.map_err(End::Io)?;
        opened = true;
        domain = Some(checked.map_err(End::Error)?);
        let starttls = format!(
            "<stream:features><starttls xmlns='{}'><required/></starttls></stream:features>",
            ns::TLS
        );
        plain.write_str(&starttls).await.map_err(End::Io)?;
        match plain.read_element().await? {
            Incoming::Element(el) if el.is("starttls", ns::TLS) => {
                plain.check_nothing_pending().map_err(End::Error)
            }
            Incoming::Element(_) => Err(End::Error(StreamError::new(
                StreamCondition::PolicyViolation,
                "STARTTLS is required",
            ))),
            Incoming::End => Err(End::PeerClosed),
        }
    }
    .await;
    match result {
        Ok(()) => {}
        Err(end) => {
            let error = match end {
                End::Error(e) => Some(e),
                End::PeerClosed => None,
                End::Closed | End::Io(_) => return None,
            };
            if let Some(e) = &error {
                tracing::info!(error = %e, "closing stream");
            }
            let mut out = String::new();
            if !opened {
                out.push_str(&header::client_response(
                    state.config.default_domain(),
                    None,
                    &negotiation::stream_id(),
                ));
            }
            if let Some(e) = &error {
                out.push_str(&e.to_xml());
            }
            out.push_str("</stream:stream>");
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, plain.write_str(&out)).await;
            return None;
        }
    }
    plain
        .write_str(&format!("<proceed xmlns='{}'/>", ns::TLS))
        .await
        .ok()?;
    let tcp = plain.into_inner();
    let tls = state
        .tls
        .acceptor()
        .accept(tcp)
        .await
        .map_err(|e| tracing::debug!(error = %e, "TLS handshake failed"))
        .ok()?;
    Some((tls, domain))
}
