//! XEP-0313 Message Archive Management for local accounts, with XEP-0359
//! stanza ids, XEP-0441 preferences, XEP-0334 hints, XEP-0059 paging and
//! XEP-0297 forwarding of results.
//!
//! Two pipeline steps archive (features/mod.rs): what a local user sends,
//! before it is routed, and what a local user receives, before delivery,
//! which also stamps the message with the `<stanza-id/>` the archive knows
//! it by. A message goes on only once its row is committed, so nothing
//! delivered can be missing from the archive after a crash; rows from many
//! sessions are committed together by one writer (`Archiver`), so the cost
//! of a commit is shared by everything that queued meanwhile. Queries are
//! in `query.rs`; the SQL in storage/sql/archive.rs.

mod query;
pub mod store;

pub use query::{form, metadata, prefs, query};

use crate::state::ServerState;
use crate::storage::now_micros;
use crate::xmpp::error::StanzaError;
use crate::xmpp::ns;
use crate::xmpp::stanza::{self, set_attr};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use store::{ArchiveRow, ArchiveStore, StoredPrefs};
use tokio::sync::{mpsc, oneshot};

/// The archive namespace, and its extended features (XEP-0313 §6, §7).
pub const NS: &str = "urn:xmpp:mam:2";
pub const NS_EXTENDED: &str = "urn:xmpp:mam:2#extended";
/// XEP-0359: Unique and Stable Stanza IDs.
pub const NS_SID: &str = ns::SID;

/// Archive ids: unique across the server and increasing. An id is the
/// time of archiving in microseconds since the epoch, bumped past the last
/// one handed out, so that it doubles as the message's time (`start` and
/// `end` of a query are id bounds) and stays unique when two messages meet
/// in the same microsecond or the clock steps back.
#[derive(Debug, Default)]
pub struct Ids {
    last: AtomicI64,
}

impl Ids {
    /// Continue after `id`, the largest already stored.
    pub fn start_after(&self, id: i64) {
        self.last.fetch_max(id, Ordering::Relaxed);
    }

    pub fn next(&self) -> i64 {
        let now = now_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let id = now.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange_weak(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(seen) => last = seen,
            }
        }
    }
}

/// A batch of rows and who waits for their commit.
struct Request {
    rows: Vec<ArchiveRow>,
    done: oneshot::Sender<bool>,
}

/// Rows committed in one transaction at most.
const MAX_BATCH_ROWS: usize = 2048;

/// The archive's write side: sessions hand it rows and wait for their
/// commit; one writer task commits whatever queued while the previous
/// commit ran. The queue is bounded: when it is full, senders wait (their
/// sessions stop reading), nothing is dropped.
pub struct Archiver {
    tx: mpsc::Sender<Request>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<Request>>>,
    pub ids: Ids,
    /// XEP-0441 preferences of the accounts that set some (the others
    /// follow the configured default), all in memory: read for every
    /// message, changed rarely.
    prefs: std::sync::RwLock<HashMap<BareJid, StoredPrefs>>,
}

impl Archiver {
    /// An archiver whose queue holds `capacity` requests.
    pub fn new(capacity: usize) -> Archiver {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Archiver {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            ids: Ids::default(),
            prefs: std::sync::RwLock::new(HashMap::new()),
        }
    }

    /// Commit `rows`; false when they could not be (logged by the writer).
    async fn write(&self, rows: Vec<ArchiveRow>) -> bool {
        let (done, committed) = oneshot::channel();
        if self.tx.send(Request { rows, done }).await.is_err() {
            return false;
        }
        committed.await.unwrap_or(false)
    }

    fn prefs_of(&self, user: &BareJid) -> Option<StoredPrefs> {
        let map = self.prefs.read().unwrap_or_else(|p| p.into_inner());
        map.get(user).cloned()
    }

    fn remember_prefs(&self, user: &BareJid, prefs: StoredPrefs) {
        let mut map = self.prefs.write().unwrap_or_else(|p| p.into_inner());
        map.insert(user.clone(), prefs);
    }
}

/// Load what the archiver keeps in memory (the last id, everyone's
/// preferences) and commit archive rows until the process ends.
///
/// Not owned by the server's task tracker: sessions wait for this task to
/// commit their messages, so it must outlive every session, and it has
/// nothing of its own to finish.
pub async fn writer(state: std::sync::Arc<ServerState>) {
    let Some(mut rx) = state
        .archiver
        .rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return;
    };
    while let Some(first) = rx.recv().await {
        let mut count = first.rows.len();
        let mut batch = vec![first];
        while count < MAX_BATCH_ROWS {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.rows.len();
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let rows: Vec<ArchiveRow> = batch
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.rows))
            .collect();
        let ok = match state.storage.archive(&rows).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(rows = rows.len(), error = %e, "cannot write to the archive: messages refused");
                false
            }
        };
        for r in batch {
            let _ = r.done.send(ok);
        }
    }
}

/// Read the last archive id and the stored preferences (at start).
pub async fn load(state: &ServerState) -> Result<(), crate::storage::StorageError> {
    if let Some(last) = state.storage.last_archive_id().await? {
        state.archiver.ids.start_after(last);
    }
    for (user, prefs) in state.storage.all_archive_prefs().await? {
        state.archiver.remember_prefs(&user, prefs);
    }
    Ok(())
}

/// Whether a message belongs in a user's archive (XEP-0313 §5.1.1, XEP-0334):
/// chat and normal messages with a body, or with a `store` hint; never
/// errors, headlines or groupchat messages (rooms keep those), nor anything
/// hinted `no-store` or `no-permanent-store`.
fn archivable(el: &Element) -> bool {
    if !el.is("message", ns::CLIENT) {
        return false;
    }
    if !matches!(el.attr("type"), None | Some("chat") | Some("normal")) {
        return false;
    }
    if el.has_child("no-store", ns::HINTS) || el.has_child("no-permanent-store", ns::HINTS) {
        return false;
    }
    el.has_child("body", ns::CLIENT) || el.has_child("store", ns::HINTS)
}

/// What `user`'s preferences say about a message with `other`, looked up
/// under the read lock (nothing copied: this runs for every message).
enum Choice {
    Archive,
    Skip,
    /// Only if `other` is in the user's roster.
    IfInRoster,
}

impl Archiver {
    /// XEP-0441: the JID lists first (a full JID or its bare JID matching),
    /// then the user's default, else `default`.
    fn choice(&self, user: &BareJid, other: &Jid, default: &str) -> Choice {
        let map = self.prefs.read().unwrap_or_else(|p| p.into_inner());
        let mode = match map.get(user) {
            Some(p) => {
                let bare = other.to_bare();
                let listed = |list: &[String]| {
                    list.iter()
                        .any(|j| j == other.as_str() || j == bare.as_str())
                };
                if listed(&p.never) {
                    return Choice::Skip;
                }
                if listed(&p.always) {
                    return Choice::Archive;
                }
                p.default_mode.as_str()
            }
            None => default,
        };
        match mode {
            "never" => Choice::Skip,
            "roster" => Choice::IfInRoster,
            _ => Choice::Archive,
        }
    }
}

/// Whether `user`'s preferences let a message with `other` be archived.
async fn wanted(state: &ServerState, user: &BareJid, other: &Jid) -> bool {
    let default = state.config.archive.default.as_str();
    match state.archiver.choice(user, other, default) {
        Choice::Archive => true,
        Choice::Skip => false,
        Choice::IfInRoster => {
            use super::roster::store::RosterStore;
            match state.storage.roster_item(user, &other.to_bare()).await {
                Ok(item) => item.is_some(),
                Err(e) => {
                    // Archiving too much beats losing history.
                    tracing::error!(error = %e, "cannot read the roster for archiving preferences");
                    true
                }
            }
        }
    }
}

/// The row for `owner`'s archive of `el`, exchanged with `other`.
fn row(owner: &BareJid, id: i64, other: &Jid, outgoing: bool, el: &Element) -> Option<ArchiveRow> {
    let stanza = match stanza::to_string(el) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a message for the archive");
            return None;
        }
    };
    let body = el
        .children()
        .filter(|c| c.is("body", ns::CLIENT))
        .map(Element::text)
        .collect::<Vec<_>>()
        .join("\n");
    Some(ArchiveRow {
        owner: owner.clone(),
        id,
        with_jid: other.to_bare().to_string(),
        with_resource: other.resource().map(|r| r.to_string()).unwrap_or_default(),
        outgoing,
        origin_id: el
            .get_child("origin-id", NS_SID)
            .and_then(|o| o.attr("id"))
            .map(str::to_owned),
        body,
        stanza,
    })
}

/// Outbound step: archive a message a local user sends, in the sender's
/// archive. Err: it could not be, and the message must not go on.
pub async fn sent(state: &ServerState, from: &FullJid, el: &Element) -> Result<(), StanzaError> {
    if !state.config.archive.enabled || !archivable(el) {
        return Ok(());
    }
    let Some(to) = el.attr("to").and_then(|t| Jid::new(t).ok()) else {
        return Ok(());
    };
    let owner = from.to_bare();
    if to.to_bare() == owner {
        // A note to oneself (or to another of one's resources) is archived
        // once, as received.
        return Ok(());
    }
    if !wanted(state, &owner, &to).await {
        return Ok(());
    }
    let id = state.archiver.ids.next();
    let rows = row(&owner, id, &to, true, el).into_iter().collect();
    commit(state, rows, &owner).await
}

/// Inbound step: a message for local account `to`. Any `<stanza-id/>`
/// claiming to be ours is removed (XEP-0359 §5: only we may say what our
/// archive calls a message); an archivable message is archived and stamped
/// with the id its archive knows it by.
pub async fn received(
    state: &ServerState,
    to: &BareJid,
    el: &mut Element,
) -> Result<(), StanzaError> {
    if !el.is("message", ns::CLIENT) {
        return Ok(());
    }
    strip_forged_ids(el, to);
    if !state.config.archive.enabled || !archivable(el) {
        return Ok(());
    }
    let Some(from) = el.attr("from").and_then(|f| Jid::new(f).ok()) else {
        return Ok(());
    };
    if !wanted(state, to, &from).await {
        return Ok(());
    }
    let id = state.archiver.ids.next();
    let mut sid = Element::bare("stanza-id", NS_SID);
    set_attr(&mut sid, "id", id.to_string());
    set_attr(&mut sid, "by", to.as_str());
    el.append_child(sid);
    let rows = row(to, id, &from, false, el).into_iter().collect();
    commit(state, rows, to).await
}

/// Remove the `<stanza-id/>` elements that name `owner` as their archive.
fn strip_forged_ids(el: &mut Element, owner: &BareJid) {
    let forged = |c: &Element| c.is("stanza-id", NS_SID) && c.attr("by") == Some(owner.as_str());
    if !el.children().any(forged) {
        return;
    }
    let mut kept = Vec::new();
    while let Some(sid) = el.remove_child("stanza-id", NS_SID) {
        if sid.attr("by") != Some(owner.as_str()) {
            kept.push(sid);
        }
    }
    for sid in kept {
        el.append_child(sid);
    }
}

async fn commit(
    state: &ServerState,
    rows: Vec<ArchiveRow>,
    owner: &BareJid,
) -> Result<(), StanzaError> {
    if rows.is_empty() || state.archiver.write(rows).await {
        return Ok(());
    }
    let mut e = StanzaError::new(crate::xmpp::error::Condition::InternalServerError)
        .with_text("the message archive cannot be written: try again later");
    e.kind = crate::xmpp::error::ErrorType::Wait;
    tracing::warn!(owner = %owner, "message refused: the archive is unavailable");
    Err(e)
}

/// `<forwarded/>` around a message stored in `owner`'s archive, stamped
/// with its archive time.
fn forwarded(owner: &BareJid, id: i64, stored: Element) -> Element {
    stanza::forwarded(stored, Some(stanza::delay(owner.as_str(), id, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Element {
        xml.parse().expect("xml")
    }

    #[test]
    fn ids_increase_and_stay_unique() {
        let ids = Ids::default();
        ids.start_after(i64::MAX / 2);
        let a = ids.next();
        let b = ids.next();
        assert_eq!(a, i64::MAX / 2 + 1);
        assert_eq!(b, a + 1);
        let fresh = Ids::default();
        let now = now_micros();
        assert!(fresh.next() >= now);
    }

    #[test]
    fn what_is_archived() {
        let c = "xmlns='jabber:client'";
        assert!(archivable(&msg(&format!(
            "<message {c} type='chat'><body>hi</body></message>"
        ))));
        assert!(archivable(&msg(&format!(
            "<message {c}><body>normal</body></message>"
        ))));
        for no in [
            format!("<message {c} type='groupchat'><body>room</body></message>"),
            format!("<message {c} type='headline'><body>news</body></message>"),
            format!("<message {c} type='error'><body>err</body></message>"),
            format!(
                "<message {c} type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>"
            ),
            format!(
                "<message {c} type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>"
            ),
            format!(
                "<message {c} type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>"
            ),
        ] {
            assert!(!archivable(&msg(&no)), "{no}");
        }
        assert!(archivable(&msg(&format!(
            "<message {c} type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/><store xmlns='urn:xmpp:hints'/></message>"
        ))));
    }

    #[test]
    fn forged_stanza_ids_are_removed() {
        let owner = BareJid::new("alice@example.org").expect("jid");
        let mut el = msg(
            "<message xmlns='jabber:client' to='alice@example.org' id='m1'><body>x</body>\
             <stanza-id xmlns='urn:xmpp:sid:0' id='fake' by='alice@example.org'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' id='theirs' by='room@conference.example.org'/></message>",
        );
        strip_forged_ids(&mut el, &owner);
        let ids: Vec<_> = el
            .children()
            .filter(|c| c.is("stanza-id", NS_SID))
            .filter_map(|c| c.attr("id"))
            .collect();
        assert_eq!(ids, vec!["theirs"]);
        assert_eq!(el.attr("id"), Some("m1"));
        assert!(el.has_child("body", ns::CLIENT));
    }
}
