//! XEP-0133: Service Administration (version 1.2), over XEP-0050 Ad-Hoc
//! Commands (version 1.3): announcements to online users (§4.23) and the
//! message of the day (§4.24 set, §4.25 edit, §4.26 delete), for the
//! administrators listed in `server.admins`.
//!
//! Each command has at most one form, and the submitted form carries
//! everything, so command sessions are stateless: `sessionid` is an opaque
//! token we hand out and accept back without keeping anything.
//!
//! The form fields are those of the XEP (`announcement`, `motd`) plus an
//! optional `subject`, as Prosody and ejabberd offer; `body` is accepted too,
//! for scripts written against ejabberd.

use super::{IqRequest, IqResult};
use crate::state::ServerState;
use crate::storage::StorageError;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::forms::{self, DataForm, DataFormType, Field, FieldType};
use crate::xmpp::ns;
use crate::xmpp::stanza::set_attr;
use jid::{FullJid, Jid};
use minidom::Element;
use std::future::Future;

/// §4.23 Send Announcement to Online Users.
pub const ANNOUNCE: &str = "http://jabber.org/protocol/admin#announce";
/// §4.24 Set Message of the Day.
pub const SET_MOTD: &str = "http://jabber.org/protocol/admin#set-motd";
/// §4.25 Edit Message of the Day.
pub const EDIT_MOTD: &str = "http://jabber.org/protocol/admin#edit-motd";
/// §4.26 Delete Message of the Day.
pub const DELETE_MOTD: &str = "http://jabber.org/protocol/admin#delete-motd";

/// The commands this module answers itself.
const COMMANDS: &[(&str, &str)] = &[
    (ANNOUNCE, "Send Announcement to Online Users"),
    (SET_MOTD, "Set Message of the Day"),
    (EDIT_MOTD, "Edit Message of the Day"),
    (DELETE_MOTD, "Delete Message of the Day"),
];

/// The server's admin commands, as (node, name) for XEP-0050 discovery:
/// ours, then room administration's (`muc_admin`, dispatched from `command`).
pub fn admin_commands() -> Vec<(&'static str, &'static str)> {
    COMMANDS
        .iter()
        .chain(super::muc_admin::COMMANDS)
        .copied()
        .collect()
}

/// A message of the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Motd {
    pub subject: Option<String>,
    pub body: String,
}

/// The message of the day, one per served domain.
pub trait MotdStore {
    /// The domain's message of the day, if one is set.
    fn motd(&self, domain: &str)
    -> impl Future<Output = Result<Option<Motd>, StorageError>> + Send;
    /// Set or replace the domain's message of the day.
    fn set_motd(
        &self,
        domain: &str,
        motd: &Motd,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Delete the domain's message of the day; false when there was none.
    fn delete_motd(&self, domain: &str) -> impl Future<Output = Result<bool, StorageError>> + Send;
}

/// An ad-hoc command addressed to the server.
pub async fn command(req: &IqRequest<'_>) -> IqResult {
    // XEP-0050 §3.5: commands are executed with iq sets.
    if !req.set {
        return Err(bad_request("ad-hoc commands are iq sets"));
    }
    if !req.state.config.is_admin(req.from.to_bare().as_str()) {
        return Err(StanzaError::new(Condition::Forbidden));
    }
    let cmd = req.payload;
    let node = cmd.attr("node").unwrap_or_default();
    if super::muc_admin::handles(node) {
        return super::muc_admin::command(req, node).await;
    }
    let Some(&(node, _)) = COMMANDS.iter().find(|(n, _)| *n == node) else {
        return Err(StanzaError::new(Condition::ItemNotFound));
    };
    // The domain administered is the one the command was sent to.
    let domain = match req.iq.attr("to").map(Jid::new) {
        Some(Ok(to)) => to.domain().as_str().to_owned(),
        _ => req.from.domain().as_str().to_owned(),
    };
    let session = cmd
        .attr("sessionid")
        .map(str::to_owned)
        .unwrap_or_else(new_session_id);
    let reply = |status: &str| {
        let mut c = Element::bare("command", ns::COMMANDS);
        set_attr(&mut c, "node", node);
        set_attr(&mut c, "sessionid", session.as_str());
        set_attr(&mut c, "status", status);
        c
    };
    let submitted = submitted_form(cmd);
    match (cmd.attr("action").unwrap_or("execute"), submitted) {
        ("cancel", _) => Ok(Some(reply("canceled"))),
        ("execute" | "complete" | "next", Some(form)) => {
            let note = complete(req.state, node, &domain, &form).await?;
            let mut c = reply("completed");
            c.append_child(info_note(&note));
            Ok(Some(c))
        }
        ("execute", None) if node == DELETE_MOTD => {
            // §4.26: nothing to ask, the service simply deletes.
            let note = delete_motd(req.state, &domain).await?;
            let mut c = reply("completed");
            c.append_child(info_note(&note));
            Ok(Some(c))
        }
        ("execute", None) => {
            let current = if node == EDIT_MOTD {
                req.state.storage.motd(&domain).await.map_err(|e| {
                    StanzaError::internal("service administration command failed", None, &e)
                })?
            } else {
                None
            };
            let mut c = reply("executing");
            let mut actions = Element::bare("actions", ns::COMMANDS);
            set_attr(&mut actions, "execute", "complete");
            actions.append_child(Element::bare("complete", ns::COMMANDS));
            c.append_child(actions);
            c.append_child(forms::to_element(form(node, current.as_ref())));
            Ok(Some(c))
        }
        ("complete" | "next", None) => Err(bad_request("submit the form")),
        _ => Err(bad_request("unknown or unexpected action")),
    }
}

/// Carry out a command whose form was submitted; returns the note for the admin.
async fn complete(
    state: &ServerState,
    node: &str,
    domain: &str,
    form: &DataForm,
) -> Result<String, StanzaError> {
    if node == DELETE_MOTD {
        return delete_motd(state, domain).await;
    }
    let text_var = if node == ANNOUNCE {
        "announcement"
    } else {
        "motd"
    };
    let body = field(form, text_var)
        .or_else(|| field(form, "body"))
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| bad_request("the message is empty"))?;
    let subject = field(form, "subject").filter(|s| !s.trim().is_empty());
    let motd = Motd { subject, body };
    match node {
        ANNOUNCE => {
            let sent = broadcast(state, domain, "headline", &motd).await?;
            tracing::info!(domain, sessions = sent, "announcement sent");
            Ok(format!("Announcement sent to {sent} online session(s)."))
        }
        _ => {
            state.storage.set_motd(domain, &motd).await.map_err(|e| {
                StanzaError::internal("service administration command failed", None, &e)
            })?;
            tracing::info!(domain, "message of the day set");
            if node == SET_MOTD {
                // XEP-0133 §4.24 note: the message goes at once to users who are
                // online, later ones get it when they log in. An edit only corrects it.
                let sent = broadcast(state, domain, "normal", &motd).await?;
                Ok(format!(
                    "Message of the day set and sent to {sent} online session(s)."
                ))
            } else {
                Ok("Message of the day updated.".to_owned())
            }
        }
    }
}

async fn delete_motd(state: &ServerState, domain: &str) -> Result<String, StanzaError> {
    let existed =
        state.storage.delete_motd(domain).await.map_err(|e| {
            StanzaError::internal("service administration command failed", None, &e)
        })?;
    tracing::info!(domain, "message of the day deleted");
    Ok(if existed {
        "Message of the day deleted.".to_owned()
    } else {
        "There was no message of the day.".to_owned()
    })
}

/// Send `motd` to every available session on `domain`; returns how many.
async fn broadcast(
    state: &ServerState,
    domain: &str,
    kind: &str,
    motd: &Motd,
) -> Result<usize, StanzaError> {
    let mut sent = 0;
    for session in state.sessions.all() {
        // Only sessions that sent available presence are "online users".
        if session.jid.domain().as_str() == domain && session.presence.is_some() {
            let m = message(domain, &session.jid, kind, motd);
            crate::router::deliver(state, &session, m).await;
            sent += 1;
        }
    }
    Ok(sent)
}

/// A session just became available: send it the message of the day, if any.
pub async fn on_available(state: &ServerState, session: &FullJid) {
    let domain = session.domain().as_str();
    match state.storage.motd(domain).await {
        Ok(Some(motd)) => {
            crate::router::route(state, message(domain, session, "normal", &motd)).await
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, domain, "cannot load the message of the day"),
    }
}

/// The message a user receives from the server.
fn message(domain: &str, to: &FullJid, kind: &str, motd: &Motd) -> Element {
    let mut m = Element::bare("message", ns::CLIENT);
    set_attr(&mut m, "from", domain);
    set_attr(&mut m, "to", to.to_string());
    set_attr(&mut m, "type", kind);
    if let Some(subject) = &motd.subject {
        m.append_child(text("subject", ns::CLIENT, subject));
    }
    m.append_child(text("body", ns::CLIENT, &motd.body));
    m
}

/// The XEP-0004 form of one command, filled with `current` (edit-motd).
fn form(node: &str, current: Option<&Motd>) -> DataForm {
    let (title, instructions, var, label) = if node == ANNOUNCE {
        (
            "Making an Announcement",
            "Fill out this form to make an announcement to all active users of this service.",
            "announcement",
            "Announcement",
        )
    } else if node == EDIT_MOTD {
        (
            "Editing the Message of the Day",
            "Fill out this form to edit the message of the day.",
            "motd",
            "Message of the Day",
        )
    } else {
        (
            "Setting the Message of the Day",
            "Fill out this form to set the message of the day.",
            "motd",
            "Message of the Day",
        )
    };
    let mut subject = forms::field("subject", FieldType::TextSingle, "Subject");
    subject
        .values
        .extend(current.and_then(|m| m.subject.clone()));
    let body = Field {
        required: true,
        // XEP-0004 §3.3: text-multi carries one <value/> per line.
        values: current
            .map(|m| m.body.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
        ..forms::field(var, FieldType::TextMulti, label)
    };
    let mut form = DataForm::new(DataFormType::Form, ns::ADMIN, vec![subject, body]);
    form.title = Some(title.to_owned());
    form.instructions = Some(instructions.to_owned());
    form
}

/// The form a command carries, when it is a submitted data form; any other
/// (a form to fill in, or what is no data form) counts as none.
pub(super) fn submitted_form(cmd: &Element) -> Option<DataForm> {
    let x = cmd.get_child("x", ns::DATA_FORMS)?;
    DataForm::try_from(x.clone())
        .ok()
        .filter(|form| form.type_ == DataFormType::Submit)
}

/// A submitted field's values, joined by newlines (text-multi), or None when absent.
pub(super) fn field(form: &DataForm, var: &str) -> Option<String> {
    forms::values(form, var).map(|values| values.join("\n"))
}

pub(super) fn info_note(note: &str) -> Element {
    let mut n = text("note", ns::COMMANDS, note);
    set_attr(&mut n, "type", "info");
    n
}

pub(super) fn text(name: &str, namespace: &str, content: &str) -> Element {
    let mut el = Element::bare(name, namespace);
    el.append_text(content.to_owned());
    el
}

/// An opaque command session id (nothing is kept under it).
pub(super) fn new_session_id() -> String {
    let bytes: [u8; 8] = rand::random();
    crate::xmpp::hex(&bytes)
}

pub(super) fn bad_request(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0133 Example "Admin Submits Announce Form to Service".
    #[test]
    fn text_multi_values_join() {
        let x: Element = "<x xmlns='jabber:x:data' type='submit'>\
              <field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>\
              <field var='announcement'>\
                <value>Attention! This service will be going down for</value>\
                <value>maintenance in 2 minutes. Please log off now!</value>\
              </field></x>"
            .parse()
            .expect("xml");
        let form = DataForm::try_from(x).expect("a valid form");
        assert_eq!(
            field(&form, "announcement").as_deref(),
            Some(
                "Attention! This service will be going down for\nmaintenance in 2 minutes. Please log off now!"
            )
        );
        assert_eq!(field(&form, "subject"), None);
    }

    #[test]
    fn edit_form_carries_the_current_message() {
        let motd = Motd {
            subject: Some("News".into()),
            body: "line one\nline two".into(),
        };
        let x = forms::to_element(form(EDIT_MOTD, Some(&motd)));
        let body = x
            .children()
            .find(|f| f.attr("var") == Some("motd"))
            .expect("motd field");
        assert!(body.has_child("required", ns::DATA_FORMS));
        assert_eq!(body.children().filter(|v| v.name() == "value").count(), 2);
        let form = DataForm::try_from(x).expect("a valid form");
        assert_eq!(field(&form, "subject").as_deref(), Some("News"));
    }
}
