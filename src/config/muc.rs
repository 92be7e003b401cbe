//! `[muc]`: the conference service of each served domain.

use serde::{Deserialize, Serialize};

/// Who may create rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomCreation {
    /// Any user, local or (once federation exists) remote.
    Anyone,
    /// Users of the served domains.
    Local,
    /// Server administrators only.
    Admins,
}

/// The conference service (XEP-0045) of each served domain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MucConfig {
    /// Run a MUC service for every served domain.
    pub enabled: bool,
    /// Its address is SUBDOMAIN.DOMAIN.
    pub subdomain: String,
    pub room_creation: RoomCreation,
    /// Messages of history a new room keeps (owners can change it).
    pub default_history: usize,
    /// Most messages of history a room may keep.
    pub max_history: usize,
    /// Most occupants a room may have (owners can set less).
    pub max_occupants: usize,
    /// Stanzas waiting for the service before senders get resource-constraint.
    pub queue_size: usize,
    /// Rooms one account may own (server admins: no limit).
    pub max_rooms_per_user: usize,
    /// A new room stays locked until its owner configures it (XEP-0045
    /// §10.1); off, it opens at once with the default configuration (an
    /// "instant room" without the round trip, as ejabberd does).
    pub lock_new_rooms: bool,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            enabled: true,
            subdomain: "conference".into(),
            room_creation: RoomCreation::Local,
            default_history: 20,
            max_history: 100,
            max_occupants: 1000,
            queue_size: 8192,
            max_rooms_per_user: 100,
            lock_new_rooms: true,
        }
    }
}
