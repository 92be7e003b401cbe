//! `[tls]`: the certificate of every domain without one of its own.

use super::Invalid;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`. Omitted: a self-signed one under data_dir.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    /// A certificate is useless without its key, and the reverse.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.cert.is_some() != self.key.is_some() {
            return Err(Invalid::new("cert", "cert and key go together"));
        }
        Ok(())
    }
}
