//! The registry of bound client sessions (RFC 6120 §7), keyed by bare JID.
//!
//! Each entry holds the session's bounded outbound queue and its control
//! handle. The router never writes to a socket: it queues, and the session
//! task writes, so a slow peer never holds up anyone else.

use crate::config::ResourceConflict;
use crate::stream::error::{StreamCondition, StreamError};
use jid::{BareJid, FullJid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio_util::sync::CancellationToken;

pub use super::packet::Packet;

/// A unique id per session, so a late unbind cannot remove a newer session
/// that took over the same resource.
pub type SessionId = u64;

/// Lets anyone close a session with a reason.
#[derive(Debug)]
pub struct SessionControl {
    token: CancellationToken,
    reason: Mutex<Option<StreamError>>,
}

impl SessionControl {
    /// A control whose token is a child of `parent` (the server's shutdown token).
    pub fn new(parent: &CancellationToken) -> Self {
        SessionControl {
            token: parent.child_token(),
            reason: Mutex::new(None),
        }
    }

    /// Ask the session to close with this stream error (the first reason wins).
    pub fn close(&self, reason: StreamError) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.token.cancel();
    }

    /// Resolves when the session must close.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Whether the session is closing.
    pub fn is_closing(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the session was asked to close (None: server shutdown).
    pub fn reason(&self) -> Option<StreamError> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A session's last available presence, kept serialised: a parsed element
/// costs several times the memory, in every idle session.
#[derive(Debug, Clone)]
pub struct StoredPresence(Arc<str>);

impl StoredPresence {
    /// Keep `el`; one that cannot be serialised (the stream parser keeps
    /// such characters out) is kept as a plain available presence.
    pub fn new(el: &Element) -> Self {
        let xml = crate::xmpp::stanza::to_string(el)
            .unwrap_or_else(|_| "<presence xmlns='jabber:client'/>".to_owned());
        StoredPresence(Arc::from(xml))
    }

    /// The presence as an element (parsed again; probes are rare next to idle time).
    pub fn element(&self) -> Option<Element> {
        self.0.parse().ok()
    }
}

/// One bit of per-session state that a feature keeps in the registry, where
/// other tasks see it (a roster push goes to sessions that asked for the
/// roster, a carbon copy to sessions that enabled carbons). Each feature
/// declares its own flag beside its code (`features::roster::REQUESTED`,
/// `features::carbons::ENABLED`...); features/mod.rs checks they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFlag(u8);

impl SessionFlag {
    /// Flag number `bit` (0 to 7).
    pub const fn new(bit: u8) -> Self {
        SessionFlag(1 << (bit & 7))
    }

    /// The flag's bit.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

/// One bound resource.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub id: SessionId,
    pub jid: FullJid,
    pub tx: super::queue::Sender<Packet>,
    pub control: Arc<SessionControl>,
    /// Presence priority once the session sent available presence.
    pub priority: Option<i8>,
    /// The session's last available presence (answers probes), None while unavailable.
    pub presence: Option<StoredPresence>,
    /// The features' per-session flags (see `SessionFlag`).
    pub flags: u8,
}

impl SessionHandle {
    /// Whether `flag` is set for this session.
    pub fn has(&self, flag: SessionFlag) -> bool {
        self.flags & flag.bits() != 0
    }
}

/// Outcome of trying to bind a resource.
#[derive(Debug)]
pub enum BindOutcome {
    /// Bound as requested.
    Bound(FullJid),
    /// The resource was in use and the policy refuses the new session.
    Conflict,
}

/// All bound sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    by_bare: RwLock<HashMap<BareJid, Vec<SessionHandle>>>,
    next_id: AtomicU64,
}

/// Resources one account may bind at most (a bound, not a policy).
pub const MAX_RESOURCES: usize = 64;

impl Sessions {
    /// A fresh session id.
    pub fn next_id(&self) -> SessionId {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Bind `handle` under its JID, applying the conflict policy. With
    /// `Rename`, the caller passes a fresh resource when this returns Conflict.
    pub fn bind(&self, handle: SessionHandle, policy: ResourceConflict) -> BindOutcome {
        let mut map = self.by_bare.write().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(handle.jid.to_bare()).or_default();
        if let Some(pos) = list.iter().position(|h| h.jid == handle.jid) {
            match policy {
                ResourceConflict::Replace => {
                    let old = list.remove(pos);
                    old.control.close(StreamError::new(
                        StreamCondition::Conflict,
                        "replaced by a new session binding the same resource",
                    ));
                }
                ResourceConflict::Refuse | ResourceConflict::Rename => {
                    return BindOutcome::Conflict;
                }
            }
        }
        if list.len() >= MAX_RESOURCES {
            return BindOutcome::Conflict;
        }
        let jid = handle.jid.clone();
        // Most accounts have one resource: a plain push would reserve four
        // handles (about 240 bytes more per idle session).
        list.reserve_exact(1);
        list.push(handle);
        BindOutcome::Bound(jid)
    }

    /// Remove a session (only if `id` still owns the resource).
    pub fn unbind(&self, jid: &FullJid, id: SessionId) {
        let mut map = self.by_bare.write().unwrap_or_else(|p| p.into_inner());
        let bare = jid.to_bare();
        if let Some(list) = map.get_mut(&bare) {
            list.retain(|h| h.id != id);
            if list.is_empty() {
                map.remove(&bare);
            }
        }
    }

    /// The session bound to a full JID, unless it is closing.
    pub fn get(&self, jid: &FullJid) -> Option<SessionHandle> {
        let map = self.by_bare.read().unwrap_or_else(|p| p.into_inner());
        map.get(&jid.to_bare())?
            .iter()
            .find(|h| &h.jid == jid && !h.control.is_closing())
            .cloned()
    }

    /// Run `f` on the session bound to the full JID `jid` (of account
    /// `bare`), unless it is closing, under the registry's read lock: for
    /// hot paths that must not clone the handle (`f` must not block).
    pub fn with<R>(
        &self,
        bare: &BareJid,
        jid: &FullJid,
        f: impl FnOnce(&SessionHandle) -> R,
    ) -> Option<R> {
        let map = self.by_bare.read().unwrap_or_else(|p| p.into_inner());
        map.get(bare)?
            .iter()
            .find(|h| &h.jid == jid && !h.control.is_closing())
            .map(f)
    }

    /// Every live session of an account.
    pub fn of(&self, bare: &BareJid) -> Vec<SessionHandle> {
        let map = self.by_bare.read().unwrap_or_else(|p| p.into_inner());
        map.get(bare)
            .map(|l| {
                l.iter()
                    .filter(|h| !h.control.is_closing())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Record a session's presence (None: unavailable).
    pub fn set_presence(
        &self,
        jid: &FullJid,
        id: SessionId,
        priority: Option<i8>,
        presence: Option<StoredPresence>,
    ) {
        let mut map = self.by_bare.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map
            .get_mut(&jid.to_bare())
            .and_then(|l| l.iter_mut().find(|h| h.id == id))
        {
            h.priority = priority;
            h.presence = presence;
        }
    }

    /// Set or clear a feature's flag for the session bound to `jid`.
    pub fn set_flag(&self, jid: &FullJid, flag: SessionFlag, on: bool) {
        self.update(jid, |h| {
            if on {
                h.flags |= flag.bits();
            } else {
                h.flags &= !flag.bits();
            }
        });
    }

    /// Run `f` on every live session of an account, under the registry's
    /// read lock: for hot paths that usually need none of them cloned
    /// (`f` must not block).
    pub fn with_account<R>(&self, bare: &BareJid, f: impl FnOnce(&[SessionHandle]) -> R) -> R {
        let map = self.by_bare.read().unwrap_or_else(|p| p.into_inner());
        match map.get(bare) {
            // Closing sessions are rare: filter only when there is one.
            Some(list) if list.iter().any(|h| h.control.is_closing()) => {
                let live: Vec<SessionHandle> = list
                    .iter()
                    .filter(|h| !h.control.is_closing())
                    .cloned()
                    .collect();
                f(&live)
            }
            Some(list) => f(list),
            None => f(&[]),
        }
    }

    fn update(&self, jid: &FullJid, change: impl FnOnce(&mut SessionHandle)) {
        let mut map = self.by_bare.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map
            .get_mut(&jid.to_bare())
            .and_then(|l| l.iter_mut().find(|h| &h.jid == jid))
        {
            change(h);
        }
    }

    /// Close every session of an account; returns how many.
    pub fn close_account(&self, bare: &BareJid, reason: &StreamError) -> usize {
        let sessions = self.of(bare);
        for s in &sessions {
            s.control.close(reason.clone());
        }
        sessions.len()
    }

    /// Every live session (for server-wide announcements; rare, so a copy is fine).
    pub fn all(&self) -> Vec<SessionHandle> {
        let map = self.by_bare.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            .flatten()
            .filter(|h| !h.control.is_closing())
            .cloned()
            .collect()
    }

    /// Number of bound sessions.
    pub fn count(&self) -> usize {
        let map = self.by_bare.read().unwrap_or_else(|p| p.into_inner());
        map.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(
        s: &Sessions,
        jid: &str,
        root: &CancellationToken,
    ) -> (SessionHandle, crate::router::queue::Receiver<Packet>) {
        let (tx, rx) = crate::router::queue::channel(4, usize::MAX);
        (
            SessionHandle {
                id: s.next_id(),
                jid: FullJid::new(jid).expect("jid"),
                tx,
                control: Arc::new(SessionControl::new(root)),
                priority: None,
                presence: None,
                flags: 0,
            },
            rx,
        )
    }

    #[test]
    fn newest_wins_or_refused() {
        let root = CancellationToken::new();
        let s = Sessions::default();
        let (a, _ra) = handle(&s, "u@h/r", &root);
        let (b, _rb) = handle(&s, "u@h/r", &root);
        assert!(matches!(
            s.bind(a.clone(), ResourceConflict::Replace),
            BindOutcome::Bound(_)
        ));
        assert!(matches!(
            s.bind(b.clone(), ResourceConflict::Refuse),
            BindOutcome::Conflict
        ));
        assert!(!a.control.is_closing());
        assert!(matches!(
            s.bind(b.clone(), ResourceConflict::Replace),
            BindOutcome::Bound(_)
        ));
        assert!(a.control.is_closing());
        assert_eq!(
            a.control.reason().map(|r| r.condition),
            Some(StreamCondition::Conflict)
        );
        // The old session's late unbind must not remove the new one.
        s.unbind(&a.jid, a.id);
        assert_eq!(s.get(&b.jid).map(|h| h.id), Some(b.id));
        s.unbind(&b.jid, b.id);
        assert_eq!(s.count(), 0);
    }
}
