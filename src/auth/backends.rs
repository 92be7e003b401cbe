//! The backends of each domain, tried in the configured order: the first
//! that holds an account is the one that checks its password.

use super::ldap::{Check, Directory};
use crate::auth::AccountStore;
use crate::config::{AuthBackendKind, Config};
use crate::state::ServerState;
use jid::BareJid;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The directories of the served domains (domains sharing one `[auth.ldap]`
/// share one directory and its pool).
#[derive(Default)]
pub struct Directories {
    by_domain: HashMap<String, Arc<Directory>>,
}

impl Directories {
    /// Set up a directory for each domain whose backends include LDAP.
    pub fn new(config: &Config) -> Result<Directories, String> {
        let window = Duration::from_secs(config.auth.throttle_window);
        let mut made: Vec<Arc<Directory>> = Vec::new();
        let mut by_domain = HashMap::new();
        for domain in &config.server.domains {
            let Some(ldap) = config.ldap(domain) else {
                continue;
            };
            let dir = match made.iter().find(|d| d.config() == ldap) {
                Some(d) => d.clone(),
                None => {
                    let d = Arc::new(
                        Directory::new(ldap, window).map_err(|e| format!("{domain}: {e}"))?,
                    );
                    made.push(d.clone());
                    d
                }
            };
            by_domain.insert(domain.clone(), dir);
        }
        Ok(Directories { by_domain })
    }

    /// The directory of `domain`, if it has one.
    pub fn get(&self, domain: &str) -> Option<&Arc<Directory>> {
        self.by_domain.get(domain)
    }

    /// Every (domain, directory).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<Directory>)> {
        self.by_domain.iter()
    }
}

/// The answer to a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
    /// A backend that might hold the account did not answer.
    Unavailable,
}

/// Check a cleartext password (SASL PLAIN) against the domain's backends.
pub async fn verify_plain(state: &ServerState, user: &BareJid, password: &str) -> Verdict {
    let domain = user.domain().as_str();
    let localpart = user.node().map(|n| n.as_str()).unwrap_or_default();
    let mut unavailable = false;
    for kind in state.config.auth_backends(domain).list() {
        match kind {
            AuthBackendKind::Internal => match state.storage.credentials(user).await {
                Ok(Some(c)) => {
                    let password = password.to_owned();
                    let ok = tokio::task::spawn_blocking(move || c.verify_password(&password))
                        .await
                        .unwrap_or(false);
                    return if ok {
                        Verdict::Accepted
                    } else {
                        Verdict::Rejected
                    };
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "credential store unavailable");
                    unavailable = true;
                }
            },
            AuthBackendKind::Ldap => {
                let Some(dir) = state.directories.get(domain) else {
                    continue;
                };
                match dir.check(localpart, password).await {
                    Check::Verified => return Verdict::Accepted,
                    Check::Rejected => return Verdict::Rejected,
                    Check::Unknown => {}
                    Check::Unavailable => unavailable = true,
                }
            }
        }
    }
    if unavailable {
        Verdict::Unavailable
    } else {
        Verdict::Rejected
    }
}

/// Whether a local account exists in any of its domain's backends
/// (Err: a backend that might hold it did not answer).
pub async fn exists(state: &ServerState, user: &BareJid) -> Result<bool, String> {
    let domain = user.domain().as_str();
    let localpart = user.node().map(|n| n.as_str()).unwrap_or_default();
    let mut failure = None;
    for kind in state.config.auth_backends(domain).list() {
        match kind {
            AuthBackendKind::Internal => match state.storage.credentials(user).await {
                Ok(Some(_)) => return Ok(true),
                Ok(None) => {}
                Err(e) => failure = Some(e.to_string()),
            },
            AuthBackendKind::Ldap => {
                let Some(dir) = state.directories.get(domain) else {
                    continue;
                };
                match dir.find(localpart).await {
                    Ok(Some(_)) => return Ok(true),
                    Ok(None) => {}
                    Err(e) => failure = Some(e.to_string()),
                }
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(false),
    }
}

/// Whether SCRAM can work for some account of the domain (it needs keys
/// only the internal backend keeps).
pub fn scram_possible(config: &Config, domain: &str) -> bool {
    config.auth_backends(domain).has(AuthBackendKind::Internal)
}

/// Whether the domain needs PLAIN (a directory checks passwords by binding).
pub fn plain_needed(config: &Config, domain: &str) -> bool {
    config.auth_backends(domain).has(AuthBackendKind::Ldap)
}
