//! XEP-0030: Service Discovery (and the server's XEP-0115 capabilities).

use super::{IqRequest, IqResult};

/// disco#info on the server or an account.
pub async fn info(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}

/// disco#items on the server or an account.
pub async fn items(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}
