//! A room's configuration (XEP-0045 §10.2, the muc#roomconfig form) and the
//! muc#roominfo extended disco form (§6.4).

use crate::xmpp::forms::{self, DataForm, DataFormType, Field, FieldType, Option_};
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

fn field(var: &str, kind: FieldType, label: &str, values: &[&str]) -> Field {
    Field {
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        ..forms::field(var, kind, label)
    }
}

fn option(f: &mut Field, label: &str, value: &str) {
    f.options.push(Option_ {
        label: Some(label.to_owned()),
        value: value.to_owned(),
    });
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
        let boolean = |var, label, value| field(var, FieldType::Boolean, label, &[flag(value)]);
        let mut max = field(
            "muc#roomconfig_maxusers",
            FieldType::ListSingle,
            "Most occupants",
            &[&self.max_users.to_string()],
        );
        for n in [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] {
            if n <= max_users {
                option(&mut max, &n.to_string(), &n.to_string());
            }
        }
        let mut whois = field(
            "muc#roomconfig_whois",
            FieldType::ListSingle,
            "Who may see real addresses",
            &[if self.whois_anyone {
                "anyone"
            } else {
                "moderators"
            }],
        );
        option(&mut whois, "Moderators only", "moderators");
        option(&mut whois, "Anyone", "anyone");
        let mut allow_pm = field(
            "muc#roomconfig_allowpm",
            FieldType::ListSingle,
            "Who may send private messages",
            &[self.allow_pm.as_str()],
        );
        for v in ["anyone", "participants", "moderators", "none"] {
            option(&mut allow_pm, v, v);
        }
        let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
        let admins: Vec<&str> = admins.iter().map(String::as_str).collect();
        let fields = vec![
            field(
                "muc#roomconfig_roomname",
                FieldType::TextSingle,
                "Name",
                &[&self.name],
            ),
            field(
                "muc#roomconfig_roomdesc",
                FieldType::TextSingle,
                "Description",
                &[&self.description],
            ),
            boolean(
                "muc#roomconfig_persistentroom",
                "Keep the room when everyone has left",
                self.persistent,
            ),
            boolean(
                "muc#roomconfig_publicroom",
                "List the room in the directory of rooms",
                self.public,
            ),
            boolean(
                "muc#roomconfig_membersonly",
                "Members only",
                self.members_only,
            ),
            boolean(
                "muc#roomconfig_passwordprotectedroom",
                "Protected by a password",
                self.password.is_some(),
            ),
            field(
                "muc#roomconfig_roomsecret",
                FieldType::TextPrivate,
                "Password",
                &[self.password.as_deref().unwrap_or("")],
            ),
            boolean(
                "muc#roomconfig_moderatedroom",
                "Moderated: only participants with voice may speak",
                self.moderated,
            ),
            max,
            field(
                "muc#maxhistoryfetch",
                FieldType::TextSingle,
                "Messages of history sent to people who join",
                &[&self.history_length.to_string()],
            ),
            whois,
            boolean(
                "muc#roomconfig_changesubject",
                "Participants may change the subject",
                self.change_subject,
            ),
            boolean(
                "muc#roomconfig_allowinvites",
                "Occupants may invite others",
                self.allow_invites,
            ),
            allow_pm,
            field(
                "muc#roomconfig_roomowners",
                FieldType::JidMulti,
                "Owners",
                &owners,
            ),
            field(
                "muc#roomconfig_roomadmins",
                FieldType::JidMulti,
                "Administrators",
                &admins,
            ),
        ];
        let mut form = DataForm::new(DataFormType::Form, FORM_TYPE, fields);
        form.title = Some("Room configuration".to_owned());
        forms::to_element(form)
    }

    /// Apply a submitted form. Fields left out keep their values (§10.2:
    /// clients may send only what changed). Err: the field at fault.
    pub fn apply(
        &mut self,
        form: &DataForm,
        max_users: usize,
        max_history: usize,
    ) -> Result<Changes, String> {
        let before = self.clone();
        let mut changes = Changes::default();
        let mut password_flag = None;
        let mut secret = None;
        for f in &form.fields {
            let Some(var) = f.var.as_deref() else {
                continue;
            };
            let values = &f.values;
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
            // §10.1.3: protection asked for with no password to protect with.
            (Some(true), _) if self.password.is_none() => {
                return Err("a password-protected room needs muc#roomconfig_roomsecret".into());
            }
            // XEP-0004: an empty field is a value. Emptying the secret is how
            // clients that send the whole form back (the box still ticked)
            // remove a password: the protection goes with it.
            (_, Some(_)) => self.password = None,
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

    fn submit(fields: &[(&str, &str)]) -> DataForm {
        DataForm {
            type_: DataFormType::Submit,
            title: None,
            instructions: None,
            fields: fields
                .iter()
                .map(|(var, value)| Field::text_single(var, value))
                .collect(),
        }
    }

    /// What the form shows, submitted back as it is, changes nothing.
    #[test]
    fn form_submitted_unchanged_keeps_the_configuration() {
        let c = RoomConfig {
            name: "Salon".into(),
            password: Some("sesame".into()),
            max_users: 50,
            whois_anyone: true,
            allow_pm: AllowPm::Moderators,
            ..RoomConfig::default()
        };
        let x = c.form(&["romeo@montague.lit".into()], &[], 1000);
        let mut form = DataForm::try_from(x).expect("a valid form");
        assert_eq!(form.form_type(), Some(FORM_TYPE));
        form.type_ = DataFormType::Submit;
        let mut again = RoomConfig::default();
        let changes = again.apply(&form, 1000, 100).expect("valid");
        assert_eq!(again, c);
        assert_eq!(changes.owners, Some(vec!["romeo@montague.lit".to_owned()]));
        assert_eq!(changes.admins, Some(Vec::new()));
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

    /// Emptying the secret removes the password, the box ticked or not;
    /// asking for protection with no password at all is refused.
    #[test]
    fn an_empty_secret_removes_the_password() {
        let protected = RoomConfig {
            password: Some("sesame".into()),
            ..RoomConfig::default()
        };
        for fields in [
            &[("muc#roomconfig_roomsecret", "")][..],
            &[
                ("muc#roomconfig_passwordprotectedroom", "1"),
                ("muc#roomconfig_roomsecret", ""),
            ][..],
        ] {
            let mut c = protected.clone();
            let changes = c.apply(&submit(fields), 1000, 100).expect("valid");
            assert_eq!(c.password, None, "{fields:?}");
            assert!(changes.any);
        }
        let mut open = RoomConfig::default();
        assert!(
            open.apply(
                &submit(&[
                    ("muc#roomconfig_passwordprotectedroom", "1"),
                    ("muc#roomconfig_roomsecret", ""),
                ]),
                1000,
                100
            )
            .is_err()
        );
    }
}
