//! The account store contract (implemented in `storage::sql::accounts`).

use super::StoredCredentials;
use crate::storage::StorageError;
use jid::BareJid;
use std::future::Future;

/// Accounts of the internal backend.
pub trait AccountStore {
    /// Create an account; false when it already exists.
    fn create(
        &self,
        user: &BareJid,
        creds: &StoredCredentials,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Create many accounts in one transaction; returns how many were new (existing ones are left as they are).
    fn create_many(
        &self,
        accounts: &[(BareJid, StoredCredentials)],
    ) -> impl Future<Output = Result<usize, StorageError>> + Send;
    /// Replace the credentials; false when the account does not exist.
    fn set_credentials(
        &self,
        user: &BareJid,
        creds: &StoredCredentials,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Delete the account and everything stored for it; false when it did not exist.
    fn delete(&self, user: &BareJid) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// The stored credentials, if the account exists.
    fn credentials(
        &self,
        user: &BareJid,
    ) -> impl Future<Output = Result<Option<StoredCredentials>, StorageError>> + Send;
    /// Usernames of a domain, sorted.
    fn list(&self, domain: &str) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;
}
