//! `[limits]`: per-account storage bounds.

use serde::{Deserialize, Serialize};

/// Per-account storage bounds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Messages kept for an account while it is offline.
    pub offline_messages: i64,
    /// Contacts in one roster.
    pub roster_items: usize,
    /// Bytes of one vCard (XEP-0054).
    pub vcard_size: usize,
    /// Bytes of private XML storage per account (XEP-0049).
    pub private_size: usize,
    /// Entries in one blocklist (XEP-0191).
    pub blocklist_items: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            offline_messages: 1000,
            roster_items: 2000,
            vcard_size: 256 * 1024,
            private_size: 256 * 1024,
            blocklist_items: 1000,
        }
    }
}
