//! The features, listed here in one place: which iq namespaces the server
//! answers, for itself and on behalf of accounts, and the hooks the router
//! calls for messages and presence.
//!
//! Iq requests (RFC 6120 §8.2.3) must carry exactly one payload; a request
//! nobody handles gets `service-unavailable`.

pub mod announce;
pub mod blocking;
pub mod disco;
pub mod last;
pub mod muc_admin;
pub mod offline;
pub mod ping;
pub mod presence;
pub mod private;
pub mod register;
pub mod roster;
pub mod search;
pub mod time;
pub mod vcard;
pub mod version;

use crate::state::ServerState;
use crate::xmpp::error::{Condition, StanzaError};
use crate::xmpp::ns;
use jid::{BareJid, Jid};
use minidom::Element;

/// What a handler answers: a result payload (or none), or an error.
pub type IqResult = Result<Option<Element>, StanzaError>;

/// One iq request, as every handler receives it.
pub struct IqRequest<'a> {
    pub state: &'a ServerState,
    /// The whole iq (for its attributes).
    pub iq: &'a Element,
    /// Its single payload element.
    pub payload: &'a Element,
    /// type='set' (else 'get').
    pub set: bool,
    /// The sender, as stamped by its session.
    pub from: Jid,
    /// The account addressed, or None for the server itself.
    pub to: Option<BareJid>,
}

impl IqRequest<'_> {
    /// Whether the sender addresses its own account (roster, vCard set, private storage...).
    pub fn from_owner(&self) -> bool {
        self.to
            .as_ref()
            .is_some_and(|to| self.from.to_bare() == *to)
    }

    /// The error for a request only the account's owner may make.
    pub fn owner_only(&self) -> Result<(), StanzaError> {
        if self.from_owner() {
            Ok(())
        } else {
            Err(StanzaError::new(Condition::Forbidden))
        }
    }
}

/// What to send for an iq addressed to the server's own domain, in order
/// (nothing for results and errors addressed to us).
pub async fn handle_server_iq(state: &ServerState, iq: &Element) -> Vec<Element> {
    handle(state, iq, None).await
}

/// The reply to an iq addressed to an account's bare JID, answered by the
/// server on the account's behalf (RFC 6120 §10.5.3.1).
pub async fn handle_account_iq(state: &ServerState, to: &BareJid, iq: &Element) -> Vec<Element> {
    handle(state, iq, Some(to.clone())).await
}

async fn handle(state: &ServerState, iq: &Element, to: Option<BareJid>) -> Vec<Element> {
    let (kind, payload) = match request(iq) {
        Ok(Some(p)) => p,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![e.reply_to(iq)],
    };
    let Some(from) = iq.attr("from").and_then(|f| Jid::new(f).ok()) else {
        return vec![StanzaError::new(Condition::BadRequest).reply_to(iq)];
    };
    let req = IqRequest {
        state,
        iq,
        payload,
        set: kind == "set",
        from,
        to,
    };
    let name = payload.name();
    let namespace = payload.ns();
    let answer: IqResult = match (req.to.is_some(), name, namespace.as_str()) {
        (_, "ping", ns::PING) if !req.set => ping::handle(),
        (_, "query", ns::DISCO_INFO) if !req.set => disco::info(&req).await,
        (_, "query", ns::DISCO_ITEMS) if !req.set => disco::items(&req).await,
        (_, "query", ns::LAST) if !req.set => last::handle(&req).await,
        // The server itself.
        (false, "query", ns::VERSION) if !req.set => version::handle(&req).await,
        (false, "time", ns::TIME) if !req.set => time::handle(&req).await,
        (false, "query", ns::REGISTER) => register::handle(&req).await,
        (false, "command", ns::COMMANDS) => announce::command(&req).await,
        // An account.
        (true, "query", ns::REGISTER) if req.from_owner() => register::handle(&req).await,
        (true, "query", ns::ROSTER) => {
            return roster::handle(&req)
                .await
                .unwrap_or_else(|e| vec![e.reply_to(iq)]);
        }
        (true, "vCard", ns::VCARD) => vcard::handle(&req).await,
        (true, "query", ns::PRIVATE) => private::handle(&req).await,
        (true, "blocklist" | "block" | "unblock", ns::BLOCKING) => blocking::handle(&req).await,
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    };
    vec![reply(iq, answer)]
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
