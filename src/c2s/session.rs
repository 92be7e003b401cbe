//! One client connection from TCP accept to close: STARTTLS or direct TLS,
//! SASL, resource binding, then the stanza loop (RFC 6120 §§4-7).

use super::{bind, sasl};
use crate::config::Config;
use crate::features::presence;
use crate::router::{self, sessions::Packet};
use crate::sasl::scram::ChannelBinding;
use crate::state::{ConnectionSlot, ServerState};
use crate::stream::connection::{Incoming, ReadError, StreamLimits, XmlStream};
use crate::stream::error::{StreamCondition, StreamError};
use crate::stream::framer::Limits;
use crate::stream::header::{self, StreamHeader};
use crate::stream::tls;
use crate::xmpp::ns;
use crate::xmpp::stanza::{self, Kind};
use jid::{FullJid, Jid};
use minidom::Element;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tracing::Instrument;

/// The TLS transport of an authenticated stream.
pub type Tls = tokio_rustls::server::TlsStream<TcpStream>;

/// Stanzas written in one batch when several are queued.
const WRITE_BATCH: usize = 32;
/// Bytes past which a batch takes no more stanzas: the batch is a copy of
/// what the queue holds, and a session's memory is bounded by its queue.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// How long a closing peer gets to read our last words.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a stream ended.
#[derive(Debug)]
pub enum End {
    /// The peer sent `</stream:stream>`.
    PeerClosed,
    /// The TCP connection closed or broke.
    Closed,
    Io(std::io::Error),
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

/// Read one element, mapping failures to how the stream ends.
pub async fn read<S>(stream: &mut XmlStream<S>) -> Result<Incoming, End>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    Ok(stream.read_element().await?)
}

/// Parsing limits from the configuration.
pub fn limits(config: &Config) -> StreamLimits {
    StreamLimits {
        framing: Limits {
            max_stanza_size: config.c2s.max_stanza_size,
            max_depth: config.c2s.max_depth,
        },
        max_attributes: config.c2s.max_attributes,
    }
}

/// Serve one accepted connection until it closes.
pub async fn run(slot: ConnectionSlot, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let span = tracing::info_span!("c2s", %peer, jid = tracing::field::Empty);
    async move {
        let _ = tcp.set_nodelay(true);
        let state = slot.state().clone();
        let deadline = Duration::from_secs(state.config.c2s.handshake_timeout);
        // Boxed so that the negotiation's large state (TLS handshake, SASL) is
        // freed once bound instead of sizing the session task for its lifetime.
        let negotiation = Box::pin(negotiate(&state, tcp, peer, direct_tls));
        // The bound session is boxed inside the match and awaited after it:
        // a value awaited within the arm would keep the storage of the
        // negotiation's result (and of the timeout) reserved in this task for
        // the session's whole life, about 3 KiB per idle connection.
        let session = match tokio::time::timeout(deadline, negotiation).await {
            Ok(Some(established)) => {
                tracing::Span::current().record("jid", tracing::field::display(&established.jid));
                tracing::info!("session bound");
                Box::pin(established.run(&state))
            }
            Ok(None) => return,
            Err(_) => {
                tracing::debug!("negotiation timed out");
                return;
            }
        };
        session.await;
        drop(slot);
    }
    .instrument(span)
    .await
}

/// A stream that is negotiating: knows whether our header went out.
struct Negotiating<S> {
    stream: XmlStream<S>,
    header_sent: bool,
    domain: String,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Negotiating<S> {
    /// Read the peer's header, answer with ours and then `features`.
    /// Read the client's header, answer it, and send the features `features`
    /// makes for the domain the client named.
    async fn open(
        &mut self,
        state: &ServerState,
        features: impl FnOnce(&str) -> String,
    ) -> Result<StreamHeader, End> {
        let h = self.stream.read_header().await?;
        let wanted =
            h.to.clone()
                .unwrap_or_else(|| state.config.default_domain().to_owned());
        let major_version = h
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse::<u32>().ok());
        let problem = if !self.domain.is_empty() && self.domain != wanted {
            Some((
                StreamCondition::HostUnknown,
                "the domain changed on restart",
            ))
        } else if !state.config.serves(&wanted) {
            Some((
                StreamCondition::HostUnknown,
                "this server does not serve that domain",
            ))
        } else if h.default_ns.as_deref() != Some(ns::CLIENT) {
            Some((StreamCondition::InvalidNamespace, "expected jabber:client"))
        } else if major_version.unwrap_or(0) < 1 {
            Some((
                StreamCondition::UnsupportedVersion,
                "version 1.0 is required",
            ))
        } else {
            None
        };
        if self.domain.is_empty() && state.config.serves(&wanted) {
            self.domain = wanted;
        }
        // RFC 6120 §4.9.1.1: our header goes out even when an error follows it.
        let response =
            header::client_response(self.our_domain(state), h.from.as_deref(), &stream_id());
        self.stream.write_str(&response).await.map_err(End::Io)?;
        self.header_sent = true;
        if let Some((condition, text)) = problem {
            return Err(End::Error(StreamError::new(condition, text)));
        }
        let features = features(self.our_domain(state));
        self.stream
            .write_str(&format!("<stream:features>{features}</stream:features>"))
            .await
            .map_err(End::Io)?;
        Ok(h)
    }

    /// The domain we speak for on this stream.
    fn our_domain<'a>(&'a self, state: &'a ServerState) -> &'a str {
        if self.domain.is_empty() {
            state.config.default_domain()
        } else {
            &self.domain
        }
    }

    /// End the stream after a failure, saying why when that helps the peer.
    async fn fail(&mut self, end: End, state: &ServerState) {
        let error = match end {
            End::Error(e) => e,
            End::PeerClosed => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.close()).await;
                return;
            }
            End::Closed | End::Io(_) => return,
        };
        tracing::info!(error = %error, "closing stream");
        if !self.header_sent {
            let header = header::client_response(self.our_domain(state), None, &stream_id());
            let _ = self.stream.write_str(&header).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.send_error(&error)).await;
    }
}

fn stream_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// TLS, SASL and bind; None when the connection ended during negotiation.
async fn negotiate(
    state: &Arc<ServerState>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) -> Option<Established> {
    let limits = limits(&state.config);
    let mut domain = String::new();
    let tls_stream = if direct_tls {
        state
            .tls
            .acceptor()
            .accept(tcp)
            .await
            .map_err(|e| tracing::debug!(error = %e, "TLS handshake failed"))
            .ok()?
    } else {
        let mut plain = Negotiating {
            stream: XmlStream::new(tcp, limits),
            header_sent: false,
            domain: String::new(),
        };
        let starttls = format!("<starttls xmlns='{}'><required/></starttls>", ns::TLS);
        let result = async {
            plain.open(state, |_| starttls.clone()).await?;
            match read(&mut plain.stream).await? {
                Incoming::Element(el) if el.is("starttls", ns::TLS) => {
                    plain.stream.check_nothing_pending().map_err(End::Error)
                }
                Incoming::Element(_) => Err(End::Error(StreamError::new(
                    StreamCondition::PolicyViolation,
                    "STARTTLS is required",
                ))),
                Incoming::End => Err(End::PeerClosed),
            }
        }
        .await;
        if let Err(end) = result {
            plain.fail(end, state).await;
            return None;
        }
        plain
            .stream
            .write_str(&format!("<proceed xmlns='{}'/>", ns::TLS))
            .await
            .ok()?;
        domain = plain.domain.clone();
        let tcp = plain.stream.into_inner();
        state
            .tls
            .acceptor()
            .accept(tcp)
            .await
            .map_err(|e| tracing::debug!(error = %e, "TLS handshake failed"))
            .ok()?
    };
    let conn = tls_stream.get_ref().1;
    let cb = ChannelBinding {
        tls_exporter: tls::exporter(conn),
        tls_server_end_point: state.tls.end_point_binding(conn.server_name()),
        plus_advertised: false,
    };
    let mut s = Negotiating {
        stream: XmlStream::new(tls_stream, limits),
        header_sent: false,
        domain,
    };
    let result = async {
        let mut mechs = Vec::new();
        s.open(state, |domain| {
            mechs = sasl::offered(state, domain, &cb);
            let mut features = sasl::features(&mechs, &cb);
            if let Some(register) = crate::features::register::stream_feature(state, domain) {
                features.push_str(register);
            }
            features
        })
        .await?;
        let cb = ChannelBinding {
            plus_advertised: mechs.iter().any(|m| m.is_plus()),
            ..cb
        };
        let user = sasl::negotiate(state, &mut s.stream, &s.domain, peer.ip(), cb, &mechs).await?;
        s.stream.restart();
        let features = format!(
            "{}{}",
            bind::features(),
            crate::features::disco::caps_element(&state.config)
        );
        let header = s.open(state, |_| features).await?;
        let parts = bind::bind(state, &mut s.stream, user).await?;
        Ok((parts, header.lang))
    }
    .await;
    match result {
        Ok((parts, lang)) => Some(Established {
            stream: s.stream,
            binding: parts.binding,
            lang,
            to_attr: router::packet::to_attr(&parts.jid).into_boxed_slice(),
            jid: parts.jid,
        }),
        Err(end) => {
            s.fail(end, state).await;
            None
        }
    }
}

/// A bound session, ready for stanzas.
pub struct Established {
    pub stream: XmlStream<Tls>,
    pub jid: FullJid,
    /// The registry entry, queue and presence, released whatever ends the session.
    binding: super::binding::Binding,
    /// The stream's xml:lang, given to stanzas that carry none (RFC 6120 §4.7.4).
    pub lang: Option<String>,
    /// ` to="JID"` for shared stanzas, escaped once rather than per stanza.
    to_attr: Box<[u8]>,
}

impl Established {
    /// The stanza loop, then unbinding and re-routing what was still queued.
    ///
    /// Not an `async fn`: the future of an `async fn` stores its by-value
    /// arguments twice (the captured argument and the body's binding), and
    /// `Established` is 1.6 KiB that every idle session would pay again. An
    /// `async move` block uses its capture in place.
    fn run(self, state: &Arc<ServerState>) -> impl Future<Output = ()> + Send + '_ {
        let mut session = self;
        async move {
            let end = session.serve(state).await;
            // Boxed: closing runs once, and its state need not be reserved in
            // every idle session's future.
            Box::pin(session.finish(end)).await;
        }
    }

    /// Unbind, say goodbye, tell the contacts, re-route what was queued.
    async fn finish(&mut self, end: End) {
        self.binding.unbind();
        match end {
            End::Error(reason) => {
                tracing::info!(error = %reason, "closing stream");
                if reason.condition == StreamCondition::NotAuthorized {
                    // The account is gone (deleted or removed by its owner): what
                    // was queued, such as the removal's own result, is written
                    // before closing, since re-routing it leads nowhere.
                    while let Ok(p) = self.binding.queue.try_recv() {
                        let mut bytes = Vec::new();
                        p.write_to(&mut bytes, &self.jid, &self.to_attr);
                        match tokio::time::timeout(CLOSE_TIMEOUT, self.stream.write_bytes(&bytes))
                            .await
                        {
                            Ok(Ok(())) => {}
                            _ => {
                                self.binding.unsent.push(p);
                                break;
                            }
                        }
                    }
                }
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.send_error(&reason)).await;
            }
            End::PeerClosed => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.close()).await;
            }
            End::Closed | End::Io(_) => tracing::info!("connection lost"),
        }
        self.binding.release().await;
        tracing::info!("session closed");
    }

    async fn serve(&mut self, state: &Arc<ServerState>) -> End {
        let control = self.binding.handle.control.clone();
        let interval = Duration::from_secs(state.config.c2s.ping_interval);
        let timeout = Duration::from_secs(state.config.c2s.ping_timeout);
        let mut last_heard = tokio::time::Instant::now();
        let mut ping_sent: Option<tokio::time::Instant> = None;
        loop {
            let deadline = match ping_sent {
                Some(sent) => sent + timeout,
                None => last_heard + interval,
            };
            tokio::select! {
                biased;
                _ = control.cancelled() => {
                    return End::Error(control.reason().unwrap_or_else(|| StreamError::new(StreamCondition::SystemShutdown, "the server is shutting down")));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if ping_sent.is_some() {
                        // XEP-0199 §4.2: a client that stopped answering is gone.
                        return End::Error(StreamError::new(StreamCondition::ConnectionTimeout, "no answer to ping"));
                    }
                    let ping = format!(
                        "<iq type='get' id='jaseur-ping' from='{}' to='{}'><ping xmlns='{}'/></iq>",
                        crate::xmpp::escape(self.jid.domain().as_str()),
                        crate::xmpp::escape(&self.jid.to_string()),
                        ns::PING
                    );
                    if let Err(e) = self.stream.write_str(&ping).await {
                        return End::Io(e);
                    }
                    ping_sent = Some(tokio::time::Instant::now());
                }
                packet = self.binding.queue.recv() => {
                    let Some(first) = packet else { return End::Closed };
                    // Boxed, like the element handling below: the futures of the
                    // busy paths would otherwise enlarge every idle session.
                    if let Err(e) = Box::pin(self.write_batch(first, &control)).await {
                        return e;
                    }
                }
                incoming = read(&mut self.stream) => {
                    last_heard = tokio::time::Instant::now();
                    ping_sent = None;
                    match incoming {
                        Ok(Incoming::Element(el)) => {
                            if let Err(e) = Box::pin(self.handle_element(state, el)).await {
                                return e;
                            }
                        }
                        Ok(Incoming::End) => return End::PeerClosed,
                        Err(e) => return e,
                    }
                }
            }
        }
    }

    /// Write one queued stanza and whatever else is already waiting, in one
    /// flush of at most about `WRITE_BATCH_BYTES`.
    async fn write_batch(
        &mut self,
        first: Packet,
        control: &crate::router::sessions::SessionControl,
    ) -> Result<(), End> {
        let mut out = Vec::with_capacity(1024);
        first.write_to(&mut out, &self.jid, &self.to_attr);
        let mut batch = vec![first];
        for _ in 0..WRITE_BATCH {
            if out.len() >= WRITE_BATCH_BYTES {
                break;
            }
            match self.binding.queue.try_recv() {
                Ok(next) => {
                    next.write_to(&mut out, &self.jid, &self.to_attr);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let result = tokio::select! {
            r = self.stream.write_bytes(&out) => r.map_err(End::Io),
            // A peer that stopped reading must not pin this task forever.
            _ = control.cancelled() => Err(End::Error(control.reason().unwrap_or_else(|| {
                StreamError::new(StreamCondition::SystemShutdown, "the server is shutting down")
            }))),
        };
        if result.is_err() {
            // Part of the batch may have reached the peer, but we cannot know
            // which: route it all again (at least once beats lost).
            self.binding.unsent = batch;
        }
        result
    }

    async fn handle_element(
        &mut self,
        state: &Arc<ServerState>,
        mut el: Element,
    ) -> Result<(), End> {
        let Some(kind) = Kind::of(&el) else {
            return Err(End::Error(StreamError::new(
                StreamCondition::UnsupportedStanzaType,
                format!("unexpected <{}/>", el.name()),
            )));
        };
        // RFC 6120 §8.1.2.1: the server stamps 'from'; a client may only repeat its own address.
        if let Some(from) = el.attr("from") {
            let ok = Jid::new(from).is_ok_and(|j| j == self.jid.clone() || j == self.jid.to_bare());
            if !ok {
                return Err(End::Error(StreamError::new(
                    StreamCondition::InvalidFrom,
                    "'from' does not match the bound JID",
                )));
            }
        }
        stanza::set_attr(&mut el, "from", self.jid.to_string());
        if let Some(lang) = &self.lang
            && el.attr_ns(ns::XML, "lang").is_none()
        {
            el.set_attr(
                minidom::rxml::Namespace::xml().clone(),
                crate::xmpp::error::rxml_name("lang"),
                lang.clone(),
            );
        }
        if kind == Kind::Iq && el.attr("to").is_none() && bind::is_session_request(&el) {
            // RFC 3921 session establishment, still sent by old clients (Pidgin).
            let result = stanza::iq_result(&el, None);
            let mut reply = result;
            stanza::remove_attr(&mut reply, "from");
            self.stream.write_element(&reply).await.map_err(End::Io)?;
            return Ok(());
        }
        if el.attr("to").is_some() {
            use crate::features::blocking::{self, Verdict};
            match blocking::outbound(state, &self.jid.to_bare(), &el).await {
                Verdict::Allow => {}
                Verdict::Drop => return Ok(()),
                Verdict::Reject(error) => {
                    if !matches!(el.attr("type"), Some("error") | Some("result")) {
                        let reply = error.reply_to(&el);
                        self.stream.write_element(&reply).await.map_err(End::Io)?;
                    }
                    return Ok(());
                }
                Verdict::Blocked => {
                    if !matches!(el.attr("type"), Some("error") | Some("result")) {
                        let reply = blocking::blocked_error(&el);
                        self.stream.write_element(&reply).await.map_err(End::Io)?;
                    }
                    return Ok(());
                }
            }
        }
        if kind == Kind::Presence {
            return self.handle_presence(state, el).await;
        }
        router::route(state, el).await;
        Ok(())
    }

    /// XEP-0160: on the first available presence with a non-negative
    /// priority, hand over stored messages, deleting each batch only once
    /// it was written to the client.
    async fn send_offline(&mut self, state: &ServerState) -> Result<(), End> {
        use crate::features::offline::{self, OfflineStore};
        let owner = self.jid.to_bare();
        // This resource is already available: a message being stored now
        // holds the lock and is read below; one stored later sees this
        // resource and is delivered live (router::store_offline).
        drop(state.offline_locks.lock(&owner).await);
        loop {
            let batch = match state.storage.load_offline(&owner, offline::BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load offline messages");
                    return Ok(());
                }
            };
            let Some(last) = batch.last().map(|m| m.id) else {
                return Ok(());
            };
            let mut out = Vec::new();
            for m in &batch {
                match offline::with_delay(m, owner.domain().as_str())
                    .map(|el| stanza::to_bytes(&el))
                {
                    Some(Ok(bytes)) => out.extend_from_slice(&bytes),
                    _ => tracing::warn!(id = m.id, "dropping an unreadable offline message"),
                }
            }
            self.stream.write_bytes(&out).await.map_err(End::Io)?;
            if let Err(e) = state.storage.remove_offline(&owner, last).await {
                tracing::error!(error = %e, "cannot remove delivered offline messages");
                return Ok(());
            }
            if (batch.len() as i64) < offline::BATCH {
                return Ok(());
            }
        }
    }

    /// Presence from the client: broadcast, directed, or subscription management.
    async fn handle_presence(&mut self, state: &Arc<ServerState>, el: Element) -> Result<(), End> {
        if el.attr("to").is_none() {
            let hand_over = presence::broadcast(
                state,
                &self.jid,
                self.binding.handle.id,
                el,
                &mut self.binding.presence,
            )
            .await;
            self.binding.handle.priority = state.sessions.get(&self.jid).and_then(|h| h.priority);
            if hand_over {
                self.send_offline(state).await?;
                crate::features::announce::on_available(state, &self.jid).await;
            }
            return Ok(());
        }
        match el.attr("type") {
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed") => {
                let reply = el.clone();
                if let Err(e) =
                    presence::outbound_subscription(state, &self.jid.to_bare(), el).await
                {
                    self.stream
                        .write_element(&e.reply_to(&reply))
                        .await
                        .map_err(End::Io)?;
                }
            }
            // Probes are the server's business (RFC 6121 §4.3).
            Some("probe") => {}
            _ => {
                presence::track_directed(&mut self.binding.presence, &el);
                router::route(state, el).await;
            }
        }
        Ok(())
    }
}
