//! `[c2s]`: client listeners and the bounds of one client session.

use super::{Invalid, MucConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// What to do when a client binds a resource already in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceConflict {
    /// The newest session wins; the old one gets a `<conflict/>` stream error.
    Replace,
    /// The new bind is refused with a `<conflict/>` stanza error.
    Refuse,
    /// The new session gets a server-generated resource instead.
    Rename,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sConfig {
    /// Listeners for STARTTLS (RFC 6120 §5).
    pub listen: Vec<SocketAddr>,
    /// Listeners for direct TLS (XEP-0368).
    pub direct_tls: Vec<SocketAddr>,
    /// Largest top-level element accepted, in bytes.
    pub max_stanza_size: usize,
    /// Deepest element nesting accepted inside a stanza.
    pub max_depth: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Seconds to finish TLS, authentication and binding.
    pub handshake_timeout: u64,
    /// Stanzas queued towards one session before it is judged too slow and closed.
    pub queue_size: usize,
    /// Bytes of stanzas queued towards one session before it is judged too slow and closed.
    pub queue_bytes: usize,
    /// Open client connections at most.
    pub max_connections: usize,
    pub resource_conflict: ResourceConflict,
    /// Seconds of silence from a client before the server pings it (XEP-0199).
    pub ping_interval: u64,
    /// Seconds to answer that ping before the connection is considered dead.
    pub ping_timeout: u64,
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5222))],
            direct_tls: vec![SocketAddr::from(([127, 0, 0, 1], 5223))],
            max_stanza_size: 256 * 1024,
            max_depth: 64,
            max_attributes: 64,
            handshake_timeout: 60,
            queue_size: 2048,
            queue_bytes: 1024 * 1024,
            max_connections: 100_000,
            resource_conflict: ResourceConflict::Replace,
            ping_interval: 300,
            ping_timeout: 60,
        }
    }
}

impl C2sConfig {
    /// Bounds must leave room for real clients; `muc` because a room join
    /// fills the session's queue at once.
    pub(super) fn validate(&self, muc: &MucConfig) -> Result<(), Invalid> {
        if self.max_stanza_size < 1024 {
            return Err(Invalid::new(
                "max_stanza_size",
                "must be at least 1024 bytes",
            ));
        }
        if self.max_depth < 4 {
            return Err(Invalid::new("max_depth", "must be at least 4"));
        }
        if self.queue_size == 0 || self.max_connections == 0 {
            return Err(Invalid::new(
                "queue_size",
                "queue_size and max_connections must be above 0",
            ));
        }
        if self.queue_bytes < self.max_stanza_size {
            return Err(Invalid::new(
                "queue_bytes",
                format!(
                    "must be at least c2s.max_stanza_size ({}): a stanza of the largest size must fit behind others",
                    self.max_stanza_size
                ),
            ));
        }
        if muc.enabled {
            // Joining a full room queues the whole occupant list, the history
            // and the subject for the newcomer at once.
            let join = muc.max_occupants + muc.max_history + 16;
            if self.queue_size < join {
                return Err(Invalid::new(
                    "queue_size",
                    format!(
                        "must be at least muc.max_occupants + muc.max_history + 16 = {join}: joining a full room queues its whole occupant list"
                    ),
                ));
            }
        }
        if self.ping_interval == 0 || self.ping_timeout == 0 {
            return Err(Invalid::new(
                "ping_interval",
                "ping_interval and ping_timeout must be above 0",
            ));
        }
        Ok(())
    }
}
