//! The server's shared state, passed explicitly (never a global).

use crate::auth::throttle::Throttle;
use crate::config::Config;
use crate::router::Components;
use crate::router::sessions::Sessions;
use crate::storage::Storage;
use crate::stream::tls::Tls;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Large stanzas routed again at once when sessions close.
const LARGE_REROUTES: usize = 4;

/// Everything the listeners, sessions and features share.
pub struct ServerState {
    pub config: Arc<Config>,
    pub storage: Storage,
    pub sessions: Sessions,
    pub components: Components,
    pub throttle: Throttle,
    pub tls: Tls,
    /// Cancelled first when the server shuts down: listeners stop accepting
    /// and services (MUC, search, shared rosters) leave their loops, while
    /// the sessions still run to receive what the services say last (a room
    /// tells its occupants it is going away).
    pub stopping: CancellationToken,
    /// Cancelled once the services have stopped; every session's token is a child.
    pub shutdown: CancellationToken,
    /// Keys fake SCRAM salts for unknown users (kept across restarts).
    pub secret: Vec<u8>,
    /// Serialises changes to one account's roster (see `RosterLocks`).
    pub roster_locks: RosterLocks,
    /// Serialises storing a message offline with a resource's hand-over of
    /// stored messages (see `router::store_offline`).
    pub offline_locks: RosterLocks,
    /// XEP-0191 blocklists of recently active accounts.
    pub blocklists: crate::features::blocking::Cache,
    /// The LDAP directories of the domains that use one.
    pub directories: crate::auth::backends::Directories,
    /// Shared roster groups read from the directories.
    pub shared_rosters: crate::features::roster::shared::SharedRosters,
    /// The command queues of the MUC services.
    pub muc: crate::muc::Services,
    /// The server's XEP-0115 `<c/>` stream feature, made once: its hash
    /// covers the whole disco#info, too much work for every login.
    pub caps_feature: String,
    /// Logouts waiting to be written (XEP-0012, `features::last`).
    pub last_logouts: crate::features::last::Pending,
    /// Rosters just fetched, for the initial presence that follows.
    pub roster_handoff: crate::features::roster::Handoff,
    /// Large stanzas being routed again at once (see `router::reroute_packet`).
    pub large_reroutes: tokio::sync::Semaphore,
    /// The message archives' writer and ids (XEP-0313, `features::mam`).
    pub archiver: crate::features::mam::Archiver,
    connections: AtomicUsize,
}

impl ServerState {
    /// Assemble the state from its parts (fails on an unusable directory setting).
    pub fn new(
        config: Config,
        storage: Storage,
        tls: Tls,
        secret: Vec<u8>,
    ) -> Result<Self, String> {
        let directories = crate::auth::backends::Directories::new(&config)?;
        let throttle = Throttle::new(
            Duration::from_millis(config.auth.throttle_base_ms),
            Duration::from_millis(config.auth.throttle_max_ms),
            Duration::from_secs(config.auth.throttle_window),
        );
        let caps_feature = crate::features::disco::caps_element(&config);
        let archiver = crate::features::mam::Archiver::new(config.archive.queue);
        Ok(ServerState {
            archiver,
            caps_feature,
            config: Arc::new(config),
            storage,
            sessions: Sessions::default(),
            components: Components::default(),
            throttle,
            tls,
            stopping: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            secret,
            blocklists: crate::features::blocking::Cache::default(),
            roster_locks: RosterLocks::default(),
            offline_locks: RosterLocks::default(),
            directories,
            shared_rosters: Default::default(),
            muc: Default::default(),
            roster_handoff: Default::default(),
            last_logouts: Default::default(),
            large_reroutes: tokio::sync::Semaphore::new(LARGE_REROUTES),
            connections: AtomicUsize::new(0),
        })
    }

    /// Count a new connection, unless the limit is reached.
    pub fn try_connect(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let max = self.config.c2s.max_connections;
        let prev = self.connections.fetch_add(1, Ordering::AcqRel);
        if prev >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ConnectionSlot(self.clone()))
    }

    /// Open client connections.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

/// Striped locks that serialise read-modify-write of one account's roster:
/// the contact's session (inbound subscription stanzas) and the user's own
/// (outbound ones, roster sets) run in different tasks. A fixed number of
/// stripes keeps this bounded; holders never route while locked, so two
/// accounts sharing a stripe cannot deadlock.
pub struct RosterLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for RosterLocks {
    fn default() -> Self {
        RosterLocks {
            stripes: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl RosterLocks {
    /// Lock `user`'s roster until the guard is dropped.
    pub async fn lock(&self, user: &jid::BareJid) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        user.hash(&mut h);
        let i = (h.finish() as usize) % self.stripes.len();
        self.stripes[i].lock().await
    }
}

/// Holds one place in the connection limit until dropped.
pub struct ConnectionSlot(Arc<ServerState>);

impl ConnectionSlot {
    /// The shared state.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.0
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}
