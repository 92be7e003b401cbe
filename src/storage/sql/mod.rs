//! SQL implementations of the feature stores, shared by SQLite and PostgreSQL.

pub mod accounts;
pub mod blocking;
pub mod last;
pub mod motd;
pub mod muc;
pub mod offline;
pub mod private;
pub mod roster;
pub mod vcard;

use jid::BareJid;

/// The (domain, username) key every per-account table uses.
pub(crate) fn owner(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or(""),
    )
}
