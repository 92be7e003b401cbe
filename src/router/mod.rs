//! Where a stanza goes (RFC 6120 §10, RFC 6121 §8): a local session, the
//! server itself, a component, an account's offline store, or back to the
//! sender as an error. docs/routing.md is the table this code follows.

pub mod packet;
pub mod queue;
pub mod remote;
pub mod sessions;

use crate::features;
use crate::features::offline::OfflineStore;
use crate::state::ServerState;
use crate::stream::error::{StreamCondition, StreamError};
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::stanza::{self, Kind};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use packet::{Packet, SharedStanza};
use sessions::{SessionHandle, SessionId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// Components (MUC, upload, ...) addressed by their own domain.
#[derive(Debug, Default)]
pub struct Components {
    by_domain: RwLock<HashMap<String, mpsc::Sender<Box<Element>>>>,
}

impl Components {
    /// Register a component for `domain`; stanzas to it arrive on the returned queue.
    pub fn register(&self, domain: &str, queue: usize) -> mpsc::Receiver<Box<Element>> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let mut map = self.by_domain.write().unwrap_or_else(|p| p.into_inner());
        map.insert(domain.to_owned(), tx);
        rx
    }

    fn get(&self, domain: &str) -> Option<mpsc::Sender<Box<Element>>> {
        let map = self.by_domain.read().unwrap_or_else(|p| p.into_inner());
        map.get(domain).cloned()
    }
}

/// Route a stanza whose `from` was already stamped by the sender's session.
///
/// Boxed because features answer by routing again (a roster push, a probe
/// answer), which makes routing recursive.
pub fn route<'a>(
    state: &'a ServerState,
    stanza: Element,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(route_now(state, stanza))
}

/// Where a stanza goes, decided from its `to` alone (RFC 6120 §10): the
/// router's table of destinations.
#[derive(Debug)]
pub enum Destination {
    /// A served domain itself (RFC 6120 §10.5.1).
    Server,
    /// A local account's bare JID.
    Account(BareJid),
    /// One resource of a local account.
    Resource(FullJid),
    /// A component with a domain of its own (MUC, directory search).
    Component(mpsc::Sender<Box<Element>>),
    /// Any other domain: the server-to-server slot (`remote.rs`).
    Remote,
}

/// The destination of `to`.
pub fn destination(state: &ServerState, to: &Jid) -> Destination {
    let domain = to.domain().as_str();
    if state.config.serves(domain) {
        match (to.node(), to.try_as_full()) {
            (None, _) => Destination::Server,
            (Some(_), Ok(full)) => Destination::Resource(full.clone()),
            (Some(_), Err(bare)) => Destination::Account(bare.clone()),
        }
    } else if let Some(component) = state.components.get(domain) {
        Destination::Component(component)
    } else {
        Destination::Remote
    }
}

async fn route_now(state: &ServerState, stanza: Element) {
    let Some(kind) = Kind::of(&stanza) else {
        return;
    };
    let to = match stanza.attr("to").map(Jid::new) {
        None => match stanza.attr("from").map(Jid::new) {
            // No 'to': the stanza is for the sender's own account (RFC 6120 §10.3).
            Some(Ok(from)) => Jid::from(from.to_bare()),
            _ => return,
        },
        Some(Ok(to)) => to,
        Some(Err(_)) => {
            return bounce(state, &stanza, StanzaError::new(Condition::JidMalformed)).await;
        }
    };
    match destination(state, &to) {
        Destination::Server => to_server(state, kind, stanza).await,
        Destination::Account(bare) => to_account(state, kind, &bare, None, stanza).await,
        Destination::Resource(full) => {
            to_account(state, kind, &full.to_bare(), Some(&full), stanza).await
        }
        Destination::Component(component) => {
            if let Err(e) = component.try_send(Box::new(stanza)) {
                let stanza = *e.into_inner();
                bounce(
                    state,
                    &stanza,
                    StanzaError::new(Condition::ResourceConstraint).with_text("service busy"),
                )
                .await;
            }
        }
        Destination::Remote => remote::send(state, stanza).await,
    }
}

/// Presence handled by the subscription machinery rather than delivered as is.
fn is_subscription(presence: &Element) -> bool {
    matches!(
        presence.attr("type"),
        Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "probe")
    )
}

/// A stanza for a local account (`resource`: the one it names, if any):
/// the pipeline's inbound steps, delivery by the RFC 6121 rules, then the
/// steps that follow a message's delivery.
async fn to_account(
    state: &ServerState,
    kind: Kind,
    bare: &BareJid,
    resource: Option<&FullJid>,
    mut stanza: Element,
) {
    match features::inbound(state, bare, &mut stanza).await {
        features::Flow::Continue => {}
        features::Flow::Handled => return,
        features::Flow::Refused(reply) => return route(state, reply).await,
    }
    match (kind, resource) {
        (Kind::Message, _) => {
            let delivered = match resource {
                Some(full) => to_full(state, kind, full, &stanza).await,
                None => message_to_bare(state, bare, &stanza, None).await,
            };
            let copies = features::delivered(state, bare, &stanza, &delivered);
            deliver_copies(state, copies);
        }
        // Subscription state belongs to the account, whatever resource is named.
        (Kind::Presence, Some(_)) if is_subscription(&stanza) => {
            to_bare(state, kind, bare, stanza).await
        }
        (_, Some(full)) => {
            to_full(state, kind, full, &stanza).await;
        }
        (_, None) => to_bare(state, kind, bare, stanza).await,
    }
}

/// Deliver the server's own copies (carbons): straight to the sessions,
/// and dropped if a session cannot take them (XEP-0280 §10.3: a copy's
/// failure never reaches the original's sender).
pub fn deliver_copies(state: &ServerState, copies: features::Copies) {
    for (session, copy) in copies {
        match Packet::new(&copy) {
            Ok(packet) => {
                let _ = offer(state, &session, packet);
            }
            Err(e) => tracing::error!(error = %e, "cannot serialise a copy: dropped"),
        }
    }
}

/// Answer a stanza with an error, unless it is an error or result itself
/// (RFC 6120 §8.3.1: never answer an error with an error).
pub async fn bounce(state: &ServerState, stanza: &Element, error: StanzaError) {
    if matches!(stanza.attr("type"), Some("error") | Some("result")) {
        return;
    }
    let reply = error.reply_to(stanza);
    if reply.attr("to").is_none() {
        return;
    }
    route(state, reply).await
}

async fn to_server(state: &ServerState, kind: Kind, stanza: Element) {
    if kind == Kind::Iq {
        for reply in features::handle_server_iq(state, &stanza).await {
            route(state, reply).await;
        }
    }
    // Messages and presence to the server itself are for later features
    // (announcements, probes); until then they are accepted and ignored.
}

/// A stanza for one resource; returns the sessions that took it (a
/// message may fall back to the account's other resources).
async fn to_full(
    state: &ServerState,
    kind: Kind,
    to: &FullJid,
    stanza: &Element,
) -> Vec<SessionId> {
    if let Some(session) = state.sessions.get(to) {
        return deliver_ref(state, &session, stanza).await;
    }
    gone_resource(state, kind, to, stanza).await
}

/// A stanza for a full JID with no live session (RFC 6121 §8.5.3.2).
async fn gone_resource(
    state: &ServerState,
    kind: Kind,
    to: &FullJid,
    stanza: &Element,
) -> Vec<SessionId> {
    let kind_type = stanza.attr("type").unwrap_or("");
    match (kind, kind_type) {
        // RFC 6121 §8.5.3.2.1: chat and normal messages fall back to the bare JID.
        (Kind::Message, "chat" | "normal" | "") => {
            message_to_bare(state, &to.to_bare(), stanza, None).await
        }
        (Kind::Message, "groupchat") | (Kind::Iq, "get" | "set") => {
            bounce(
                state,
                stanza,
                StanzaError::new(Condition::ServiceUnavailable),
            )
            .await;
            Vec::new()
        }
        // Headlines, errors, results and presence to a gone resource are dropped, as RFC 6121 §8.5.3.2 says.
        _ => Vec::new(),
    }
}

async fn to_bare(state: &ServerState, kind: Kind, to: &BareJid, stanza: Element) {
    match kind {
        Kind::Iq => {
            // RFC 6121 §8.5.1: no such account, no answer but an error.
            match account_exists(state, to).await {
                Ok(true) => {}
                Ok(false) => {
                    return bounce(
                        state,
                        &stanza,
                        StanzaError::new(Condition::ServiceUnavailable),
                    )
                    .await;
                }
                Err(e) => return bounce(state, &stanza, e).await,
            }
            for reply in features::handle_account_iq(state, to, &stanza).await {
                route(state, reply).await;
            }
        }
        Kind::Presence => {
            if is_subscription(&stanza) {
                return features::presence::inbound(state, to, stanza).await;
            }
            let Some(packet) = serialise(state, &stanza).await else {
                return;
            };
            for s in state.sessions.of(to) {
                if s.presence.is_some() {
                    // Presence to a session that cannot take it is dropped.
                    let _ = offer(state, &s, packet.clone());
                }
            }
        }
        Kind::Message => {
            message_to_bare(state, to, &stanza, None).await;
        }
    }
}

/// RFC 6121 §8.5.2: messages to a bare JID go to the highest-priority
/// non-negative resource(s); chat and normal messages with none are stored.
/// Returns the sessions that took it.
///
/// `failed` is a session that just refused this stanza. The loop is how a
/// stanza whose session went away finds another (a recursion through the
/// delivery functions once overflowed the stack on a dead session): each
/// round either delivers, stores, or leaves out at least one more session
/// that refused it, so it ends within the account's resource count.
async fn message_to_bare(
    state: &ServerState,
    to: &BareJid,
    stanza: &Element,
    failed: Option<SessionId>,
) -> Vec<SessionId> {
    let kind_type = stanza.attr("type").unwrap_or("normal");
    if kind_type == "error" {
        return Vec::new();
    }
    if kind_type == "groupchat" {
        bounce(
            state,
            stanza,
            StanzaError::new(Condition::ServiceUnavailable),
        )
        .await;
        return Vec::new();
    }
    let headline = kind_type == "headline";
    let Some(packet) = serialise(state, stanza).await else {
        return Vec::new();
    };
    let mut failed: Vec<SessionId> = failed.into_iter().collect();
    for _ in 0..=sessions::MAX_RESOURCES + 1 {
        let sessions: Vec<SessionHandle> = state
            .sessions
            .of(to)
            .into_iter()
            .filter(|s| !failed.contains(&s.id))
            .collect();
        let best = sessions
            .iter()
            .filter_map(|s| s.priority)
            .filter(|p| *p >= 0)
            .max();
        if let Some(best) = best {
            let targets = sessions.iter().filter(|s| match headline {
                true => s.priority.is_some_and(|p| p >= 0),
                false => s.priority == Some(best),
            });
            let mut delivered = Vec::new();
            for s in targets {
                match offer(state, s, packet.clone()) {
                    Ok(()) => delivered.push(s.id),
                    Err(_) => failed.push(s.id),
                }
            }
            if !delivered.is_empty() {
                return delivered;
            }
            continue;
        }
        if headline {
            return Vec::new();
        }
        match store_offline(state, to, stanza, &failed).await {
            Offline::Kept => return Vec::new(),
            Offline::Refused(error) => {
                bounce(state, stanza, error).await;
                return Vec::new();
            }
            // A resource became available meanwhile: deliver to it instead.
            Offline::SomeoneAvailable => continue,
        }
    }
    // Resources kept appearing and refusing it: keep it for the next login.
    tracing::warn!(to = %to, "no resource would take a message: storing it");
    if let Some(error) = keep_offline(state, to, stanza).await {
        bounce(state, stanza, error).await;
    }
    Vec::new()
}

/// Whether a local account exists (a bound session proves it without a query).
pub(crate) async fn account_exists(
    state: &ServerState,
    user: &BareJid,
) -> Result<bool, StanzaError> {
    if !state.sessions.of(user).is_empty() {
        return Ok(true);
    }
    match crate::auth::backends::exists(state, user).await {
        Ok(exists) => Ok(exists),
        Err(e) => {
            tracing::error!(user = %user, error = %e, "cannot check whether an account exists");
            Err(StanzaError::new(Condition::InternalServerError))
        }
    }
}

/// What became of a message for an account with no available resource.
enum Offline {
    Kept,
    Refused(StanzaError),
    /// A resource (other than those in `failed`) is available after all.
    SomeoneAvailable,
}

/// Keep a message for an account with no session to take it.
async fn store_offline(
    state: &ServerState,
    to: &BareJid,
    stanza: &Element,
    failed: &[SessionId],
) -> Offline {
    // A resource that became available while this message was on its way
    // may already have taken its stored messages: under the account's lock
    // (which the hand-over also takes, after becoming available), either it
    // is seen here and gets the message live, or it reads the message after
    // it is stored. Without this the message would wait for the next login.
    let _guard = state.offline_locks.lock(to).await;
    if state
        .sessions
        .of(to)
        .iter()
        .any(|s| s.priority.is_some_and(|p| p >= 0) && !failed.contains(&s.id))
    {
        return Offline::SomeoneAvailable;
    }
    let refused = match account_exists(state, to).await {
        Ok(true) => keep_offline(state, to, stanza).await,
        Ok(false) => Some(StanzaError::new(Condition::ServiceUnavailable)),
        Err(e) => Some(e),
    };
    match refused {
        None => Offline::Kept,
        Some(error) => Offline::Refused(error),
    }
}

/// Store `stanza` for `to`, or say why not.
async fn keep_offline(state: &ServerState, to: &BareJid, stanza: &Element) -> Option<StanzaError> {
    match state.storage.count_offline(to).await {
        Ok(n) if n >= state.config.limits.offline_messages => {
            return Some(
                StanzaError::new(Condition::ServiceUnavailable)
                    .with_text("the recipient's offline storage is full"),
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(to = %to, error = %e, "cannot count offline messages"),
    }
    let xml = match stanza::to_string(stanza) {
        Ok(xml) => xml,
        Err(e) => {
            tracing::error!(to = %to, error = %e, "cannot store an offline message");
            return Some(StanzaError::new(Condition::InternalServerError));
        }
    };
    if let Err(e) = state.storage.store_offline(to, &xml).await {
        tracing::error!(to = %to, error = %e, "cannot store an offline message");
        return Some(StanzaError::new(Condition::InternalServerError));
    }
    None
}

/// `stanza` serialised for a session's queue. The stream parser keeps the
/// characters XML forbids out of client input, so a failure here is our
/// bug or bad data from elsewhere (a directory): the sender is told, and
/// the stanza goes no further.
async fn serialise(state: &ServerState, stanza: &Element) -> Option<Packet> {
    match Packet::new(stanza) {
        Ok(packet) => Some(packet),
        Err(e) => {
            tracing::error!(error = %e, from = stanza.attr("from").unwrap_or(""), "cannot serialise a stanza: dropping it");
            // The error echoes only the addresses: the payload is what failed.
            let mut bare = Element::bare(stanza.name(), crate::xmpp::ns::CLIENT);
            for name in ["id", "to", "from", "type"] {
                if let Some(v) = stanza.attr(name) {
                    stanza::set_attr(&mut bare, name, v);
                }
            }
            bounce(
                state,
                &bare,
                StanzaError::new(Condition::InternalServerError),
            )
            .await;
            None
        }
    }
}

/// Queue a stanza for one session. A session whose queue is full is too slow:
/// it is closed, and the stanza takes the path it would take if that
/// resource were gone (so a message ends up offline, an iq gets an error).
pub async fn deliver(state: &ServerState, session: &SessionHandle, stanza: Element) {
    deliver_ref(state, session, &stanza).await;
}

/// `deliver`; returns the sessions that took the stanza.
async fn deliver_ref(
    state: &ServerState,
    session: &SessionHandle,
    stanza: &Element,
) -> Vec<SessionId> {
    let Some(packet) = serialise(state, stanza).await else {
        return Vec::new();
    };
    match offer(state, session, packet) {
        Ok(()) => vec![session.id],
        Err(_) => undelivered(state, session, stanza).await,
    }
}

/// Put `packet` in `session`'s queue, or deal with a session that cannot
/// take it: a full queue means it is too slow, so it is closed; a closed
/// queue means its task is gone, so the registry must forget it. Either
/// way the caller gets the packet back and finds it another path.
fn offer(state: &ServerState, session: &SessionHandle, packet: Packet) -> Result<(), Packet> {
    match session.tx.try_send(packet) {
        Ok(()) => Ok(()),
        Err(queue::TrySendError::Full(packet)) => {
            tracing::warn!(jid = %session.jid, "session cannot keep up with its stanzas: closing it");
            session.control.close(StreamError::new(
                StreamCondition::PolicyViolation,
                "too many stanzas waiting: the connection is too slow",
            ));
            Err(packet)
        }
        Err(queue::TrySendError::Closed(packet)) => {
            // A session closes its queue after unbinding; still registered
            // with a closed queue, it ended without unbinding. Every stanza
            // for its account would try it again.
            state.sessions.unbind(&session.jid, session.id);
            session.control.close(StreamError::new(
                StreamCondition::InternalServerError,
                "the session ended",
            ));
            Err(packet)
        }
    }
}

/// What happens to a stanza `session` refused: what would happen if that
/// resource were gone, without trying it again. Returns the sessions that
/// took it instead.
async fn undelivered(
    state: &ServerState,
    session: &SessionHandle,
    stanza: &Element,
) -> Vec<SessionId> {
    match Kind::of(stanza) {
        Some(Kind::Message) => {
            message_to_bare(state, &session.jid.to_bare(), stanza, Some(session.id)).await
        }
        Some(Kind::Iq) => {
            bounce(
                state,
                stanza,
                StanzaError::new(Condition::ServiceUnavailable),
            )
            .await;
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Route `shared` addressed to `to`, whose bare JID is `bare` (callers such
/// as MUC occupants hold it already: building it costs an allocation), with
/// the outcome `route` would have for the same stanza (blocking, a gone
/// resource, a full queue), but without an element, a JID parse or a
/// serialisation per recipient when the session is there and keeps up:
/// the MUC fan-out path.
pub async fn route_shared(
    state: &ServerState,
    to: &FullJid,
    bare: &BareJid,
    shared: &Arc<SharedStanza>,
) {
    let template = shared.template();
    let plain = match shared.kind() {
        // Groupchat only: no step changes those (a chat message would be
        // archived and stamped per recipient).
        Some(Kind::Message) => template.attr("type") == Some("groupchat"),
        Some(Kind::Presence) => !is_subscription(template),
        _ => false,
    };
    // Anything else (a remote or unknown domain, subscriptions, iqs, a
    // `bare` that is not `to`'s) takes the general path: rare, so an
    // element of its own is fine there.
    let bare_of_to = to.node() == bare.node() && to.domain() == bare.domain();
    if !plain || !bare_of_to || !state.config.serves(to.domain().as_str()) {
        return route(state, shared.element_to(to)).await;
    }
    match features::inbound_shared(state, bare, template).await {
        features::Flow::Continue => {}
        features::Flow::Handled => return,
        features::Flow::Refused(_) => {
            // The reply names the recipient: built from the addressed copy.
            let addressed = shared.element_to(to);
            if let features::Flow::Refused(reply) =
                features::inbound_shared(state, bare, &addressed).await
            {
                route(state, reply).await;
            }
            return;
        }
    }
    let sent = state.sessions.with(bare, to, |s| {
        s.tx.try_send(Packet::Shared(shared.clone()))
            // The handle is cloned only when the queue refused the stanza.
            .map_err(|_| s.clone())
    });
    match sent {
        Some(Ok(())) => {}
        Some(Err(session)) => {
            // Offered again through the common path, which deals with the
            // refusing session, then routes it elsewhere.
            if offer(state, &session, Packet::Shared(shared.clone())).is_err() {
                undelivered(state, &session, &shared.element_to(to)).await;
            }
        }
        None => {
            let kind = shared.kind().unwrap_or(Kind::Message);
            gone_resource(state, kind, to, &shared.element_to(to)).await;
        }
    }
}

/// Re-route what the closed session `jid` had still queued (never silently dropped).
pub async fn drain(state: &ServerState, jid: &FullJid, queue: &mut queue::Receiver<Packet>) {
    queue.close();
    while let Ok(packet) = queue.try_recv() {
        reroute_packet(state, jid, packet).await;
    }
}

/// Route again a packet that the session `jid` did not write.
pub async fn reroute_packet(state: &ServerState, jid: &FullJid, packet: Packet) {
    use queue::Weigh;
    // A queued stanza parses back into a tree many times its size (a
    // message of 100 KB in many short elements takes megabytes): when many
    // sessions close at once, only a few large ones are in flight together.
    let _permit = if packet.weight() >= crate::memory::LARGE {
        state.large_reroutes.acquire().await.ok()
    } else {
        None
    };
    match packet.into_element(jid) {
        Some(el) => reroute(state, el).await,
        None => tracing::error!(jid = %jid, "a queued stanza does not parse back: dropping it"),
    }
}

/// Route again a stanza a closed session did not deliver. A message gets a
/// XEP-0203 delay stamp, as one from offline storage would: it may reach
/// another resource only now, and clients sort and mark it by that stamp.
pub async fn reroute(state: &ServerState, mut el: Element) {
    if features::carbons::is_copy(&el) {
        // A copy was for that session alone; the original went elsewhere.
        return;
    }
    if Kind::of(&el) == Some(Kind::Message)
        && el.get_child("delay", crate::xmpp::ns::DELAY).is_none()
    {
        let domain = el
            .attr("to")
            .and_then(|t| Jid::new(t).ok())
            .map(|j| j.domain().to_string())
            .unwrap_or_else(|| state.config.default_domain().to_owned());
        el.append_child(stanza::delay(
            &domain,
            crate::storage::now_micros(),
            Some("Resent: the connection it was queued on closed"),
        ));
    }
    route(state, el).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ResourceConflict};
    use crate::router::sessions::{SessionControl, SessionHandle};
    use std::sync::Arc;

    async fn state(dir: &std::path::Path, queue: usize) -> Arc<ServerState> {
        let mut config = Config::default();
        config.server.data_dir = dir.to_owned();
        config.c2s.queue_size = queue;
        let storage = crate::storage::Storage::open(&config.storage_url(), 2)
            .await
            .expect("storage");
        let tls = crate::stream::tls::Tls::new(&config).expect("tls");
        let state = Arc::new(ServerState::new(config, storage, tls, vec![7; 32]).expect("state"));
        // Messages wait for their archive rows: the writer runs as in a server.
        tokio::spawn(crate::features::mam::writer(state.clone()));
        state
    }

    fn session(
        state: &ServerState,
        jid: &str,
        queue: usize,
    ) -> (SessionHandle, queue::Receiver<Packet>) {
        let (tx, rx) = queue::channel(queue, usize::MAX);
        let handle = SessionHandle {
            id: state.sessions.next_id(),
            jid: FullJid::new(jid).expect("jid"),
            tx,
            control: Arc::new(SessionControl::new(&state.shutdown)),
            priority: Some(0),
            presence: Some(crate::router::sessions::StoredPresence::new(
                &Element::bare("presence", "jabber:client"),
            )),
            flags: 0,
        };
        state
            .sessions
            .bind(handle.clone(), ResourceConflict::Replace);
        (handle, rx)
    }

    fn message(from: &str, to: &str, body: &str) -> Element {
        format!("<message xmlns='jabber:client' from='{from}' to='{to}' type='chat'><body>{body}</body></message>")
            .parse()
            .expect("xml")
    }

    #[tokio::test]
    async fn components_get_their_domain_and_bounce_when_full() {
        let dir = tempfile::tempdir().expect("dir");
        let state = state(dir.path(), 8).await;
        let mut component = state.components.register("conference.localhost", 1);
        let (alice, mut alice_rx) = session(&state, "alice@localhost/a", 8);
        route(
            &state,
            message("alice@localhost/a", "room@conference.localhost", "1"),
        )
        .await;
        let got = component.try_recv().expect("delivered to the component");
        assert_eq!(got.attr("to"), Some("room@conference.localhost"));
        // The component's queue holds one: the next two fill it, then bounce.
        route(
            &state,
            message("alice@localhost/a", "room@conference.localhost", "2"),
        )
        .await;
        route(
            &state,
            message("alice@localhost/a", "room@conference.localhost", "3"),
        )
        .await;
        let bounced = alice_rx
            .try_recv()
            .expect("an error back to the sender")
            .into_element(&alice.jid)
            .expect("parses");
        assert_eq!(bounced.attr("type"), Some("error"));
        assert!(
            crate::xmpp::stanza::to_string(&bounced)
                .expect("serialises")
                .contains("resource-constraint")
        );
    }

    #[tokio::test]
    async fn slow_session_is_closed_and_nothing_is_lost() {
        use crate::features::offline::OfflineStore;
        let dir = tempfile::tempdir().expect("dir");
        let state = state(dir.path(), 2).await;
        use crate::auth::AccountStore;
        let bob = jid::BareJid::new("bob@localhost").expect("jid");
        let creds = crate::auth::StoredCredentials::from_password("x", 4096).expect("creds");
        state.storage.create(&bob, &creds).await.expect("account");
        let (handle, mut rx) = session(&state, "bob@localhost/b", 2);
        for i in 0..5 {
            route(
                &state,
                message("alice@localhost/a", "bob@localhost/b", &i.to_string()),
            )
            .await;
        }
        assert!(
            handle.control.is_closing(),
            "a full queue closes the session"
        );
        assert_eq!(
            handle.control.reason().map(|r| r.condition),
            Some(StreamCondition::PolicyViolation)
        );
        // What did not fit went offline; what was queued goes offline when the session drains.
        assert_eq!(state.storage.count_offline(&bob).await.expect("count"), 3);
        state.sessions.unbind(&handle.jid, handle.id);
        drain(&state, &handle.jid, &mut rx).await;
        let stored = state.storage.load_offline(&bob, 10).await.expect("load");
        let bodies: Vec<_> = stored
            .iter()
            .map(|m| {
                m.stanza
                    .split("<body>")
                    .nth(1)
                    .and_then(|b| b.split('<').next())
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(bodies.len(), 5, "all five messages are kept: {bodies:?}");
        let mut sorted = bodies.clone();
        sorted.sort();
        assert_eq!(sorted, ["0", "1", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn shared_stanzas_reach_live_sessions_and_bounce_like_route_otherwise() {
        let dir = tempfile::tempdir().expect("dir");
        let state = state(dir.path(), 8).await;
        let mut room = state.components.register("conference.localhost", 8);
        let (bob, mut bob_rx) = session(&state, "bob@localhost/b", 1);
        let m: Element = "<message xmlns='jabber:client' from='r@conference.localhost/n' type='groupchat'><body>x</body></message>"
            .parse()
            .expect("xml");
        let shared = SharedStanza::new(m).expect("valid");
        let bare = bob.jid.to_bare();
        route_shared(&state, &bob.jid, &bare, &shared).await;
        let got = bob_rx.try_recv().expect("queued for bob");
        assert!(matches!(got, Packet::Shared(_)));
        assert_eq!(
            got.into_element(&bob.jid).expect("parses").attr("to"),
            Some("bob@localhost/b")
        );
        // A resource that is not there: the room gets service-unavailable,
        // as `route` answers a groupchat message to a gone resource.
        let gone = FullJid::new("bob@localhost/gone").expect("jid");
        route_shared(&state, &gone, &bare, &shared).await;
        let e = room.try_recv().expect("an error back to the room");
        assert_eq!(e.attr("type"), Some("error"));
        assert_eq!(e.attr("from"), Some("bob@localhost/gone"));
        // A full queue closes the session and the stanza bounces the same way.
        route_shared(&state, &bob.jid, &bare, &shared).await;
        route_shared(&state, &bob.jid, &bare, &shared).await;
        assert!(bob.control.is_closing());
        let e = room.try_recv().expect("an error back to the room");
        assert_eq!(e.attr("type"), Some("error"));
        assert_eq!(e.attr("from"), Some("bob@localhost/b"));
    }

    #[tokio::test]
    async fn a_dead_session_is_forgotten_and_its_messages_find_another_path() {
        use crate::auth::AccountStore;
        use crate::features::offline::OfflineStore;
        let dir = tempfile::tempdir().expect("dir");
        let state = state(dir.path(), 8).await;
        let bob = jid::BareJid::new("bob@localhost").expect("jid");
        let creds = crate::auth::StoredCredentials::from_password("x", 4096).expect("creds");
        state.storage.create(&bob, &creds).await.expect("account");
        // A session whose task died without unbinding: registered, available,
        // its queue closed. It used to send every message to its account
        // round a recursion until the stack overflowed.
        let (dead, rx) = session(&state, "bob@localhost/dead", 8);
        drop(rx);
        route(&state, message("alice@localhost/a", "bob@localhost", "1")).await;
        assert!(
            state.sessions.get(&dead.jid).is_none(),
            "the dead session left the registry"
        );
        assert_eq!(state.storage.count_offline(&bob).await.expect("count"), 1);
        // With a live resource beside a dead one, the live one gets it, once.
        let (_dead2, rx2) = session(&state, "bob@localhost/dead2", 8);
        drop(rx2);
        let (_live, mut live_rx) = session(&state, "bob@localhost/live", 8);
        route(
            &state,
            message("alice@localhost/a", "bob@localhost/dead2", "2"),
        )
        .await;
        assert!(live_rx.try_recv().is_ok(), "the live resource got it");
        assert!(live_rx.try_recv().is_err(), "exactly once");
        assert_eq!(state.storage.count_offline(&bob).await.expect("count"), 1);
    }

    #[tokio::test]
    async fn a_stanza_holding_a_forbidden_character_is_refused_not_panicked_on() {
        let dir = tempfile::tempdir().expect("dir");
        let state = state(dir.path(), 8).await;
        let (alice, mut alice_rx) = session(&state, "alice@localhost/a", 8);
        let (_bob, mut bob_rx) = session(&state, "bob@localhost/b", 8);
        // Built by hand: the stream parser would refuse it.
        let mut m = Element::bare("message", crate::xmpp::ns::CLIENT);
        stanza::set_attr(&mut m, "from", "alice@localhost/a");
        stanza::set_attr(&mut m, "to", "bob@localhost/b");
        stanza::set_attr(&mut m, "type", "chat");
        let mut body = Element::bare("body", crate::xmpp::ns::CLIENT);
        body.append_text("a\0b");
        m.append_child(body);
        route(&state, m).await;
        assert!(bob_rx.try_recv().is_err(), "nothing corrupt reaches bob");
        let e = alice_rx
            .try_recv()
            .expect("an error for alice")
            .into_element(&alice.jid)
            .expect("parses");
        assert_eq!(e.attr("type"), Some("error"));
        assert!(
            stanza::to_string(&e)
                .expect("serialises")
                .contains("internal-server-error")
        );
    }

    #[tokio::test]
    async fn bare_jid_goes_to_highest_priority() {
        let dir = tempfile::tempdir().expect("dir");
        let state = state(dir.path(), 8).await;
        let (h1, mut rx1) = session(&state, "bob@localhost/one", 8);
        let (_h2, mut rx2) = session(&state, "bob@localhost/two", 8);
        state
            .sessions
            .set_presence(&h1.jid, h1.id, Some(5), h1.presence.clone());
        route(&state, message("alice@localhost/a", "bob@localhost", "hi")).await;
        assert!(rx1.try_recv().is_ok());
        assert!(rx2.try_recv().is_err());
    }
}
