//! XEP-0191: Blocking Command.
//!
//! The blocklist iqs (get, block, unblock, unblock all, with pushes) and its
//! enforcement on every stanza between an account and someone it blocks:
//! the router asks `inbound` before delivering to an account, the client
//! session asks `outbound` before routing what its client sends.
//!
//! An item is a full JID, a bare JID, a `domain/resource` or a domain, and
//! matches as XEP-0191 "JID Matching" says (the order privacy lists use): a
//! full JID or `domain/resource` only that address, a bare JID any of its
//! resources, a domain itself and every address at it or at one of its
//! subdomains. The account's own addresses and its server are never blocked.
//!
//! Blocking a contact subscribed to the user's presence sends it
//! unavailable presence from each available resource; unblocking sends the
//! current presence back (XEP-0191 "User Blocks Contact", "User Unblocks
//! Contact").
//!
//! Both checks run for every stanza, so they never query the database: the
//! blocklists of recently active accounts are kept in a bounded [`Cache`],
//! loaded on first use and dropped whenever the account changes its list.

use super::roster::store::RosterStore;
use super::{IqRequest, IqResult};
use crate::state::ServerState;
use crate::storage::StorageError;
use crate::xmpp::error::{Condition, ErrorType, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::{Kind, set_attr};
use jid::{BareJid, Jid};
use minidom::Element;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// The session asked for the blocklist, so it gets blocklist pushes (XEP-0191 §3.3).
pub const REQUESTED: crate::router::sessions::SessionFlag =
    crate::router::sessions::SessionFlag::new(1);

/// What to do with a stanza between a user and someone they may have blocked.
#[derive(Debug)]
pub enum Verdict {
    Allow,
    /// Drop silently.
    Drop,
    /// Answer the sender with this error.
    Reject(StanzaError),
    /// Answer the sender with `blocked_error`.
    Blocked,
}

/// Blocked JIDs, per account.
pub trait BlockingStore {
    /// The JIDs `owner` blocks (normalised strings), oldest first.
    fn blocklist(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;
    /// Add `jids` unless the list would then hold more than `max_items`;
    /// returns whether they were added.
    fn block(
        &self,
        owner: &BareJid,
        jids: &[String],
        max_items: usize,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Remove `jids` (those not blocked are ignored).
    fn unblock(
        &self,
        owner: &BareJid,
        jids: &[String],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Empty `owner`'s blocklist.
    fn unblock_all(&self, owner: &BareJid)
    -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Delete `owner`'s blocklist (account deletion).
    fn remove_user(&self, owner: &BareJid)
    -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// The cache the checks use.
///
/// Wiring: `ServerState` has no field for it yet, and globals are not
/// allowed, so until the state gets `pub blocklists: Cache` this returns None
/// and nothing is enforced. Once it exists this becomes
/// `Some(&state.blocklists)`.
fn cache_of(state: &ServerState) -> Option<&Cache> {
    Some(&state.blocklists)
}

// ---------------------------------------------------------------------------
// The iqs.

/// Answer a blocklist request (get the list, block, unblock).
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    // The blocklist is the account's own business (XEP-0191 iqs carry no 'to').
    req.owner_only()?;
    let owner = req.from.to_bare();
    let storage = &req.state.storage;
    match (req.payload.name(), req.set) {
        ("blocklist", false) => {
            if let Ok(full) = req.from.clone().try_into_full() {
                req.state.sessions.set_flag(&full, REQUESTED, true);
            }
            let jids = storage
                .blocklist(&owner)
                .await
                .map_err(|e| StanzaError::internal("blocklist storage failed", Some(&owner), &e))?;
            let mut list = Element::bare("blocklist", ns::BLOCKING);
            for jid in &jids {
                list.append_child(item(jid));
            }
            Ok(Some(list))
        }
        ("block", true) => {
            let jids = items(req.payload)?;
            if jids.is_empty() {
                return Err(
                    StanzaError::new(Condition::BadRequest).with_text("block at least one JID")
                );
            }
            if jids.iter().any(|j| is_own(&owner, j)) {
                return Err(StanzaError::new(Condition::NotAcceptable)
                    .with_text("you cannot block yourself or your own server"));
            }
            let strings: Vec<String> = jids.iter().map(|j| j.to_string()).collect();
            let max = req.state.config.limits.blocklist_items;
            let added = storage
                .block(&owner, &strings, max)
                .await
                .map_err(|e| StanzaError::internal("blocklist storage failed", Some(&owner), &e))?;
            if !added {
                return Err(StanzaError::new(Condition::NotAcceptable)
                    .with_text(format!("a blocklist holds at most {max} JIDs")));
            }
            changed(req.state, &owner, "block", &strings).await;
            presence_on_change(req.state, &owner, &Blocklist::new(&strings), None).await;
            Ok(None)
        }
        ("unblock", true) => {
            let jids = items(req.payload)?;
            let strings: Vec<String> = jids.iter().map(|j| j.to_string()).collect();
            // What gets unblocked: the items, or for "unblock all" the whole list.
            let unblocked = if strings.is_empty() {
                let all = storage.blocklist(&owner).await.map_err(|e| {
                    StanzaError::internal("blocklist storage failed", Some(&owner), &e)
                })?;
                storage
                    .unblock_all(&owner)
                    .await
                    .map(|()| Blocklist::new(all))
            } else {
                let done = storage.unblock(&owner, &strings).await;
                done.map(|()| Blocklist::new(&strings))
            }
            .map_err(|e| StanzaError::internal("blocklist storage failed", Some(&owner), &e))?;
            changed(req.state, &owner, "unblock", &strings).await;
            // A contact unblocked by one item may still be blocked by another
            // (its domain, say): it must not get presence then.
            let still = storage
                .blocklist(&owner)
                .await
                .map(Blocklist::new)
                .map_err(|e| StanzaError::internal("blocklist storage failed", Some(&owner), &e))?;
            presence_on_change(req.state, &owner, &unblocked, Some(&still)).await;
            Ok(None)
        }
        _ => Err(StanzaError::new(Condition::BadRequest)
            .with_text("get <blocklist/>, or set <block/> or <unblock/>")),
    }
}

/// The JIDs of a `<block/>` or `<unblock/>`, normalised and without duplicates.
pub fn items(command: &Element) -> Result<Vec<Jid>, StanzaError> {
    let mut out: Vec<Jid> = Vec::new();
    for child in command.children() {
        if !child.is("item", ns::BLOCKING) {
            continue;
        }
        let Some(text) = child.attr("jid") else {
            return Err(StanzaError::new(Condition::BadRequest).with_text("an item needs a jid"));
        };
        let jid = Jid::new(text).map_err(|_| StanzaError::new(Condition::JidMalformed))?;
        if !out.contains(&jid) {
            out.push(jid);
        }
    }
    Ok(out)
}

fn item(jid: &str) -> Element {
    let mut el = Element::bare("item", ns::BLOCKING);
    set_attr(&mut el, "jid", jid);
    el
}

/// After a change: forget the cached list, and push the command to the
/// account's sessions.
async fn changed(state: &ServerState, owner: &BareJid, command: &str, jids: &[String]) {
    if let Some(cache) = cache_of(state) {
        cache.forget(owner);
    }
    // XEP-0191 §3.3: pushes go to the resources that requested the blocklist.
    for session in state.sessions.of(owner) {
        if !session.has(REQUESTED) {
            continue;
        }
        let mut payload = Element::bare(command, ns::BLOCKING);
        for jid in jids {
            payload.append_child(item(jid));
        }
        let mut iq = Element::bare("iq", ns::CLIENT);
        let id: [u8; 6] = rand::random();
        let id = crate::xmpp::hex(&id);
        set_attr(&mut iq, "id", format!("block-{id}"));
        set_attr(&mut iq, "type", "set");
        set_attr(&mut iq, "from", owner.as_str());
        set_attr(&mut iq, "to", session.jid.as_str());
        iq.append_child(payload);
        Box::pin(crate::router::route(state, iq)).await;
    }
}

/// XEP-0191, blocking and unblocking a contact: contacts allowed to see the
/// user's presence (a `from` subscription) that `changed` matches get
/// unavailable presence from each available resource when blocked (`still`
/// is None), or that resource's current presence when unblocked and not
/// blocked by another item of `still`.
async fn presence_on_change(
    state: &ServerState,
    owner: &BareJid,
    changed: &Blocklist,
    still: Option<&Blocklist>,
) {
    let sessions: Vec<_> = state
        .sessions
        .of(owner)
        .into_iter()
        .filter_map(|s| s.presence.clone().map(|p| (s.jid, p)))
        .collect();
    if sessions.is_empty() || changed.is_empty() {
        return;
    }
    let roster = match state.storage.roster(owner).await {
        Ok((items, _version)) => items,
        Err(e) => {
            tracing::error!(user = %owner, error = %e, "cannot load the roster after a block");
            return;
        }
    };
    for item in roster.iter().filter(|i| i.subscription.from()) {
        let contact = Jid::from(item.contact.clone());
        if !changed.matches(&contact) || still.is_some_and(|l| l.matches(&contact)) {
            continue;
        }
        for (full, current) in &sessions {
            let mut p = match still {
                // Blocked: the contact sees the user leave.
                None => {
                    let mut p = Element::bare("presence", ns::CLIENT);
                    set_attr(&mut p, "type", "unavailable");
                    set_attr(&mut p, "from", full.as_str());
                    p
                }
                // Unblocked: the contact sees the user as it is.
                Some(_) => match current.element() {
                    Some(el) => el,
                    None => continue,
                },
            };
            set_attr(&mut p, "to", item.contact.as_str());
            Box::pin(crate::router::route(state, p)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Enforcement.

/// A stanza (its `from` stamped) arriving for local account `to`.
pub async fn inbound(state: &ServerState, to: &BareJid, stanza: &Element) -> Verdict {
    match cache_of(state) {
        Some(cache) => check_inbound(cache, &state.storage, to, stanza).await,
        None => Verdict::Allow,
    }
}

/// A stanza local account `from` sends (its `to` may be anyone).
pub async fn outbound(state: &ServerState, from: &BareJid, stanza: &Element) -> Verdict {
    match cache_of(state) {
        Some(cache) => check_outbound(cache, &state.storage, from, stanza).await,
        None => Verdict::Allow,
    }
}

/// Whether `owner` blocks `other`: for features that send on the account's
/// behalf (presence broadcast must skip blocked contacts, XEP-0191 "User
/// Blocks Contact").
pub async fn blocks(state: &ServerState, owner: &BareJid, other: &Jid) -> bool {
    match cache_of(state) {
        Some(cache) => {
            !is_own(owner, other) && list(cache, &state.storage, owner).await.matches(other)
        }
        None => false,
    }
}

/// `inbound`, given the cache and the store.
pub async fn check_inbound<S: BlockingStore + Sync>(
    cache: &Cache,
    store: &S,
    to: &BareJid,
    stanza: &Element,
) -> Verdict {
    let list = list(cache, store, to).await;
    if list.is_empty() {
        return Verdict::Allow;
    }
    match stanza.attr("from").map(Jid::new) {
        Some(Ok(from)) if !is_own(to, &from) && list.matches(&from) => inbound_verdict(stanza),
        _ => Verdict::Allow,
    }
}

/// `outbound`, given the cache and the store.
pub async fn check_outbound<S: BlockingStore + Sync>(
    cache: &Cache,
    store: &S,
    from: &BareJid,
    stanza: &Element,
) -> Verdict {
    let list = list(cache, store, from).await;
    if list.is_empty() {
        return Verdict::Allow;
    }
    match stanza.attr("to").map(Jid::new) {
        Some(Ok(to)) if !is_own(from, &to) && list.matches(&to) => outbound_verdict(),
        _ => Verdict::Allow,
    }
}

/// XEP-0191 "User Blocks Contact": what happens to a stanza from a blocked
/// entity. The user looks offline: presence vanishes, messages and requests
/// bounce as they would for an account without sessions, results and errors
/// vanish.
fn inbound_verdict(stanza: &Element) -> Verdict {
    let kind = Kind::of(stanza);
    let kind_type = stanza.attr("type").unwrap_or("");
    match (kind, kind_type) {
        (Some(Kind::Message), "error") | (Some(Kind::Presence), _) => Verdict::Drop,
        (Some(Kind::Message), _) | (Some(Kind::Iq), "get" | "set") => {
            Verdict::Reject(StanzaError::new(Condition::ServiceUnavailable))
        }
        _ => Verdict::Drop,
    }
}

/// XEP-0191 "User Blocks Contact": a stanza to a blocked entity is refused
/// (the session answers with [`blocked_error`]).
fn outbound_verdict() -> Verdict {
    Verdict::Blocked
}

/// The error XEP-0191 asks for when a user sends to someone they block:
/// `not-acceptable` (type cancel, as in the XEP's example) with
/// `<blocked xmlns='urn:xmpp:blocking:errors'/>`.
pub fn blocked_error(stanza: &Element) -> Element {
    let error = StanzaError {
        condition: Condition::NotAcceptable,
        kind: ErrorType::Cancel,
        text: Some("you block this address".into()),
    };
    let mut reply = error.reply_to(stanza);
    if let Some(error) = reply.get_child_mut("error", ns::CLIENT) {
        error.append_child(Element::bare("blocked", ns::BLOCKING_ERRORS));
    }
    reply
}

/// Whether `other` is the account itself (one of its resources or its bare
/// JID) or the account's own server: blocking those would cut the account
/// off from its own sessions and from the server's answers, so they are
/// never blocked.
fn is_own(owner: &BareJid, other: &Jid) -> bool {
    match other.node() {
        Some(_) => other.to_bare() == *owner,
        None => other.resource().is_none() && other.domain() == owner.domain(),
    }
}

// ---------------------------------------------------------------------------
// Matching and the cache.

/// One account's blocked JIDs, ready for matching.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Blocklist {
    /// Full JIDs and `domain/resource` items: only that address.
    exact: HashSet<String>,
    /// Bare JIDs: any resource.
    bare: HashSet<String>,
    /// Domains: the domain, any address at it, any subdomain.
    domains: HashSet<String>,
}

impl Blocklist {
    /// A list of normalised JIDs as stored; unparsable entries are skipped.
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(jids: I) -> Self {
        let mut list = Blocklist::default();
        for s in jids {
            let Ok(jid) = Jid::new(s.as_ref()) else {
                tracing::warn!(jid = s.as_ref(), "ignoring an invalid JID in a blocklist");
                continue;
            };
            let set = match (jid.node(), jid.resource()) {
                (_, Some(_)) => &mut list.exact,
                (Some(_), None) => &mut list.bare,
                (None, None) => &mut list.domains,
            };
            set.insert(jid.into_inner());
        }
        list
    }

    /// Whether nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.bare.is_empty() && self.domains.is_empty()
    }

    /// Whether `jid` matches an item (XEP-0191 "JID Matching"). Allocates nothing.
    pub fn matches(&self, jid: &Jid) -> bool {
        let s = jid.as_str();
        if jid.resource().is_some() && self.exact.contains(s) {
            return true;
        }
        // Neither a node nor a domain may contain '/': the bare JID ends at the first one.
        let bare = s.split_once('/').map_or(s, |(bare, _)| bare);
        if jid.node().is_some() && self.bare.contains(bare) {
            return true;
        }
        if self.domains.is_empty() {
            return false;
        }
        let mut domain = jid.domain().as_str();
        loop {
            if self.domains.contains(domain) {
                return true;
            }
            match domain.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => domain = parent,
                _ => return false,
            }
        }
    }
}

/// Accounts whose blocklist the cache holds at most, by default: about 100
/// bytes each for the common empty list.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// The blocklists of recently active accounts, bounded; the checks read it
/// instead of the database.
#[derive(Debug)]
pub struct Cache {
    capacity: usize,
    /// Shared by every account that blocks nobody, the common case.
    empty: Arc<Blocklist>,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    lists: HashMap<BareJid, Arc<Blocklist>>,
    /// Counts loads and changes...
    clock: u64,
    /// ...so that a list loaded before the latest change is not kept: it may
    /// predate the change. Global rather than per account, to stay small;
    /// changes are rare, so the cost is an occasional extra load.
    last_change: u64,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(DEFAULT_CAPACITY)
    }
}

impl Cache {
    /// A cache holding at most `capacity` accounts' lists.
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity: capacity.max(1),
            empty: Arc::new(Blocklist::default()),
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        // The lock is never held across an await or a panic-prone call; a
        // poisoned one still holds consistent data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many accounts' lists are held.
    pub fn len(&self) -> usize {
        self.lock().lists.len()
    }

    /// Whether no list is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, owner: &BareJid) -> Option<Arc<Blocklist>> {
        self.lock().lists.get(owner).cloned()
    }

    /// Taken before loading a list from the store.
    fn ticket(&self) -> u64 {
        let mut inner = self.lock();
        inner.clock += 1;
        inner.clock
    }

    /// Keep a list loaded after `ticket`, unless a change happened since.
    fn offer(&self, owner: &BareJid, list: Arc<Blocklist>, ticket: u64) {
        let mut inner = self.lock();
        if inner.last_change >= ticket {
            return;
        }
        if inner.lists.len() >= self.capacity && !inner.lists.contains_key(owner) {
            // Evict an arbitrary entry: HashMap order is effectively random,
            // and an evicted account only costs one query at its next stanza.
            if let Some(victim) = inner.lists.keys().next().cloned() {
                inner.lists.remove(&victim);
            }
        }
        inner.lists.insert(owner.clone(), list);
    }

    /// Drop `owner`'s list after it changed in the store.
    pub fn forget(&self, owner: &BareJid) {
        let mut inner = self.lock();
        inner.clock += 1;
        inner.last_change = inner.clock;
        inner.lists.remove(owner);
    }
}

/// `owner`'s blocklist, from the cache or else the store. A database error
/// gives an empty list (logged): blocking fails open rather than cutting
/// every account off while the database is away.
pub async fn list<S: BlockingStore + Sync>(
    cache: &Cache,
    store: &S,
    owner: &BareJid,
) -> Arc<Blocklist> {
    if let Some(list) = cache.get(owner) {
        return list;
    }
    let ticket = cache.ticket();
    match store.blocklist(owner).await {
        Ok(jids) => {
            let list = if jids.is_empty() {
                cache.empty.clone()
            } else {
                Arc::new(Blocklist::new(jids))
            };
            cache.offer(owner, list.clone(), ticket);
            list
        }
        Err(e) => {
            tracing::error!(user = %owner, error = %e, "cannot load a blocklist: not enforcing it");
            cache.empty.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).expect("jid")
    }

    fn el(xml: &str) -> Element {
        xml.parse().expect("xml")
    }

    #[test]
    fn matching_follows_xep_0191() {
        let list = Blocklist::new([
            "romeo@montague.net/orchard",
            "iago@shakespeare.lit",
            "capulet.com/balcony",
            "evil.example",
        ]);
        // user@domain/resource: only that resource.
        assert!(list.matches(&jid("romeo@montague.net/orchard")));
        assert!(!list.matches(&jid("romeo@montague.net/garden")));
        assert!(!list.matches(&jid("romeo@montague.net")));
        // user@domain: any resource.
        assert!(list.matches(&jid("iago@shakespeare.lit")));
        assert!(list.matches(&jid("iago@shakespeare.lit/pda")));
        assert!(!list.matches(&jid("othello@shakespeare.lit")));
        assert!(!list.matches(&jid("shakespeare.lit")));
        // domain/resource: only that resource of the domain itself.
        assert!(list.matches(&jid("capulet.com/balcony")));
        assert!(!list.matches(&jid("capulet.com")));
        assert!(!list.matches(&jid("juliet@capulet.com/balcony")));
        // domain: itself, anyone at it, its subdomains.
        assert!(list.matches(&jid("evil.example")));
        assert!(list.matches(&jid("evil.example/x")));
        assert!(list.matches(&jid("spammer@evil.example/bot")));
        assert!(list.matches(&jid("room@muc.evil.example/nick")));
        assert!(!list.matches(&jid("notevil.example")));
        assert!(!list.matches(&jid("example")));
        assert!(Blocklist::new(Vec::<String>::new()).is_empty());
    }

    #[test]
    fn items_are_normalised_and_checked() {
        let block = el(
            "<block xmlns='urn:xmpp:blocking'><item jid='Romeo@Montague.net'/>\
             <item jid='romeo@montague.net'/><item jid='iago@shakespeare.lit'/></block>",
        );
        let jids = items(&block).expect("valid");
        assert_eq!(
            jids,
            [jid("romeo@montague.net"), jid("iago@shakespeare.lit")]
        );
        let bad = el("<block xmlns='urn:xmpp:blocking'><item jid='a@@b'/></block>");
        assert_eq!(
            items(&bad).expect_err("malformed").condition,
            Condition::JidMalformed
        );
        let none = el("<block xmlns='urn:xmpp:blocking'><item/></block>");
        assert_eq!(
            items(&none).expect_err("no jid").condition,
            Condition::BadRequest
        );
    }

    #[test]
    fn own_addresses_are_never_blocked() {
        let me = BareJid::new("juliet@capulet.com").expect("jid");
        assert!(is_own(&me, &jid("juliet@capulet.com/balcony")));
        assert!(is_own(&me, &jid("juliet@capulet.com")));
        assert!(is_own(&me, &jid("capulet.com")));
        assert!(!is_own(&me, &jid("nurse@capulet.com")));
        assert!(!is_own(&me, &jid("capulet.com/bot")));
    }

    #[test]
    fn verdicts_follow_xep_0191() {
        let drop = |xml: &str| matches!(inbound_verdict(&el(xml)), Verdict::Drop);
        let reject = |xml: &str| matches!(inbound_verdict(&el(xml)), Verdict::Reject(e) if e.condition == Condition::ServiceUnavailable);
        assert!(drop("<presence xmlns='jabber:client'/>"));
        assert!(drop("<presence xmlns='jabber:client' type='subscribe'/>"));
        assert!(reject("<message xmlns='jabber:client' type='chat'/>"));
        assert!(reject("<message xmlns='jabber:client'/>"));
        assert!(drop("<message xmlns='jabber:client' type='error'/>"));
        assert!(reject("<iq xmlns='jabber:client' type='get'/>"));
        assert!(reject("<iq xmlns='jabber:client' type='set'/>"));
        assert!(drop("<iq xmlns='jabber:client' type='result'/>"));
        assert!(drop("<iq xmlns='jabber:client' type='error'/>"));
        assert!(matches!(outbound_verdict(), Verdict::Blocked));
        let full = blocked_error(&el(
            "<message xmlns='jabber:client' from='juliet@capulet.com/balcony' to='romeo@montague.net'><body>hi</body></message>",
        ));
        let error = full.get_child("error", ns::CLIENT).expect("error");
        assert!(error.has_child("not-acceptable", ns::STANZAS));
        assert!(error.has_child("blocked", ns::BLOCKING_ERRORS));
    }

    #[test]
    fn cache_is_bounded_and_drops_stale_loads() {
        let cache = Cache::new(2);
        let list = Arc::new(Blocklist::new(["a@b"]));
        let users: Vec<BareJid> = ["u1@h", "u2@h", "u3@h"]
            .iter()
            .map(|u| BareJid::new(u).expect("jid"))
            .collect();
        for u in &users {
            let t = cache.ticket();
            cache.offer(u, list.clone(), t);
        }
        assert_eq!(cache.len(), 2, "bounded");
        // A load that started before a change is not kept.
        let t = cache.ticket();
        cache.forget(&users[0]);
        cache.offer(&users[0], list.clone(), t);
        assert!(cache.get(&users[0]).is_none());
        let t = cache.ticket();
        cache.offer(&users[0], list, t);
        assert!(cache.get(&users[0]).is_some());
    }
}
