//! Stanza errors (RFC 6120 §8.3): conditions, types and error replies.

use super::ns;
use jid::BareJid;
use minidom::Element;
use std::fmt;

/// The error type attribute (RFC 6120 §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    fn name(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// A stanza error condition (RFC 6120 §8.3.3) with its usual type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    RegistrationRequired,
    RemoteServerNotFound,
    ResourceConstraint,
    ServiceUnavailable,
    UnexpectedRequest,
}

impl Condition {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            Condition::BadRequest => "bad-request",
            Condition::Conflict => "conflict",
            Condition::FeatureNotImplemented => "feature-not-implemented",
            Condition::Forbidden => "forbidden",
            Condition::InternalServerError => "internal-server-error",
            Condition::ItemNotFound => "item-not-found",
            Condition::JidMalformed => "jid-malformed",
            Condition::NotAcceptable => "not-acceptable",
            Condition::NotAllowed => "not-allowed",
            Condition::NotAuthorized => "not-authorized",
            Condition::PolicyViolation => "policy-violation",
            Condition::RecipientUnavailable => "recipient-unavailable",
            Condition::RegistrationRequired => "registration-required",
            Condition::RemoteServerNotFound => "remote-server-not-found",
            Condition::ResourceConstraint => "resource-constraint",
            Condition::ServiceUnavailable => "service-unavailable",
            Condition::UnexpectedRequest => "unexpected-request",
        }
    }

    /// The type RFC 6120 §8.3.3 gives in its examples for this condition.
    pub fn default_type(self) -> ErrorType {
        match self {
            Condition::BadRequest
            | Condition::JidMalformed
            | Condition::NotAcceptable
            | Condition::PolicyViolation => ErrorType::Modify,
            Condition::Forbidden | Condition::NotAuthorized | Condition::RegistrationRequired => {
                ErrorType::Auth
            }
            Condition::RecipientUnavailable
            | Condition::ResourceConstraint
            | Condition::UnexpectedRequest => ErrorType::Wait,
            _ => ErrorType::Cancel,
        }
    }
}

/// A stanza error to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub condition: Condition,
    pub kind: ErrorType,
    pub text: Option<String>,
}

impl StanzaError {
    /// An error with the condition's usual type and no text.
    pub fn new(condition: Condition) -> Self {
        StanzaError {
            condition,
            kind: condition.default_type(),
            text: None,
        }
    }

    /// `internal-server-error` for a failure the peer can do nothing about (the
    /// database, key derivation): logged here, once, with what was being done
    /// and for which account, while the peer learns nothing of the cause.
    pub fn internal(context: &str, user: Option<&BareJid>, error: &dyn fmt::Display) -> Self {
        match user {
            Some(user) => tracing::error!(user = %user, error = %error, "{context}"),
            None => tracing::error!(error = %error, "{context}"),
        }
        StanzaError::new(Condition::InternalServerError)
    }

    /// Add a human-readable text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// The `<error/>` child element.
    pub fn to_element(&self) -> Element {
        let mut error = Element::builder("error", ns::CLIENT)
            .attr(rxml_name("type"), self.kind.name())
            .append(Element::bare(self.condition.name(), ns::STANZAS))
            .build();
        if let Some(text) = &self.text {
            let mut t = Element::bare("text", ns::STANZAS);
            t.set_attr(
                minidom::rxml::Namespace::xml().clone(),
                rxml_name("lang"),
                "en",
            );
            t.append_text(text.clone());
            error.append_child(t);
        }
        error
    }

    /// The error reply to `stanza` (RFC 6120 §8.2): same name and id, addresses swapped,
    /// type "error". Iq replies carry no payload; other stanzas keep theirs.
    pub fn reply_to(&self, stanza: &Element) -> Element {
        let mut reply = Element::bare(stanza.name(), ns::CLIENT);
        for (attr, value) in [
            ("id", stanza.attr("id")),
            ("to", stanza.attr("from")),
            ("from", stanza.attr("to")),
        ] {
            if let Some(v) = value {
                reply.set_attr(minidom::rxml::Namespace::none().clone(), rxml_name(attr), v);
            }
        }
        reply.set_attr(
            minidom::rxml::Namespace::none().clone(),
            rxml_name("type"),
            "error",
        );
        if stanza.name() != "iq" {
            for child in stanza.children() {
                reply.append_child(child.clone());
            }
        }
        reply.append_child(self.to_element());
        reply
    }
}

impl From<Condition> for StanzaError {
    fn from(c: Condition) -> Self {
        StanzaError::new(c)
    }
}

/// An attribute name known at compile time to be valid.
pub fn rxml_name(name: &'static str) -> minidom::rxml::NcName {
    // Only called with literal ASCII names from this crate.
    #[allow(clippy::expect_used)]
    minidom::rxml::NcName::try_from(name).expect("literal attribute names are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iq_error_reply_swaps_addresses() {
        let iq: Element = "<iq xmlns='jabber:client' type='get' id='x1' from='a@b/c' to='b'><query xmlns='q'/></iq>"
            .parse()
            .expect("xml");
        let reply = StanzaError::new(Condition::ServiceUnavailable).reply_to(&iq);
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("to"), Some("a@b/c"));
        assert_eq!(reply.attr("from"), Some("b"));
        assert_eq!(reply.attr("id"), Some("x1"));
        assert!(reply.get_child("query", "q").is_none());
        let error = reply.get_child("error", ns::CLIENT).expect("error child");
        assert_eq!(error.attr("type"), Some("cancel"));
        assert!(error.has_child("service-unavailable", ns::STANZAS));
    }

    #[test]
    fn internal_errors_tell_the_peer_nothing() {
        let user = BareJid::new("juliet@capulet.lit").expect("valid JID");
        for e in [
            StanzaError::internal("roster storage failed", Some(&user), &"disk full"),
            StanzaError::internal("in-band registration failed", None, &"pool closed"),
        ] {
            assert_eq!(e, StanzaError::new(Condition::InternalServerError));
            assert_eq!(e.kind, ErrorType::Cancel);
        }
    }
}
