//! Authentication: credential backends behind one interface, and throttling of
//! failed attempts.
//!
//! The internal backend keeps SCRAM keys in the database (`store`); the LDAP
//! backend verifies PLAIN passwords against a directory (`ldap`). Each
//! domain lists its backends in order (`backends`).

pub mod backends;
pub mod internal;
pub mod ldap;
pub mod store;
pub mod throttle;

pub use internal::{StoredCredentials, credentials_for};
pub use store::AccountStore;
