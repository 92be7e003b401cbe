//! `[server]`: the domains served, their administrators, where data lives.

use super::Invalid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The contact types XEP-0157 registers; `features/disco.rs` relies on this list.
const CONTACT_TYPES: [&str; 7] = [
    "abuse", "admin", "feedback", "sales", "security", "status", "support",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Domains served (virtual hosts).
    pub domains: Vec<String>,
    /// Server administrators' bare JIDs.
    pub admins: Vec<String>,
    /// Where the database, generated certificates, the ready file and the admin socket live.
    pub data_dir: PathBuf,
    /// Seconds given to sessions to close when shutting down.
    pub shutdown_grace: u64,
    /// Answer XEP-0092 software version requests.
    pub software_version: bool,
    /// XEP-0157 contact addresses by type (abuse, admin, feedback, sales, security, status, support).
    pub contact: BTreeMap<String, Vec<String>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            domains: vec!["localhost".into()],
            admins: Vec::new(),
            data_dir: PathBuf::from("data"),
            shutdown_grace: 5,
            software_version: true,
            contact: BTreeMap::new(),
        }
    }
}

impl ServerConfig {
    /// Domains and admins must be JIDs, contact types the registered ones.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.domains.is_empty() {
            return Err(Invalid::new("domains", "at least one domain is needed"));
        }
        for d in &self.domains {
            let parsed = jid::BareJid::new(d)
                .map_err(|e| Invalid::new("domains", format!("{d:?} is not a domain: {e}")))?;
            if parsed.node().is_some() || parsed.as_str() != d {
                return Err(Invalid::new(
                    "domains",
                    format!(
                        "{d:?} is not a normalised domain name (write it in lower case, without user or resource)"
                    ),
                ));
            }
        }
        for a in &self.admins {
            jid::BareJid::new(a)
                .map_err(|e| Invalid::new("admins", format!("{a:?} is not a JID: {e}")))?;
        }
        for kind in self.contact.keys() {
            if !CONTACT_TYPES.contains(&kind.as_str()) {
                return Err(Invalid::new(
                    format!("contact.{kind}"),
                    "XEP-0157 types are abuse, admin, feedback, sales, security, status, support",
                ));
            }
        }
        Ok(())
    }
}
