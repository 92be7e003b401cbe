//! What the server knows without asking the database: which accounts may
//! have stored offline messages or pending subscription requests, and each
//! domain's message of the day.
//!
//! Every login used to ask the database for all three, although almost
//! every account has none of them: that was half of the queries of a login,
//! and on SQLite each query is a round trip to a worker thread. The server
//! process is the only writer of these tables (the CLI only deletes), so it
//! can keep track in memory. The sets are supersets: an account is added
//! before its row is written and removed only when a read found nothing and
//! nothing was added meanwhile, so a stale entry costs one query, never a
//! missed message.

use crate::features::announce::Motd;
use jid::BareJid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Accounts that may have rows of one kind. Each entry counts the writes
/// begun and those still in flight, so that a read racing with a write never
/// forgets the account.
#[derive(Debug, Default)]
pub struct MayHave {
    accounts: Mutex<HashMap<BareJid, Entry>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Entry {
    begun: u64,
    in_flight: u32,
}

/// A ticket from [`MayHave::check`]: what to present to [`MayHave::found_none`].
/// None when a write was in flight at the time: that read proves nothing.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

/// A write in progress; the account stays listed while it lives.
pub struct Writing<'a> {
    set: &'a MayHave,
    user: BareJid,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Some(e) = self.set.lock().get_mut(&self.user) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
    }
}

impl MayHave {
    fn lock(&self) -> MutexGuard<'_, HashMap<BareJid, Entry>> {
        match self.accounts.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// `user` is about to get a row: keep the guard until it is written.
    pub fn writing(&self, user: &BareJid) -> Writing<'_> {
        let mut accounts = self.lock();
        let e = accounts.entry(user.clone()).or_default();
        e.begun += 1;
        e.in_flight += 1;
        Writing {
            set: self,
            user: user.clone(),
        }
    }

    /// Whether `user` may have rows; the ticket lets a read that found none
    /// clear the entry afterwards.
    pub fn check(&self, user: &BareJid) -> Option<Ticket> {
        self.lock()
            .get(user)
            .map(|e| Ticket((e.in_flight == 0).then_some(e.begun)))
    }

    /// A read found no row for `user`: forget it, unless a write was in
    /// flight when the read began or has begun since.
    pub fn found_none(&self, user: &BareJid, ticket: Ticket) {
        let Some(begun) = ticket.0 else {
            return;
        };
        let mut accounts = self.lock();
        if accounts
            .get(user)
            .is_some_and(|e| e.begun == begun && e.in_flight == 0)
        {
            accounts.remove(user);
        }
    }

    /// Start from the accounts the database holds rows for.
    pub fn fill(&self, users: impl IntoIterator<Item = BareJid>) {
        let mut accounts = self.lock();
        for u in users {
            accounts.entry(u).or_default().begun += 1;
        }
    }
}

/// The in-memory knowledge shared by every clone of a `Storage`.
#[derive(Debug, Default)]
pub struct Hints {
    pub offline: MayHave,
    pub requests: MayHave,
    /// Each domain's message of the day once read (None: the domain has none).
    pub motd: Mutex<HashMap<String, Option<Arc<Motd>>>>,
}

impl Hints {
    pub fn motd(&self) -> MutexGuard<'_, HashMap<String, Option<Arc<Motd>>>> {
        match self.motd.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    #[test]
    fn a_read_that_found_nothing_forgets_the_account() {
        let m = MayHave::default();
        let a = jid("a@x");
        assert!(m.check(&a).is_none());
        drop(m.writing(&a));
        let t = m.check(&a).expect("added");
        m.found_none(&a, t);
        assert!(m.check(&a).is_none());
    }

    #[test]
    fn a_write_during_a_read_keeps_the_account() {
        let m = MayHave::default();
        let a = jid("a@x");
        drop(m.writing(&a));
        let t = m.check(&a).expect("added");
        // Another task stores a row while the read is in flight.
        drop(m.writing(&a));
        m.found_none(&a, t);
        assert!(m.check(&a).is_some());
    }

    #[test]
    fn a_read_begun_while_a_write_was_in_flight_proves_nothing() {
        let m = MayHave::default();
        let a = jid("a@x");
        let w = m.writing(&a);
        // The read may run before the row is committed...
        let t = m.check(&a).expect("listed");
        // ...and the write may commit before the read reports.
        drop(w);
        m.found_none(&a, t);
        assert!(m.check(&a).is_some());
    }
}
