//! XEP-0199: XMPP Ping (answering pings to the server and to accounts).

use super::IqResult;

/// A ping is answered with an empty result.
pub fn handle() -> IqResult {
    Ok(None)
}
