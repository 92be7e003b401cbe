//! Authentication: credential backends behind one interface, and throttling of
//! failed attempts.
//!
//! The internal backend keeps SCRAM keys in the database (`store`); the LDAP
//! backend (issue "ENT/LDAP") will verify PLAIN passwords against a directory.

pub mod internal;
pub mod store;
pub mod throttle;

pub use internal::{StoredCredentials, credentials_for};
pub use store::AccountStore;
