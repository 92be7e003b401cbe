//! XEP-0092: Software Version.
//!
//! The server answers with its name and version only: the optional `<os/>`
//! is left out, since telling the operating system helps attackers more than
//! anyone else (XEP-0092 §5). Administrators may turn the answer off
//! (`server.software_version`); the feature then disappears from disco#info
//! too and requests get service-unavailable.

use super::{IqRequest, IqResult};
use crate::config::Config;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use minidom::Element;

/// The name the server gives for itself.
pub const NAME: &str = "Jaseur";

/// Answer a request.
pub async fn handle(req: &IqRequest<'_>) -> IqResult {
    answer(&req.state.config).map(Some)
}

/// The `<query xmlns='jabber:iq:version'/>` result, or service-unavailable when disabled.
pub fn answer(config: &Config) -> Result<Element, StanzaError> {
    if !config.server.software_version {
        return Err(StanzaError::new(Condition::ServiceUnavailable));
    }
    let mut query = Element::bare("query", ns::VERSION);
    for (name, text) in [("name", NAME), ("version", env!("CARGO_PKG_VERSION"))] {
        let mut el = Element::bare(name, ns::VERSION);
        el.append_text(text);
        query.append_child(el);
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0092 §3, example 2, without the `<os/>`.
    #[test]
    fn name_and_version_without_os() {
        let query = answer(&Config::default()).expect("enabled by default");
        assert!(query.is("query", ns::VERSION));
        assert_eq!(
            query.get_child("name", ns::VERSION).map(Element::text),
            Some("Jaseur".into())
        );
        assert_eq!(
            query.get_child("version", ns::VERSION).map(Element::text),
            Some(env!("CARGO_PKG_VERSION").into())
        );
        assert!(query.get_child("os", ns::VERSION).is_none());
    }

    #[test]
    fn disabled_is_service_unavailable() {
        let mut config = Config::default();
        config.server.software_version = false;
        assert_eq!(
            answer(&config).map(|_| ()),
            Err(StanzaError::new(Condition::ServiceUnavailable))
        );
    }
}
