//! The roster store contract (implemented in `storage::sql::roster`).

use crate::storage::StorageError;
use jid::BareJid;
use std::future::Future;

/// The subscription state of a roster item (RFC 6121 §3), or a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    Both,
    /// Removed (kept so versioned roster gets can report the removal).
    Remove,
}

impl Subscription {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
            Subscription::Remove => "remove",
        }
    }

    /// Parse a stored value (unknown values read as none).
    pub fn parse(s: &str) -> Self {
        match s {
            "to" => Subscription::To,
            "from" => Subscription::From,
            "both" => Subscription::Both,
            "remove" => Subscription::Remove,
            _ => Subscription::None,
        }
    }

    /// Whether the user receives the contact's presence.
    pub fn to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// Whether the contact receives the user's presence.
    pub fn from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    /// This state with the "to" half set or cleared.
    pub fn with_to(self, on: bool) -> Self {
        Subscription::of(on, self.from())
    }

    /// This state with the "from" half set or cleared.
    pub fn with_from(self, on: bool) -> Self {
        Subscription::of(self.to(), on)
    }

    fn of(to: bool, from: bool) -> Self {
        match (to, from) {
            (true, true) => Subscription::Both,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (false, false) => Subscription::None,
        }
    }
}

/// One contact in a roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    pub contact: BareJid,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// A subscription request to the contact is pending (pending-out).
    pub ask: bool,
    /// The user pre-approved the contact's future request (RFC 6121 §3.4).
    pub approved: bool,
    pub groups: Vec<String>,
    /// The roster version at which this item last changed.
    pub version: i64,
}

impl RosterItem {
    /// A new item with no subscription.
    pub fn new(contact: BareJid) -> Self {
        RosterItem {
            contact,
            name: None,
            subscription: Subscription::None,
            ask: false,
            approved: false,
            groups: Vec::new(),
            version: 0,
        }
    }
}

/// Rosters and pending inbound subscription requests, per account.
pub trait RosterStore {
    /// The live items (no tombstones) and the current version.
    fn roster(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<(Vec<RosterItem>, i64), StorageError>> + Send;
    /// The live items, without their groups or the roster version
    /// (presence needs only the subscriptions).
    fn roster_items(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<Vec<RosterItem>, StorageError>> + Send;
    /// Items (tombstones included) changed after `since`, and the current version.
    fn roster_changes(
        &self,
        owner: &BareJid,
        since: i64,
    ) -> impl Future<Output = Result<(Vec<RosterItem>, i64), StorageError>> + Send;
    /// One item, if live.
    fn roster_item(
        &self,
        owner: &BareJid,
        contact: &BareJid,
    ) -> impl Future<Output = Result<Option<RosterItem>, StorageError>> + Send;
    /// Insert or replace an item (a tombstone with `Subscription::Remove`); returns the new roster version.
    fn put_roster_item(
        &self,
        owner: &BareJid,
        item: &RosterItem,
    ) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// How many live items a roster has.
    fn roster_size(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<i64, StorageError>> + Send;
    /// Remember an inbound subscription request (the stanza, serialised).
    fn store_request(
        &self,
        owner: &BareJid,
        contact: &BareJid,
        stanza: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Pending inbound requests, oldest first.
    fn requests(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<Vec<(BareJid, String)>, StorageError>> + Send;
    /// Whether a request from `contact` is pending; and forget it if `remove`.
    fn take_request(
        &self,
        owner: &BareJid,
        contact: &BareJid,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send;
    /// Everything stored for an account (when it is deleted).
    fn remove_roster_user(
        &self,
        owner: &BareJid,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}
