//! Messages to rooms: groupchat fan-out with stanza and occupant ids,
//! subjects, private messages, invitations and voice requests
//! (XEP-0045 §7.4-§7.9, §7.13).

use super::*;

impl Service {
    // ---- messages ----------------------------------------------------------

    pub(super) async fn message(
        &mut self,
        stanza: &Element,
        from: &Jid,
        node: &str,
        nick: Option<String>,
    ) {
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

    pub(super) async fn groupchat(&mut self, stanza: &Element, node: &str, session: &FullJid) {
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let Some(o) = room.occupant_of(session) else {
            return self
                .reply_error(
                    stanza,
                    err(Condition::NotAcceptable).with_text("join the room first"),
                )
                .await;
        };
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
            let Some(room) = self.rooms.get_mut(node) else {
                return;
            };
            room.subject = if s.is_empty() {
                None
            } else {
                Some((s.clone(), nick))
            };
            if room.config.persistent {
                self.persist(node).await;
            }
        }
        // Looked up again after storing the subject: a sender or room gone
        // meanwhile has nothing left to say, and the message is dropped.
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let Some(o) = room.occupant_of(session) else {
            return;
        };
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
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        // Serialised once for every occupant; the history keeps its size
        // (what a newcomer's queue will take).
        let history = has_body.then(|| m.clone());
        let Some(shared) = super::shareable(m) else {
            return;
        };
        if let Some(message) = history {
            let chars = stanza
                .get_child("body", ns::CLIENT)
                .map(|b| b.text().chars().count())
                .unwrap_or(0);
            room.remember(HistoryEntry {
                message,
                at: now_micros(),
                stanza_id,
                chars,
                bytes: shared.size(),
            });
        }
        self.fan_out_shared(node, &shared).await;
    }

    /// Send `m` to every session in the room: serialised once, each session
    /// gets it with its own `to` (no clone, JID parse or serialisation per
    /// session; no database).
    pub(super) async fn fan_out(&self, node: &str, m: Element) {
        if let Some(shared) = super::shareable(m) {
            self.fan_out_shared(node, &shared).await;
        }
    }

    /// `fan_out` of a stanza already made shareable.
    pub(super) async fn fan_out_shared(&self, node: &str, shared: &Arc<SharedStanza>) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        for o in &room.occupants {
            for s in &o.sessions {
                crate::router::route_shared(&self.state, s, &o.bare, shared).await;
            }
        }
    }

    pub(super) async fn private_message(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        target: &str,
    ) {
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let Some(sender) = room.occupant_of(session) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let Some(recipient) = room.occupant_named(target) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
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
        for s in &recipient.sessions {
            let mut m = base.clone();
            set_attr(&mut m, "to", s.to_string());
            outs.push(m);
        }
        for m in outs {
            self.send(m).await;
        }
    }

    /// A message to the room itself: invitations, declines, voice requests.
    pub(super) async fn room_message(&mut self, stanza: &Element, node: &str, session: &FullJid) {
        if let Some(x) = stanza.get_child("x", NS_USER) {
            if let Some(invite) = x.get_child("invite", NS_USER) {
                return self.invite(stanza, node, session, invite).await;
            }
            if let Some(decline) = x.get_child("decline", NS_USER) {
                return self.decline(node, session, decline).await;
            }
        }
        // FORM_TYPE by name, whatever its field type (`DataForm::form_type`
        // would want it hidden in a type='form'): clients differ there.
        if let Some(x) = stanza.get_child("x", ns::DATA_FORMS)
            && let Ok(form) = DataForm::try_from(x.clone())
            && forms::first_value(&form, "FORM_TYPE") == Some(NS_REQUEST)
        {
            return self.voice_request(stanza, node, session, &form).await;
        }
        self.reply_error(stanza, err(Condition::BadRequest)).await;
    }

    pub(super) async fn invite(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        invite: &Element,
    ) {
        let Some(invitee) = invite.attr("to").and_then(|t| BareJid::new(t).ok()) else {
            return self.reply_error(stanza, err(Condition::JidMalformed)).await;
        };
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let Some(inviting) = room.occupant_of(session) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let inviter = session.to_bare();
        let inviter_aff = self.affiliation_of(room, &inviter);
        let may = if room.config.members_only {
            inviter_aff >= Affiliation::Admin || room.config.allow_invites
        } else {
            room.config.allow_invites || inviting.role >= Role::Participant
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

    pub(super) async fn decline(&mut self, node: &str, session: &FullJid, decline: &Element) {
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

    pub(super) async fn voice_request(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        form: &DataForm,
    ) {
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let Some(o) = room.occupant_of(session) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        if o.role != Role::Visitor {
            // Approvals from moderators come back as the same form with request_allow.
            if o.role == Role::Moderator {
                return self.voice_approval(node, form).await;
            }
            return;
        }
        // §7.13: moderators get the form, filled with who asks.
        let fields = [
            ("muc#role", FieldType::ListSingle, "participant"),
            ("muc#jid", FieldType::JidSingle, &session.to_string()),
            ("muc#roomnick", FieldType::TextSingle, &o.nick),
            ("muc#request_allow", FieldType::Boolean, "false"),
        ]
        .into_iter()
        .map(|(var, kind, value)| forms::Field::new(var, kind).with_value(value))
        .collect();
        let mut form = DataForm::new(DataFormType::Form, NS_REQUEST, fields);
        form.title = Some("Voice request".to_owned());
        let x = forms::to_element(form);
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

    pub(super) async fn voice_approval(&mut self, node: &str, form: &DataForm) {
        let allow = matches!(
            forms::first_value(form, "muc#request_allow"),
            Some("1" | "true")
        );
        let Some(nick) = forms::first_value(form, "muc#roomnick") else {
            return;
        };
        if !allow {
            return;
        }
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        let Some(i) = room.by_nick(nick) else {
            return;
        };
        if let Some(o) = room.occupants.get_mut(i)
            && o.role == Role::Visitor
        {
            o.role = Role::Participant;
            self.broadcast_presence(node, i, &[], &[]).await;
        }
    }
}
