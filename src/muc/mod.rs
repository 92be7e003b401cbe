//! Multi-user chat: the room service at `conference.DOMAIN` (XEP-0045, with
//! XEP-0249 direct invitations passed through, XEP-0410 self-ping, XEP-0421
//! occupant ids, XEP-0359 stanza ids, XEP-0425 moderation and XEP-0059
//! paging of the room list).
//!
//! Each served domain gets one service, registered with the router as a
//! component. A service is one task that owns all its rooms: stanzas and
//! admin commands arrive on queues and are handled one at a time, so room
//! state needs no locks. The server's task tracker owns that task, which
//! stops with the server; a panic while handling one stanza drops that
//! stanza, not the service (`crate::supervise`). Nothing on the message path touches the database;
//! fan-out to occupants is `try_send` on their bounded session queues, so a
//! slow occupant is disconnected by the router rather than slowing the room;
//! a stanza for the whole room is serialised once per variant and shared by
//! those queues (`router::route_shared`).

pub mod config;
pub mod room;
mod service;
pub mod store;

pub use service::{NAME, start};

use jid::BareJid;
use tokio::sync::{mpsc, oneshot};

pub use store::{Affiliation, MucStore, StoredAffiliation, StoredRoom};

/// One room, as `jaseur muc list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub jid: BareJid,
    pub name: String,
    pub occupants: usize,
    pub persistent: bool,
    pub public: bool,
    pub owners: Vec<BareJid>,
}

/// What an administrator does to a live service (CLI through the admin
/// socket, or XEP-0133-style ad-hoc commands). The service answers on `reply`.
#[derive(Debug)]
pub enum Command {
    /// The service's rooms (public and hidden).
    List {
        reply: oneshot::Sender<Vec<RoomSummary>>,
    },
    /// Give `jid` the affiliation `affiliation` in `room`; with `sole_owner`
    /// (only with Owner), every other owner becomes a member. Occupants see
    /// the change at once. Fails on an unknown room, or when it would leave
    /// the room without an owner.
    SetAffiliation {
        room: BareJid,
        jid: BareJid,
        affiliation: Affiliation,
        sole_owner: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Destroy `room` (occupants get status 332-style unavailable with the
    /// reason), persistent or not.
    Destroy {
        room: BareJid,
        reason: Option<String>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The command queues of the running services, by service domain.
#[derive(Debug, Default)]
pub struct Services {
    by_domain: std::sync::RwLock<std::collections::HashMap<String, mpsc::Sender<Command>>>,
}

impl Services {
    /// Register a service's command queue.
    pub fn register(&self, service: &str, tx: mpsc::Sender<Command>) {
        let mut map = self.by_domain.write().unwrap_or_else(|p| p.into_inner());
        map.insert(service.to_owned(), tx);
    }

    /// The command queue of `service`, if it runs.
    pub fn get(&self, service: &str) -> Option<mpsc::Sender<Command>> {
        let map = self.by_domain.read().unwrap_or_else(|p| p.into_inner());
        map.get(service).cloned()
    }

    /// Send a command and wait for the service to take it.
    pub async fn send(&self, service: &str, command: Command) -> Result<(), String> {
        let tx = self
            .get(service)
            .ok_or_else(|| format!("no MUC service {service} runs here"))?;
        tx.send(command)
            .await
            .map_err(|_| format!("the MUC service {service} has stopped"))
    }
}
