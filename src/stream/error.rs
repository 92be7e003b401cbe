//! Stream errors (RFC 6120 §4.9): the conditions and their serialisation.

use crate::xmpp::ns;

/// A stream error condition (RFC 6120 §4.9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCondition {
    BadFormat,
    Conflict,
    ConnectionTimeout,
    HostUnknown,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    ResourceConstraint,
    RestrictedXml,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedStanzaType,
    UnsupportedVersion,
}

impl StreamCondition {
    /// The element name of the condition.
    pub fn name(self) -> &'static str {
        match self {
            StreamCondition::BadFormat => "bad-format",
            StreamCondition::Conflict => "conflict",
            StreamCondition::ConnectionTimeout => "connection-timeout",
            StreamCondition::HostUnknown => "host-unknown",
            StreamCondition::InternalServerError => "internal-server-error",
            StreamCondition::InvalidFrom => "invalid-from",
            StreamCondition::InvalidNamespace => "invalid-namespace",
            StreamCondition::NotAuthorized => "not-authorized",
            StreamCondition::NotWellFormed => "not-well-formed",
            StreamCondition::PolicyViolation => "policy-violation",
            StreamCondition::ResourceConstraint => "resource-constraint",
            StreamCondition::RestrictedXml => "restricted-xml",
            StreamCondition::SystemShutdown => "system-shutdown",
            StreamCondition::UndefinedCondition => "undefined-condition",
            StreamCondition::UnsupportedStanzaType => "unsupported-stanza-type",
            StreamCondition::UnsupportedVersion => "unsupported-version",
        }
    }
}

/// A stream error to send before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamCondition,
    pub text: Option<String>,
}

impl StreamError {
    /// An error with an explanatory text for the peer's log.
    pub fn new(condition: StreamCondition, text: impl Into<String>) -> Self {
        StreamError {
            condition,
            text: Some(text.into()),
        }
    }

    /// The `<stream:error>` element, as bytes to write after the stream header.
    pub fn to_xml(&self) -> String {
        let mut out = format!(
            "<stream:error><{} xmlns='{}'/>",
            self.condition.name(),
            ns::STREAMS_ERRORS
        );
        if let Some(text) = &self.text {
            out.push_str(&format!(
                "<text xmlns='{}' xml:lang='en'>{}</text>",
                ns::STREAMS_ERRORS,
                crate::xmpp::escape(text)
            ));
        }
        out.push_str("</stream:error>");
        out
    }
}

impl From<StreamCondition> for StreamError {
    fn from(condition: StreamCondition) -> Self {
        StreamError {
            condition,
            text: None,
        }
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.text {
            Some(t) => write!(f, "{} ({t})", self.condition.name()),
            None => f.write_str(self.condition.name()),
        }
    }
}
