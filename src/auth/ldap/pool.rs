//! A bounded pool of LDAP connections with back-off while the directory is
//! unreachable.
//!
//! ldap3 has no pool of its own. A connection's identity changes with each
//! bind, so a connection is leased to one check at a time and remembers who
//! it is bound as; the number of connections never exceeds `pool_size`,
//! which is what keeps a burst of logins at 8:00 from opening thousands of
//! connections to the directory.

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Who a connection is bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Identity {
    /// Fresh, or after an anonymous bind.
    Anonymous,
    /// The service account (`bind_dn`).
    Service,
    /// A user, after checking a password.
    User,
}

struct Conn {
    ldap: Ldap,
    identity: Identity,
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("the directory is unreachable (retrying in {0:?})")]
    Down(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
}

#[derive(Default)]
struct Health {
    down_since: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// Longest wait between two connection attempts while the directory is down.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) struct Pool {
    url: String,
    settings: LdapConnSettings,
    slots: Semaphore,
    size: usize,
    idle: Mutex<Vec<Conn>>,
    open: AtomicUsize,
    high_water: AtomicUsize,
    health: Mutex<Health>,
}

/// Connections open now, the most ever open at once, and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub open: usize,
    pub high_water: usize,
    pub size: usize,
}

impl Pool {
    pub(super) fn new(url: String, settings: LdapConnSettings, size: usize) -> Pool {
        Pool {
            url,
            settings,
            slots: Semaphore::new(size),
            size,
            idle: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            high_water: AtomicUsize::new(0),
            health: Mutex::new(Health::default()),
        }
    }

    pub(super) fn stats(&self) -> PoolStats {
        PoolStats {
            open: self.open.load(Ordering::Acquire),
            high_water: self.high_water.load(Ordering::Acquire),
            size: self.size,
        }
    }

    /// Wait for a free slot (the caller bounds the wait with its deadline).
    pub(super) async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        self.slots.acquire().await.ok()
    }

    /// A connection for the holder of `permit`: an idle one, or a new one.
    pub(super) async fn lease<'a>(
        &'a self,
        permit: SemaphorePermit<'a>,
    ) -> Result<Lease<'a>, PoolError> {
        let mut idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.pop()
        };
        if let Some(c) = idle.as_mut()
            && c.ldap.is_closed()
        {
            idle = None;
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        let conn = match idle {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            in_flight: false,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Conn, PoolError> {
        {
            let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = health.retry_at {
                let now = Instant::now();
                if at > now {
                    return Err(PoolError::Down(at - now));
                }
            }
        }
        match LdapConnAsync::with_settings(self.settings.clone(), &self.url).await {
            Ok((conn, ldap)) => {
                tokio::spawn(async move {
                    if let Err(e) = conn.drive().await {
                        tracing::debug!(error = %e, "LDAP connection ended");
                    }
                });
                let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
                self.high_water.fetch_max(open, Ordering::AcqRel);
                self.succeeded();
                Ok(Conn {
                    ldap,
                    identity: Identity::Anonymous,
                })
            }
            Err(e) => {
                let e = e.to_string();
                self.failed(&e);
                Err(PoolError::Connect(e))
            }
        }
    }

    /// The directory answered: end any back-off, and say so once.
    pub(super) fn succeeded(&self) {
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(since) = h.down_since.take() {
            tracing::warn!(
                url = %self.url,
                after = ?since.elapsed(),
                "LDAP directory answers again"
            );
        }
        h.failures = 0;
        h.retry_at = None;
    }

    /// The directory failed us: back off before the next connection, drop the
    /// idle connections (a restarted directory leaves them all dead), and
    /// say so once per outage rather than per login.
    pub(super) fn failed(&self, error: &str) {
        let stale: Vec<Conn> = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *idle)
        };
        self.open.fetch_sub(stale.len(), Ordering::AcqRel);
        let mut h = self.health.lock().unwrap_or_else(|p| p.into_inner());
        h.failures = h.failures.saturating_add(1);
        let backoff = Duration::from_millis(250u64 << h.failures.min(6)).min(MAX_BACKOFF);
        h.retry_at = Some(Instant::now() + backoff);
        if h.down_since.is_none() {
            h.down_since = Some(Instant::now());
            tracing::error!(
                url = %self.url,
                error,
                "LDAP directory unavailable: its accounts get temporary-auth-failure until it answers"
            );
        }
    }
}

/// One connection, held exclusively until dropped.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    /// An operation was started and not finished: if the lease is dropped
    /// now (timeout), the connection's state is unknown and it is discarded.
    in_flight: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    pub(super) fn identity(&self) -> Identity {
        self.conn
            .as_ref()
            .map(|c| c.identity)
            .unwrap_or(Identity::Anonymous)
    }

    pub(super) fn set_identity(&mut self, identity: Identity) {
        if let Some(c) = self.conn.as_mut() {
            c.identity = identity;
        }
    }

    /// The handle, for one operation; call `done` when it returned.
    pub(super) fn start(&mut self) -> Option<&mut Ldap> {
        self.in_flight = true;
        self.conn.as_mut().map(|c| &mut c.ldap)
    }

    /// The operation returned; `ok` is false when the connection failed.
    pub(super) fn done(&mut self, ok: bool) {
        self.in_flight = !ok;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if self.in_flight || conn.ldap.is_closed() {
            self.pool.open.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push(conn);
    }
}
