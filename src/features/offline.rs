//! XEP-0160: Best Practices for Handling Offline Messages (storage side).
//!
//! The router stores here every message it accepted for an account that had
//! no session able to take it, including what was still queued for a
//! session that closed. Delivery at the next available presence, with
//! XEP-0203 delay stamps, belongs to the IM core.

use crate::storage::StorageError;
use jid::BareJid;
use minidom::Element;
use std::future::Future;

/// Messages loaded and written per round trip at login.
pub const BATCH: i64 = 100;

/// A stored message as it is handed over: with its XEP-0203 delay stamp.
pub fn with_delay(m: &OfflineMessage, domain: &str) -> Option<Element> {
    let mut el: Element = m.stanza.parse().ok()?;
    el.append_child(crate::xmpp::stanza::delay(
        domain,
        m.stamp,
        Some("Offline storage"),
    ));
    Some(el)
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: i64,
    /// The serialised stanza.
    pub stanza: String,
    /// When it was stored, µs since the epoch.
    pub stamp: i64,
}

/// Offline messages, per account.
pub trait OfflineStore {
    /// Store a serialised stanza for `owner`.
    fn store_offline(
        &self,
        owner: &BareJid,
        stanza: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// How many messages wait for `owner`.
    fn count_offline(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// The oldest `limit` messages for `owner`, oldest first.
    fn load_offline(
        &self,
        owner: &BareJid,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<OfflineMessage>, StorageError>> + Send;
    /// Remove messages up to and including `last_id` once they were delivered.
    fn remove_offline(
        &self,
        owner: &BareJid,
        last_id: i64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}
