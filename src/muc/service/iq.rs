//! iq to rooms and occupants: disco of a room, self-ping and relaying to
//! occupants, registered nicknames (XEP-0045 §6, §7.10, §7.11).

use super::*;

impl Service {
    // ---- iq ------------------------------------------------------------------

    pub(super) async fn iq(
        &mut self,
        stanza: &Element,
        from: &Jid,
        node: &str,
        nick: Option<String>,
    ) {
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
        let mut ack = Ack {
            request: stanza,
            sent: false,
        };
        let result = match (set, payload.name(), payload.ns().as_str()) {
            (false, "query", ns::DISCO_INFO) if payload.attr("node") == Some("x-roomuser-item") => {
                self.reserved_nick(from, node).map(Some)
            }
            (false, "query", ns::DISCO_INFO) => self.room_info(node).map(Some),
            (_, "query", ns::REGISTER) => self.register(from, node, set, payload, &mut ack).await,
            (false, "query", ns::DISCO_ITEMS) => Ok(Some(Element::bare("query", ns::DISCO_ITEMS))),
            (false, "ping", ns::PING) => Ok(None),
            (_, "query", NS_ADMIN) => self.admin(from, node, set, payload, &mut ack).await,
            (_, "query", NS_OWNER) => self.owner(from, node, set, payload, &mut ack).await,
            (true, "moderate", NS_MODERATE) => self.moderate(from, node, payload).await,
            _ => Err(err(Condition::ServiceUnavailable)),
        };
        match (result, ack.sent) {
            (Ok(p), false) => self.send(iq_result(stanza, p)).await,
            (Err(e), false) => self.reply_error(stanza, e).await,
            // Answered before its effects: nothing can fail after that.
            (_, true) => {}
        }
    }

    /// Answer a request that succeeded before applying what follows from
    /// it (presence and messages to occupants), so that the requester sees
    /// the result first. Once only: the dispatcher then sends nothing.
    pub(super) async fn ack(&self, ack: &mut Ack<'_>) {
        if !ack.sent {
            ack.sent = true;
            self.send(iq_result(ack.request, None)).await;
        }
    }

    /// iqs to room/nick: XEP-0410 self-ping; nothing else is relayed.
    pub(super) async fn occupant_iq(
        &mut self,
        stanza: &Element,
        from: &Jid,
        node: &str,
        nick: &str,
        payload: &Element,
    ) {
        let requester = from.clone().try_into_full().ok();
        let room = self.rooms.get(node);
        let asker = requester
            .as_ref()
            .and_then(|f| room.and_then(|r| r.occupant_of(f)));
        if payload.is("ping", ns::PING) {
            // XEP-0410 §3.2: clients read not-acceptable as "not joined,
            // join again" (a room that does not exist included), while
            // item-not-found would tell them they are still in.
            return match asker {
                Some(_) => self.send(iq_result(stanza, None)).await,
                None => {
                    self.reply_error(stanza, err(Condition::NotAcceptable))
                        .await
                }
            };
        }
        let Some(room) = room else {
            return self.reply_error(stanza, err(Condition::ItemNotFound)).await;
        };
        // Anything else (vCards for avatars, software version...) is relayed
        // to the occupant, as from the asker's nick (XEP-0045 §7.5's rule
        // for private messages, applied to iq), by occupants only: the room's anonymity holds.
        let (Some(asker), Some(target)) = (asker, room.occupant_named(nick)) else {
            return self
                .reply_error(stanza, err(Condition::NotAcceptable))
                .await;
        };
        let (Some(session), Some(requester)) = (target.sessions.first().cloned(), requester) else {
            return;
        };
        let asker_jid = room.occupant_jid(&asker.nick);
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
    pub(super) async fn relay_answer(&mut self, stanza: &Element, from: &Jid, node: &str) {
        let Some(id) = stanza.attr("id") else { return };
        let Some(relayed) = self.relayed.remove(id) else {
            return;
        };
        // Only the asked occupant's session may answer.
        let answered_by = from.clone().try_into_full().ok().and_then(|f| {
            let room = self.rooms.get(node)?;
            Some(room.occupant_jid(&room.occupant_of(&f)?.nick))
        });
        if answered_by.as_deref() != Some(relayed.target.as_str()) {
            return;
        }
        let mut out = stanza.clone();
        set_attr(&mut out, "id", relayed.id);
        set_attr(&mut out, "from", relayed.target);
        set_attr(&mut out, "to", relayed.requester.to_string());
        self.send(out).await;
    }

    pub(super) fn room_info(&self, node: &str) -> Result<Element, StanzaError> {
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
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
        Ok(info.to_element(None))
    }

    /// §7.11: the nick `from` registered, as a disco identity.
    pub(super) fn reserved_nick(&self, from: &Jid, node: &str) -> Result<Element, StanzaError> {
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
        let mut q = Element::bare("query", ns::DISCO_INFO);
        set_attr(&mut q, "node", "x-roomuser-item");
        if let Some(nick) = room.nicks.get(&from.to_bare()) {
            let mut id = Element::bare("identity", ns::DISCO_INFO);
            set_attr(&mut id, "category", "conference");
            set_attr(&mut id, "type", "text");
            set_attr(&mut id, "name", nick.clone());
            q.append_child(id);
        }
        Ok(q)
    }

    /// §7.10: registering a nickname with the room (which makes the user a member).
    pub(super) async fn register(
        &mut self,
        from: &Jid,
        node: &str,
        set: bool,
        query: &Element,
        ack: &mut Ack<'_>,
    ) -> Result<Option<Element>, StanzaError> {
        let user = from.to_bare();
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
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
            let nick = forms::Field {
                required: true,
                ..forms::field("muc#register_roomnick", FieldType::TextSingle, "Nickname")
            };
            q.append_child(forms::to_element(DataForm::new(
                DataFormType::Form,
                NS_REGISTER_FORM,
                vec![nick],
            )));
            return Ok(Some(q));
        }
        let room_jid = room.jid.clone();
        if query.get_child("remove", ns::REGISTER).is_some() {
            // XEP-0045 §7.10: the registration is the membership; admins
            // and owners keep their affiliation (only an owner's or admin's
            // change may take it) and lose their nick only.
            if let Some(r) = self.rooms.get_mut(node) {
                r.nicks.remove(&user);
            }
            if self.rooms.get(node).is_some_and(|r| r.config.persistent)
                && let Err(e) = self.state.storage.set_nick(&room_jid, &user, None).await
            {
                tracing::error!(room = %room_jid, error = %e, "cannot drop a registered nick");
            }
            let direct = self
                .rooms
                .get(node)
                .map(|r| r.affiliation(&user))
                .unwrap_or(Affiliation::None);
            if direct == Affiliation::Member {
                // §9.4: in a members-only room the user then leaves (321).
                self.ack(ack).await;
                self.set_affiliation(node, &user, Affiliation::None, None)
                    .await;
            }
            return Ok(None);
        }
        // What is no data form counts as none: the legacy username may follow.
        let nick = query
            .get_child("x", ns::DATA_FORMS)
            .and_then(|x| DataForm::try_from(x.clone()).ok())
            .and_then(|form| forms::first_value(&form, "muc#register_roomnick").map(str::to_owned))
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
        let room = self
            .rooms
            .get(node)
            .ok_or_else(|| err(Condition::ItemNotFound))?;
        let taken_by_other = room.nick_owner(&nick).is_some_and(|o| o != &user)
            || room.occupant_named(&nick).is_some_and(|o| o.bare != user);
        if taken_by_other {
            return Err(err(Condition::Conflict).with_text("this nickname is taken"));
        }
        if let Some(r) = self.rooms.get_mut(node) {
            r.nicks.insert(user.clone(), nick.clone());
        }
        if self.rooms.get(node).is_some_and(|r| r.config.persistent)
            && let Err(e) = self
                .state
                .storage
                .set_nick(&room_jid, &user, Some(&nick))
                .await
        {
            tracing::error!(room = %room_jid, error = %e, "cannot store a registered nick");
        }
        if affiliation < Affiliation::Member {
            self.ack(ack).await;
            self.set_affiliation(node, &user, Affiliation::Member, None)
                .await;
        }
        Ok(None)
    }
}
