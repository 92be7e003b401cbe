//! XEP-0077: In-Band Registration (off by default; password change)

use super::{IqRequest, IqResult};

/// Answer a request.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}
