//! Recently used credentials of internal accounts, kept in memory so that a
//! login does not wait for a database round trip (a hand-over to a database
//! thread, on SQLite, and a good part of a login's cost).
//!
//! What is kept is what the database holds (SCRAM salts and keys, never a
//! password), for at most `TTL`. Every change made through the server
//! forgets the account at once (password change, removal); the `jaseur user
//! passwd|del` commands ask a running server to forget it over the admin
//! socket. Bounded in entries.

use super::StoredCredentials;
use jid::BareJid;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long credentials are trusted without reading them again: the bound
/// on how long an old password works if a change made outside the server
/// (the database edited by hand) is not announced to it.
const TTL: Duration = Duration::from_secs(300);
/// Accounts kept at most (each about 200 bytes).
const MAX_ENTRIES: usize = 16 * 1024;

/// The cache (see the module documentation).
#[derive(Debug, Default)]
pub struct CredentialCache {
    entries: Mutex<HashMap<BareJid, (Instant, StoredCredentials)>>,
}

impl CredentialCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, (Instant, StoredCredentials)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `user`'s credentials, if read recently.
    pub fn get(&self, user: &BareJid) -> Option<StoredCredentials> {
        let map = self.lock();
        map.get(user)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, c)| c.clone())
    }

    /// Keep `user`'s credentials as just read from the database.
    pub fn put(&self, user: &BareJid, creds: &StoredCredentials) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES && !map.contains_key(user) {
            map.retain(|_, (at, _)| now.duration_since(*at) < TTL);
            if map.len() >= MAX_ENTRIES {
                // Still full of live entries: start again rather than track
                // ages; the next logins read the database.
                map.clear();
            }
        }
        map.insert(user.clone(), (now, creds.clone()));
    }

    /// `user`'s credentials changed or the account is gone.
    pub fn forget(&self, user: &BareJid) {
        self.lock().remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_then_forgotten() {
        let cache = CredentialCache::default();
        let alice = BareJid::new("alice@h").expect("jid");
        let creds = StoredCredentials::from_password("pw", 4096).expect("creds");
        assert!(cache.get(&alice).is_none());
        cache.put(&alice, &creds);
        assert_eq!(cache.get(&alice), Some(creds));
        cache.forget(&alice);
        assert!(cache.get(&alice).is_none());
    }
}
