//! XEP-0049: Private XML Storage

use super::{IqRequest, IqResult};

/// Answer a request.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}
