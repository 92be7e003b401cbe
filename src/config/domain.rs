//! `[domain."NAME"]`: settings one served domain overrides.

use super::{Backends, Invalid, LdapConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings that one served domain overrides.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainConfig {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub auth_backend: Option<Backends>,
    /// This domain's own directory (else `auth.ldap`).
    pub ldap: Option<LdapConfig>,
}

impl DomainConfig {
    /// A certificate is useless without its key, and the reverse. The backends
    /// and the directory are checked with `[auth]`, which they override.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Invalid::new("tls_cert", "tls_cert and tls_key go together"));
        }
        Ok(())
    }
}
