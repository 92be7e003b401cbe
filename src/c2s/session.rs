//! A bound client session, whatever transport carries it (RFC 6120 §§7-8,
//! RFC 6121): the stanza loop, the one outbound path every stanza it sends
//! takes, and its end.

use super::bind;
use super::binding::Binding;
use super::transport::{End, Transport};
use crate::config::Config;
use crate::features::presence;
use crate::router::{self, sessions::Packet};
use crate::state::{ConnectionSlot, ServerState};
use crate::stream::connection::{Incoming, StreamLimits};
use crate::stream::error::{StreamCondition, StreamError};
use crate::stream::framer::Limits;
use crate::xmpp::ns;
use crate::xmpp::stanza::{self, Kind};
use jid::Jid;
use minidom::Element;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Stanzas written in one batch when several are queued.
const WRITE_BATCH: usize = 32;
/// Bytes past which a batch takes no more stanzas: the batch is a copy of
/// what the queue holds, and a session's memory is bounded by its queue.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// How long a closing peer gets to read what was queued for it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Serve a connection: its negotiation (bounded by `c2s.handshake_timeout`),
/// then the bound session until it ends.
pub async fn run<T, N>(slot: ConnectionSlot, negotiation: std::pin::Pin<Box<N>>)
where
    T: Transport,
    N: Future<Output = Option<Established<T>>> + Send,
{
    let state = slot.state().clone();
    let deadline = Duration::from_secs(state.config.c2s.handshake_timeout);
    // The bound session is boxed inside the match and awaited after it:
    // a value awaited within the arm would keep the storage of the
    // negotiation's result (and of the timeout) reserved in this task for
    // the session's whole life, about 3 KiB per idle connection.
    let session = match tokio::time::timeout(deadline, negotiation).await {
        Ok(Some(established)) => {
            tracing::Span::current().record(
                "jid",
                tracing::field::display(&established.binding.handle.jid),
            );
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

/// A bound session, ready for stanzas.
pub struct Established<T> {
    transport: T,
    /// The registry entry (with the bound JID), queue and presence,
    /// released whatever ends the session.
    binding: Binding,
    /// The stream's xml:lang, given to stanzas that carry none (RFC 6120 §4.7.4).
    pub lang: Option<String>,
    /// ` to="JID"` for shared stanzas, escaped once rather than per stanza.
    to_attr: Box<[u8]>,
}

impl<T: Transport> Established<T> {
    /// The session of a resource just bound on `transport`.
    pub fn new(transport: T, parts: bind::BoundParts, lang: Option<String>) -> Self {
        Established {
            transport,
            binding: parts.binding,
            lang,
            to_attr: router::packet::to_attr(&parts.jid).into_boxed_slice(),
        }
    }

    /// The stanza loop, then unbinding and re-routing what was still queued.
    ///
    /// Not an `async fn`: the future of an `async fn` stores its by-value
    /// arguments twice (the captured argument and the body's binding), and
    /// `Established` is over a kilobyte that every idle session would pay
    /// again. An `async move` block uses its capture in place.
    fn run(self, state: &Arc<ServerState>) -> impl Future<Output = ()> + Send + '_ {
        let mut session = self;
        async move {
            let end = session.serve(state).await;
            // Boxed: closing runs once, and its state need not be reserved in
            // every idle session's future.
            Box::pin(session.finish(end)).await;
        }
    }

    /// The one outbound path: every stanza this session sends to its client
    /// is queued here (this is where stream management will count them and
    /// client state indication filter them), then written by `flush`.
    fn out(&mut self, packet: &Packet) {
        let (jid, to_attr) = (&self.binding.handle.jid, &self.to_attr);
        self.transport
            .push_with(|buf| packet.write_to(buf, jid, to_attr));
    }

    /// Write what `out` queued.
    async fn flush(&mut self) -> Result<(), End> {
        self.transport.flush().await.map_err(End::Io)
    }

    /// Send a stanza the session answers itself (not routed) through the
    /// outbound path.
    async fn reply(&mut self, el: &Element) -> Result<(), End> {
        match Packet::new(el) {
            Ok(packet) => {
                self.out(&packet);
                self.flush().await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise a reply: not sent");
                Ok(())
            }
        }
    }

    /// Unbind, say goodbye, tell the contacts, re-route what was queued.
    async fn finish(&mut self, end: End) {
        self.binding.unbind();
        let domain = self.binding.handle.jid.domain().to_string();
        match end {
            End::Error(reason) => {
                tracing::info!(error = %reason, "closing stream");
                if matches!(
                    reason.condition,
                    StreamCondition::NotAuthorized | StreamCondition::SystemShutdown
                ) {
                    // The account is gone (deleted or removed by its owner),
                    // or the server stops: what was queued (the removal's own
                    // result, the rooms' goodbyes) is written before closing,
                    // since re-routing it leads nowhere or only to storage.
                    let mut written = Vec::new();
                    while let Ok(p) = self.binding.queue.try_recv() {
                        self.out(&p);
                        written.push(p);
                    }
                    match tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await {
                        Ok(Ok(())) => {}
                        _ => self.binding.unsent.extend(written),
                    }
                }
                let _ = self.transport.close(Some(&reason), &domain).await;
            }
            End::PeerClosed => {
                let _ = self.transport.close(None, &domain).await;
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
                        "<iq xmlns='{}' type='get' id='jaseur-ping' from='{}' to='{}'><ping xmlns='{}'/></iq>",
                        ns::CLIENT,
                        crate::xmpp::escape(self.binding.handle.jid.domain().as_str()),
                        crate::xmpp::escape(&self.binding.handle.jid.to_string()),
                        ns::PING
                    );
                    self.out(&Packet::Own(ping.into_bytes().into_boxed_slice()));
                    if let Err(e) = self.flush().await {
                        return e;
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
                incoming = self.transport.read() => {
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
        self.out(&first);
        let mut batch = vec![first];
        for _ in 0..WRITE_BATCH {
            if self.transport.pending() >= WRITE_BATCH_BYTES {
                break;
            }
            match self.binding.queue.try_recv() {
                Ok(next) => {
                    self.out(&next);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let result = tokio::select! {
            r = self.transport.flush() => r.map_err(End::Io),
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
            let ok = Jid::new(from).is_ok_and(|j| {
                j == self.binding.handle.jid.clone() || j == self.binding.handle.jid.to_bare()
            });
            if !ok {
                return Err(End::Error(StreamError::new(
                    StreamCondition::InvalidFrom,
                    "'from' does not match the bound JID",
                )));
            }
        }
        stanza::set_attr(&mut el, "from", self.binding.handle.jid.to_string());
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
            let mut reply = stanza::iq_result(&el, None);
            stanza::remove_attr(&mut reply, "from");
            return self.reply(&reply).await;
        }
        // The pipeline's outbound steps (features/mod.rs: blocking, carbons...).
        let mut copies = Vec::new();
        match crate::features::outbound(state, &self.binding.handle.jid, &el, &mut copies).await {
            crate::features::Flow::Continue => {}
            crate::features::Flow::Handled => return Ok(()),
            crate::features::Flow::Refused(reply) => return self.reply(&reply).await,
        }
        if kind == Kind::Presence {
            return self.handle_presence(state, el).await;
        }
        router::route(state, el).await;
        router::deliver_copies(state, copies);
        Ok(())
    }

    /// XEP-0160: on the first available presence with a non-negative
    /// priority, hand over stored messages, deleting each batch only once
    /// it was written to the client.
    async fn send_offline(&mut self, state: &ServerState) -> Result<(), End> {
        use crate::features::offline::{self, OfflineStore};
        let owner = self.binding.handle.jid.to_bare();
        // This resource is already available: a message being stored now
        // holds the lock and is read below; one stored later sees this
        // resource and is delivered live (router::store_offline).
        drop(state.offline_locks.lock(&owner).await);
        // What the initial presence queued goes first: its echo above all
        // (RFC 6121 §4.2.2), then contacts' presence and stored requests.
        let control = self.binding.handle.control.clone();
        while let Ok(first) = self.binding.queue.try_recv() {
            Box::pin(self.write_batch(first, &control)).await?;
        }
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
            for m in &batch {
                match offline::with_delay(m, owner.domain().as_str()).map(|el| Packet::new(&el)) {
                    Some(Ok(packet)) => self.out(&packet),
                    _ => tracing::warn!(id = m.id, "dropping an unreadable offline message"),
                }
            }
            self.flush().await?;
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
                &self.binding.handle.jid,
                self.binding.handle.id,
                el,
                &mut self.binding.presence,
            )
            .await;
            self.binding.handle.priority = state
                .sessions
                .get(&self.binding.handle.jid)
                .and_then(|h| h.priority);
            if hand_over {
                self.send_offline(state).await?;
                crate::features::announce::on_available(state, &self.binding.handle.jid).await;
            }
            return Ok(());
        }
        match el.attr("type") {
            Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed") => {
                let reply = el.clone();
                if let Err(e) =
                    presence::outbound_subscription(state, &self.binding.handle.jid.to_bare(), el)
                        .await
                {
                    self.reply(&e.reply_to(&reply)).await?;
                }
            }
            // RFC 6121 §4.3 leaves probes to servers, but clients send them
            // (XEP-0318): answered as a server's would be, by the contact's
            // subscription, never tracked as directed presence.
            Some("probe") => router::route(state, el).await,
            _ => {
                presence::track_directed(&mut self.binding.presence, &el);
                router::route(state, el).await;
            }
        }
        Ok(())
    }
}
