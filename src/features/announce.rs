//! XEP-0133: Service Administration (announcements to online users, message of the day), over XEP-0050 ad-hoc commands.

use super::{IqRequest, IqResult};
use crate::state::ServerState;
use jid::FullJid;

/// An ad-hoc command addressed to the server.
pub async fn command(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}

/// A session just became available: send it the message of the day, if any.
pub async fn on_available(_state: &ServerState, _session: &FullJid) {}
