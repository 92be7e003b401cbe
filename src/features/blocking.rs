//! XEP-0191: Blocking Command.

use super::{IqRequest, IqResult};
use crate::state::ServerState;
use crate::xmpp::error::StanzaError;
use jid::BareJid;
use minidom::Element;

/// What to do with a stanza between a user and someone they may have blocked.
#[derive(Debug)]
pub enum Verdict {
    Allow,
    /// Drop silently.
    Drop,
    /// Answer the sender with this error.
    Reject(StanzaError),
}

/// Answer a blocklist request (get the list, block, unblock).
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}

/// A stanza (its `from` stamped) arriving for local account `to`.
pub async fn inbound(_state: &ServerState, _to: &BareJid, _stanza: &Element) -> Verdict {
    Verdict::Allow
}

/// A stanza local account `from` sends (its `to` may be anyone).
pub async fn outbound(_state: &ServerState, _from: &BareJid, _stanza: &Element) -> Verdict {
    Verdict::Allow
}
