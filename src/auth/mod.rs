//! Authentication: credential backends behind one interface, and throttling of
//! failed attempts.
//!
//! The internal backend keeps SCRAM keys in the database (`store`); the LDAP
//! backend verifies PLAIN passwords against a directory (`ldap`). Each
//! domain lists its backends in order (`backends`).

pub mod backends;
pub mod cache;
pub mod internal;
pub mod ldap;
pub mod store;
pub mod throttle;

pub use internal::{StoredCredentials, credentials_for};
pub use store::AccountStore;

/// The stored credentials of internal account `user`, from the cache of
/// recently used ones or the database (`cache.rs`).
pub async fn credentials(
    state: &crate::state::ServerState,
    user: &jid::BareJid,
) -> Result<Option<StoredCredentials>, crate::storage::StorageError> {
    if let Some(c) = state.credentials.get(user) {
        return Ok(Some(c));
    }
    let stored = state.storage.credentials(user).await?;
    if let Some(c) = &stored {
        state.credentials.put(user, c);
    }
    Ok(stored)
}
