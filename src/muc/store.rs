//! What the MUC service keeps in the database: persistent rooms (their
//! configuration and subject) and the affiliations of every persistent room.
//! Implemented in `storage::sql::muc` for SQLite and PostgreSQL.
//!
//! Nothing here is on the message path: rooms are loaded when the service
//! starts, and written when an owner changes a configuration, a subject or an
//! affiliation, or destroys a room.

use crate::storage::StorageError;
use jid::BareJid;
use std::future::Future;

/// A persistent room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room's bare JID (`name@conference.domain`).
    pub jid: BareJid,
    /// The configuration, serialised by `muc::config::RoomConfig::to_text`.
    pub config: String,
    /// The subject and who set it (nick), if any.
    pub subject: Option<(String, String)>,
}

/// Affiliations that are stored (`none` is the absence of a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "none" => Affiliation::None,
            "outcast" => Affiliation::Outcast,
            _ => return None,
        })
    }
}

/// One stored affiliation: who, what, and the reason given (bans carry one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAffiliation {
    pub jid: BareJid,
    pub affiliation: Affiliation,
    pub reason: Option<String>,
}

/// Rooms and affiliations of MUC services.
pub trait MucStore {
    /// Every persistent room of the service `service` (e.g. `conference.example.org`).
    fn rooms(
        &self,
        service: &str,
    ) -> impl Future<Output = Result<Vec<StoredRoom>, StorageError>> + Send;
    /// Create or replace a room's configuration and subject.
    fn save_room(&self, room: &StoredRoom)
    -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Delete a room and its affiliations; false when there was none.
    fn delete_room(
        &self,
        room: &BareJid,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// The affiliations of a room.
    fn affiliations(
        &self,
        room: &BareJid,
    ) -> impl Future<Output = Result<Vec<StoredAffiliation>, StorageError>> + Send;
    /// Registered nicknames of a room (XEP-0045 §7.10): (member, nick).
    fn nicks(
        &self,
        room: &BareJid,
    ) -> impl Future<Output = Result<Vec<(BareJid, String)>, StorageError>> + Send;
    /// Register `nick` for `jid` in `room`, or drop its registration (None).
    fn set_nick(
        &self,
        room: &BareJid,
        jid: &BareJid,
        nick: Option<&str>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Set one affiliation (`Affiliation::None` deletes the row).
    fn set_affiliation(
        &self,
        room: &BareJid,
        entry: &StoredAffiliation,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}
