//! The destination of every domain that is neither served here nor a
//! component: other servers. Until federation exists (the S2S issue fills
//! this slot with its connection manager: one bounded queue per remote
//! domain, an outbound stream started on demand), stanzas for them are
//! answered with `remote-server-not-found` (RFC 6120 §8.3.3.16).

use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use minidom::Element;

/// Send `stanza` to the remote domain it is addressed to.
pub async fn send(state: &ServerState, stanza: Element) {
    super::bounce(
        state,
        &stanza,
        StanzaError::new(Condition::RemoteServerNotFound),
    )
    .await
}
