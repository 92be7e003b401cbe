//! XEP-0054: vcard-temp

use super::{IqRequest, IqResult};

/// Answer a request.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    super::unavailable()
}
