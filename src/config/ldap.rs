//! `[auth.ldap]` and `[domain."NAME".ldap]`: an LDAP directory holding accounts.

use super::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// An LDAP directory (RFC 4510-4516) that holds a domain's accounts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// `ldap://host[:port]` (with StartTLS unless `starttls = false`) or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// PEM file of the CA that signed the directory's certificate (else the system's).
    pub tls_ca: Option<PathBuf>,
    /// Where accounts are searched (subtree).
    pub base_dn: String,
    /// The attribute holding the login, which becomes the XMPP localpart.
    pub uid_attribute: String,
    /// Extra filter an account must match, e.g. `(employeeType=actif)`.
    pub filter: String,
    /// DN to search as (search-then-bind); omitted: anonymous search, or `user_dn_template`.
    pub bind_dn: Option<String>,
    /// Password of `bind_dn`.
    pub bind_password: Option<String>,
    /// File holding the password of `bind_dn` (instead of `bind_password`).
    pub bind_password_file: Option<PathBuf>,
    /// Bind directly as this DN, `{user}` replaced by the escaped login (no search).
    pub user_dn_template: Option<String>,
    /// Seconds to open a connection.
    pub connect_timeout: u64,
    /// Seconds for a whole login check, waiting for a connection included.
    pub timeout: u64,
    /// Connections to the directory at most.
    pub pool_size: usize,
    /// Seconds a successful check is remembered (0: ask the directory every time).
    pub cache_ttl: u64,
    /// Distinct wrong passwords per account and `auth.throttle_window` sent to the directory.
    pub max_failed_binds: u32,
    /// vCard fields filled from attributes (fn, family, given, nickname, email, tel, orgname, orgunit, title, role, url, photo).
    pub vcard: BTreeMap<String, String>,
    /// Offer XEP-0055 directory search at `search.DOMAIN`.
    pub search: bool,
    /// Most results of one search.
    pub search_max_results: usize,
    /// Searches one user may make per minute.
    pub search_per_minute: u32,
    /// Shortest search term accepted.
    pub search_min_length: usize,
    /// Shared roster groups built from the directory.
    pub shared_groups: Vec<SharedGroup>,
    /// Attribute of a group entry that lists its members (DNs, or logins for `memberUid`).
    pub member_attribute: String,
    /// Largest shared group: a larger one is left out (with a warning).
    pub shared_group_max: usize,
    /// Seconds between refreshes of the shared groups.
    pub shared_group_refresh: u64,
}

/// A shared roster group: its members see each other under `name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedGroup {
    /// The roster group name members see.
    pub name: String,
    /// DN of a group entry (groupOfNames, groupOfUniqueNames, posixGroup).
    pub dn: Option<String>,
    /// Or: every account whose `ou` is this value.
    pub ou: Option<String>,
}

impl LdapConfig {
    /// Check one directory's settings; the key is relative to its table,
    /// which may be `auth.ldap` or a domain's.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if !(self.url.starts_with("ldap://")
            || self.url.starts_with("ldaps://")
            || self.url.starts_with("ldapi://"))
        {
            return Err(Invalid::new("url", "use ldap://, ldaps:// or ldapi://"));
        }
        if self.base_dn.trim().is_empty() {
            return Err(Invalid::new("base_dn", "the directory's base DN is needed"));
        }
        if self.uid_attribute.is_empty()
            || !self
                .uid_attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return Err(Invalid::new("uid_attribute", "not an attribute name"));
        }
        if !self.filter.is_empty()
            && (!self.filter.starts_with('(') || ldap3::parse_filter(&self.filter).is_err())
        {
            return Err(Invalid::new(
                "filter",
                format!(
                    "{:?} is not an LDAP filter (RFC 4515), e.g. (employeeType=actif)",
                    self.filter
                ),
            ));
        }
        if self.bind_password.is_some() && self.bind_password_file.is_some() {
            return Err(Invalid::new(
                "bind_password",
                "set bind_password or bind_password_file, not both",
            ));
        }
        if self.bind_dn.is_none()
            && (self.bind_password.is_some() || self.bind_password_file.is_some())
        {
            return Err(Invalid::new("bind_dn", "a bind password without bind_dn"));
        }
        if let Some(t) = &self.user_dn_template
            && !t.contains("{user}")
        {
            return Err(Invalid::new("user_dn_template", "must contain {user}"));
        }
        if self.pool_size == 0 {
            return Err(Invalid::new("pool_size", "must be above 0"));
        }
        if self.timeout == 0 || self.connect_timeout == 0 {
            return Err(Invalid::new(
                "timeout",
                "timeout and connect_timeout must be above 0",
            ));
        }
        if self.max_failed_binds == 0 {
            return Err(Invalid::new("max_failed_binds", "must be above 0"));
        }
        for field in self.vcard.keys() {
            if !VCARD_FIELDS.contains(&field.as_str()) {
                return Err(Invalid::new(
                    "vcard",
                    format!(
                        "unknown vCard field {field:?}; known: {}",
                        VCARD_FIELDS.join(", ")
                    ),
                ));
            }
        }
        for g in &self.shared_groups {
            if g.name.trim().is_empty() || g.dn.is_some() == g.ou.is_some() {
                return Err(Invalid::new(
                    "shared_groups",
                    format!(
                        "group {:?}: give a name and exactly one of dn or ou",
                        g.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for LdapConfig {
    fn default() -> Self {
        let vcard = [
            ("fn", "displayName"),
            ("family", "sn"),
            ("given", "givenName"),
            ("email", "mail"),
            ("tel", "telephoneNumber"),
            ("orgname", "o"),
            ("orgunit", "ou"),
            ("title", "title"),
            ("photo", "jpegPhoto"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        LdapConfig {
            url: "ldap://127.0.0.1".into(),
            starttls: true,
            tls_ca: None,
            base_dn: String::new(),
            uid_attribute: "uid".into(),
            filter: String::new(),
            bind_dn: None,
            bind_password: None,
            bind_password_file: None,
            user_dn_template: None,
            connect_timeout: 5,
            timeout: 5,
            pool_size: 8,
            cache_ttl: 300,
            max_failed_binds: 3,
            vcard,
            search: true,
            search_max_results: 50,
            search_per_minute: 10,
            search_min_length: 2,
            shared_groups: Vec::new(),
            member_attribute: "member".into(),
            shared_group_max: 500,
            shared_group_refresh: 600,
        }
    }
}

/// vCard fields the directory may fill.
pub const VCARD_FIELDS: &[&str] = &[
    "fn", "family", "given", "nickname", "email", "tel", "orgname", "orgunit", "title", "role",
    "url", "photo",
];
