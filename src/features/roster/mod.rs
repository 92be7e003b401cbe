//! RFC 6121 §2: the roster (get, set, remove, pushes), with roster
//! versioning (XEP-0237, now RFC 6121 §2.6).

pub mod shared;
pub mod store;

use super::IqRequest;
use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::{self, set_attr};
use jid::{BareJid, Jid};
use minidom::Element;
use store::{RosterItem, RosterStore, Subscription};

/// Longest group name and item name accepted, in bytes.
const MAX_NAME: usize = 1024;

/// The session asked for the roster, so it gets roster pushes (RFC 6121 §2.1.6).
pub const REQUESTED: crate::router::sessions::SessionFlag =
    crate::router::sessions::SessionFlag::new(0);

/// The roster a client just fetched, kept for the initial presence that
/// usually follows (RFC 6121 §2.2: clients get the roster, then send
/// presence), which needs the same items: a login then reads the roster
/// once instead of twice. Bounded in accounts and items; an entry goes as
/// soon as it is used, the roster changes, or there is no room for it.
#[derive(Debug, Default)]
pub struct Handoff {
    rosters: std::sync::Mutex<HandoffMap>,
}

type HandoffMap = std::collections::HashMap<BareJid, (std::time::Instant, Vec<RosterItem>)>;

/// How long a fetched roster waits for the presence (a client that sends
/// none leaves an entry behind; it must not be used much later, after
/// changes made outside this process, such as the account's deletion).
const HANDOFF_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Accounts whose roster waits for their presence at once, at most.
const HANDOFF_ACCOUNTS: usize = 256;
/// Larger rosters are not kept (they are read again).
const HANDOFF_ITEMS: usize = 256;

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandoffMap> {
        self.rosters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep `items`, `owner`'s roster as stored, if there is room.
    fn offer(&self, owner: &BareJid, items: &[RosterItem]) {
        if items.len() > HANDOFF_ITEMS {
            return;
        }
        let now = std::time::Instant::now();
        let mut map = self.lock();
        if map.len() >= HANDOFF_ACCOUNTS {
            map.retain(|_, (at, _)| now.duration_since(*at) < HANDOFF_TTL);
        }
        if map.len() < HANDOFF_ACCOUNTS || map.contains_key(owner) {
            map.insert(owner.clone(), (now, items.to_vec()));
        }
    }

    /// `owner`'s roster as stored, if it was just fetched.
    pub fn take(&self, owner: &BareJid) -> Option<Vec<RosterItem>> {
        let mut map = self.lock();
        if map.is_empty() {
            return None;
        }
        map.remove(owner)
            .filter(|(at, _)| at.elapsed() < HANDOFF_TTL)
            .map(|(_, items)| items)
    }

    /// `owner`'s roster changed: what was kept is stale.
    pub fn forget(&self, owner: &BareJid) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(owner);
        }
    }
}

/// An item as it appears in a roster result or push.
pub fn item_element(item: &RosterItem) -> Element {
    let mut el = Element::bare("item", ns::ROSTER);
    set_attr(&mut el, "jid", item.contact.as_str());
    if let Some(name) = &item.name {
        set_attr(&mut el, "name", name.as_str());
    }
    set_attr(&mut el, "subscription", item.subscription.as_str());
    if item.ask && item.subscription != Subscription::Remove {
        set_attr(&mut el, "ask", "subscribe");
    }
    if item.subscription != Subscription::Remove {
        for g in &item.groups {
            el.append_child(
                Element::builder("group", ns::ROSTER)
                    .append(g.as_str())
                    .build(),
            );
        }
    }
    el
}

fn push_iq(to: &Jid, item: &RosterItem, version: i64) -> Element {
    let mut query = Element::bare("query", ns::ROSTER);
    set_attr(&mut query, "ver", version.to_string());
    query.append_child(item_element(item));
    let mut iq = Element::bare("iq", ns::CLIENT);
    let id: [u8; 6] = rand::random();
    set_attr(&mut iq, "id", format!("push-{}", crate::xmpp::hex(&id)));
    set_attr(&mut iq, "type", "set");
    set_attr(&mut iq, "to", to.to_string());
    iq.append_child(query);
    iq
}

/// Whether `contact` may see `owner`'s presence (subscription from or both),
/// the test XEP-0030 §8 and XEP-0012 apply to questions about an account.
pub async fn is_subscribed(state: &ServerState, owner: &BareJid, contact: &BareJid) -> bool {
    if state.shared_rosters.share(owner, contact) {
        return true;
    }
    match state.storage.roster_item(owner, contact).await {
        Ok(item) => item.is_some_and(|i| i.subscription.from()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a roster item");
            false
        }
    }
}

/// Store a changed item and push it to every resource that asked for the roster.
pub async fn save(
    state: &ServerState,
    owner: &BareJid,
    item: &RosterItem,
) -> Result<i64, StanzaError> {
    save_for(state, owner, item, None).await.map(|(v, _)| v)
}

/// Store a changed item and push it to every resource that asked for the
/// roster, except `requester`, whose push is returned instead: it goes
/// after the iq result, so that a client pairing requests and responses
/// never sees the effect of its roster set before the answer (RFC 6121
/// §2.3.2 shows the result first).
pub async fn save_for(
    state: &ServerState,
    owner: &BareJid,
    item: &RosterItem,
    requester: Option<&Jid>,
) -> Result<(i64, Option<Element>), StanzaError> {
    let stored = state.storage.put_roster_item(owner, item).await;
    state.roster_handoff.forget(owner);
    let version =
        stored.map_err(|e| StanzaError::internal("roster storage failed", Some(owner), &e))?;
    let mut own = None;
    for session in state.sessions.of(owner) {
        if session.has(REQUESTED) {
            let to = Jid::from(session.jid.clone());
            let push = push_iq(&to, item, version);
            if requester == Some(&to) {
                own = Some(push);
            } else {
                crate::router::deliver(state, &session, push).await;
            }
        }
    }
    Ok((version, own))
}

/// The roster iq: returns the reply and, for versioned gets, the pushes that follow it.
pub async fn handle(req: &IqRequest<'_>) -> Result<Vec<Element>, StanzaError> {
    req.owner_only()?;
    let owner = req.from.to_bare();
    if req.set {
        let own_push = set(req, &owner).await?;
        return Ok(std::iter::once(stanza::iq_result(req.iq, None))
            .chain(own_push)
            .collect());
    }
    if let Ok(full) = req.from.clone().try_into_full() {
        req.state.sessions.set_flag(&full, REQUESTED, true);
    }
    // Shared groups change outside the database: such users get the whole
    // roster each time (see `shared`).
    let shared = req.state.shared_rosters.items(&owner);
    let known = req
        .payload
        .attr("ver")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|_| shared.is_empty());
    if let Some(since) = known {
        let (changes, current) = req
            .state
            .storage
            .roster_changes(&owner, since)
            .await
            .map_err(|e| StanzaError::internal("roster storage failed", Some(&owner), &e))?;
        if since <= current {
            // RFC 6121 §2.6.3: an empty result, then a push per change.
            let mut out = vec![stanza::iq_result(req.iq, None)];
            for item in &changes {
                out.push(push_iq(&req.from, item, item.version));
            }
            return Ok(out);
        }
    }
    let (items, version) = req
        .state
        .storage
        .roster(&owner)
        .await
        .map_err(|e| StanzaError::internal("roster storage failed", Some(&owner), &e))?;
    req.state.roster_handoff.offer(&owner, &items);
    let items = shared::merge(items, shared);
    let mut query = Element::bare("query", ns::ROSTER);
    set_attr(&mut query, "ver", version.to_string());
    for item in &items {
        query.append_child(item_element(item));
    }
    Ok(vec![stanza::iq_result(req.iq, Some(query))])
}

/// A roster set; returns the requester's own push, to follow the result.
async fn set(req: &IqRequest<'_>, owner: &BareJid) -> Result<Option<Element>, StanzaError> {
    let mut items = req.payload.children().filter(|c| c.is("item", ns::ROSTER));
    let (Some(el), None) = (items.next(), items.next()) else {
        return Err(StanzaError::new(Condition::BadRequest)
            .with_text("a roster set carries exactly one item"));
    };
    let contact = el
        .attr("jid")
        .and_then(|j| BareJid::new(j).ok())
        .ok_or_else(|| {
            StanzaError::new(Condition::BadRequest).with_text("the item needs a bare JID")
        })?;
    let state = req.state;
    if el.attr("subscription") == Some("remove") {
        let existing = state
            .storage
            .roster_item(owner, &contact)
            .await
            .map_err(|e| StanzaError::internal("roster storage failed", Some(owner), &e))?;
        let Some(item) = existing else {
            return Err(StanzaError::new(Condition::ItemNotFound));
        };
        return super::presence::remove_contact(state, owner, item, Some(&req.from)).await;
    }
    // Held to the end: subscription stanzas may change this item meanwhile.
    let _lock = state.roster_locks.lock(owner).await;
    let existing = state
        .storage
        .roster_item(owner, &contact)
        .await
        .map_err(|e| StanzaError::internal("roster storage failed", Some(owner), &e))?;
    let mut groups: Vec<String> = Vec::new();
    for g in el.children().filter(|c| c.is("group", ns::ROSTER)) {
        let name = g.text();
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(StanzaError::new(Condition::NotAcceptable)
                .with_text("group names must be 1 to 1024 bytes"));
        }
        if groups.contains(&name) {
            return Err(StanzaError::new(Condition::BadRequest).with_text("duplicate group"));
        }
        groups.push(name);
    }
    let name = el.attr("name").filter(|n| !n.is_empty()).map(str::to_owned);
    if name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
        return Err(
            StanzaError::new(Condition::NotAcceptable).with_text("names are limited to 1024 bytes")
        );
    }
    let mut item =
        match existing {
            Some(item) => item,
            None => {
                let size =
                    state.storage.roster_size(owner).await.map_err(|e| {
                        StanzaError::internal("roster storage failed", Some(owner), &e)
                    })?;
                if size >= state.config.limits.roster_items as i64 {
                    return Err(StanzaError::new(Condition::PolicyViolation)
                        .with_text("the roster is full"));
                }
                RosterItem::new(contact)
            }
        };
    item.name = name;
    item.groups = groups;
    Ok(save_for(state, owner, &item, Some(&req.from)).await?.1)
}
