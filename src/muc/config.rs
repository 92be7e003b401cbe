//! A room's configuration (XEP-0045 §10.2, the muc#roomconfig form) and the
//! muc#roominfo extended disco form (§6.4).

use crate::xmpp::ns;
use crate::xmpp::stanza::set_attr;
use minidom::Element;
use serde::{Deserialize, Serialize};

pub const FORM_TYPE: &str = "http://jabber.org/protocol/muc#roomconfig";

/// Who may send private messages to occupants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowPm {
    Anyone,
    Participants,
    Moderators,
    None,
}

impl AllowPm {
    fn as_str(self) -> &'static str {
        match self {
            AllowPm::Anyone => "anyone",
            AllowPm::Participants => "participants",
            AllowPm::Moderators => "moderators",
            AllowPm::None => "none",
        }
    }

    fn parse(s: &str) -> Option<AllowPm> {
        Some(match s {
            "anyone" => AllowPm::Anyone,
            "participants" => AllowPm::Participants,
            "moderators" => AllowPm::Moderators,
            "none" => AllowPm::None,
            _ => return None,
        })
    }
}

/// Everything an owner configures. Stored as TOML for persistent rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    pub name: String,
    pub description: String,
    pub persistent: bool,
    pub public: bool,
    pub members_only: bool,
    pub password: Option<String>,
    pub moderated: bool,
    pub max_users: usize,
    pub history_length: usize,
    /// Real JIDs visible to everyone (non-anonymous); else to moderators only.
    pub whois_anyone: bool,
    /// Participants (not only moderators) may change the subject.
    pub change_subject: bool,
    /// Occupants (not only admins and owners) may invite to a members-only room.
    pub allow_invites: bool,
    pub allow_pm: AllowPm,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            password: None,
            moderated: false,
            max_users: 1000,
            history_length: 20,
            whois_anyone: false,
            change_subject: false,
            allow_invites: false,
            allow_pm: AllowPm::Anyone,
        }
    }
}

/// What changed when a form was applied, for the notifications §10.2.1 asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub any: bool,
    pub became_members_only: bool,
    pub anonymity_changed: bool,
    pub persistence_changed: bool,
    /// Owners and admins named in the form (roomowners / roomadmins), if given.
    pub owners: Option<Vec<String>>,
    pub admins: Option<Vec<String>>,
}

fn field(var: &str, kind: &str, label: &str, values: &[&str]) -> Element {
    let mut f = Element::bare("field", ns::DATA_FORMS);
    set_attr(&mut f, "var", var.to_owned());
    set_attr(&mut f, "type", kind.to_owned());
    if !label.is_empty() {
        set_attr(&mut f, "label", label.to_owned());
    }
    for v in values {
        let mut value = Element::bare("value", ns::DATA_FORMS);
        value.append_text((*v).to_owned());
        f.append_child(value);
    }
    f
}

fn option(f: &mut Element, label: &str, value: &str) {
    let mut o = Element::bare("option", ns::DATA_FORMS);
    set_attr(&mut o, "label", label.to_owned());
    let mut v = Element::bare("value", ns::DATA_FORMS);
    v.append_text(value.to_owned());
    o.append_child(v);
    f.append_child(o);
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl RoomConfig {
    /// Serialise for the database.
    pub fn to_text(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Read back; unknown or missing keys take their defaults.
    pub fn from_text(text: &str) -> RoomConfig {
        toml::from_str(text).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored room configuration unreadable; using defaults");
            RoomConfig::default()
        })
    }

    /// The configuration form an owner fills (§10.2).
    pub fn form(&self, owners: &[String], admins: &[String], max_users: usize) -> Element {
        let mut x = Element::bare("x", ns::DATA_FORMS);
        set_attr(&mut x, "type", "form");
        let mut title = Element::bare("title", ns::DATA_FORMS);
        title.append_text("Room configuration".to_owned());
        x.append_child(title);
        x.append_child(field("FORM_TYPE", "hidden", "", &[FORM_TYPE]));
        x.append_child(field(
            "muc#roomconfig_roomname",
            "text-single",
            "Name",
            &[&self.name],
        ));
        x.append_child(field(
            "muc#roomconfig_roomdesc",
            "text-single",
            "Description",
            &[&self.description],
        ));
        x.append_child(field(
            "muc#roomconfig_persistentroom",
            "boolean",
            "Keep the room when everyone has left",
            &[flag(self.persistent)],
        ));
        x.append_child(field(
            "muc#roomconfig_publicroom",
            "boolean",
            "List the room in the directory of rooms",
            &[flag(self.public)],
        ));
        x.append_child(field(
            "muc#roomconfig_membersonly",
            "boolean",
            "Members only",
            &[flag(self.members_only)],
        ));
        x.append_child(field(
            "muc#roomconfig_passwordprotectedroom",
            "boolean",
            "Protected by a password",
            &[flag(self.password.is_some())],
        ));
        x.append_child(field(
            "muc#roomconfig_roomsecret",
            "text-private",
            "Password",
            &[self.password.as_deref().unwrap_or("")],
        ));
        x.append_child(field(
            "muc#roomconfig_moderatedroom",
            "boolean",
            "Moderated: only participants with voice may speak",
            &[flag(self.moderated)],
        ));
        let max = self.max_users.to_string();
        let mut f = field(
            "muc#roomconfig_maxusers",
            "list-single",
            "Most occupants",
            &[&max],
        );
        for n in [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] {
            if n <= max_users {
                option(&mut f, &n.to_string(), &n.to_string());
            }
        }
        x.append_child(f);
        let hist = self.history_length.to_string();
        x.append_child(field(
            "muc#maxhistoryfetch",
            "text-single",
            "Messages of history sent to people who join",
            &[&hist],
        ));
        let mut f = field(
            "muc#roomconfig_whois",
            "list-single",
            "Who may see real addresses",
            &[if self.whois_anyone {
                "anyone"
            } else {
                "moderators"
            }],
        );
        option(&mut f, "Moderators only", "moderators");
        option(&mut f, "Anyone", "anyone");
        x.append_child(f);
        x.append_child(field(
            "muc#roomconfig_changesubject",
            "boolean",
            "Participants may change the subject",
            &[flag(self.change_subject)],
        ));
        x.append_child(field(
            "muc#roomconfig_allowinvites",
            "boolean",
            "Occupants may invite others",
            &[flag(self.allow_invites)],
        ));
        let mut f = field(
            "muc#roomconfig_allowpm",
            "list-single",
            "Who may send private messages",
            &[self.allow_pm.as_str()],
        );
        for v in ["anyone", "participants", "moderators", "none"] {
            option(&mut f, v, v);
        }
        x.append_child(f);
        let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
        x.append_child(field(
            "muc#roomconfig_roomowners",
            "jid-multi",
            "Owners",
            &owners,
        ));
        let admins: Vec<&str> = admins.iter().map(String::as_str).collect();
        x.append_child(field(
            "muc#roomconfig_roomadmins",
            "jid-multi",
            "Administrators",
            &admins,
        ));
        x
    }

    /// Apply a submitted form. Fields left out keep their values (§10.2:
    /// clients may send only what changed). Err: the field at fault.
    pub fn apply(
        &mut self,
        form: &Element,
        max_users: usize,
        max_history: usize,
    ) -> Result<Changes, String> {
        let before = self.clone();
        let mut changes = Changes::default();
        let mut password_flag = None;
        let mut secret = None;
        for f in form.children().filter(|c| c.is("field", ns::DATA_FORMS)) {
            let Some(var) = f.attr("var") else { continue };
            let values: Vec<String> = f
                .children()
                .filter(|c| c.is("value", ns::DATA_FORMS))
                .map(Element::text)
                .collect();
            let first = values
                .first()
                .map(|v| v.trim().to_owned())
                .unwrap_or_default();
            let boolean = || match first.as_str() {
                "1" | "true" => Ok(true),
                "0" | "false" | "" => Ok(false),
                _ => Err(format!("{var}: not a boolean")),
            };
            match var {
                "FORM_TYPE" if first != FORM_TYPE => {
                    return Err("FORM_TYPE is not muc#roomconfig".into());
                }
                "muc#roomconfig_roomname" => self.name = first.chars().take(256).collect(),
                "muc#roomconfig_roomdesc" => self.description = first.chars().take(2048).collect(),
                "muc#roomconfig_persistentroom" => self.persistent = boolean()?,
                "muc#roomconfig_publicroom" => self.public = boolean()?,
                "muc#roomconfig_membersonly" => self.members_only = boolean()?,
                "muc#roomconfig_passwordprotectedroom" => password_flag = Some(boolean()?),
                "muc#roomconfig_roomsecret" => secret = Some(first.clone()),
                "muc#roomconfig_moderatedroom" => self.moderated = boolean()?,
                "muc#roomconfig_maxusers" => {
                    let n = if first.is_empty() || first == "none" {
                        max_users
                    } else {
                        first
                            .parse::<usize>()
                            .map_err(|_| format!("{var}: not a number"))?
                    };
                    if n == 0 || n > max_users {
                        return Err(format!("{var}: between 1 and {max_users}"));
                    }
                    self.max_users = n;
                }
                "muc#maxhistoryfetch" | "muc#roomconfig_historylength" => {
                    let n = first
                        .parse::<usize>()
                        .map_err(|_| format!("{var}: not a number"))?;
                    self.history_length = n.min(max_history);
                }
                "muc#roomconfig_whois" => {
                    self.whois_anyone = match first.as_str() {
                        "anyone" => true,
                        "moderators" | "" => false,
                        _ => return Err(format!("{var}: anyone or moderators")),
                    }
                }
                "muc#roomconfig_changesubject" => self.change_subject = boolean()?,
                "muc#roomconfig_allowinvites" => self.allow_invites = boolean()?,
                "muc#roomconfig_allowpm" => {
                    self.allow_pm = AllowPm::parse(&first)
                        .ok_or_else(|| format!("{var}: anyone, participants, moderators or none"))?
                }
                "muc#roomconfig_roomowners" => changes.owners = Some(values.clone()),
                "muc#roomconfig_roomadmins" => changes.admins = Some(values.clone()),
                // Fields we do not offer are ignored, as XEP-0004 allows.
                _ => {}
            }
        }
        match (password_flag, secret) {
            (Some(false), _) => self.password = None,
            (_, Some(s)) if !s.is_empty() => self.password = Some(s),
            (Some(true), _) if self.password.is_none() => {
                return Err("a password-protected room needs muc#roomconfig_roomsecret".into());
            }
            _ => {}
        }
        changes.any = *self != before;
        changes.became_members_only = self.members_only && !before.members_only;
        changes.anonymity_changed = self.whois_anyone != before.whois_anyone;
        changes.persistence_changed = self.persistent != before.persistent;
        Ok(changes)
    }

    /// The disco#info features of §6.4.
    pub fn features(&self) -> Vec<&'static str> {
        vec![
            if self.public {
                "muc_public"
            } else {
                "muc_hidden"
            },
            if self.members_only {
                "muc_membersonly"
            } else {
                "muc_open"
            },
            if self.password.is_some() {
                "muc_passwordprotected"
            } else {
                "muc_unsecured"
            },
            if self.persistent {
                "muc_persistent"
            } else {
                "muc_temporary"
            },
            if self.moderated {
                "muc_moderated"
            } else {
                "muc_unmoderated"
            },
            if self.whois_anyone {
                "muc_nonanonymous"
            } else {
                "muc_semianonymous"
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(fields: &[(&str, &str)]) -> Element {
        let mut x = Element::bare("x", ns::DATA_FORMS);
        set_attr(&mut x, "type", "submit");
        for (var, value) in fields {
            x.append_child(field(var, "text-single", "", &[value]));
        }
        x
    }

    #[test]
    fn form_roundtrip_and_partial_submit() {
        let mut c = RoomConfig::default();
        let changes = c
            .apply(
                &submit(&[
                    ("FORM_TYPE", FORM_TYPE),
                    ("muc#roomconfig_roomname", "Salon DSI"),
                    ("muc#roomconfig_persistentroom", "1"),
                    ("muc#roomconfig_membersonly", "true"),
                    ("muc#roomconfig_roomsecret", "sesame"),
                    ("muc#roomconfig_maxusers", "50"),
                ]),
                1000,
                100,
            )
            .expect("valid");
        assert!(changes.any && changes.became_members_only && changes.persistence_changed);
        assert_eq!(c.name, "Salon DSI");
        assert_eq!(c.password.as_deref(), Some("sesame"));
        assert_eq!(c.max_users, 50);
        assert!(c.public, "left out: unchanged");
        assert_eq!(RoomConfig::from_text(&c.to_text()), c);
        // Turning the password off clears it.
        c.apply(
            &submit(&[("muc#roomconfig_passwordprotectedroom", "0")]),
            1000,
            100,
        )
        .expect("valid");
        assert_eq!(c.password, None);
        assert!(
            c.apply(&submit(&[("muc#roomconfig_maxusers", "5000")]), 1000, 100)
                .is_err()
        );
        assert!(
            c.apply(&submit(&[("muc#roomconfig_whois", "nobody")]), 1000, 100)
                .is_err()
        );
    }
}
