//! Moderation and ownership: muc#admin roles and affiliations (§8, §9),
//! muc#owner configuration and destruction (§10), XEP-0425 retraction.

use super::*;

impl Service {
    // ---- muc#admin (§8, §9) --------------------------------------------------

    pub(super) async fn admin(
        &mut self,
        from: &Jid,
        node: &str,
        set: bool,
        query: &Element,
        ack: &mut Ack<'_>,
    ) -> Result<Option<Element>, StanzaError> {
        let actor = from.to_bare();
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
        let actor_aff = self.affiliation_of(room, &actor);
        let actor_role = from
            .clone()
            .try_into_full()
            .ok()
            .and_then(|f| room.occupant_of(&f))
            .map(|o| o.role)
            .unwrap_or(Role::None);
        let items: Vec<&Element> = query
            .children()
            .filter(|c| c.is("item", NS_ADMIN))
            .collect();
        let Some(&item) = items.first() else {
            return Err(err(Condition::BadRequest));
        };
        if !set {
            let mut out = Element::bare("query", NS_ADMIN);
            if let Some(a) = item.attr("affiliation").and_then(Affiliation::parse) {
                if !may_list(room, a, actor_aff, actor_role) {
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
            /// By nick, not by index: applying an earlier item (a ban, a
            /// kick) may take an occupant out and shift the others.
            Role(String, Role, Option<String>),
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
                    (None, Some(n)) => room
                        .occupant_named(n)
                        .ok_or_else(|| err(Condition::ItemNotFound))?
                        .bare
                        .clone(),
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
                let target = room
                    .occupant_named(n)
                    .ok_or_else(|| err(Condition::ItemNotFound))?;
                let target_aff = self.affiliation_of(room, &target.bare);
                if actor_role != Role::Moderator {
                    return Err(err(Condition::Forbidden));
                }
                let ok = match r {
                    // §9.6/9.7: granting or revoking moderator is for admins and owners.
                    Role::Moderator => actor_aff >= Affiliation::Admin,
                    _ if target.role == Role::Moderator && r < Role::Moderator => {
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
                changes.push(Change::Role(n.to_owned(), r, reason));
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
        self.ack(ack).await;
        for c in changes {
            match c {
                Change::Aff(j, a, reason) => self.set_affiliation(node, &j, a, reason).await,
                Change::Role(nick, r, reason) => {
                    // Gone meanwhile (banned or kicked by an earlier item):
                    // nothing left to change.
                    let Some(i) = self.rooms.get(node).and_then(|room| room.by_nick(&nick)) else {
                        continue;
                    };
                    self.set_role(node, i, r, reason).await;
                }
            }
        }
        Ok(None)
    }

    pub(super) async fn set_role(
        &mut self,
        node: &str,
        i: usize,
        role: Role,
        reason: Option<String>,
    ) {
        if role == Role::None {
            // §8.2: a kick.
            return self
                .remove_occupant(node, i, &[307], reason.as_deref(), None)
                .await;
        }
        if let Some(o) = self
            .rooms
            .get_mut(node)
            .and_then(|r| r.occupants.get_mut(i))
        {
            o.role = role;
        }
        self.broadcast_presence(node, i, &[], &[]).await;
    }

    /// Change an affiliation, store it for a persistent room, and apply it to
    /// the occupant if present (§9, §10).
    pub(super) async fn set_affiliation(
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
        let Some(room) = self.rooms.get(node) else {
            return;
        };
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
        if let Some(o) = self
            .rooms
            .get_mut(node)
            .and_then(|r| r.occupants.get_mut(i))
        {
            o.role = role;
        }
        self.broadcast_presence(node, i, &[], &[]).await;
    }

    // ---- muc#owner (§10) -------------------------------------------------------

    pub(super) async fn owner(
        &mut self,
        from: &Jid,
        node: &str,
        set: bool,
        query: &Element,
        ack: &mut Ack<'_>,
    ) -> Result<Option<Element>, StanzaError> {
        let actor = from.to_bare();
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
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
        let Some(form) = query
            .get_child("x", ns::DATA_FORMS)
            .and_then(|x| DataForm::try_from(x.clone()).ok())
        else {
            return Err(err(Condition::BadRequest));
        };
        match form.type_ {
            DataFormType::Cancel => {
                // §10.1.3: cancelling the first configuration destroys the new room.
                if self.rooms.get(node).is_some_and(|r| r.locked) {
                    self.destroy(node, None, None).await;
                }
                return Ok(None);
            }
            DataFormType::Submit => {}
            _ => return Err(err(Condition::BadRequest)),
        }
        let muc = &self.state.config.muc;
        let (max_users, max_history) = (muc.max_occupants, muc.max_history);
        let room = self
            .rooms
            .get_mut(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
        let was_locked = room.locked;
        let mut config = room.config.clone();
        let changes = config
            .apply(&form, max_users, max_history)
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
        self.ack(ack).await;
        for (list, a) in [
            (&changes.owners, Affiliation::Owner),
            (&changes.admins, Affiliation::Admin),
        ] {
            let Some(list) = list else { continue };
            for j in list.iter().filter_map(|j| BareJid::new(j.trim()).ok()) {
                if self.rooms.get(node).is_some_and(|r| r.affiliation(&j) != a) {
                    self.set_affiliation(node, &j, a, None).await;
                }
            }
        }
        if changes.became_members_only
            && let Some(room) = self.rooms.get(node)
        {
            // §9.? 322: non-members leave a room that became members-only.
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
        // Removing the non-members may have emptied, and so ended, a
        // temporary room configured by an owner who is not in it.
        if changes.any
            && !was_locked
            && let Some(room) = self.rooms.get(node)
        {
            // §10.2.1: tell occupants the configuration changed.
            let mut codes = vec![104];
            if changes.anonymity_changed {
                codes.push(if room.config.whois_anyone { 172 } else { 173 });
            }
            let mut m = Element::bare("message", ns::CLIENT);
            set_attr(&mut m, "from", room.jid.to_string());
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

    pub(super) async fn persist(&self, node: &str) {
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
    pub(super) async fn destroy(
        &mut self,
        node: &str,
        alternate: Option<String>,
        reason: Option<String>,
    ) {
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

    pub(super) async fn moderate(
        &mut self,
        from: &Jid,
        node: &str,
        moderate: &Element,
    ) -> Result<Option<Element>, StanzaError> {
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
        let Some(moderator) = from
            .clone()
            .try_into_full()
            .ok()
            .and_then(|f| room.occupant_of(&f))
        else {
            return Err(err(Condition::Forbidden));
        };
        if moderator.role != Role::Moderator {
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
        // New joiners no longer get the retracted message.
        if let Some(room) = self.rooms.get_mut(node) {
            room.history.retain(|e| e.stanza_id != id);
        }
        self.fan_out(node, m).await;
        Ok(None)
    }
}

/// Who may read a room's list of an affiliation (XEP-0045 §9.5, §10.5,
/// §10.8): members the member list (OMEMO clients encrypt to every member
/// of a private group), and moderators too, since they see real JIDs; the
/// owner and admin lists whoever may see real JIDs (anyone in the room, or
/// any member, when the room shows them to all; moderators otherwise);
/// the ban list admins only. Admins and owners read every list.
fn may_list(room: &Room, list: Affiliation, actor: Affiliation, role: Role) -> bool {
    if actor >= Affiliation::Admin {
        return true;
    }
    let present = role != Role::None;
    match list {
        Affiliation::Member => actor >= Affiliation::Member || role == Role::Moderator,
        Affiliation::Owner | Affiliation::Admin => {
            role == Role::Moderator
                || (room.config.whois_anyone && (present || actor >= Affiliation::Member))
        }
        _ => false,
    }
}
