//! SASL mechanisms (RFC 4422, RFC 6120 §6): SCRAM-SHA-1/256 with -PLUS (RFC 5802, RFC 7677, RFC 9266 tls-exporter), PLAIN (RFC 4616).
//!
//! Everything here is a pure state machine: the connection decodes base64, feeds bytes in,
//! and loads credentials from storage between steps.

pub mod plain;
pub mod scram;

/// A mechanism this server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    ScramSha256Plus,
    ScramSha1Plus,
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    /// Every mechanism, strongest first (the order to advertise them in).
    const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The IANA-registered mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Look a mechanism up by its exact (case-sensitive, RFC 4422 §3.1) name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether this is a channel-binding (-PLUS) variant.
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha256Plus | Mechanism::ScramSha1Plus)
    }
}

/// Why an exchange failed; maps onto RFC 6120 §6.5 failure conditions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    /// The peer sent something that does not parse or is not allowed at this point.
    #[error("malformed SASL request: {0}")]
    MalformedRequest(&'static str),
    /// Wrong credentials, unknown user, or a channel-binding mismatch.
    #[error("not authorized")]
    NotAuthorized,
    /// The authorization identity is not acceptable.
    #[error("invalid authorization identity")]
    InvalidAuthzid,
    /// The client asked for a channel-binding type we do not offer (e.g. tls-unique, which rustls lacks).
    #[error("unsupported channel-binding type")]
    UnsupportedChannelBinding,
}

impl SaslError {
    /// The RFC 6120 §6.5 defined condition element name.
    pub fn condition(&self) -> &'static str {
        match self {
            SaslError::MalformedRequest(_) => "malformed-request",
            SaslError::NotAuthorized => "not-authorized",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::UnsupportedChannelBinding => "malformed-request",
        }
    }
}

/// SASLprep (RFC 4013) of a username or password, as the stringprep crate does it.
pub fn saslprep(s: &str) -> Result<String, SaslError> {
    stringprep::saslprep(s)
        .map(|c| c.into_owned())
        .map_err(|_| SaslError::MalformedRequest("string is not valid under SASLprep"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(m.is_plus(), m.name().ends_with("-PLUS"));
        }
        assert_eq!(Mechanism::from_name("scram-sha-1"), None);
        assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
    }

    #[test]
    fn conditions() {
        assert_eq!(
            SaslError::MalformedRequest("x").condition(),
            "malformed-request"
        );
        assert_eq!(SaslError::NotAuthorized.condition(), "not-authorized");
        assert_eq!(SaslError::InvalidAuthzid.condition(), "invalid-authzid");
    }

    #[test]
    fn saslprep_maps_and_rejects() {
        // RFC 4013 §3 examples.
        assert_eq!(saslprep("I\u{00AD}X").as_deref(), Ok("IX"));
        assert_eq!(saslprep("\u{00AA}").as_deref(), Ok("a"));
        assert_eq!(saslprep("\u{2168}").as_deref(), Ok("IX"));
        assert!(saslprep("\u{0007}").is_err());
        assert!(saslprep("\u{0627}1").is_err());
    }
}
