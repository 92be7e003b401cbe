//! What the archive keeps, and the store interface (SQL in
//! `storage/sql/archive.rs`).

use crate::storage::StorageError;
use jid::BareJid;
use std::future::Future;

/// One archived message, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRow {
    /// The archive: a local account's bare JID.
    pub owner: BareJid,
    /// The archive id (see `ids`).
    pub id: i64,
    /// The other party's bare JID, and resource if it had one.
    pub with_jid: String,
    pub with_resource: String,
    /// The owner sent it.
    pub outgoing: bool,
    /// The sender's XEP-0359 origin-id, if any.
    pub origin_id: Option<String>,
    /// The text of its `<body/>`s, for searching.
    pub body: String,
    /// The message, serialised.
    pub stanza: String,
}

/// A stored message as a query returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub id: i64,
    pub stanza: String,
}

/// Which messages a query reads: every bound is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Bare JID of the other party, and its resource when the client gave one.
    pub with_jid: Option<String>,
    pub with_resource: Option<String>,
    /// Inclusive bounds on the id (times are ids: see `ids`).
    pub from_id: Option<i64>,
    pub to_id: Option<i64>,
    /// Exclusive bounds (RSM after/before, after-id/before-id).
    pub after: Option<i64>,
    pub before: Option<i64>,
    /// Only these ids.
    pub ids: Option<Vec<i64>>,
}

/// XEP-0441 preferences as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrefs {
    /// "always", "never" or "roster".
    pub default_mode: String,
    pub always: Vec<String>,
    pub never: Vec<String>,
}

/// The message archives.
pub trait ArchiveStore {
    /// Write `rows` in one transaction.
    fn archive(&self, rows: &[ArchiveRow])
    -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Up to `limit` messages of `owner`'s archive matching `filter`, oldest
    /// first, or newest first when `newest_first`.
    fn archived(
        &self,
        owner: &BareJid,
        filter: &Filter,
        newest_first: bool,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Archived>, StorageError>> + Send;
    /// Whether `owner`'s archive holds `id`.
    fn has_archived(
        &self,
        owner: &BareJid,
        id: i64,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// The first and last ids of `owner`'s archive, if it has any.
    fn archive_bounds(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<Option<(i64, i64)>, StorageError>> + Send;
    /// The largest id in any archive (ids keep increasing across restarts).
    fn last_archive_id(&self) -> impl Future<Output = Result<Option<i64>, StorageError>> + Send;
    /// `owner`'s preferences, if set.
    fn archive_prefs(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<Option<StoredPrefs>, StorageError>> + Send;
    fn set_archive_prefs(
        &self,
        owner: &BareJid,
        prefs: &StoredPrefs,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Every account's preferences (loaded at start).
    fn all_archive_prefs(
        &self,
    ) -> impl Future<Output = Result<Vec<(BareJid, StoredPrefs)>, StorageError>> + Send;
}
