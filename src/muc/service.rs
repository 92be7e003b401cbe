//! The service task: one per `conference.DOMAIN`, owning its rooms.

use super::config::{AllowPm, RoomConfig};
use super::room::*;
use super::store::{Affiliation, MucStore, StoredAffiliation, StoredRoom};
use super::{Command, RoomSummary};
use crate::config::RoomCreation;
use crate::features::disco::{DiscoInfo, Field, Form, Identity};
use crate::router::sessions::Packet;
use crate::state::ServerState;
use crate::xmpp::error::{Condition, ErrorType, StanzaError};
use crate::xmpp::ns;
use crate::xmpp::stanza::{iq_result, set_attr};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The name the service has in disco.
pub const NAME: &str = "Salons / Chatrooms";

pub struct Service {
    state: Arc<ServerState>,
    /// conference.DOMAIN
    domain: String,
    rooms: HashMap<String, Room>,
    /// Salt of stanza ids, so ids from two runs of the server differ.
    id_prefix: String,
    next_id: u64,
    /// iq requests relayed to occupants, by the id we gave them: who asked,
    /// with which id, and when (answers are matched back; stale ones dropped).
    relayed: HashMap<String, Relayed>,
}

struct Relayed {
    requester: FullJid,
    id: String,
    /// room@service/nick of the asked occupant, as the requester addressed it.
    target: String,
    at: std::time::Instant,
}

/// Relayed iqs remembered at most, and for how long.
const MAX_RELAYED: usize = 4096;
const RELAY_TTL: std::time::Duration = std::time::Duration::from_secs(60);

fn err(condition: Condition) -> StanzaError {
    StanzaError::new(condition)
}

fn err_type(condition: Condition, kind: ErrorType) -> StanzaError {
    let mut e = StanzaError::new(condition);
    e.kind = kind;
    e
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn presence_el(from: &str, to: &str, kind: Option<&str>) -> Element {
    let mut p = Element::bare("presence", ns::CLIENT);
    set_attr(&mut p, "from", from.to_owned());
    set_attr(&mut p, "to", to.to_owned());
    if let Some(k) = kind {
        set_attr(&mut p, "type", k.to_owned());
    }
    p
}

fn text_el(name: &str, namespace: &str, text: &str) -> Element {
    let mut el = Element::bare(name, namespace);
    el.append_text(text.to_owned());
    el
}

/// Load the persistent rooms of each served domain's service, register the
/// services with the router, and start their tasks.
pub async fn start(state: &Arc<ServerState>) -> anyhow::Result<()> {
    for domain in state.config.server.domains.clone() {
        let Some(service) = state.config.muc_service(&domain) else {
            continue;
        };
        let mut rooms = HashMap::new();
        for stored in state.storage.rooms(&service).await? {
            let Some(node) = stored.jid.node() else {
                continue;
            };
            let mut room = Room::new(stored.jid.clone(), RoomConfig::from_text(&stored.config));
            room.config.persistent = true;
            room.subject = stored.subject.clone();
            for a in state.storage.affiliations(&stored.jid).await? {
                room.affiliations.insert(a.jid, (a.affiliation, a.reason));
            }
            room.nicks = state
                .storage
                .nicks(&stored.jid)
                .await?
                .into_iter()
                .collect();
            rooms.insert(node.as_str().to_owned(), room);
        }
        tracing::info!(service, rooms = rooms.len(), "MUC service ready");
        let stanzas = state
            .components
            .register(&service, state.config.muc.queue_size);
        let (tx, commands) = mpsc::channel(64);
        state.muc.register(&service, tx);
        let mut prefix = [0u8; 4];
        rand::fill(&mut prefix);
        let s = Service {
            state: state.clone(),
            domain: service,
            rooms,
            id_prefix: prefix.iter().map(|b| format!("{b:02x}")).collect(),
            next_id: 0,
            relayed: HashMap::new(),
        };
        tokio::spawn(s.run(stanzas, commands));
    }
    Ok(())
}

impl Service {
    async fn run(
        mut self,
        mut stanzas: mpsc::Receiver<Packet>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let shutdown = self.state.shutdown.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                p = stanzas.recv() => match p {
                    Some(p) => self.handle(*p).await,
                    None => break,
                },
                Some(c) = commands.recv() => self.command(c).await,
            }
        }
        // §"332": removed because the service is shutting down.
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            if let Some(room) = self.rooms.get(&name) {
                let outs: Vec<Element> = room
                    .occupants
                    .iter()
                    .flat_map(|o| {
                        let from = room.occupant_jid(&o.nick);
                        o.sessions.iter().map(move |s| {
                            let mut p = presence_el(&from, &s.to_string(), Some("unavailable"));
                            p.append_child(user_x(
                                Affiliation::None,
                                Role::None,
                                None,
                                None,
                                &[110, 332],
                            ));
                            p
                        })
                    })
                    .collect();
                for p in outs {
                    self.send(p).await;
                }
            }
        }
    }

    async fn send(&self, el: Element) {
        crate::router::route(&self.state, el).await;
    }

    async fn reply_error(&self, stanza: &Element, e: StanzaError) {
        if stanza.attr("type") == Some("error") {
            return;
        }
        self.send(e.reply_to(stanza)).await;
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{:x}-{:x}", self.id_prefix, now_micros(), self.next_id)
    }

    fn occupant_id(&self, room: &BareJid, user: &BareJid) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(&self.state.secret);
        h.update(room.as_str().as_bytes());
        h.update([0]);
        h.update(user.as_str().as_bytes());
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn affiliation_of(&self, room: &Room, user: &BareJid) -> Affiliation {
        if self.state.config.is_admin(user.as_str()) {
            return Affiliation::Owner;
        }
        room.affiliation(user)
    }

    async fn handle(&mut self, stanza: Element) {
        let (Some(from), Some(to)) = (
            stanza.attr("from").and_then(|f| Jid::new(f).ok()),
            stanza.attr("to").and_then(|t| Jid::new(t).ok()),
        ) else {
            return;
        };
        let Some(node) = to.node().map(|n| n.as_str().to_owned()) else {
            return self.service_stanza(&stanza, &from).await;
        };
        let nick = to.resource().map(|r| r.as_str().to_owned());
        match stanza.name() {
            "presence" => self.presence(&stanza, &from, &node, nick).await,
            "message" => self.message(&stanza, &from, &node, nick).await,
            "iq" => self.iq(&stanza, &from, &node, nick).await,
            _ => {}
        }
    }

    // ---- the service itself ----------------------------------------------

    async fn service_stanza(&mut self, stanza: &Element, from: &Jid) {
        if stanza.name() != "iq" {
            if stanza.name() == "message" {
                self.reply_error(stanza, err(Condition::ServiceUnavailable))
                    .await;
            }
            return;
        }
        let kind = stanza.attr("type").unwrap_or("");
        let payload = stanza.children().next();
        let reply = match (kind, payload) {
            ("get", Some(q)) if q.is("query", ns::DISCO_INFO) && q.attr("node").is_none() => {
                let info = DiscoInfo {
                    identities: vec![Identity {
                        name: Some(NAME.to_owned()),
                        ..Identity::new("conference", "text")
                    }],
                    features: [
                        ns::DISCO_INFO,
                        ns::DISCO_ITEMS,
                        NS_MUC,
                        NS_RSM,
                        ns::PING,
                        NS_OCCUPANT_ID,
                        NS_SID,
                        NS_MODERATE,
                    ]
                    .map(String::from)
                    .to_vec(),
                    forms: Vec::new(),
                };
                Ok(Some(info.to_element(None)))
            }
            ("get", Some(q)) if q.is("query", ns::DISCO_ITEMS) && q.attr("node").is_none() => {
                Ok(Some(self.room_list(q, from)))
            }
            ("get", Some(q)) if q.is("ping", ns::PING) => Ok(None),
            ("result" | "error", _) => return,
            _ => Err(err(Condition::ServiceUnavailable)),
        };
        match reply {
            Ok(p) => self.send(iq_result(stanza, p)).await,
            Err(e) => self.reply_error(stanza, e).await,
        }
    }

    /// Public rooms, with XEP-0059 paging (`max`, `after`, `before`, `index`).
    fn room_list(&self, query: &Element, _from: &Jid) -> Element {
        let mut rooms: Vec<&Room> = self
            .rooms
            .values()
            .filter(|r| r.config.public && !r.locked)
            .collect();
        rooms.sort_by(|a, b| a.jid.cmp(&b.jid));
        let mut out = Element::bare("query", ns::DISCO_ITEMS);
        let set = query.get_child("set", NS_RSM);
        let count = rooms.len();
        let (start, end) = match set {
            None => (0, count),
            Some(set) => {
                let max = set
                    .get_child("max", NS_RSM)
                    .and_then(|m| m.text().trim().parse::<usize>().ok())
                    .unwrap_or(count);
                let after = set.get_child("after", NS_RSM).map(|a| a.text());
                let before = set.get_child("before", NS_RSM).map(|b| b.text());
                let index = set
                    .get_child("index", NS_RSM)
                    .and_then(|i| i.text().trim().parse::<usize>().ok());
                if let Some(after) = after {
                    let s = rooms
                        .iter()
                        .position(|r| r.jid.as_str() > after.as_str())
                        .unwrap_or(count);
                    (s, (s + max).min(count))
                } else if let Some(before) = before {
                    let e = if before.is_empty() {
                        count
                    } else {
                        rooms
                            .iter()
                            .position(|r| r.jid.as_str() >= before.as_str())
                            .unwrap_or(count)
                    };
                    (e.saturating_sub(max), e)
                } else {
                    let s = index.unwrap_or(0).min(count);
                    (s, (s + max).min(count))
                }
            }
        };
        for r in &rooms[start..end] {
            let mut item = Element::bare("item", ns::DISCO_ITEMS);
            set_attr(&mut item, "jid", r.jid.to_string());
            let name = if r.config.name.is_empty() {
                r.jid
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default()
            } else {
                r.config.name.clone()
            };
            set_attr(&mut item, "name", name);
            out.append_child(item);
        }
        if set.is_some() {
            let mut s = Element::bare("set", NS_RSM);
            if end > start {
                let mut first = text_el("first", NS_RSM, rooms[start].jid.as_str());
                set_attr(&mut first, "index", start.to_string());
                s.append_child(first);
                s.append_child(text_el("last", NS_RSM, rooms[end - 1].jid.as_str()));
            }
            s.append_child(text_el("count", NS_RSM, &count.to_string()));
            out.append_child(s);
        }
        out
    }

    // ---- presence: join, change, leave ------------------------------------

    async fn presence(&mut self, stanza: &Element, from: &Jid, node: &str, nick: Option<String>) {
        let Ok(session) = from.clone().try_into_full() else {
            return;
        };
        let kind = stanza.attr("type");
        match kind {
            Some("unavailable") | Some("error") => {
                return self
                    .leave(node, &session, stanza, kind == Some("error"))
                    .await;
            }
            None => {}
            // Subscriptions and probes to a room mean nothing.
            _ => return,
        }
        let Some(nick) = nick.filter(|n| !n.trim().is_empty()) else {
            // §7.2.1: a join without a nick.
            return self.reply_error(stanza, err(Condition::JidMalformed)).await;
        };
        if !self.rooms.contains_key(node) {
            if stanza.get_child("x", NS_MUC).is_none() {
                // Only a real join creates a room: a status update sent to a
                // room that is gone (destroyed, or temporary and emptied by a
                // restart) must not bring it back with its sender as owner.
                return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
            }
            if let Err(e) = self.create(node, &session) {
                return self.reply_error(stanza, e).await;
            }
            return self.join(stanza, node, &session, nick, true).await;
        }
        let room = &self.rooms[node];
        match room.by_session(&session) {
            Some(i) if room.occupants[i].nick == nick => {
                self.update_presence(node, i, stanza).await
            }
            Some(i) => self.change_nick(stanza, node, i, &session, nick).await,
            None => self.join(stanza, node, &session, nick, false).await,
        }
    }

    fn create(&mut self, node: &str, session: &FullJid) -> Result<(), StanzaError> {
        let creator = session.to_bare();
        let local = self.state.config.serves(creator.domain().as_str());
        let admin = self.state.config.is_admin(creator.as_str());
        let allowed = match self.state.config.muc.room_creation {
            RoomCreation::Anyone => true,
            RoomCreation::Local => local,
            RoomCreation::Admins => admin,
        };
        if !allowed {
            return Err(err(Condition::NotAllowed).with_text("you may not create rooms here"));
        }
        let jid = BareJid::new(&format!("{node}@{}", self.domain))
            .map_err(|_| err(Condition::JidMalformed))?;
        let muc = &self.state.config.muc;
        let config = RoomConfig {
            max_users: muc.max_occupants,
            history_length: muc.default_history.min(muc.max_history),
            ..RoomConfig::default()
        };
        let mut room = Room::new(jid, config);
        room.locked = true;
        room.affiliations
            .insert(creator, (Affiliation::Owner, None));
        self.rooms.insert(node.to_owned(), room);
        Ok(())
    }

    /// The presence of occupant `i` as seen by `viewer` (a session).
    fn occupant_presence(
        &self,
        room: &Room,
        i: usize,
        viewer: &FullJid,
        viewer_is_moderator: bool,
        codes: &[u16],
    ) -> Element {
        let o = &room.occupants[i];
        let mut p = o.presence.clone();
        set_attr(&mut p, "from", room.occupant_jid(&o.nick));
        set_attr(&mut p, "to", viewer.to_string());
        let show_jid =
            room.config.whois_anyone || viewer_is_moderator || o.sessions.contains(viewer);
        let jid = if show_jid { o.sessions.first() } else { None };
        let affiliation = self.affiliation_of(room, &o.bare);
        p.append_child(user_x(affiliation, o.role, jid, None, codes));
        p.append_child(occupant_id(&o.occupant_id));
        p
    }

    /// Send occupant `i`'s presence to everyone in the room; its own
    /// sessions get `self_codes` (110 added), the others `codes`.
    async fn broadcast_presence(&self, node: &str, i: usize, codes: &[u16], self_codes: &[u16]) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let mut outs = Vec::new();
        for viewer in &room.occupants {
            let moderator = viewer.role == Role::Moderator;
            let own =
                viewer.bare == room.occupants[i].bare && viewer.nick == room.occupants[i].nick;
            for s in &viewer.sessions {
                let mut c: Vec<u16> = if own {
                    self_codes.to_vec()
                } else {
                    codes.to_vec()
                };
                if own && !c.contains(&110) {
                    c.push(110);
                }
                outs.push(self.occupant_presence(room, i, s, moderator, &c));
            }
        }
        for p in outs {
            self.send(p).await;
        }
    }

    async fn join(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        nick: String,
        created: bool,
    ) {
        let user = session.to_bare();
        let room = &self.rooms[node];
        let affiliation = self.affiliation_of(room, &user);
        let muc_x = stanza.get_child("x", NS_MUC);
        // §10.1: a room being created is the owner's alone until configured.
        if room.locked && affiliation != Affiliation::Owner {
            return self
                .reply_error(
                    stanza,
                    err(Condition::ItemNotFound).with_text("this room is being created"),
                )
                .await;
        }
        // §7.2.9: a nick registered by another member is theirs.
        if room.nick_owner(&nick).is_some_and(|owner| owner != &user) {
            return self
                .reply_error(
                    stanza,
                    err(Condition::Conflict).with_text("this nickname is registered by a member"),
                )
                .await;
        }
        let same_nick = room.by_nick(&nick);
        if let Some(i) = same_nick
            && room.occupants[i].bare != user
        {
            return self.reply_error(stanza, err(Condition::Conflict)).await;
        }
        if affiliation == Affiliation::Outcast {
            return self
                .reply_error(
                    stanza,
                    err(Condition::Forbidden).with_text("you are banned from this room"),
                )
                .await;
        }
        if room.config.members_only && affiliation < Affiliation::Member {
            return self
                .reply_error(stanza, err(Condition::RegistrationRequired))
                .await;
        }
        if let Some(pw) = &room.config.password {
            let given = muc_x
                .and_then(|x| x.get_child("password", NS_MUC))
                .map(|p| p.text());
            if given.as_deref() != Some(pw.as_str()) {
                return self
                    .reply_error(
                        stanza,
                        err(Condition::NotAuthorized).with_text("a password is needed"),
                    )
                    .await;
            }
        }
        if same_nick.is_none()
            && room.occupants.len() >= room.config.max_users
            && affiliation < Affiliation::Admin
        {
            return self
                .reply_error(
                    stanza,
                    err_type(Condition::ServiceUnavailable, ErrorType::Wait)
                        .with_text("the room is full"),
                )
                .await;
        }
        let occupant_id = self.occupant_id(&room.jid, &user);
        let role = room.default_role(affiliation);
        let presence = stored_presence(stanza);
        let room = self.rooms.get_mut(node).expect("checked above");
        let i = match same_nick {
            // Another resource of the same account takes the same nick (§7.2, multi-session).
            Some(i) => {
                room.occupants[i].sessions.push(session.clone());
                room.occupants[i].presence = presence;
                i
            }
            None => {
                room.occupants.push(Occupant {
                    nick: nick.clone(),
                    bare: user.clone(),
                    sessions: vec![session.clone()],
                    role,
                    presence,
                    occupant_id,
                });
                room.occupants.len() - 1
            }
        };
        // The others first, to the new session only (§7.2.3).
        let room = &self.rooms[node];
        let viewer_moderator = room.occupants[i].role == Role::Moderator;
        let mut outs = Vec::new();
        for j in 0..room.occupants.len() {
            if j != i {
                outs.push(self.occupant_presence(room, j, session, viewer_moderator, &[]));
            }
        }
        for p in outs {
            self.send(p).await;
        }
        let mut self_codes = vec![110];
        if room.config.whois_anyone {
            self_codes.push(100);
        }
        if created {
            self_codes.push(201);
        }
        if same_nick.is_some() {
            // Only the new session needs to learn it is in; the others see no change.
            let p = self.occupant_presence(room, i, session, true, &self_codes);
            self.send(p).await;
        } else {
            self.broadcast_presence(node, i, &[], &self_codes).await;
        }
        self.send_history(node, session, muc_x).await;
        self.send_subject(node, session).await;
    }

    async fn send_history(&self, node: &str, session: &FullJid, muc_x: Option<&Element>) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let h = muc_x.and_then(|x| x.get_child("history", NS_MUC));
        let num = |name: &str| {
            h.and_then(|h| h.attr(name))
                .and_then(|v| v.parse::<i64>().ok())
        };
        let maxstanzas = num("maxstanzas").map(|n| n.max(0) as usize);
        let maxchars = num("maxchars").map(|n| n.max(0) as usize);
        let seconds = num("seconds");
        let since = h
            .and_then(|h| h.attr("since"))
            .and_then(crate::xmpp::parse_datetime);
        let now = now_micros();
        let mut picked: Vec<&HistoryEntry> = Vec::new();
        let mut chars = 0usize;
        for e in room.history.iter().rev() {
            if maxstanzas.is_some_and(|m| picked.len() >= m) {
                break;
            }
            if seconds.is_some_and(|s| e.at < now - s * 1_000_000) {
                break;
            }
            if since.is_some_and(|s| e.at < s) {
                break;
            }
            if let Some(m) = maxchars {
                chars += e.chars;
                if chars > m {
                    break;
                }
            }
            picked.push(e);
        }
        let mut outs = Vec::new();
        for e in picked.into_iter().rev() {
            let mut m = e.message.clone();
            set_attr(&mut m, "to", session.to_string());
            let mut delay = Element::bare("delay", ns::DELAY);
            set_attr(&mut delay, "from", room.jid.to_string());
            set_attr(&mut delay, "stamp", crate::xmpp::datetime(e.at));
            m.append_child(delay);
            outs.push(m);
        }
        for m in outs {
            self.send(m).await;
        }
    }

    async fn send_subject(&self, node: &str, session: &FullJid) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let from = match &room.subject {
            Some((_, by)) if !by.is_empty() => room.occupant_jid(by),
            _ => room.jid.to_string(),
        };
        let mut m = Element::bare("message", ns::CLIENT);
        set_attr(&mut m, "from", from);
        set_attr(&mut m, "to", session.to_string());
        set_attr(&mut m, "type", "groupchat");
        let id = format!("subject-{}", now_micros());
        set_attr(&mut m, "id", id);
        m.append_child(text_el(
            "subject",
            ns::CLIENT,
            room.subject.as_ref().map(|(s, _)| s.as_str()).unwrap_or(""),
        ));
        self.send(m).await;
    }

    async fn update_presence(&mut self, node: &str, i: usize, stanza: &Element) {
        if let Some(room) = self.rooms.get_mut(node) {
            room.occupants[i].presence = stored_presence(stanza);
        }
        self.broadcast_presence(node, i, &[], &[]).await;
    }

    async fn change_nick(
        &mut self,
        stanza: &Element,
        node: &str,
        i: usize,
        session: &FullJid,
        nick: String,
    ) {
        let room = &self.rooms[node];
        if room.by_nick(&nick).is_some() {
            return self.reply_error(stanza, err(Condition::Conflict)).await;
        }
        if room.occupants[i].sessions.len() > 1 {
            // One resource of a multi-session nick cannot rename the others.
            return self
                .reply_error(
                    stanza,
                    err(Condition::NotAcceptable).with_text("leave from your other clients first"),
                )
                .await;
        }
        // §7.6: unavailable with 303 and the new nick, then available.
        let mut outs = Vec::new();
        for viewer in &room.occupants {
            let moderator = viewer.role == Role::Moderator;
            for s in &viewer.sessions {
                let o = &room.occupants[i];
                let mut p = presence_el(
                    &room.occupant_jid(&o.nick),
                    &s.to_string(),
                    Some("unavailable"),
                );
                let show = room.config.whois_anyone || moderator || s == session;
                let mut codes = vec![303];
                if s == session {
                    codes.push(110);
                }
                p.append_child(user_x(
                    self.affiliation_of(room, &o.bare),
                    o.role,
                    if show { o.sessions.first() } else { None },
                    Some(&nick),
                    &codes,
                ));
                p.append_child(occupant_id(&o.occupant_id));
                outs.push(p);
            }
        }
        for p in outs {
            self.send(p).await;
        }
        if let Some(room) = self.rooms.get_mut(node) {
            room.occupants[i].nick = nick;
            room.occupants[i].presence = stored_presence(stanza);
        }
        self.broadcast_presence(node, i, &[], &[]).await;
        let _ = session;
    }

    async fn leave(&mut self, node: &str, session: &FullJid, stanza: &Element, error: bool) {
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        let Some(i) = room.by_session(session) else {
            return;
        };
        room.occupants[i].sessions.retain(|s| s != session);
        let status = if error {
            None
        } else {
            stanza.get_child("status", ns::CLIENT).cloned()
        };
        // The leaving session learns it is out; the others only when the last session goes.
        let o = &room.occupants[i];
        let mut me = presence_el(
            &room.occupant_jid(&o.nick),
            &session.to_string(),
            Some("unavailable"),
        );
        me.append_child(user_x(
            room.affiliation(&o.bare),
            Role::None,
            Some(session),
            None,
            &[110],
        ));
        me.append_child(occupant_id(&o.occupant_id));
        let gone = o.sessions.is_empty();
        self.send(me).await;
        if gone {
            self.remove_occupant(node, i, &[], None, status).await;
        }
    }

    /// Take occupant `i` out, telling everyone (its remaining sessions with 110).
    async fn remove_occupant(
        &mut self,
        node: &str,
        i: usize,
        codes: &[u16],
        reason: Option<&str>,
        status: Option<Element>,
    ) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let o = room.occupants[i].clone();
        let affiliation = self.affiliation_of(room, &o.bare);
        let mut outs = Vec::new();
        for viewer in &room.occupants {
            let moderator = viewer.role == Role::Moderator;
            for s in &viewer.sessions {
                let mut p = presence_el(
                    &room.occupant_jid(&o.nick),
                    &s.to_string(),
                    Some("unavailable"),
                );
                if let Some(st) = &status {
                    p.append_child(st.clone());
                }
                let own = viewer.nick == o.nick;
                let mut c = codes.to_vec();
                if own {
                    c.push(110);
                }
                let show = room.config.whois_anyone || moderator || own;
                let mut x = user_x(
                    affiliation,
                    Role::None,
                    if show { o.sessions.first() } else { None },
                    None,
                    &c,
                );
                if let Some(r) = reason
                    && let Some(item) = x.get_child_mut("item", NS_USER)
                {
                    item.append_child(text_el("reason", NS_USER, r));
                }
                p.append_child(x);
                p.append_child(occupant_id(&o.occupant_id));
                outs.push(p);
            }
        }
        for p in outs {
            self.send(p).await;
        }
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        room.occupants.remove(i);
        if room.occupants.is_empty() && !room.config.persistent {
            // A temporary room ends with its last occupant (§10.9 note).
            self.rooms.remove(node);
        }
    }

    // ---- messages ----------------------------------------------------------

    async fn message(&mut self, stanza: &Element, from: &Jid, node: &str, nick: Option<String>) {
        let kind = stanza.attr("type").unwrap_or("normal");
        if kind == "error" {
            // An occupant's client bounced what we sent: it is gone (§7.2.? "ghost" users).
            if let Ok(full) = from.clone().try_into_full() {
                let present = self
                    .rooms
                    .get(node)
                    .and_then(|r| r.by_session(&full))
                    .is_some();
                if present {
                    self.leave(node, &full, stanza, true).await;
                }
            }
            return;
        }
        if !self.rooms.contains_key(node) {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        }
        let Ok(session) = from.clone().try_into_full() else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        match (nick, kind) {
            (None, "groupchat") => self.groupchat(stanza, node, &session).await,
            (None, _) => self.room_message(stanza, node, &session).await,
            (Some(_), "groupchat") => self.reply_error(stanza, err(Condition::BadRequest)).await,
            (Some(target), _) => self.private_message(stanza, node, &session, &target).await,
        }
    }

    async fn groupchat(&mut self, stanza: &Element, node: &str, session: &FullJid) {
        let room = &self.rooms[node];
        let Some(i) = room.by_session(session) else {
            return self
                .reply_error(
                    stanza,
                    err(Condition::NotAcceptable).with_text("join the room first"),
                )
                .await;
        };
        let o = &room.occupants[i];
        if o.role < Role::Participant {
            return self
                .reply_error(
                    stanza,
                    err(Condition::Forbidden).with_text("you have no voice in this room"),
                )
                .await;
        }
        let subject = stanza.get_child("subject", ns::CLIENT).map(Element::text);
        let has_body = stanza.get_child("body", ns::CLIENT).is_some();
        if let Some(s) = &subject
            && !has_body
        {
            // §8.1: who may change the subject.
            if o.role != Role::Moderator && !room.config.change_subject {
                return self
                    .reply_error(
                        stanza,
                        err(Condition::Forbidden)
                            .with_text("only moderators may change the subject"),
                    )
                    .await;
            }
            let nick = o.nick.clone();
            let room = self.rooms.get_mut(node).expect("present");
            room.subject = if s.is_empty() {
                None
            } else {
                Some((s.clone(), nick))
            };
            if room.config.persistent {
                self.persist(node).await;
            }
        }
        let room = &self.rooms[node];
        let o = &room.occupants[i];
        let mut m = Element::bare("message", ns::CLIENT);
        if let Some(id) = stanza.attr("id") {
            set_attr(&mut m, "id", id.to_owned());
        }
        set_attr(&mut m, "from", room.occupant_jid(&o.nick));
        set_attr(&mut m, "type", "groupchat");
        let room_jid = room.jid.to_string();
        for c in stanza.children() {
            // Our stanza id and occupant id are the only ones to trust (XEP-0359 §3.1, XEP-0421 §4).
            if (c.is("stanza-id", NS_SID) && c.attr("by") == Some(room_jid.as_str()))
                || c.is("occupant-id", NS_OCCUPANT_ID)
            {
                continue;
            }
            m.append_child(c.clone());
        }
        let occupant = occupant_id(&o.occupant_id);
        let stanza_id = self.new_id();
        let mut sid = Element::bare("stanza-id", NS_SID);
        set_attr(&mut sid, "id", stanza_id.clone());
        set_attr(&mut sid, "by", room_jid);
        m.append_child(sid);
        m.append_child(occupant);
        let room = self.rooms.get_mut(node).expect("present");
        if has_body {
            let chars = stanza
                .get_child("body", ns::CLIENT)
                .map(|b| b.text().chars().count())
                .unwrap_or(0);
            room.remember(HistoryEntry {
                message: m.clone(),
                at: now_micros(),
                stanza_id,
                chars,
            });
        }
        self.fan_out(node, m).await;
    }

    /// Send `m` to every session in the room (one clone per session, no database).
    async fn fan_out(&self, node: &str, m: Element) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let targets: Vec<String> = room
            .occupants
            .iter()
            .flat_map(|o| o.sessions.iter().map(|s| s.to_string()))
            .collect();
        for t in targets {
            let mut copy = m.clone();
            set_attr(&mut copy, "to", t);
            self.send(copy).await;
        }
    }

    async fn private_message(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        target: &str,
    ) {
        let room = &self.rooms[node];
        let Some(i) = room.by_session(session) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let Some(t) = room.by_nick(target) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let sender = &room.occupants[i];
        let allowed = match room.config.allow_pm {
            AllowPm::Anyone => true,
            AllowPm::Participants => sender.role >= Role::Participant,
            AllowPm::Moderators => sender.role == Role::Moderator,
            AllowPm::None => false,
        };
        if !allowed {
            return self
                .reply_error(
                    stanza,
                    err(Condition::NotAllowed).with_text("private messages are not allowed here"),
                )
                .await;
        }
        let from = room.occupant_jid(&sender.nick);
        let mut outs = Vec::new();
        // XEP-0421 §4: the room's occupant id, never one the sender wrote.
        let mut base = Element::bare("message", ns::CLIENT);
        for (name, value) in [("type", stanza.attr("type")), ("id", stanza.attr("id"))] {
            if let Some(v) = value {
                set_attr(&mut base, name, v.to_owned());
            }
        }
        for c in stanza
            .children()
            .filter(|c| !c.is("occupant-id", NS_OCCUPANT_ID))
        {
            base.append_child(c.clone());
        }
        if base.get_child("x", NS_USER).is_none() {
            base.append_child(Element::bare("x", NS_USER));
        }
        base.append_child(occupant_id(&sender.occupant_id));
        set_attr(&mut base, "from", from);
        for s in &room.occupants[t].sessions {
            let mut m = base.clone();
            set_attr(&mut m, "to", s.to_string());
            outs.push(m);
        }
        for m in outs {
            self.send(m).await;
        }
    }

    /// A message to the room itself: invitations, declines, voice requests.
    async fn room_message(&mut self, stanza: &Element, node: &str, session: &FullJid) {
        if let Some(x) = stanza.get_child("x", NS_USER) {
            if let Some(invite) = x.get_child("invite", NS_USER) {
                return self.invite(stanza, node, session, invite).await;
            }
            if let Some(decline) = x.get_child("decline", NS_USER) {
                return self.decline(node, session, decline).await;
            }
        }
        if let Some(form) = stanza.get_child("x", ns::DATA_FORMS)
            && form_type(form).as_deref() == Some(NS_REQUEST)
        {
            return self.voice_request(stanza, node, session, form).await;
        }
        self.reply_error(stanza, err(Condition::BadRequest)).await;
    }

    async fn invite(&mut self, stanza: &Element, node: &str, session: &FullJid, invite: &Element) {
        let Some(invitee) = invite.attr("to").and_then(|t| BareJid::new(t).ok()) else {
            return self.reply_error(stanza, err(Condition::JidMalformed)).await;
        };
        let room = &self.rooms[node];
        let Some(i) = room.by_session(session) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let inviter = session.to_bare();
        let inviter_aff = self.affiliation_of(room, &inviter);
        let may = if room.config.members_only {
            inviter_aff >= Affiliation::Admin || room.config.allow_invites
        } else {
            room.config.allow_invites || room.occupants[i].role >= Role::Participant
        };
        if !may {
            return self
                .reply_error(
                    stanza,
                    err(Condition::Forbidden).with_text("you may not invite people here"),
                )
                .await;
        }
        let mut x = Element::bare("x", NS_USER);
        let mut inv = Element::bare("invite", NS_USER);
        set_attr(&mut inv, "from", session.to_string());
        if let Some(r) = invite.get_child("reason", NS_USER) {
            inv.append_child(r.clone());
        }
        x.append_child(inv);
        if let Some(pw) = &room.config.password {
            x.append_child(text_el("password", NS_USER, pw));
        }
        let mut m = Element::bare("message", ns::CLIENT);
        set_attr(&mut m, "from", room.jid.to_string());
        set_attr(&mut m, "to", invitee.to_string());
        if let Some(id) = stanza.attr("id") {
            set_attr(&mut m, "id", id.to_owned());
        }
        m.append_child(x);
        // §9.3: inviting to a members-only room makes the invitee a member.
        let grant = room.config.members_only
            && room.affiliation(&invitee) < Affiliation::Member
            && room.affiliation(&invitee) != Affiliation::Outcast;
        if grant {
            self.set_affiliation(node, &invitee, Affiliation::Member, None)
                .await;
        }
        self.send(m).await;
    }

    async fn decline(&mut self, node: &str, session: &FullJid, decline: &Element) {
        let Some(to) = decline.attr("to").and_then(|t| Jid::new(t).ok()) else {
            return;
        };
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let mut x = Element::bare("x", NS_USER);
        let mut d = Element::bare("decline", NS_USER);
        set_attr(&mut d, "from", session.to_bare().to_string());
        if let Some(r) = decline.get_child("reason", NS_USER) {
            d.append_child(r.clone());
        }
        x.append_child(d);
        let mut m = Element::bare("message", ns::CLIENT);
        set_attr(&mut m, "from", room.jid.to_string());
        set_attr(&mut m, "to", to.to_string());
        m.append_child(x);
        self.send(m).await;
    }

    async fn voice_request(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        form: &Element,
    ) {
        let room = &self.rooms[node];
        let Some(i) = room.by_session(session) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let o = &room.occupants[i];
        if o.role != Role::Visitor {
            // Approvals from moderators come back as the same form with request_allow.
            if o.role == Role::Moderator {
                return self.voice_approval(node, form).await;
            }
            return;
        }
        // §7.13: moderators get the form, filled with who asks.
        let mut x = Element::bare("x", ns::DATA_FORMS);
        set_attr(&mut x, "type", "form");
        x.append_child(text_el("title", ns::DATA_FORMS, "Voice request"));
        let fields = [
            ("FORM_TYPE", "hidden", NS_REQUEST.to_owned()),
            ("muc#role", "list-single", "participant".to_owned()),
            ("muc#jid", "jid-single", session.to_string()),
            ("muc#roomnick", "text-single", o.nick.clone()),
            ("muc#request_allow", "boolean", "false".to_owned()),
        ];
        for (var, kind, value) in fields {
            let mut f = Element::bare("field", ns::DATA_FORMS);
            set_attr(&mut f, "var", var);
            set_attr(&mut f, "type", kind);
            f.append_child(text_el("value", ns::DATA_FORMS, &value));
            x.append_child(f);
        }
        let mut outs = Vec::new();
        for m in room.occupants.iter().filter(|m| m.role == Role::Moderator) {
            for s in &m.sessions {
                let mut msg = Element::bare("message", ns::CLIENT);
                set_attr(&mut msg, "from", room.jid.to_string());
                set_attr(&mut msg, "to", s.to_string());
                msg.append_child(x.clone());
                outs.push(msg);
            }
        }
        for m in outs {
            self.send(m).await;
        }
    }

    async fn voice_approval(&mut self, node: &str, form: &Element) {
        let value = |var: &str| {
            form.children()
                .find(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") == Some(var))
                .and_then(|f| f.get_child("value", ns::DATA_FORMS))
                .map(Element::text)
        };
        let allow = matches!(value("muc#request_allow").as_deref(), Some("1" | "true"));
        let Some(nick) = value("muc#roomnick") else {
            return;
        };
        if !allow {
            return;
        }
        let Some(i) = self.rooms.get(node).and_then(|r| r.by_nick(&nick)) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(node)
            && room.occupants[i].role == Role::Visitor
        {
            room.occupants[i].role = Role::Participant;
            self.broadcast_presence(node, i, &[], &[]).await;
        }
    }

    // ---- iq ------------------------------------------------------------------

    async fn iq(&mut self, stanza: &Element, from: &Jid, node: &str, nick: Option<String>) {
        let kind = stanza.attr("type").unwrap_or("");
        if matches!(kind, "result" | "error") {
            return self.relay_answer(stanza, from, node).await;
        }
        let Some(payload) = stanza.children().next() else {
            return self.reply_error(stanza, err(Condition::BadRequest)).await;
        };
        let set = kind == "set";
        if let Some(nick) = nick {
            return self.occupant_iq(stanza, from, node, &nick, payload).await;
        }
        if !self.rooms.contains_key(node) {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        }
        let result = match (set, payload.name(), payload.ns().as_str()) {
            (false, "query", ns::DISCO_INFO) if payload.attr("node") == Some("x-roomuser-item") => {
                Ok(Some(self.reserved_nick(from, node)))
            }
            (false, "query", ns::DISCO_INFO) => Ok(Some(self.room_info(node))),
            (_, "query", ns::REGISTER) => self.register(from, node, set, payload).await,
            (false, "query", ns::DISCO_ITEMS) => Ok(Some(Element::bare("query", ns::DISCO_ITEMS))),
            (false, "ping", ns::PING) => Ok(None),
            (_, "query", NS_ADMIN) => self.admin(from, node, set, payload).await,
            (_, "query", NS_OWNER) => self.owner(from, node, set, payload).await,
            (true, "moderate", NS_MODERATE) => self.moderate(from, node, payload).await,
            _ => Err(err(Condition::ServiceUnavailable)),
        };
        match result {
            Ok(p) => self.send(iq_result(stanza, p)).await,
            Err(e) => self.reply_error(stanza, e).await,
        }
    }

    /// iqs to room/nick: XEP-0410 self-ping; nothing else is relayed.
    async fn occupant_iq(
        &mut self,
        stanza: &Element,
        from: &Jid,
        node: &str,
        nick: &str,
        payload: &Element,
    ) {
        let joined = from
            .clone()
            .try_into_full()
            .ok()
            .and_then(|f| self.rooms.get(node)?.by_session(&f).map(|i| (f, i)));
        if payload.is("ping", ns::PING) {
            return match joined {
                Some((_, i)) if self.rooms[node].occupants[i].nick == nick => {
                    self.send(iq_result(stanza, None)).await
                }
                Some(_) => self.send(iq_result(stanza, None)).await,
                None => {
                    self.reply_error(stanza, err(Condition::NotAcceptable))
                        .await
                }
            };
        }
        // Anything else (vCards for avatars, software version...) is relayed
        // to the occupant, as from the asker's nick (XEP-0045 §7.5's rule
        // for private messages, applied to iq), by occupants only: the room's anonymity holds.
        let room = &self.rooms[node];
        let (Some((_, asker)), Some(target)) = (joined, room.by_nick(nick)) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let (Some(session), Some(requester)) = (
            room.occupants[target].sessions.first().cloned(),
            from.clone().try_into_full().ok(),
        ) else {
            return;
        };
        let asker_jid = room.occupant_jid(&room.occupants[asker].nick);
        let target_jid = room.occupant_jid(nick);
        let now = std::time::Instant::now();
        if self.relayed.len() >= MAX_RELAYED {
            self.relayed
                .retain(|_, r| now.duration_since(r.at) < RELAY_TTL);
            if self.relayed.len() >= MAX_RELAYED {
                return self
                    .reply_error(stanza, err(Condition::ResourceConstraint))
                    .await;
            }
        }
        let id = self.new_id();
        self.relayed.insert(
            id.clone(),
            Relayed {
                requester,
                id: stanza.attr("id").unwrap_or_default().to_owned(),
                target: target_jid,
                at: now,
            },
        );
        let mut out = Element::bare("iq", ns::CLIENT);
        set_attr(
            &mut out,
            "type",
            stanza.attr("type").unwrap_or("get").to_owned(),
        );
        set_attr(&mut out, "id", id);
        set_attr(&mut out, "from", asker_jid);
        set_attr(&mut out, "to", session.to_string());
        out.append_child(payload.clone());
        self.send(out).await;
    }

    /// An occupant's answer to a relayed iq goes back to who asked.
    async fn relay_answer(&mut self, stanza: &Element, from: &Jid, node: &str) {
        let Some(id) = stanza.attr("id") else { return };
        let Some(relayed) = self.relayed.remove(id) else {
            return;
        };
        // Only the asked occupant's session may answer.
        let answered_by = from
            .clone()
            .try_into_full()
            .ok()
            .and_then(|f| self.rooms.get(node)?.by_session(&f))
            .map(|i| self.rooms[node].occupant_jid(&self.rooms[node].occupants[i].nick));
        if answered_by.as_deref() != Some(relayed.target.as_str()) {
            return;
        }
        let mut out = stanza.clone();
        set_attr(&mut out, "id", relayed.id);
        set_attr(&mut out, "from", relayed.target);
        set_attr(&mut out, "to", relayed.requester.to_string());
        self.send(out).await;
    }

    fn room_info(&self, node: &str) -> Element {
        let room = &self.rooms[node];
        let mut features: Vec<String> = vec![
            ns::DISCO_INFO.into(),
            NS_MUC.into(),
            NS_OCCUPANT_ID.into(),
            NS_SID.into(),
            NS_MODERATE.into(),
            ns::PING.into(),
        ];
        features.extend(room.config.features().into_iter().map(String::from));
        let name = if room.config.name.is_empty() {
            node.to_owned()
        } else {
            room.config.name.clone()
        };
        let mut fields = vec![
            Field {
                var: "muc#roominfo_occupants".into(),
                values: vec![room.occupants.len().to_string()],
            },
            Field {
                var: "muc#roominfo_description".into(),
                values: vec![room.config.description.clone()],
            },
        ];
        if let Some((s, _)) = &room.subject {
            fields.push(Field {
                var: "muc#roominfo_subject".into(),
                values: vec![s.clone()],
            });
        }
        fields.push(Field {
            var: "muc#roomconfig_roomname".into(),
            values: vec![name.clone()],
        });
        let info = DiscoInfo {
            identities: vec![Identity {
                name: Some(name),
                ..Identity::new("conference", "text")
            }],
            features,
            forms: vec![Form {
                form_type: NS_ROOMINFO.into(),
                fields,
            }],
        };
        info.to_element(None)
    }

    /// §7.11: the nick `from` registered, as a disco identity.
    fn reserved_nick(&self, from: &Jid, node: &str) -> Element {
        let mut q = Element::bare("query", ns::DISCO_INFO);
        set_attr(&mut q, "node", "x-roomuser-item");
        if let Some(nick) = self.rooms[node].nicks.get(&from.to_bare()) {
            let mut id = Element::bare("identity", ns::DISCO_INFO);
            set_attr(&mut id, "category", "conference");
            set_attr(&mut id, "type", "text");
            set_attr(&mut id, "name", nick.clone());
            q.append_child(id);
        }
        q
    }

    /// §7.10: registering a nickname with the room (which makes the user a member).
    async fn register(
        &mut self,
        from: &Jid,
        node: &str,
        set: bool,
        query: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        let user = from.to_bare();
        let room = &self.rooms[node];
        let affiliation = self.affiliation_of(room, &user);
        if affiliation == Affiliation::Outcast {
            return Err(err(Condition::Forbidden));
        }
        if room.config.members_only && affiliation < Affiliation::Member {
            return Err(err(Condition::RegistrationRequired)
                .with_text("only members may register in this room"));
        }
        if !set {
            let mut q = Element::bare("query", ns::REGISTER);
            if let Some(nick) = room.nicks.get(&user) {
                q.append_child(Element::bare("registered", ns::REGISTER));
                q.append_child(text_el("username", ns::REGISTER, nick));
                return Ok(Some(q));
            }
            q.append_child(text_el(
                "instructions",
                ns::REGISTER,
                "Choose the nickname reserved for you in this room.",
            ));
            let mut x = Element::bare("x", ns::DATA_FORMS);
            set_attr(&mut x, "type", "form");
            for (var, kind, value) in [
                ("FORM_TYPE", "hidden", Some(NS_REGISTER_FORM)),
                ("muc#register_roomnick", "text-single", None),
            ] {
                let mut f = Element::bare("field", ns::DATA_FORMS);
                set_attr(&mut f, "var", var);
                set_attr(&mut f, "type", kind);
                if var != "FORM_TYPE" {
                    set_attr(&mut f, "label", "Nickname");
                    f.append_child(Element::bare("required", ns::DATA_FORMS));
                }
                if let Some(v) = value {
                    f.append_child(text_el("value", ns::DATA_FORMS, v));
                }
                x.append_child(f);
            }
            q.append_child(x);
            return Ok(Some(q));
        }
        let room_jid = room.jid.clone();
        if query.get_child("remove", ns::REGISTER).is_some() {
            if let Some(r) = self.rooms.get_mut(node) {
                r.nicks.remove(&user);
            }
            if self.rooms[node].config.persistent
                && let Err(e) = self.state.storage.set_nick(&room_jid, &user, None).await
            {
                tracing::error!(room = %room_jid, error = %e, "cannot drop a registered nick");
            }
            return Ok(None);
        }
        let nick = query
            .get_child("x", ns::DATA_FORMS)
            .and_then(|x| {
                x.children()
                    .find(|f| {
                        f.is("field", ns::DATA_FORMS)
                            && f.attr("var") == Some("muc#register_roomnick")
                    })
                    .and_then(|f| f.get_child("value", ns::DATA_FORMS))
                    .map(Element::text)
            })
            .or_else(|| query.get_child("username", ns::REGISTER).map(Element::text))
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                err(Condition::BadRequest).with_text("muc#register_roomnick is required")
            })?;
        // The nick must be a valid resource of the room's JID.
        let nick = Jid::new(&format!("{room_jid}/{nick}"))
            .ok()
            .and_then(|j| j.resource().map(|r| r.as_str().to_owned()))
            .ok_or_else(|| err(Condition::NotAcceptable).with_text("not a valid nickname"))?;
        let room = &self.rooms[node];
        let taken_by_other = room.nick_owner(&nick).is_some_and(|o| o != &user)
            || room
                .by_nick(&nick)
                .is_some_and(|i| room.occupants[i].bare != user);
        if taken_by_other {
            return Err(err(Condition::Conflict).with_text("this nickname is taken"));
        }
        if let Some(r) = self.rooms.get_mut(node) {
            r.nicks.insert(user.clone(), nick.clone());
        }
        if affiliation < Affiliation::Member {
            self.set_affiliation(node, &user, Affiliation::Member, None)
                .await;
        }
        if self.rooms[node].config.persistent
            && let Err(e) = self
                .state
                .storage
                .set_nick(&room_jid, &user, Some(&nick))
                .await
        {
            tracing::error!(room = %room_jid, error = %e, "cannot store a registered nick");
        }
        Ok(None)
    }

    // ---- muc#admin (§8, §9) --------------------------------------------------

    async fn admin(
        &mut self,
        from: &Jid,
        node: &str,
        set: bool,
        query: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        let actor = from.to_bare();
        let room = &self.rooms[node];
        let actor_aff = self.affiliation_of(room, &actor);
        let actor_role = from
            .clone()
            .try_into_full()
            .ok()
            .and_then(|f| room.by_session(&f))
            .map(|i| room.occupants[i].role)
            .unwrap_or(Role::None);
        let items: Vec<&Element> = query
            .children()
            .filter(|c| c.is("item", NS_ADMIN))
            .collect();
        if items.is_empty() {
            return Err(err(Condition::BadRequest));
        }
        if !set {
            let item = items[0];
            let mut out = Element::bare("query", NS_ADMIN);
            if let Some(a) = item.attr("affiliation").and_then(Affiliation::parse) {
                if actor_aff < Affiliation::Admin
                    && !(a == Affiliation::Member && actor_role == Role::Moderator)
                {
                    return Err(err(Condition::Forbidden));
                }
                for j in room.with_affiliation(a) {
                    let mut it = Element::bare("item", NS_ADMIN);
                    set_attr(&mut it, "affiliation", a.as_str());
                    set_attr(&mut it, "jid", j.to_string());
                    if let Some((_, Some(r))) = room.affiliations.get(&j) {
                        it.append_child(text_el("reason", NS_ADMIN, r));
                    }
                    out.append_child(it);
                }
                return Ok(Some(out));
            }
            if let Some(r) = item.attr("role").and_then(Role::parse) {
                if actor_role != Role::Moderator {
                    return Err(err(Condition::Forbidden));
                }
                for o in room.occupants.iter().filter(|o| o.role == r) {
                    let mut it = Element::bare("item", NS_ADMIN);
                    set_attr(&mut it, "role", r.as_str());
                    set_attr(&mut it, "nick", o.nick.clone());
                    set_attr(
                        &mut it,
                        "affiliation",
                        self.affiliation_of(room, &o.bare).as_str(),
                    );
                    if let Some(s) = o.sessions.first() {
                        set_attr(&mut it, "jid", s.to_string());
                    }
                    out.append_child(it);
                }
                return Ok(Some(out));
            }
            return Err(err(Condition::BadRequest));
        }
        // Check every item before applying any (§9.x: all or nothing).
        enum Change {
            Role(usize, Role, Option<String>),
            Aff(BareJid, Affiliation, Option<String>),
        }
        let mut changes = Vec::new();
        for item in &items {
            let reason = item.get_child("reason", NS_ADMIN).map(Element::text);
            if item.attr("affiliation").is_some() && item.attr("role").is_some() {
                // One item changes one thing (§9, §10 examples); both is ambiguous.
                return Err(err(Condition::BadRequest));
            }
            if let Some(a) = item.attr("affiliation") {
                let a = Affiliation::parse(a).ok_or_else(|| err(Condition::BadRequest))?;
                let target = match (item.attr("jid"), item.attr("nick")) {
                    (Some(j), _) => Jid::new(j)
                        .map_err(|_| err(Condition::JidMalformed))?
                        .to_bare(),
                    (None, Some(n)) => {
                        let i = room
                            .by_nick(n)
                            .ok_or_else(|| err(Condition::ItemNotFound))?;
                        room.occupants[i].bare.clone()
                    }
                    _ => return Err(err(Condition::BadRequest)),
                };
                let current = self.affiliation_of(room, &target);
                let ok = match actor_aff {
                    Affiliation::Owner => true,
                    // §10.x: admins manage members and outcasts, never owners or admins.
                    Affiliation::Admin => current < Affiliation::Admin && a < Affiliation::Admin,
                    _ => false,
                };
                if !ok {
                    return Err(if actor_aff >= Affiliation::Admin {
                        err(Condition::NotAllowed)
                    } else {
                        err(Condition::Forbidden)
                    });
                }
                if self.state.config.is_admin(target.as_str())
                    && a < Affiliation::Owner
                    && target != actor
                {
                    return Err(err(Condition::NotAllowed)
                        .with_text("server administrators own every room"));
                }
                changes.push(Change::Aff(target, a, reason));
            } else if let Some(r) = item.attr("role") {
                let r = Role::parse(r).ok_or_else(|| err(Condition::BadRequest))?;
                let n = item
                    .attr("nick")
                    .ok_or_else(|| err(Condition::BadRequest))?;
                let i = room
                    .by_nick(n)
                    .ok_or_else(|| err(Condition::ItemNotFound))?;
                let target_aff = self.affiliation_of(room, &room.occupants[i].bare);
                if actor_role != Role::Moderator {
                    return Err(err(Condition::Forbidden));
                }
                let ok = match r {
                    // §9.6/9.7: granting or revoking moderator is for admins and owners.
                    Role::Moderator => actor_aff >= Affiliation::Admin,
                    _ if room.occupants[i].role == Role::Moderator && r < Role::Moderator => {
                        actor_aff >= Affiliation::Admin && target_aff < Affiliation::Admin
                    }
                    _ => {
                        target_aff < Affiliation::Admin
                            || (actor_aff == Affiliation::Owner && target_aff < Affiliation::Owner)
                    }
                };
                if !ok {
                    return Err(err(Condition::NotAllowed));
                }
                changes.push(Change::Role(i, r, reason));
            } else {
                return Err(err(Condition::BadRequest));
            }
        }
        // The room keeps an owner (§10.6).
        let owners_after = {
            let mut owners: Vec<BareJid> = room.with_affiliation(Affiliation::Owner);
            for c in &changes {
                if let Change::Aff(j, a, _) = c {
                    owners.retain(|o| o != j);
                    if *a == Affiliation::Owner {
                        owners.push(j.clone());
                    }
                }
            }
            owners.len()
        };
        if owners_after == 0 {
            return Err(err(Condition::Conflict).with_text("a room keeps at least one owner"));
        }
        for c in changes {
            match c {
                Change::Aff(j, a, reason) => self.set_affiliation(node, &j, a, reason).await,
                Change::Role(i, r, reason) => self.set_role(node, i, r, reason).await,
            }
        }
        Ok(None)
    }

    async fn set_role(&mut self, node: &str, i: usize, role: Role, reason: Option<String>) {
        if role == Role::None {
            // §8.2: a kick.
            return self
                .remove_occupant(node, i, &[307], reason.as_deref(), None)
                .await;
        }
        if let Some(room) = self.rooms.get_mut(node) {
            room.occupants[i].role = role;
        }
        self.broadcast_presence(node, i, &[], &[]).await;
    }

    /// Change an affiliation, store it for a persistent room, and apply it to
    /// the occupant if present (§9, §10).
    async fn set_affiliation(
        &mut self,
        node: &str,
        jid: &BareJid,
        a: Affiliation,
        reason: Option<String>,
    ) {
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        if a <= Affiliation::None && room.nicks.remove(jid).is_some() && room.config.persistent {
            // A registered nick belongs to a member (§7.10).
            let room_jid = room.jid.clone();
            if let Err(e) = self.state.storage.set_nick(&room_jid, jid, None).await {
                tracing::error!(room = %room_jid, error = %e, "cannot drop a registered nick");
            }
        }
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        if a == Affiliation::None {
            room.affiliations.remove(jid);
        } else {
            room.affiliations.insert(jid.clone(), (a, reason.clone()));
        }
        if room.config.persistent {
            let entry = StoredAffiliation {
                jid: jid.clone(),
                affiliation: a,
                reason: reason.clone(),
            };
            let room_jid = room.jid.clone();
            if let Err(e) = self.state.storage.set_affiliation(&room_jid, &entry).await {
                tracing::error!(room = %room_jid, error = %e, "cannot store an affiliation");
            }
        }
        let room = &self.rooms[node];
        let Some(i) = room.by_bare(jid) else { return };
        let effective = self.affiliation_of(room, jid);
        if effective == Affiliation::Outcast {
            return self
                .remove_occupant(node, i, &[301], reason.as_deref(), None)
                .await;
        }
        if room.config.members_only && effective < Affiliation::Member {
            return self
                .remove_occupant(node, i, &[321], reason.as_deref(), None)
                .await;
        }
        let role = room.default_role(effective);
        if let Some(room) = self.rooms.get_mut(node) {
            room.occupants[i].role = role;
        }
        self.broadcast_presence(node, i, &[], &[]).await;
    }

    // ---- muc#owner (§10) -------------------------------------------------------

    async fn owner(
        &mut self,
        from: &Jid,
        node: &str,
        set: bool,
        query: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        let actor = from.to_bare();
        let room = &self.rooms[node];
        if self.affiliation_of(room, &actor) != Affiliation::Owner {
            return Err(err(Condition::Forbidden));
        }
        if !set {
            let owners: Vec<String> = room
                .with_affiliation(Affiliation::Owner)
                .iter()
                .map(|j| j.to_string())
                .collect();
            let admins: Vec<String> = room
                .with_affiliation(Affiliation::Admin)
                .iter()
                .map(|j| j.to_string())
                .collect();
            let mut q = Element::bare("query", NS_OWNER);
            q.append_child(
                room.config
                    .form(&owners, &admins, self.state.config.muc.max_occupants),
            );
            return Ok(Some(q));
        }
        if let Some(d) = query.get_child("destroy", NS_OWNER) {
            let alternate = d.attr("jid").map(str::to_owned);
            let reason = d.get_child("reason", NS_OWNER).map(Element::text);
            self.destroy(node, alternate, reason).await;
            return Ok(None);
        }
        let Some(form) = query.get_child("x", ns::DATA_FORMS) else {
            return Err(err(Condition::BadRequest));
        };
        match form.attr("type") {
            Some("cancel") => {
                // §10.1.3: cancelling the first configuration destroys the new room.
                if self.rooms[node].locked {
                    self.destroy(node, None, None).await;
                }
                return Ok(None);
            }
            Some("submit") => {}
            _ => return Err(err(Condition::BadRequest)),
        }
        let muc = &self.state.config.muc;
        let (max_users, max_history) = (muc.max_occupants, muc.max_history);
        let room = self.rooms.get_mut(node).expect("present");
        let was_locked = room.locked;
        let mut config = room.config.clone();
        let changes = config
            .apply(form, max_users, max_history)
            .map_err(|e| err(Condition::NotAcceptable).with_text(e))?;
        room.config = config;
        room.locked = false;
        while room.history.len() > room.config.history_length {
            room.history.pop_front();
        }
        let jid = room.jid.clone();
        if changes.persistence_changed && !room.config.persistent {
            if let Err(e) = self.state.storage.delete_room(&jid).await {
                tracing::error!(room = %jid, error = %e, "cannot delete a room");
            }
        } else if room.config.persistent {
            self.persist(node).await;
        }
        for (list, a) in [
            (&changes.owners, Affiliation::Owner),
            (&changes.admins, Affiliation::Admin),
        ] {
            let Some(list) = list else { continue };
            for j in list.iter().filter_map(|j| BareJid::new(j.trim()).ok()) {
                if self.rooms[node].affiliation(&j) != a {
                    self.set_affiliation(node, &j, a, None).await;
                }
            }
        }
        if changes.became_members_only {
            // §9.? 322: non-members leave a room that became members-only.
            let room = &self.rooms[node];
            let out: Vec<String> = room
                .occupants
                .iter()
                .filter(|o| self.affiliation_of(room, &o.bare) < Affiliation::Member)
                .map(|o| o.nick.clone())
                .collect();
            for nick in out {
                if let Some(i) = self.rooms.get(node).and_then(|r| r.by_nick(&nick)) {
                    self.remove_occupant(node, i, &[322], None, None).await;
                }
            }
        }
        if changes.any && !was_locked {
            // §10.2.1: tell occupants the configuration changed.
            let mut codes = vec![104];
            if changes.anonymity_changed {
                codes.push(if self.rooms[node].config.whois_anyone {
                    172
                } else {
                    173
                });
            }
            let mut m = Element::bare("message", ns::CLIENT);
            set_attr(&mut m, "from", self.rooms[node].jid.to_string());
            set_attr(&mut m, "type", "groupchat");
            let mut x = Element::bare("x", NS_USER);
            for c in codes {
                let mut s = Element::bare("status", NS_USER);
                set_attr(&mut s, "code", c.to_string());
                x.append_child(s);
            }
            m.append_child(x);
            self.fan_out(node, m).await;
        }
        Ok(None)
    }

    async fn persist(&self, node: &str) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let stored = StoredRoom {
            jid: room.jid.clone(),
            config: room.config.to_text(),
            subject: room.subject.clone(),
        };
        if let Err(e) = self.state.storage.save_room(&stored).await {
            tracing::error!(room = %room.jid, error = %e, "cannot store a room");
            return;
        }
        for (j, n) in &room.nicks {
            if let Err(e) = self.state.storage.set_nick(&room.jid, j, Some(n)).await {
                tracing::error!(room = %room.jid, error = %e, "cannot store a registered nick");
            }
        }
        // A room made persistent keeps the affiliations it had in memory.
        for (j, (a, r)) in &room.affiliations {
            let entry = StoredAffiliation {
                jid: j.clone(),
                affiliation: *a,
                reason: r.clone(),
            };
            if let Err(e) = self.state.storage.set_affiliation(&room.jid, &entry).await {
                tracing::error!(room = %room.jid, error = %e, "cannot store an affiliation");
            }
        }
    }

    /// §10.9: everyone leaves with the reason and the alternate venue; the room is gone.
    async fn destroy(&mut self, node: &str, alternate: Option<String>, reason: Option<String>) {
        let Some(room) = self.rooms.remove(node) else {
            return;
        };
        let mut outs = Vec::new();
        for o in &room.occupants {
            for s in &o.sessions {
                let mut p = presence_el(
                    &room.occupant_jid(&o.nick),
                    &s.to_string(),
                    Some("unavailable"),
                );
                let mut x = user_x(Affiliation::None, Role::None, None, None, &[110]);
                let mut d = Element::bare("destroy", NS_USER);
                if let Some(a) = &alternate {
                    set_attr(&mut d, "jid", a.clone());
                }
                if let Some(r) = &reason {
                    d.append_child(text_el("reason", NS_USER, r));
                }
                x.append_child(d);
                p.append_child(x);
                outs.push(p);
            }
        }
        for p in outs {
            self.send(p).await;
        }
        if room.config.persistent
            && let Err(e) = self.state.storage.delete_room(&room.jid).await
        {
            tracing::error!(room = %room.jid, error = %e, "cannot delete a room");
        }
        tracing::info!(room = %room.jid, "room destroyed");
    }

    // ---- XEP-0425 ------------------------------------------------------------

    async fn moderate(
        &mut self,
        from: &Jid,
        node: &str,
        moderate: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        let room = &self.rooms[node];
        let Some(i) = from
            .clone()
            .try_into_full()
            .ok()
            .and_then(|f| room.by_session(&f))
        else {
            return Err(err(Condition::Forbidden));
        };
        if room.occupants[i].role != Role::Moderator {
            return Err(err(Condition::Forbidden));
        }
        if moderate.get_child("retract", NS_RETRACT).is_none() {
            return Err(err(Condition::FeatureNotImplemented));
        }
        let id = moderate
            .attr("id")
            .ok_or_else(|| err(Condition::BadRequest))?
            .to_owned();
        let reason = moderate.get_child("reason", NS_MODERATE).map(Element::text);
        let moderator = &room.occupants[i];
        let mut retract = Element::bare("retract", NS_RETRACT);
        set_attr(&mut retract, "id", id.clone());
        let mut moderated = Element::bare("moderated", NS_MODERATE);
        set_attr(&mut moderated, "by", room.occupant_jid(&moderator.nick));
        moderated.append_child(occupant_id(&moderator.occupant_id));
        retract.append_child(moderated);
        if let Some(r) = &reason {
            retract.append_child(text_el("reason", NS_RETRACT, r));
        }
        let mut m = Element::bare("message", ns::CLIENT);
        set_attr(&mut m, "from", room.jid.to_string());
        set_attr(&mut m, "type", "groupchat");
        let mid = self.new_id();
        set_attr(&mut m, "id", mid);
        m.append_child(retract);
        let room = self.rooms.get_mut(node).expect("present");
        // New joiners no longer get the retracted message.
        room.history.retain(|e| e.stanza_id != id);
        self.fan_out(node, m).await;
        Ok(None)
    }

    // ---- admin commands --------------------------------------------------------

    async fn command(&mut self, c: Command) {
        match c {
            Command::List { reply } => {
                let mut list: Vec<RoomSummary> = self
                    .rooms
                    .values()
                    .map(|r| RoomSummary {
                        jid: r.jid.clone(),
                        name: r.config.name.clone(),
                        occupants: r.occupants.len(),
                        persistent: r.config.persistent,
                        public: r.config.public,
                        owners: r.with_affiliation(Affiliation::Owner),
                    })
                    .collect();
                list.sort_by(|a, b| a.jid.cmp(&b.jid));
                let _ = reply.send(list);
            }
            Command::SetAffiliation {
                room,
                jid,
                affiliation,
                sole_owner,
                reply,
            } => {
                let Some(node) = room
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .filter(|n| self.rooms.contains_key(n))
                else {
                    let _ = reply.send(Err(format!("no room {room}")));
                    return;
                };
                let r = &self.rooms[&node];
                let mut owners = r.with_affiliation(Affiliation::Owner);
                owners.retain(|o| o != &jid);
                if affiliation != Affiliation::Owner && owners.is_empty() && !sole_owner {
                    let _ = reply.send(Err("a room keeps at least one owner".into()));
                    return;
                }
                self.set_affiliation(&node, &jid, affiliation, None).await;
                if sole_owner && affiliation == Affiliation::Owner {
                    for o in owners {
                        self.set_affiliation(&node, &o, Affiliation::Member, None)
                            .await;
                    }
                }
                tracing::info!(%room, %jid, affiliation = affiliation.as_str(), "affiliation changed by an administrator");
                let _ = reply.send(Ok(()));
            }
            Command::Destroy {
                room,
                reason,
                reply,
            } => {
                let Some(node) = room
                    .node()
                    .map(|n| n.as_str().to_owned())
                    .filter(|n| self.rooms.contains_key(n))
                else {
                    let _ = reply.send(Err(format!("no room {room}")));
                    return;
                };
                self.destroy(&node, None, reason).await;
                let _ = reply.send(Ok(()));
            }
        }
    }
}

/// The parts of a client's presence that the room reflects: show, status,
/// priority, caps and the like, without MUC protocol elements or addresses.
fn stored_presence(stanza: &Element) -> Element {
    let mut p = Element::bare("presence", ns::CLIENT);
    for c in stanza.children() {
        if c.is("x", NS_MUC) || c.is("x", NS_USER) || c.is("occupant-id", NS_OCCUPANT_ID) {
            continue;
        }
        p.append_child(c.clone());
    }
    p
}

fn form_type(form: &Element) -> Option<String> {
    form.children()
        .find(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") == Some("FORM_TYPE"))
        .and_then(|f| f.get_child("value", ns::DATA_FORMS))
        .map(Element::text)
}
