//! XEP-0012: Last Activity (server uptime, accounts' last logout).
//!
//! Asked of the server, the answer is how long it has been running (§5).
//! Asked of an account's bare JID, it is how long ago the account's last
//! session ended, with the status text of its last unavailable presence
//! (§3), or 0 while a session is connected. That tells whether someone is
//! online, so only those allowed to see the account's presence may ask (§8).

use super::{IqRequest, IqResult};
use crate::state::ServerState;
use crate::storage::{StorageError, now_micros};
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::set_attr;
use jid::BareJid;
use minidom::Element;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

/// When the server started; set by [`mark_start`].
static START: OnceLock<Instant> = OnceLock::new();

/// Remember now as the server's start time; call once when the server starts.
/// Later calls keep the first time.
pub fn mark_start() {
    let _ = START.set(Instant::now());
}

/// Seconds since [`mark_start`]. Unmarked (a bug at start-up), the clock
/// starts at the first question instead, which at least never lies upwards.
pub fn uptime() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_secs()
}

/// When each account's last session ended.
pub trait LastActivityStore {
    /// Record that `user` went offline at `stamp` (µs since the epoch) with status text `status`.
    fn record_last_activity(
        &self,
        user: &BareJid,
        stamp: i64,
        status: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// `record_last_activity` for several accounts (one each) at once.
    fn record_last_activities(
        &self,
        logouts: &[(BareJid, i64, String)],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// The last logout of `user` (stamp in µs, status text), if it ever logged out.
    fn last_activity(
        &self,
        user: &BareJid,
    ) -> impl Future<Output = Result<Option<(i64, String)>, StorageError>> + Send;
    /// Forget `user`'s last activity (the account is deleted).
    fn remove_last_activity(
        &self,
        user: &BareJid,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Answer a last-activity request to the server or an account.
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    let Some(user) = &req.to else {
        // §5: the server's uptime, without text.
        return Ok(Some(query(uptime(), "")));
    };
    // §3: only those allowed to see the account's presence may ask.
    if !req.from_owner()
        && !super::roster::is_subscribed(req.state, user, &req.from.to_bare()).await
    {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    // §3: "at least one connected or available resource" means 0 and no text.
    if !req.state.sessions.of(user).is_empty() {
        return Ok(Some(query(0, "")));
    }
    if let Some((stamp, status)) = req.state.last_logouts.get(user) {
        return Ok(Some(query(seconds_since(stamp, now_micros()), &status)));
    }
    match req.state.storage.last_activity(user).await {
        Ok(Some((stamp, status))) => Ok(Some(query(seconds_since(stamp, now_micros()), &status))),
        Ok(None) => Err(StanzaError::new(Condition::ItemNotFound)),
        Err(e) => Err(StanzaError::internal(
            "cannot read last activity",
            Some(user),
            &e,
        )),
    }
}

/// Logouts not written yet: `record_logout` notes them here and `writer`
/// stores them in batches, so that a logout costs no database round trip
/// of its own (a login and logout made six, and each is a hand-over to a
/// database thread). A logout in the last moments before a crash can be
/// lost: an approximate "last seen" is all XEP-0012 promises.
#[derive(Debug, Default)]
pub struct Pending {
    logouts: std::sync::Mutex<HashMap<BareJid, (i64, String)>>,
    wake: tokio::sync::Notify,
}

/// How long the writer gathers logouts before writing them.
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// Logouts waiting past which the writer is woken at once.
const WRITE_AT: usize = 4096;

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, (i64, String)>> {
        self.logouts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A logout not written yet.
    fn get(&self, user: &BareJid) -> Option<(i64, String)> {
        let map = self.lock();
        if map.is_empty() {
            return None;
        }
        map.get(user).cloned()
    }

    /// Everything waiting, for writing.
    fn take(&self) -> Vec<(BareJid, i64, String)> {
        std::mem::take(&mut *self.lock())
            .into_iter()
            .map(|(user, (stamp, status))| (user, stamp, status))
            .collect()
    }
}

/// Remember when `user`'s last session went offline, and its last status text.
pub fn record_logout(state: &ServerState, user: &BareJid, status: &str) {
    let waiting = {
        let mut map = state.last_logouts.lock();
        map.insert(user.clone(), (now_micros(), status.to_owned()));
        map.len()
    };
    if waiting == 1 || waiting >= WRITE_AT {
        state.last_logouts.wake.notify_one();
    }
}

/// Write what `record_logout` noted, in batches, until shutdown (and what
/// is waiting then); `flush` writes what comes after.
pub async fn writer(state: std::sync::Arc<ServerState>) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = state.last_logouts.wake.notified() => {}
        }
        // Gather for a moment: logouts come in bursts (a shutdown, a
        // network cut), and one statement writes many.
        tokio::select! {
            _ = state.shutdown.cancelled() => {}
            _ = tokio::time::sleep(WRITE_EVERY) => {}
        }
        flush(&state).await;
    }
    flush(&state).await;
}

/// Write the logouts waiting now.
pub async fn flush(state: &ServerState) {
    let logouts = state.last_logouts.take();
    if logouts.is_empty() {
        return;
    }
    if let Err(e) = state.storage.record_last_activities(&logouts).await {
        // Losing these logout times is not worth more than a line.
        tracing::warn!(count = logouts.len(), error = %e, "cannot record last activity");
    }
}

/// Whole seconds from `stamp` to `now` (µs); a clock set back gives 0, not a negative age.
fn seconds_since(stamp: i64, now: i64) -> u64 {
    u64::try_from(now.saturating_sub(stamp) / 1_000_000).unwrap_or(0)
}

/// `<query xmlns='jabber:iq:last' seconds='N'>status</query>`.
fn query(seconds: u64, status: &str) -> Element {
    let mut query = Element::bare("query", ns::LAST);
    set_attr(&mut query, "seconds", seconds.to_string());
    if !status.is_empty() {
        query.append_text(status);
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0012 §3, example 3: fifteen minutes and three seconds ago, "Heading Home".
    #[test]
    fn offline_answer() {
        let now = 1_700_000_000_000_000;
        let q = query(seconds_since(now - 903_400_000, now), "Heading Home");
        assert!(q.is("query", ns::LAST));
        assert_eq!(q.attr("seconds"), Some("903"));
        assert_eq!(q.text(), "Heading Home");
    }

    /// XEP-0012 §5: the server's uptime, an empty element.
    #[test]
    fn server_answer() {
        mark_start();
        let q = query(uptime(), "");
        assert!(
            q.attr("seconds")
                .and_then(|s| s.parse::<u64>().ok())
                .is_some()
        );
        assert_eq!(q.children().count(), 0);
        assert_eq!(q.text(), "");
    }

    #[test]
    fn clock_set_back_is_zero() {
        assert_eq!(seconds_since(2_000_000, 1_000_000), 0);
        assert_eq!(
            seconds_since(i64::MIN, i64::MAX),
            i64::MAX as u64 / 1_000_000
        );
    }
}
