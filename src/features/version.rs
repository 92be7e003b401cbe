//! XEP-0092: Software Version

use super::{IqRequest, IqResult};

/// Answer a request.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}
