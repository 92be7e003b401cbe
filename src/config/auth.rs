//! `[auth]`: which credential backends check passwords, and how hard.

use super::{Invalid, LdapConfig};
use serde::{Deserialize, Serialize};

/// Which credential store authenticates a domain's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthBackendKind {
    /// Accounts in our database (SCRAM keys).
    Internal,
    /// Accounts of an LDAP directory (password checked by a bind).
    Ldap,
}

/// One backend, or several tried in order: `"ldap"` or `["internal", "ldap"]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Backends {
    One(AuthBackendKind),
    Many(Vec<AuthBackendKind>),
}

impl Backends {
    /// The backends in the order accounts are looked up.
    pub fn list(&self) -> &[AuthBackendKind] {
        match self {
            Backends::One(k) => std::slice::from_ref(k),
            Backends::Many(v) => v,
        }
    }

    /// Whether `kind` is one of them.
    pub fn has(&self, kind: AuthBackendKind) -> bool {
        self.list().contains(&kind)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `"internal"`, `"ldap"`, or a list tried in order.
    pub backend: Backends,
    /// PBKDF2 iterations for new SCRAM credentials (RFC 7677 asks for 4096 at least).
    pub scram_iterations: u32,
    /// Offer PLAIN (always only over TLS).
    pub allow_plain: bool,
    /// First delay, in milliseconds, after a failed attempt; it doubles per failure.
    pub throttle_base_ms: u64,
    /// Longest delay, in milliseconds, however many failures.
    pub throttle_max_ms: u64,
    /// Seconds after which failures are forgotten.
    pub throttle_window: u64,
    /// Let clients create accounts with XEP-0077 in-band registration.
    pub allow_registration: bool,
    /// The directory, for domains whose backend includes `ldap`.
    pub ldap: Option<LdapConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            backend: Backends::One(AuthBackendKind::Internal),
            scram_iterations: 4096,
            allow_plain: true,
            throttle_base_ms: 500,
            throttle_max_ms: 15_000,
            throttle_window: 900,
            allow_registration: false,
            ldap: None,
        }
    }
}

impl AuthConfig {
    /// The section's own bounds. Which backends each domain ends up with, and
    /// their directories, depend on `[domain]` too: `Config::validate_auth`.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.scram_iterations < 4096 {
            return Err(Invalid::new(
                "scram_iterations",
                "RFC 7677 asks for 4096 at least",
            ));
        }
        Ok(())
    }
}
