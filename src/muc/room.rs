//! One room's state: configuration, affiliations, occupants, history and
//! subject, and the presence and message elements built from them.

use super::config::RoomConfig;
use super::store::Affiliation;
use crate::xmpp::stanza::set_attr;
use jid::{BareJid, FullJid};
use minidom::Element;
use std::collections::{HashMap, VecDeque};

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_REQUEST: &str = "http://jabber.org/protocol/muc#request";
pub const NS_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const NS_SID: &str = crate::xmpp::ns::SID;
pub const NS_MODERATE: &str = "urn:xmpp:message-moderate:1";
pub const NS_RETRACT: &str = "urn:xmpp:message-retract:1";
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";
pub const NS_REGISTER_FORM: &str = "http://jabber.org/protocol/muc#register";

/// An occupant's role (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "none" => Role::None,
            "visitor" => Role::Visitor,
            "participant" => Role::Participant,
            "moderator" => Role::Moderator,
            _ => return None,
        })
    }
}

/// Someone in the room under one nick: one account, possibly from several
/// of its resources at once (multi-session nicks).
#[derive(Debug, Clone)]
pub struct Occupant {
    pub nick: String,
    pub bare: BareJid,
    pub sessions: Vec<FullJid>,
    pub role: Role,
    /// The last presence the occupant sent (show, status, caps...), with no
    /// addresses: reflected to others as from room/nick.
    pub presence: Element,
    pub occupant_id: String,
}

/// A message kept for people who join later.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// As broadcast (from room/nick), without a `to`.
    pub message: Element,
    /// When it was sent, in microseconds since the epoch.
    pub at: i64,
    pub stanza_id: String,
    pub chars: usize,
    /// Its serialised size, counted against a newcomer's queue (`c2s.queue_bytes`).
    pub bytes: usize,
}

#[derive(Debug)]
pub struct Room {
    pub jid: BareJid,
    pub config: RoomConfig,
    /// Created and not yet configured: only its owner may enter (§10.1).
    pub locked: bool,
    pub affiliations: HashMap<BareJid, (Affiliation, Option<String>)>,
    pub occupants: Vec<Occupant>,
    pub history: VecDeque<HistoryEntry>,
    /// The subject text and the nick that set it.
    pub subject: Option<(String, String)>,
    /// Registered nicknames (§7.10), reserved for their members.
    pub nicks: HashMap<BareJid, String>,
}

impl Room {
    pub fn new(jid: BareJid, config: RoomConfig) -> Room {
        Room {
            jid,
            config,
            locked: false,
            affiliations: HashMap::new(),
            occupants: Vec::new(),
            history: VecDeque::new(),
            subject: None,
            nicks: HashMap::new(),
        }
    }

    /// The stored affiliation of `user` (server admins are handled by the caller).
    pub fn affiliation(&self, user: &BareJid) -> Affiliation {
        self.affiliations
            .get(user)
            .map(|(a, _)| *a)
            .unwrap_or(Affiliation::None)
    }

    pub fn with_affiliation(&self, a: Affiliation) -> Vec<BareJid> {
        let mut v: Vec<BareJid> = self
            .affiliations
            .iter()
            .filter(|(_, (x, _))| *x == a)
            .map(|(j, _)| j.clone())
            .collect();
        v.sort();
        v
    }

    /// The role an affiliation gives on entering (§5.1.2 defaults).
    pub fn default_role(&self, a: Affiliation) -> Role {
        match a {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member => Role::Participant,
            Affiliation::None if self.config.moderated => Role::Visitor,
            Affiliation::None => Role::Participant,
            Affiliation::Outcast => Role::None,
        }
    }

    /// The member who registered `nick`, if someone did.
    pub fn nick_owner(&self, nick: &str) -> Option<&BareJid> {
        self.nicks
            .iter()
            .find(|(_, n)| n.as_str() == nick)
            .map(|(j, _)| j)
    }

    pub fn by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick == nick)
    }

    pub fn by_session(&self, jid: &FullJid) -> Option<usize> {
        self.occupants
            .iter()
            .position(|o| o.sessions.iter().any(|s| s == jid))
    }

    /// The occupant one of whose sessions is `jid`.
    pub fn occupant_of(&self, jid: &FullJid) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.sessions.contains(jid))
    }

    /// The occupant under `nick`.
    pub fn occupant_named(&self, nick: &str) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.nick == nick)
    }

    pub fn by_bare(&self, jid: &BareJid) -> Option<usize> {
        self.occupants.iter().position(|o| &o.bare == jid)
    }

    /// The room JID of an occupant: room@service/nick.
    pub fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }

    /// Keep a message for later joiners, within the configured length.
    pub fn remember(&mut self, entry: HistoryEntry) {
        if self.config.history_length == 0 {
            self.history.clear();
            return;
        }
        self.history.push_back(entry);
        while self.history.len() > self.config.history_length {
            self.history.pop_front();
        }
    }
}

/// A muc#user `<x/>` for occupant `o` as `viewer_sees_jid` allows, with `codes`.
pub fn user_x(
    affiliation: Affiliation,
    role: Role,
    jid: Option<&FullJid>,
    nick_change: Option<&str>,
    codes: &[u16],
) -> Element {
    let mut x = Element::bare("x", NS_USER);
    let mut item = Element::bare("item", NS_USER);
    set_attr(&mut item, "affiliation", affiliation.as_str());
    set_attr(&mut item, "role", role.as_str());
    if let Some(j) = jid {
        set_attr(&mut item, "jid", j.to_string());
    }
    if let Some(n) = nick_change {
        set_attr(&mut item, "nick", n.to_owned());
    }
    x.append_child(item);
    for c in codes {
        let mut s = Element::bare("status", NS_USER);
        set_attr(&mut s, "code", c.to_string());
        x.append_child(s);
    }
    x
}

/// An occupant-id element (XEP-0421).
pub fn occupant_id(id: &str) -> Element {
    let mut el = Element::bare("occupant-id", NS_OCCUPANT_ID);
    set_attr(&mut el, "id", id.to_owned());
    el
}
