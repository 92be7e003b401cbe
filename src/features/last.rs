//! XEP-0012: Last Activity (server uptime, accounts' last logout).

use super::{IqRequest, IqResult};
use crate::state::ServerState;
use jid::BareJid;

/// Answer a last-activity request to the server or an account.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}

/// Remember when `user`'s last session went offline, and its last status text.
pub async fn record_logout(_state: &ServerState, _user: &BareJid, _status: &str) {}
