//! XEP-0202: Entity Time

use super::{IqRequest, IqResult};

/// Answer a request.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}
