//! SQL implementations of the feature stores, shared by SQLite and PostgreSQL.

pub mod accounts;
pub mod blocking;
pub mod last;
pub mod motd;
pub mod offline;
pub mod private;
pub mod roster;
pub mod vcard;
