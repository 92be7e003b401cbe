//! The service task: one per `conference.DOMAIN`, owning its rooms.

mod admin;
mod iq;
mod messages;
mod presence;
#[cfg(test)]
mod tests;

use super::config::{AllowPm, RoomConfig};
use super::room::*;
use super::store::{Affiliation, MucStore, StoredAffiliation, StoredRoom};
use super::{Command, RoomSummary};
use crate::config::RoomCreation;
use crate::features::disco::{DiscoInfo, Field, Form, Identity};
use crate::router::packet::SharedStanza;
use crate::state::ServerState;
use crate::supervise::CatchUnwind;
use crate::xmpp::error::{Condition, ErrorType, StanzaError};
use crate::xmpp::forms::{self, DataForm, DataFormType, FieldType};
use crate::xmpp::ns;
use crate::xmpp::stanza::{iq_result, set_attr};
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

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

/// An iq request being handled, and whether its result was sent early
/// (`Service::ack`).
pub(super) struct Ack<'a> {
    request: &'a Element,
    sent: bool,
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

/// A presence from `from` to `to` (an empty `to`: none yet, for a stanza
/// shared by many recipients, each given its own).
fn presence_el(from: &str, to: &str, kind: Option<&str>) -> Element {
    let mut p = Element::bare("presence", ns::CLIENT);
    set_attr(&mut p, "from", from.to_owned());
    if !to.is_empty() {
        set_attr(&mut p, "to", to.to_owned());
    }
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
/// services with the router, and start their tasks, owned by `tasks`.
pub async fn start(state: &Arc<ServerState>, tasks: &TaskTracker) -> anyhow::Result<()> {
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
        let name = service.clone();
        let s = Service {
            state: state.clone(),
            domain: service,
            rooms,
            id_prefix: crate::xmpp::hex(&prefix),
            next_id: 0,
            relayed: HashMap::new(),
        };
        crate::supervise::spawn(tasks, &name, s.run(stanzas, commands));
    }
    Ok(())
}

impl Service {
    async fn run(
        mut self,
        mut stanzas: mpsc::Receiver<Box<Element>>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let shutdown = self.state.stopping.clone();
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = stanzas.recv() => match p {
                    Some(p) => Next::Stanza(p),
                    None => break,
                },
                Some(c) = commands.recv() => Next::Command(c),
            };
            // A panic while handling one stanza or command (a bug some
            // client's input reached) abandons that one only. The room it
            // was for stays, even if half-updated: its occupants stay in,
            // the next stanza finds it as it is, and every handler checks
            // what it looks up; ending the service would throw every room
            // of the domain and every occupant out instead.
            match next {
                Next::Stanza(p) => {
                    let handled = CatchUnwind(std::pin::pin!(self.handle(&p))).await;
                    if handled.is_err() {
                        tracing::error!(
                            kind = p.name(),
                            from = p.attr("from").unwrap_or_default(),
                            to = p.attr("to").unwrap_or_default(),
                            "a stanza made the MUC service panic: dropped, the service goes on"
                        );
                    }
                }
                Next::Command(c) => {
                    let what = describe(&c);
                    let handled = CatchUnwind(std::pin::pin!(self.command(c))).await;
                    if handled.is_err() {
                        tracing::error!(
                            command = %what,
                            "an administrator's command made the MUC service panic: dropped, the service goes on"
                        );
                    }
                }
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
        let digest = h.finalize();
        crate::xmpp::hex(digest.get(..16).unwrap_or(&digest))
    }

    fn affiliation_of(&self, room: &Room, user: &BareJid) -> Affiliation {
        if self.state.config.is_admin(user.as_str()) {
            return Affiliation::Owner;
        }
        room.affiliation(user)
    }

    async fn handle(&mut self, stanza: &Element) {
        let (Some(from), Some(to)) = (
            stanza.attr("from").and_then(|f| Jid::new(f).ok()),
            stanza.attr("to").and_then(|t| Jid::new(t).ok()),
        ) else {
            return;
        };
        let Some(node) = to.node().map(|n| n.as_str().to_owned()) else {
            return self.service_stanza(stanza, &from).await;
        };
        let nick = to.resource().map(|r| r.as_str().to_owned());
        match stanza.name() {
            "presence" => self.presence(stanza, &from, &node, nick).await,
            "message" => self.message(stanza, &from, &node, nick).await,
            "iq" => self.iq(stanza, &from, &node, nick).await,
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
                // Saturating: `max` is the client's, up to usize::MAX.
                if let Some(after) = after {
                    let s = rooms
                        .iter()
                        .position(|r| r.jid.as_str() > after.as_str())
                        .unwrap_or(count);
                    (s, s.saturating_add(max).min(count))
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
                    (s, s.saturating_add(max).min(count))
                }
            }
        };
        let page = rooms.get(start..end).unwrap_or_default();
        for r in page {
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
            if let (Some(first_room), Some(last_room)) = (page.first(), page.last()) {
                let mut first = text_el("first", NS_RSM, first_room.jid.as_str());
                set_attr(&mut first, "index", start.to_string());
                s.append_child(first);
                s.append_child(text_el("last", NS_RSM, last_room.jid.as_str()));
            }
            s.append_child(text_el("count", NS_RSM, &count.to_string()));
            out.append_child(s);
        }
        out
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
                let Some((node, r)) = room
                    .node()
                    .and_then(|n| Some((n.as_str().to_owned(), self.rooms.get(n.as_str())?)))
                else {
                    let _ = reply.send(Err(format!("no room {room}")));
                    return;
                };
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

/// What the service loop takes next.
enum Next {
    Stanza(Box<Element>),
    Command(Command),
}

/// A command, for the log line of a panic while handling it.
fn describe(c: &Command) -> String {
    match c {
        Command::List { .. } => "list".to_owned(),
        Command::SetAffiliation {
            room,
            jid,
            affiliation,
            ..
        } => format!("set {jid} {} in {room}", affiliation.as_str()),
        Command::Destroy { room, .. } => format!("destroy {room}"),
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

/// A room stanza made shareable, or None (logged) if it holds a character
/// XML forbids: a room sends nothing it could not serialise.
pub(super) fn shareable(el: Element) -> Option<Arc<SharedStanza>> {
    match SharedStanza::new(el) {
        Ok(shared) => Some(shared),
        Err(e) => {
            tracing::error!(error = %e, "a room stanza cannot be serialised: not sent");
            None
        }
    }
}
