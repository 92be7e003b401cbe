//! The features, listed here in one place: which iq namespaces the server
//! answers, for itself and on behalf of accounts.
//!
//! Iq requests (RFC 6120 §8.2.3) must carry exactly one payload; a request
//! nobody handles gets `service-unavailable`. Later issues add their
//! handlers to the two tables below (roster, vcard, disco, ...).

pub mod offline;
pub mod ping;

use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use jid::BareJid;
use minidom::Element;

/// What a handler answers: a result payload (or none), or an error.
pub type IqResult = Result<Option<Element>, StanzaError>;

/// The reply to an iq addressed to the server's own domain, or None when
/// nothing must be sent (results and errors addressed to us).
pub async fn handle_server_iq(state: &ServerState, iq: &Element) -> Option<Element> {
    let (kind, payload) = match request(iq) {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => return Some(e.reply_to(iq)),
    };
    let _ = state;
    let answer: IqResult = match (kind, payload.name(), payload.ns().as_str()) {
        ("get", "ping", ns::PING) => ping::handle(),
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    };
    Some(reply(iq, answer))
}

/// The reply to an iq addressed to an account's bare JID, answered by the
/// server on the account's behalf (RFC 6120 §10.5.3.1).
pub async fn handle_account_iq(state: &ServerState, to: &BareJid, iq: &Element) -> Option<Element> {
    let (kind, payload) = match request(iq) {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => return Some(e.reply_to(iq)),
    };
    let _ = (state, to);
    let answer: IqResult = match (kind, payload.name(), payload.ns().as_str()) {
        ("get", "ping", ns::PING) => ping::handle(),
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    };
    Some(reply(iq, answer))
}

/// Split a request into its type and single payload; Ok(None) for results and errors.
fn request(iq: &Element) -> Result<Option<(&'static str, &Element)>, StanzaError> {
    let kind = match iq.attr("type") {
        Some("get") => "get",
        Some("set") => "set",
        Some("result") | Some("error") => return Ok(None),
        _ => return Err(StanzaError::new(Condition::BadRequest).with_text("bad iq type")),
    };
    if iq.attr("id").is_none() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("iq without id"));
    }
    let mut children = iq.children();
    match (children.next(), children.next()) {
        (Some(payload), None) => Ok(Some((kind, payload))),
        _ => Err(StanzaError::new(Condition::BadRequest)
            .with_text("an iq request carries exactly one payload")),
    }
}

fn reply(iq: &Element, answer: IqResult) -> Element {
    match answer {
        Ok(payload) => crate::xmpp::stanza::iq_result(iq, payload),
        Err(e) => e.reply_to(iq),
    }
}
