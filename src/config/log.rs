//! `[log]`: what gets logged.

use super::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter: "info", "debug", "jaseur=debug,sqlx=warn", ...
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

impl LogConfig {
    /// The filter must parse now rather than be ignored once logging starts.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map_err(|e| Invalid::new("level", e.to_string()))?;
        Ok(())
    }
}
