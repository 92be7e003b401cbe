//! Room administration for server administrators, in the style of XEP-0133
//! (Service Administration) over XEP-0050 (Ad-Hoc Commands): give a room a
//! new sole owner, destroy a room. The same as `jaseur muc set-owner` and
//! `jaseur muc destroy`, for admins who only have their XMPP client.
//!
//! `features::announce` lists these commands with its own and hands their
//! nodes to this module; both are stateless in the same way (the submitted
//! form carries everything). Outcomes, failures included, are a completed
//! command with a note: the admin reads them in the client's command dialog.

use super::announce::{bad_request, field, info_note, new_session_id, submitted_form, text};
use super::{IqRequest, IqResult};
use crate::admin::muc::ask;
use crate::muc::{Affiliation, Command};
use crate::state::ServerState;
use crate::xmpp::forms::{self, DataForm, DataFormType, Field, FieldType};
use crate::xmpp::ns;
use crate::xmpp::stanza::set_attr;
use jid::BareJid;
use minidom::Element;

/// Make a user the only owner of a room (the other owners become members).
pub const SET_OWNER: &str = "jaseur:muc:set-owner";
/// Destroy a room.
pub const DESTROY: &str = "jaseur:muc:destroy";

/// The commands this module answers, as (node, name) for XEP-0050 discovery.
pub const COMMANDS: &[(&str, &str)] = &[
    (SET_OWNER, "Set the Owner of a Room"),
    (DESTROY, "Destroy a Room"),
];

/// Whether `node` is one of this module's commands.
pub fn handles(node: &str) -> bool {
    COMMANDS.iter().any(|(n, _)| *n == node)
}

/// One of this module's commands, from an administrator (the caller has
/// checked both).
pub async fn command(req: &IqRequest<'_>, node: &str) -> IqResult {
    let cmd = req.payload;
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
            let mut c = reply("completed");
            c.append_child(match complete(req, node, &form).await {
                Ok(done) => info_note(&done),
                Err(e) => error_note(&e),
            });
            Ok(Some(c))
        }
        ("execute", None) => {
            let mut c = reply("executing");
            let mut actions = Element::bare("actions", ns::COMMANDS);
            set_attr(&mut actions, "execute", "complete");
            actions.append_child(Element::bare("complete", ns::COMMANDS));
            c.append_child(actions);
            c.append_child(form(node));
            Ok(Some(c))
        }
        ("complete" | "next", None) => Err(bad_request("submit the form")),
        _ => Err(bad_request("unknown or unexpected action")),
    }
}

/// Carry out a submitted form; the text is the note for the admin.
async fn complete(req: &IqRequest<'_>, node: &str, form: &DataForm) -> Result<String, String> {
    let state = req.state;
    let room = room(state, field(form, "room").as_deref())?;
    let service = room.domain().as_str().to_owned();
    let by = req.from.to_bare();
    if node == SET_OWNER {
        let owner = field(form, "owner").unwrap_or_default();
        let owner = bare_with_node(&owner)
            .ok_or_else(|| format!("{owner:?} is not a user's bare JID (user@domain)"))?;
        ask(state, &service, |reply| Command::SetAffiliation {
            room: room.clone(),
            jid: owner.clone(),
            affiliation: Affiliation::Owner,
            sole_owner: true,
            reply,
        })
        .await??;
        tracing::info!(%room, %owner, %by, "room owner set by an administrator (ad-hoc command)");
        Ok(format!("{owner} is now the only owner of {room}."))
    } else {
        let reason = field(form, "reason")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        ask(state, &service, |reply| Command::Destroy {
            room: room.clone(),
            reason,
            reply,
        })
        .await??;
        tracing::info!(%room, %by, "room destroyed by an administrator (ad-hoc command)");
        Ok(format!("{room} was destroyed."))
    }
}

/// The room field: a room of one of our MUC services.
fn room(state: &ServerState, value: Option<&str>) -> Result<BareJid, String> {
    let value = value.unwrap_or_default().trim();
    if value.is_empty() {
        return Err("give the room's address (name@conference.domain)".into());
    }
    let room = bare_with_node(value)
        .ok_or_else(|| format!("{value:?} is not a room address (name@service)"))?;
    let ours = state
        .config
        .server
        .domains
        .iter()
        .filter_map(|d| state.config.muc_service(d))
        .any(|s| s == room.domain().as_str());
    if !ours {
        return Err(format!(
            "{} is not a MUC service of this server",
            room.domain()
        ));
    }
    Ok(room)
}

/// `user@domain` or `room@service`: bare (BareJid refuses a resource), with a node.
fn bare_with_node(s: &str) -> Option<BareJid> {
    BareJid::new(s.trim()).ok().filter(|b| b.node().is_some())
}

/// The XEP-0004 form of one command.
fn form(node: &str) -> Element {
    let (title, instructions) = if node == SET_OWNER {
        (
            "Setting the Owner of a Room",
            "The user becomes the room's only owner; its other owners become members.",
        )
    } else {
        (
            "Destroying a Room",
            "The room is closed and forgotten; its occupants are told the reason.",
        )
    };
    let required = |var, label| Field {
        required: true,
        ..forms::field(var, FieldType::JidSingle, label)
    };
    let mut fields = vec![required("room", "Room (name@conference.domain)")];
    if node == SET_OWNER {
        fields.push(required("owner", "New owner"));
    } else {
        fields.push(forms::field("reason", FieldType::TextSingle, "Reason"));
    }
    forms::to_element(DataForm {
        type_: DataFormType::Form,
        title: Some(title.to_owned()),
        instructions: Some(instructions.to_owned()),
        fields,
    })
}

fn error_note(note: &str) -> Element {
    let mut n = text("note", ns::COMMANDS, note);
    set_attr(&mut n, "type", "error");
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_ask_for_what_the_commands_need() {
        let vars = |x: &Element| {
            x.children()
                .filter(|f| f.is("field", ns::DATA_FORMS))
                .map(|f| {
                    (
                        f.attr("var").unwrap_or_default().to_owned(),
                        f.attr("type").unwrap_or_default().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            vars(&form(SET_OWNER)),
            [
                ("room".to_owned(), "jid-single".to_owned()),
                ("owner".to_owned(), "jid-single".to_owned())
            ]
        );
        assert_eq!(
            vars(&form(DESTROY)),
            [
                ("room".to_owned(), "jid-single".to_owned()),
                ("reason".to_owned(), "text-single".to_owned())
            ]
        );
        assert!(handles(SET_OWNER) && handles(DESTROY) && !handles("jaseur:muc:other"));
    }
}
