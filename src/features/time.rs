//! XEP-0202: Entity Time.
//!
//! The server tells the time in UTC and gives its offset as `+00:00`: the
//! host's local zone is of no use to clients and would tell where the
//! machine stands. Both follow XEP-0082 (the time has milliseconds, which
//! the DateTime profile allows).

use super::{IqRequest, IqResult};
use crate::xmpp::ns;
use minidom::Element;

/// Answer a request.
pub async fn handle(_req: &IqRequest<'_>) -> IqResult {
    Ok(Some(answer(crate::storage::now_micros())))
}

/// The `<time xmlns='urn:xmpp:time'/>` result for `micros` since the epoch.
pub fn answer(micros: i64) -> Element {
    let mut time = Element::bare("time", ns::TIME);
    for (name, text) in [
        ("tzo", "+00:00".to_owned()),
        ("utc", crate::xmpp::datetime(micros)),
    ] {
        let mut el = Element::bare(name, ns::TIME);
        el.append_text(text);
        time.append_child(el);
    }
    time
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0202 §3, example 2, told in UTC: 2006-12-19T17:58:35Z.
    #[test]
    fn utc_and_offset() {
        let time = answer(1_166_551_115_000_000);
        assert!(time.is("time", ns::TIME));
        assert_eq!(
            time.get_child("tzo", ns::TIME).map(Element::text),
            Some("+00:00".into())
        );
        assert_eq!(
            time.get_child("utc", ns::TIME).map(Element::text),
            Some("2006-12-19T17:58:35.000Z".into())
        );
    }
}
