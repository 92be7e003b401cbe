//! Presence to rooms: joining (and creating), presence changes, nick
//! changes and leaving (XEP-0045 §7.1-§7.6, §7.14).

use super::*;

impl Service {
    // ---- presence: join, change, leave ------------------------------------

    pub(super) async fn presence(
        &mut self,
        stanza: &Element,
        from: &Jid,
        node: &str,
        nick: Option<String>,
    ) {
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
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let rejoin = stanza.get_child("x", NS_MUC).is_some();
        match room.by_session(&session) {
            // §7.2: a join from a session already in (a client resyncing
            // after a network change) gets what any join gets, the subject
            // last, which tells the client the join is complete.
            Some(i) if rejoin && room.occupants.get(i).is_some_and(|o| o.nick == nick) => {
                self.rejoin(stanza, node, i, &session).await
            }
            Some(i) if room.occupants.get(i).is_some_and(|o| o.nick == nick) => {
                self.update_presence(node, i, stanza).await
            }
            Some(i) => self.change_nick(stanza, node, i, &session, nick).await,
            None => self.join(stanza, node, &session, nick, false).await,
        }
    }

    pub(super) fn create(&mut self, node: &str, session: &FullJid) -> Result<(), StanzaError> {
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
        // Each room costs memory (and a row when persistent): one account
        // must not be able to create them without end.
        let max = self.state.config.muc.max_rooms_per_user;
        if !admin
            && self
                .rooms
                .values()
                .filter(|r| r.affiliation(&creator) == Affiliation::Owner)
                .count()
                >= max
        {
            return Err(err(Condition::NotAllowed)
                .with_text(format!("you already own {max} rooms, the most allowed")));
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
        room.locked = self.state.config.muc.lock_new_rooms;
        room.affiliations
            .insert(creator, (Affiliation::Owner, None));
        self.rooms.insert(node.to_owned(), room);
        Ok(())
    }

    /// The presence of occupant `o` of `room` as seen by `viewer` (a session).
    pub(super) fn occupant_presence(
        &self,
        room: &Room,
        o: &Occupant,
        viewer: &FullJid,
        viewer_is_moderator: bool,
        codes: &[u16],
    ) -> Element {
        let show_jid =
            room.config.whois_anyone || viewer_is_moderator || o.sessions.contains(viewer);
        let mut p = self.occupant_presence_without_to(room, o, show_jid, codes);
        set_attr(&mut p, "to", viewer.to_string());
        p
    }

    /// The presence of occupant `o` of `room`, with its real JID if
    /// `show_jid`; the caller addresses it (any `to` it carries is the
    /// occupant's own).
    fn occupant_presence_without_to(
        &self,
        room: &Room,
        o: &Occupant,
        show_jid: bool,
        codes: &[u16],
    ) -> Element {
        let mut p = o.presence.clone();
        set_attr(&mut p, "from", room.occupant_jid(&o.nick));
        let jid = if show_jid { o.sessions.first() } else { None };
        let affiliation = self.affiliation_of(room, &o.bare);
        p.append_child(user_x(affiliation, o.role, jid, None, codes));
        p.append_child(occupant_id(&o.occupant_id));
        p
    }

    /// Send occupant `i`'s presence to everyone in the room; its own
    /// sessions get `self_codes` (110 added), the others `codes`.
    pub(super) async fn broadcast_presence(
        &self,
        node: &str,
        i: usize,
        codes: &[u16],
        self_codes: &[u16],
    ) {
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let Some(o) = room.occupants.get(i) else {
            return;
        };
        // Viewers differ only in two ways (their own presence or not, the
        // real JID shown or not): each variant is built and serialised once.
        let mut variants: [Option<Option<Arc<SharedStanza>>>; 4] = Default::default();
        for viewer in &room.occupants {
            let moderator = viewer.role == Role::Moderator;
            let own = viewer.bare == o.bare && viewer.nick == o.nick;
            for s in &viewer.sessions {
                let show_jid = room.config.whois_anyone || moderator || o.sessions.contains(s);
                let shared = variants[usize::from(own) * 2 + usize::from(show_jid)]
                    .get_or_insert_with(|| {
                        let mut c: Vec<u16> = if own {
                            self_codes.to_vec()
                        } else {
                            codes.to_vec()
                        };
                        if own && !c.contains(&110) {
                            c.push(110);
                        }
                        shareable(self.occupant_presence_without_to(room, o, show_jid, &c))
                    });
                if let Some(shared) = shared {
                    crate::router::route_shared(&self.state, s, &viewer.bare, shared).await;
                }
            }
        }
    }

    pub(super) async fn join(
        &mut self,
        stanza: &Element,
        node: &str,
        session: &FullJid,
        nick: String,
        created: bool,
    ) {
        let user = session.to_bare();
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
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
            && room.occupants.get(i).is_none_or(|o| o.bare != user)
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
        let Some(room) = self.rooms.get_mut(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let i = match same_nick.and_then(|i| Some((i, room.occupants.get_mut(i)?))) {
            // Another resource of the same account takes the same nick (§7.2, multi-session).
            Some((i, o)) => {
                o.sessions.push(session.clone());
                o.presence = presence;
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
        let mut self_codes = self.send_others(node, i, session).await;
        let Some(room) = self.rooms.get(node) else {
            return;
        };
        let Some(me) = room.occupants.get(i) else {
            return;
        };
        if created {
            self_codes.push(201);
        }
        if same_nick.is_some() {
            // Only the new session needs to learn it is in; the others see no change.
            let p = self.occupant_presence(room, me, session, true, &self_codes);
            self.send(p).await;
        } else {
            self.broadcast_presence(node, i, &[], &self_codes).await;
        }
        self.send_history(node, session, muc_x).await;
        self.send_subject(node, session).await;
    }

    /// The other occupants' presence, to the joining `session` of occupant
    /// `i` only, before its own (§7.2.3); returns the status codes its own
    /// presence carries.
    async fn send_others(&self, node: &str, i: usize, session: &FullJid) -> Vec<u16> {
        let mut self_codes = vec![110];
        let Some(room) = self.rooms.get(node) else {
            return self_codes;
        };
        let Some(me) = room.occupants.get(i) else {
            return self_codes;
        };
        let viewer_moderator = me.role == Role::Moderator;
        let mut outs = Vec::new();
        for (j, o) in room.occupants.iter().enumerate() {
            if j != i {
                outs.push(self.occupant_presence(room, o, session, viewer_moderator, &[]));
            }
        }
        for p in outs {
            self.send(p).await;
        }
        if room.config.whois_anyone {
            self_codes.push(100);
        }
        self_codes
    }

    /// A join presence from a session already in the room, under the same
    /// nick: its presence is updated for everyone, and the session gets the
    /// occupant list, its own presence, history as asked and the subject.
    async fn rejoin(&mut self, stanza: &Element, node: &str, i: usize, session: &FullJid) {
        if let Some(o) = self
            .rooms
            .get_mut(node)
            .and_then(|r| r.occupants.get_mut(i))
        {
            o.presence = stored_presence(stanza);
        }
        let self_codes = self.send_others(node, i, session).await;
        self.broadcast_presence(node, i, &[], &self_codes).await;
        self.send_history(node, session, stanza.get_child("x", NS_MUC))
            .await;
        self.send_subject(node, session).await;
    }

    pub(super) async fn send_history(
        &self,
        node: &str,
        session: &FullJid,
        muc_x: Option<&Element>,
    ) {
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
        // The newcomer's queue also takes the occupant list and the subject
        // now: history gets half of it, or the join would close the
        // session as too slow (the newest message always goes).
        let budget = self.state.config.c2s.queue_bytes / 2;
        let mut bytes = 0usize;
        for e in room.history.iter().rev() {
            if maxstanzas.is_some_and(|m| picked.len() >= m) {
                break;
            }
            bytes = bytes.saturating_add(e.bytes);
            if bytes > budget && !picked.is_empty() {
                break;
            }
            // Saturating: `seconds` is the client's, and may be huge.
            if seconds.is_some_and(|s| e.at < now.saturating_sub(s.saturating_mul(1_000_000))) {
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
            m.append_child(crate::xmpp::stanza::delay(room.jid.as_str(), e.at, None));
            outs.push(m);
        }
        for m in outs {
            self.send(m).await;
        }
    }

    pub(super) async fn send_subject(&self, node: &str, session: &FullJid) {
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

    pub(super) async fn update_presence(&mut self, node: &str, i: usize, stanza: &Element) {
        if let Some(o) = self
            .rooms
            .get_mut(node)
            .and_then(|r| r.occupants.get_mut(i))
        {
            o.presence = stored_presence(stanza);
        }
        self.broadcast_presence(node, i, &[], &[]).await;
    }

    pub(super) async fn change_nick(
        &mut self,
        stanza: &Element,
        node: &str,
        i: usize,
        session: &FullJid,
        nick: String,
    ) {
        let Some(room) = self.rooms.get(node) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        let Some(o) = room.occupants.get(i) else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        if room.by_nick(&nick).is_some() {
            return self.reply_error(stanza, err(Condition::Conflict)).await;
        }
        if o.sessions.len() > 1 {
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
        if let Some(o) = self
            .rooms
            .get_mut(node)
            .and_then(|r| r.occupants.get_mut(i))
        {
            o.nick = nick;
            o.presence = stored_presence(stanza);
        }
        self.broadcast_presence(node, i, &[], &[]).await;
        let _ = session;
    }

    pub(super) async fn leave(
        &mut self,
        node: &str,
        session: &FullJid,
        stanza: &Element,
        error: bool,
    ) {
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        let Some(i) = room.by_session(session) else {
            return;
        };
        if room.occupants.get(i).is_some_and(|o| o.sessions.len() == 1) {
            // The occupant goes: everyone is told, with the same real-JID
            // rules as for the join (§7.14), so the session is taken out
            // only once the presence is built; it gets its own with 110.
            let status = if error {
                None
            } else {
                stanza.get_child("status", ns::CLIENT).cloned()
            };
            return self.remove_occupant(node, i, &[], None, status).await;
        }
        let Some(o) = room.occupants.get_mut(i) else {
            return;
        };
        o.sessions.retain(|s| s != session);
        let room: &Room = room;
        let Some(o) = room.occupants.get(i) else {
            return;
        };
        // Only the leaving session learns it is out: its other sessions
        // stay, and the others see no change.
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
        self.send(me).await;
    }

    /// Take occupant `i` out, telling everyone (its remaining sessions with 110).
    pub(super) async fn remove_occupant(
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
        let Some(o) = room.occupants.get(i) else {
            return;
        };
        let affiliation = self.affiliation_of(room, &o.bare);
        // Two things differ between viewers (their own presence or not, the
        // real JID shown or not): each variant is built and serialised once.
        let mut variants: [Option<Option<Arc<SharedStanza>>>; 4] = Default::default();
        for viewer in &room.occupants {
            let moderator = viewer.role == Role::Moderator;
            let own = viewer.nick == o.nick;
            let show = room.config.whois_anyone || moderator || own;
            for s in &viewer.sessions {
                let shared =
                    variants[usize::from(own) * 2 + usize::from(show)].get_or_insert_with(|| {
                        let mut p =
                            presence_el(&room.occupant_jid(&o.nick), "", Some("unavailable"));
                        if let Some(st) = &status {
                            p.append_child(st.clone());
                        }
                        let mut c = codes.to_vec();
                        if own {
                            c.push(110);
                        }
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
                        shareable(p)
                    });
                if let Some(shared) = shared {
                    crate::router::route_shared(&self.state, s, &viewer.bare, shared).await;
                }
            }
        }
        let Some(room) = self.rooms.get_mut(node) else {
            return;
        };
        if i < room.occupants.len() {
            room.occupants.remove(i);
        }
        if room.occupants.is_empty() && !room.config.persistent {
            // A temporary room ends with its last occupant (§10.9 note).
            self.rooms.remove(node);
        }
    }
}
