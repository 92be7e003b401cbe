//! `[archive]`: message archives (XEP-0313).

use super::Invalid;
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

impl ArchiveConfig {
    /// A page of nothing, or a queue of nothing, would stop history silently.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.max_page == 0 {
            return Err(Invalid::new("max_page", "must be at least 1"));
        }
        if self.queue == 0 {
            return Err(Invalid::new("queue", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn empty_pages_and_queues_are_refused() {
        for text in ["[archive]\nmax_page = 0\n", "[archive]\nqueue = 0\n"] {
            let e = Config::parse(text, Path::new("t.toml")).expect_err(text);
            assert!(e.to_string().contains("archive."), "{e}");
        }
        assert!(Config::parse("[archive]\nmax_page = 1\n", Path::new("t.toml")).is_ok());
    }
}
