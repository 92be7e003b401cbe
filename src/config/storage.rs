//! `[storage]`: which database holds the accounts and their data.

use super::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://path` or `postgres://...`. Omitted: `sqlite://DATA_DIR/jaseur.db`.
    pub url: Option<String>,
    /// Database connections at most.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            max_connections: 8,
        }
    }
}

impl StorageConfig {
    /// Only the databases `storage::open` knows.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if let Some(url) = &self.url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:"))
        {
            return Err(Invalid::new(
                "url",
                format!("{url:?}: use sqlite://FILE or postgres://..."),
            ));
        }
        Ok(())
    }
}
