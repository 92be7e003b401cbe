//! `[archive]`: message archives (XEP-0313).

use serde::{Deserialize, Serialize};

/// What is archived when an account set no preferences (XEP-0441).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveDefault {
    /// Every conversation.
    Always,
    /// Conversations with contacts in the roster only.
    Roster,
    /// Nothing, until the user asks for it.
    Never,
}

impl ArchiveDefault {
    /// The XEP-0441 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveDefault::Always => "always",
            ArchiveDefault::Roster => "roster",
            ArchiveDefault::Never => "never",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Archive users' messages and answer their queries.
    pub enabled: bool,
    /// For accounts without preferences of their own.
    pub default: ArchiveDefault,
    /// Most messages one page of a query returns, whatever the client asks.
    pub max_page: usize,
    /// Batches of rows waiting for the archive's writer before senders wait.
    pub queue: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            default: ArchiveDefault::Always,
            max_page: 250,
            queue: 4096,
        }
    }
}
