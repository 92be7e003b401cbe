//! RFC 6121 §3-4: presence subscriptions and presence (broadcast, probes,
//! directed presence, unavailable on logout).
//!
//! Subscription state lives in the roster (`roster::store`). Each session's
//! last available presence lives in the session registry, so probes from
//! local contacts are answered without touching the database.

use super::roster::{self, store::RosterItem, store::RosterStore, store::Subscription};
use crate::router::{self, sessions::SessionId, sessions::StoredPresence};
use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::{self, set_attr};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::collections::HashSet;

/// Entities one session may send directed presence to and be remembered
/// (to send them unavailable at logout); past it they are not tracked.
const MAX_DIRECTED: usize = 256;

/// What one session remembers about its own presence.
#[derive(Debug, Default)]
pub struct SessionPresence {
    /// The session sent available presence (and has not gone unavailable).
    pub available: bool,
    /// Where directed presence went (RFC 6121 §4.6), to undo at logout.
    directed: HashSet<Jid>,
    /// Stored messages were handed over (at the first non-negative priority).
    offline_done: bool,
}

/// A presence stanza built by the server.
fn presence(kind: Option<&str>, from: &str, to: &str) -> Element {
    let mut p = Element::bare("presence", ns::CLIENT);
    if let Some(k) = kind {
        set_attr(&mut p, "type", k);
    }
    set_attr(&mut p, "from", from);
    set_attr(&mut p, "to", to);
    p
}

/// `el` readdressed (a copy with another `to`).
fn addressed(el: &Element, to: &str) -> Element {
    let mut copy = el.clone();
    set_attr(&mut copy, "to", to);
    copy
}

/// The priority of an available presence (RFC 6121 §4.7.2.3), clamped.
pub fn priority_of(el: &Element) -> i8 {
    el.get_child("priority", ns::CLIENT)
        .and_then(|p| p.text().trim().parse::<i32>().ok())
        .map(|p| p.clamp(-128, 127) as i8)
        .unwrap_or(0)
}

/// The contacts of `user` that receive its presence (subscription from or
/// both), less those it blocks (XEP-0191 §3.3).
async fn presence_watchers(
    state: &ServerState,
    user: &BareJid,
    contacts: &[RosterItem],
) -> Vec<BareJid> {
    let mut out = Vec::new();
    for c in contacts.iter().filter(|c| c.subscription.from()) {
        if !super::blocking::blocks(state, user, &Jid::from(c.contact.clone())).await {
            out.push(c.contact.clone());
        }
    }
    out
}

/// Queue `el` for every available session of `user`.
async fn to_available(state: &ServerState, user: &BareJid, el: &Element) {
    for s in state.sessions.of(user) {
        if s.presence.is_some() {
            router::deliver(state, &s, el.clone()).await;
        }
    }
}

/// Broadcast presence (no `to`) from a session: availability, status, or
/// going unavailable. Returns true when the session first has a
/// non-negative priority (the caller then hands over offline messages).
pub async fn broadcast(
    state: &ServerState,
    jid: &FullJid,
    id: SessionId,
    el: Element,
    sp: &mut SessionPresence,
) -> bool {
    let user = jid.to_bare();
    match el.attr("type") {
        None => {
            let initial = !sp.available;
            sp.available = true;
            let priority = priority_of(&el);
            state
                .sessions
                .set_presence(jid, id, Some(priority), Some(StoredPresence::new(&el)));
            // RFC 6121 §4.2.2: the echo comes first, so the client knows it
            // is online before the stored stanzas and contacts' presence
            // that the initial presence brings (the session writes its queue
            // out before the offline messages).
            to_available(state, &user, &addressed(&el, user.as_str())).await;
            let contacts = contacts(state, &user).await;
            for contact in presence_watchers(state, &user, &contacts).await {
                router::route(state, addressed(&el, contact.as_str())).await;
            }
            if initial {
                probe_contacts(state, jid, &contacts).await;
                others_to_self(state, jid, id).await;
                pending_requests(state, jid).await;
            }
            // XEP-0160: stored messages go to the first presence that can take
            // bare-JID messages, which a negative priority cannot.
            let hand_over = priority >= 0 && !sp.offline_done;
            sp.offline_done |= hand_over;
            hand_over
        }
        Some("unavailable") => {
            go_unavailable(state, jid, id, Some(el), sp).await;
            false
        }
        // Probes and subscription requests need a 'to'; errors without one mean nothing.
        _ => false,
    }
}

/// The session leaves (unavailable presence, or the connection ended).
pub async fn go_unavailable(
    state: &ServerState,
    jid: &FullJid,
    id: SessionId,
    el: Option<Element>,
    sp: &mut SessionPresence,
) {
    let user = jid.to_bare();
    let was_available = std::mem::replace(&mut sp.available, false);
    let explicit = el.is_some();
    let el = el.unwrap_or_else(|| presence(Some("unavailable"), &jid.to_string(), user.as_str()));
    if was_available {
        state.sessions.set_presence(jid, id, None, None);
        for c in contacts(state, &user)
            .await
            .iter()
            .filter(|c| c.subscription.from())
        {
            router::route(state, addressed(&el, c.contact.as_str())).await;
        }
        to_available(state, &user, &addressed(&el, user.as_str())).await;
        // RFC 6121 §4.5.2: the resource that went unavailable gets the
        // notification too (it stays connected; a closed connection has no
        // one left to tell).
        if explicit && let Some(me) = state.sessions.get(jid) {
            router::deliver(state, &me, addressed(&el, user.as_str())).await;
        }
    }
    for target in std::mem::take(&mut sp.directed) {
        router::route(state, addressed(&el, &target.to_string())).await;
    }
    if was_available
        && !state
            .sessions
            .of(&user)
            .iter()
            .any(|s| s.presence.is_some())
    {
        let status = el
            .get_child("status", ns::CLIENT)
            .map(|s| s.text())
            .unwrap_or_default();
        super::last::record_logout(state, &user, &status);
    }
}

/// Directed presence (RFC 6121 §4.6): remember available presence sent
/// outside the roster, forget it when unavailable is sent.
pub fn track_directed(sp: &mut SessionPresence, el: &Element) {
    let Some(to) = el.attr("to").and_then(|t| Jid::new(t).ok()) else {
        return;
    };
    match el.attr("type") {
        None if sp.directed.len() < MAX_DIRECTED => {
            sp.directed.insert(to);
        }
        Some("unavailable") => {
            sp.directed.remove(&to);
        }
        _ => {}
    }
}

async fn contacts(state: &ServerState, user: &BareJid) -> Vec<RosterItem> {
    let stored = match state.roster_handoff.take(user) {
        Some(items) => Ok(items),
        None => state.storage.roster_items(user).await,
    };
    match stored {
        Ok(items) => super::roster::shared::merge(items, state.shared_rosters.items(user)),
        Err(e) => {
            tracing::error!(user = %user, error = %e, "cannot load the roster for presence");
            Vec::new()
        }
    }
}

/// On initial presence, learn the presence of every contact we subscribe to.
async fn probe_contacts(state: &ServerState, jid: &FullJid, contacts: &[RosterItem]) {
    for c in contacts.iter().filter(|c| c.subscription.to()) {
        if state.config.serves(c.contact.domain().as_str()) {
            answer_probe(state, &c.contact, &Jid::from(jid.clone())).await;
        }
        // Remote contacts are probed once federation exists.
    }
}

/// Send the user's other available resources' presence to a new session.
async fn others_to_self(state: &ServerState, jid: &FullJid, id: SessionId) {
    let user = jid.to_bare();
    let Some(me) = state.sessions.get(jid) else {
        return;
    };
    for s in state.sessions.of(&user) {
        if s.id != id
            && let Some(p) = s.presence.as_ref().and_then(StoredPresence::element)
        {
            router::deliver(state, &me, addressed(&p, &jid.to_string())).await;
        }
    }
}

/// Hand a new session the subscription requests still waiting for an answer.
async fn pending_requests(state: &ServerState, jid: &FullJid) {
    let Some(me) = state.sessions.get(jid) else {
        return;
    };
    match state.storage.requests(&jid.to_bare()).await {
        Ok(requests) => {
            for (_, xml) in requests {
                if let Ok(el) = xml.parse::<Element>() {
                    router::deliver(state, &me, el).await;
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot load pending subscription requests"),
    }
}

/// RFC 6121 §4.3.2: answer a probe of `contact` (local) from `asker`.
pub async fn answer_probe(state: &ServerState, contact: &BareJid, asker: &Jid) {
    let item = match state.storage.roster_item(contact, &asker.to_bare()).await {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "cannot check a probe's subscription");
            return;
        }
    };
    let shared = state.shared_rosters.share(contact, &asker.to_bare());
    let subscribed = shared || item.as_ref().is_some_and(|i| i.subscription.from());
    if !subscribed && item.is_none() && !exists(state, contact).await {
        // RFC 6121 §4.3.2: the asker's server then cancels its side of a
        // subscription to an account that is gone.
        return router::route(
            state,
            presence(Some("unsubscribed"), contact.as_str(), &asker.to_string()),
        )
        .await;
    }
    if !subscribed || super::blocking::blocks(state, contact, asker).await {
        // Not subscribed, or blocked: reveal nothing.
        return;
    }
    let mut any = false;
    for s in state.sessions.of(contact) {
        if let Some(p) = s.presence.as_ref().and_then(StoredPresence::element) {
            any = true;
            router::route(state, addressed(&p, &asker.to_string())).await;
        }
    }
    if !any {
        router::route(
            state,
            presence(Some("unavailable"), contact.as_str(), &asker.to_string()),
        )
        .await;
    }
}

/// Whether local account `user` exists; a directory that cannot answer
/// counts as yes (nothing is cancelled on a guess; the router logged it).
async fn exists(state: &ServerState, user: &BareJid) -> bool {
    router::account_exists(state, user).await.unwrap_or(true)
}

/// Send every available resource's presence (or unavailable) of `user` to `contact`.
async fn presence_to(state: &ServerState, user: &BareJid, contact: &BareJid, available: bool) {
    if available && super::blocking::blocks(state, user, &Jid::from(contact.clone())).await {
        return;
    }
    for s in state.sessions.of(user) {
        if let Some(p) = s.presence.as_ref().and_then(StoredPresence::element) {
            let el = if available {
                addressed(&p, contact.as_str())
            } else {
                presence(Some("unavailable"), &s.jid.to_string(), contact.as_str())
            };
            router::route(state, el).await;
        }
    }
}

/// Save an item if it changed.
async fn update(
    state: &ServerState,
    owner: &BareJid,
    before: &Option<RosterItem>,
    item: &RosterItem,
) -> Result<(), StanzaError> {
    if before.as_ref() != Some(item) {
        roster::save(state, owner, item).await?;
    }
    Ok(())
}

/// A subscription-related presence a user sends (RFC 6121 §3, "outbound").
pub async fn outbound_subscription(
    state: &ServerState,
    user: &BareJid,
    mut el: Element,
) -> Result<(), StanzaError> {
    let kind = el.attr("type").unwrap_or("").to_owned();
    let contact = el
        .attr("to")
        .and_then(|t| Jid::new(t).ok())
        .map(|j| j.to_bare())
        .ok_or_else(|| StanzaError::new(Condition::JidMalformed))?;
    // RFC 6121 §3.1.2: subscription stanzas travel between bare JIDs.
    set_attr(&mut el, "to", contact.as_str());
    set_attr(&mut el, "from", user.as_str());
    let forward = outbound_change(state, user, &contact, &kind).await?;
    if forward {
        router::route(state, el).await;
    }
    match kind.as_str() {
        "subscribed" if forward => presence_to(state, user, &contact, true).await,
        "unsubscribed" if forward => presence_to(state, user, &contact, false).await,
        _ => {}
    }
    Ok(())
}

/// The roster side of an outbound subscription stanza, under the account's
/// roster lock; returns whether the stanza goes on to the contact.
async fn outbound_change(
    state: &ServerState,
    user: &BareJid,
    contact: &BareJid,
    kind: &str,
) -> Result<bool, StanzaError> {
    let _lock = state.roster_locks.lock(user).await;
    let before = state
        .storage
        .roster_item(user, contact)
        .await
        .map_err(|e| StanzaError::internal("presence storage failed", Some(user), &e))?;
    let mut item = before
        .clone()
        .unwrap_or_else(|| RosterItem::new(contact.clone()));
    let mut forward = true;
    match kind {
        "subscribe" => {
            if !item.subscription.to() {
                item.ask = true;
            }
        }
        "subscribed" => {
            let requested = state
                .storage
                .take_request(user, contact)
                .await
                .map_err(|e| StanzaError::internal("presence storage failed", Some(user), &e))?;
            if item.subscription.from() {
                forward = false;
            } else if requested {
                item.subscription = item.subscription.with_from(true);
                item.approved = false;
            } else {
                // RFC 6121 §3.4: pre-approval, remembered until the contact asks.
                item.approved = true;
                forward = false;
            }
        }
        "unsubscribe" => {
            item.subscription = item.subscription.with_to(false);
            item.ask = false;
        }
        "unsubscribed" => {
            let requested = state
                .storage
                .take_request(user, contact)
                .await
                .map_err(|e| StanzaError::internal("presence storage failed", Some(user), &e))?;
            forward = requested || item.subscription.from() || item.approved;
            item.subscription = item.subscription.with_from(false);
            item.approved = false;
        }
        _ => return Ok(false),
    }
    // A new item is kept only when it carries some state (RFC 6121 §3.1.5:
    // approving a request creates the item with subscription "from").
    let meaningful = item.subscription != Subscription::None || item.ask || item.approved;
    if before.is_some() || meaningful {
        if before.is_none()
            && state
                .storage
                .roster_size(user)
                .await
                .map_err(|e| StanzaError::internal("presence storage failed", Some(user), &e))?
                >= state.config.limits.roster_items as i64
        {
            return Err(
                StanzaError::new(Condition::PolicyViolation).with_text("the roster is full")
            );
        }
        update(state, user, &before, &item).await?;
    }
    Ok(forward)
}

/// A subscription-related presence or a probe arriving for local account
/// `user` (RFC 6121 §3, "inbound"). Other presence is not handled here.
pub async fn inbound(state: &ServerState, user: &BareJid, el: Element) {
    let Some(from) = el.attr("from").and_then(|f| Jid::new(f).ok()) else {
        return;
    };
    let kind = el.attr("type").unwrap_or("").to_owned();
    if kind == "probe" {
        return answer_probe(state, user, &from).await;
    }
    if kind == "subscribe" && !exists(state, user).await {
        // RFC 6121 §8.5.1: subscription stanzas to no account are ignored
        // (nothing kept for an account that may be created later).
        return;
    }
    let contact = from.to_bare();
    let outcome = inbound_change(state, user, &contact, &kind, &el).await;
    if outcome.answer_subscribed {
        let answer = presence(Some("subscribed"), user.as_str(), contact.as_str());
        router::route(state, answer).await;
    }
    if outcome.send_presence {
        presence_to(state, user, &contact, true).await;
    }
    if outcome.deliver {
        to_available(state, user, &el).await;
    }
}

/// What an inbound subscription stanza leads to, once the roster changed.
#[derive(Default)]
struct Inbound {
    /// Deliver the stanza to the user's available resources.
    deliver: bool,
    /// Answer `subscribed` for the user.
    answer_subscribed: bool,
    /// Send the user's presence to the contact.
    send_presence: bool,
}

/// The roster side of an inbound subscription stanza, under the account's
/// roster lock (the sender's session and the user's own may change the same
/// item at once). Nothing is routed while the lock is held.
async fn inbound_change(
    state: &ServerState,
    user: &BareJid,
    contact: &BareJid,
    kind: &str,
    el: &Element,
) -> Inbound {
    let _lock = state.roster_locks.lock(user).await;
    let mut out = Inbound::default();
    let before = match state.storage.roster_item(user, contact).await {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "cannot load a roster item");
            return out;
        }
    };
    let mut item = before
        .clone()
        .unwrap_or_else(|| RosterItem::new(contact.clone()));
    match kind {
        "subscribe" => {
            if item.subscription.from() {
                // Already subscribed: answer for the user (RFC 6121 §3.1.3).
                out.answer_subscribed = true;
                return out;
            }
            if item.approved {
                item.subscription = item.subscription.with_from(true);
                item.approved = false;
                if update(state, user, &before, &item).await.is_ok() {
                    out.answer_subscribed = true;
                    out.send_presence = true;
                }
                return out;
            }
            let mut request = el.clone();
            set_attr(&mut request, "to", user.as_str());
            match stanza::to_string(&request) {
                Ok(xml) => {
                    if let Err(e) = state.storage.store_request(user, contact, &xml).await {
                        tracing::error!(error = %e, "cannot store a subscription request");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot store a subscription request"),
            }
            out.deliver = true;
        }
        "subscribed" => {
            if item.ask && before.is_some() {
                item.subscription = item.subscription.with_to(true);
                item.ask = false;
                out.deliver = true;
            }
        }
        "unsubscribe" => {
            let requested = state
                .storage
                .take_request(user, contact)
                .await
                .unwrap_or(false);
            if item.subscription.from() || requested {
                item.subscription = item.subscription.with_from(false);
                out.deliver = true;
            }
        }
        "unsubscribed" => {
            if item.subscription.to() || item.ask {
                item.subscription = item.subscription.with_to(false);
                item.ask = false;
                out.deliver = true;
            }
        }
        _ => return out,
    }
    // The failure was logged where it happened (`StanzaError::internal`).
    if before.is_some() && update(state, user, &before, &item).await.is_err() {
        out.deliver = false;
    }
    out
}

/// Remove a contact (roster set with subscription='remove', RFC 6121 §2.5):
/// cancel both subscription directions, then drop the item.
/// Returns `requester`'s own roster push (see `roster::save_for`).
pub async fn remove_contact(
    state: &ServerState,
    owner: &BareJid,
    item: RosterItem,
    requester: Option<&Jid>,
) -> Result<Option<Element>, StanzaError> {
    let contact = item.contact.clone();
    let requested = state
        .storage
        .take_request(owner, &contact)
        .await
        .map_err(|e| StanzaError::internal("presence storage failed", Some(owner), &e))?;
    if item.subscription.to() || item.ask {
        router::route(
            state,
            presence(Some("unsubscribe"), owner.as_str(), contact.as_str()),
        )
        .await;
    }
    if item.subscription.from() || requested {
        router::route(
            state,
            presence(Some("unsubscribed"), owner.as_str(), contact.as_str()),
        )
        .await;
        presence_to(state, owner, &contact, false).await;
    }
    let tombstone = RosterItem {
        subscription: Subscription::Remove,
        ask: false,
        approved: false,
        groups: Vec::new(),
        ..item
    };
    let _lock = state.roster_locks.lock(owner).await;
    Ok(roster::save_for(state, owner, &tombstone, requester)
        .await?
        .1)
}

/// The account goes away (XEP-0077 §3.2): its contacts learn that both
/// subscription directions are cancelled, and pending requests are refused.
pub async fn cancel_subscriptions(state: &ServerState, user: &BareJid) {
    for item in contacts(state, user).await {
        let contact = item.contact.as_str();
        if item.subscription.to() || item.ask {
            router::route(state, presence(Some("unsubscribe"), user.as_str(), contact)).await;
        }
        if item.subscription.from() {
            router::route(
                state,
                presence(Some("unsubscribed"), user.as_str(), contact),
            )
            .await;
            presence_to(state, user, &item.contact, false).await;
        }
    }
    if let Ok(requests) = state.storage.requests(user).await {
        for (contact, _) in requests {
            router::route(
                state,
                presence(Some("unsubscribed"), user.as_str(), contact.as_str()),
            )
            .await;
        }
    }
}
