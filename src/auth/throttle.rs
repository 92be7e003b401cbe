//! Growing delays after failed authentication, per client address and per
//! account.
//!
//! A delay, never a lockout: anyone could otherwise lock a user out by
//! guessing wrong on purpose. Each failure doubles the delay up to a ceiling;
//! failures are forgotten after a quiet window. The table is bounded so that
//! a flood of addresses cannot grow memory without limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most entries kept; past this, expired ones are pruned and new ones are not recorded.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// An IPv4 address, or the /64 of an IPv6 one (one host usually owns a /64).
    Net(u128),
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// Failure bookkeeping shared by every listener.
#[derive(Debug)]
pub struct Throttle {
    base: Duration,
    max: Duration,
    window: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
}

fn net_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V4(v4) => Key::Net(u32::from(v4) as u128),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Key::Net(u32::from(v4) as u128),
            None => Key::Net(u128::from(v6) & !((1u128 << 64) - 1)),
        },
    }
}

impl Throttle {
    /// A throttle with the given first delay, ceiling and forgetting window.
    pub fn new(base: Duration, max: Duration, window: Duration) -> Self {
        Throttle {
            base,
            max,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn delay_for(&self, e: &Entry, now: Instant) -> Duration {
        if e.failures == 0 || now.duration_since(e.last) > self.window {
            return Duration::ZERO;
        }
        let factor = 1u32 << (e.failures - 1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// How long to wait before answering the next attempt from `ip` for `account`.
    pub fn delay(&self, ip: IpAddr, account: Option<&str>) -> Duration {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut d = entries
            .get(&net_key(ip))
            .map(|e| self.delay_for(e, now))
            .unwrap_or_default();
        if let Some(a) = account
            && let Some(e) = entries.get(&Key::Account(a.to_owned()))
        {
            d = d.max(self.delay_for(e, now));
        }
        d
    }

    /// Record a failed attempt.
    pub fn failed(&self, ip: IpAddr, account: Option<&str>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let window = self.window;
            entries.retain(|_, e| now.duration_since(e.last) <= window);
        }
        let mut keys = vec![net_key(ip)];
        if let Some(a) = account {
            keys.push(Key::Account(a.to_owned()));
        }
        for key in keys {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
                continue;
            }
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if now.duration_since(e.last) > self.window {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        }
    }

    /// Forget the account's failures after it authenticated.
    pub fn succeeded(&self, account: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&Key::Account(account.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let t = Throttle::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Duration::from_secs(60),
        );
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert_eq!(t.delay(ip, Some("alice@x")), Duration::ZERO);
        t.failed(ip, Some("alice@x"));
        assert_eq!(t.delay(ip, None), Duration::from_millis(100));
        t.failed(ip, Some("alice@x"));
        assert_eq!(t.delay(ip, None), Duration::from_millis(200));
        t.failed(ip, Some("alice@x"));
        assert_eq!(t.delay(ip, None), Duration::from_millis(350));
        // Another address trying the same account is slowed too.
        assert_eq!(t.delay(other, Some("alice@x")), Duration::from_millis(350));
        assert_eq!(t.delay(other, Some("bob@x")), Duration::ZERO);
        t.succeeded("alice@x");
        assert_eq!(t.delay(other, Some("alice@x")), Duration::ZERO);
    }

    #[test]
    fn ipv6_grouped_by_64() {
        let t = Throttle::new(
            Duration::from_millis(10),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        t.failed("2001:db8::1".parse().expect("ip"), None);
        assert!(t.delay("2001:db8::ffff".parse().expect("ip"), None) > Duration::ZERO);
        assert_eq!(
            t.delay("2001:db8:0:1::1".parse().expect("ip"), None),
            Duration::ZERO
        );
    }
}
