//! SQL implementations of the feature stores, shared by SQLite and PostgreSQL.

pub mod accounts;
pub mod offline;
