//! PLAIN (RFC 4616): one message, no server challenge.

use super::{SaslError, saslprep};

/// RFC 4616 §2 lets each field be up to 255 octets; this leaves room for generous passwords
/// while bounding the work SASLprep does on hostile input.
const MAX_MESSAGE_LEN: usize = 1024;

/// Parsed PLAIN message (RFC 4616): [authzid] NUL authcid NUL passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// Requested authorization identity, if the client sent one.
    pub authzid: Option<String>,
    /// Authentication identity, SASLprep'd.
    pub username: String,
    /// Password, SASLprep'd.
    pub password: String,
}

/// Parse and normalise a PLAIN message.
pub fn parse(msg: &[u8]) -> Result<PlainMessage, SaslError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(SaslError::MalformedRequest("PLAIN message too long"));
    }
    let text =
        std::str::from_utf8(msg).map_err(|_| SaslError::MalformedRequest("PLAIN is not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedRequest(
            "PLAIN needs exactly two NUL separators",
        ));
    };
    let username = saslprep(authcid)?;
    let password = saslprep(passwd)?;
    // Checked after SASLprep too, since mapping can erase every character (e.g. U+00AD).
    if username.is_empty() {
        return Err(SaslError::MalformedRequest("PLAIN username is empty"));
    }
    if password.is_empty() {
        return Err(SaslError::MalformedRequest("PLAIN password is empty"));
    }
    Ok(PlainMessage {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        username,
        password,
    })
}

#[cfg(test)]
// A failing unwrap is how a test reports an unexpected error.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(msg: &[u8]) -> PlainMessage {
        parse(msg).unwrap()
    }

    #[test]
    fn parses_without_authzid() {
        assert_eq!(
            ok(b"\0tim\0tanstaaftanstaaf"),
            PlainMessage {
                authzid: None,
                username: "tim".into(),
                password: "tanstaaftanstaaf".into(),
            }
        );
    }

    #[test]
    fn parses_with_authzid() {
        let m = ok(b"Ursel\0Kurt\0xipj3plmq");
        assert_eq!(m.authzid.as_deref(), Some("Ursel"));
        assert_eq!(m.username, "Kurt");
        assert_eq!(m.password, "xipj3plmq");
    }

    #[test]
    fn applies_saslprep() {
        let m = ok("\0us\u{00AD}er\0I\u{2168}".as_bytes());
        assert_eq!(m.username, "user");
        assert_eq!(m.password, "IIX");
    }

    #[test]
    fn rejects_bad_messages() {
        let long = [b"\0u\0".as_slice(), &[b'p'; 1100]].concat();
        for bad in [
            b"".as_slice(),
            b"\0",
            b"user\0pass",
            b"a\0b\0c\0d",
            b"\0\0password",
            b"\0user\0",
            b"\0\xC2\xAD\0password",
            b"\0us\xFFer\0password",
            b"\0user\0pass\x07",
            &long,
        ] {
            assert!(
                matches!(parse(bad), Err(SaslError::MalformedRequest(_))),
                "{bad:?}"
            );
        }
    }
}
