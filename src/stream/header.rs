//! Stream headers (RFC 6120 §4.7): reading the peer's, writing ours.

use super::builder::StreamNamespaces;
use super::error::{StreamCondition, StreamError};
use crate::xmpp::{escape, ns};
use quick_xml::events::Event;

/// The attributes of a peer's `<stream:stream>` open tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamHeader {
    pub to: Option<String>,
    pub from: Option<String>,
    pub version: Option<String>,
    pub lang: Option<String>,
    /// The default namespace the peer declared (`jabber:client` expected on C2S).
    pub default_ns: Option<String>,
    /// The prefix the peer bound to the streams namespace.
    pub stream_prefix: String,
}

impl StreamHeader {
    /// The namespace context stanzas of this stream inherit.
    pub fn namespaces(&self) -> StreamNamespaces {
        StreamNamespaces {
            default: self.default_ns.clone().unwrap_or_default(),
            stream_prefix: self.stream_prefix.clone(),
        }
    }
}

/// Parse the bytes the framer returned as a header (an optional XML declaration, then the open tag).
pub fn parse(bytes: &[u8]) -> Result<StreamHeader, StreamError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| StreamError::new(StreamCondition::NotWellFormed, "invalid UTF-8"))?;
    if let Some(c) = crate::xmpp::chars::first_invalid(text) {
        return Err(super::builder::forbidden_char(c));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = false;
    loop {
        match reader.read_event() {
            Ok(Event::Decl(_)) => continue,
            Ok(Event::Text(t)) if t.xml10_content().trim().is_empty() => continue,
            Ok(Event::Start(start)) => {
                let mut header = StreamHeader::default();
                let mut prefixes: Vec<(String, String)> = Vec::new();
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| {
                        StreamError::new(StreamCondition::NotWellFormed, format!("header: {e}"))
                    })?;
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| {
                            StreamError::new(StreamCondition::NotWellFormed, format!("header: {e}"))
                        })?
                        .into_owned();
                    // The language and addresses are echoed into what we write.
                    if let Some(c) = crate::xmpp::chars::first_invalid(&value) {
                        return Err(super::builder::forbidden_char(c));
                    }
                    match attr.key.into_inner() {
                        "to" => header.to = Some(value),
                        "from" => header.from = Some(value),
                        "version" => header.version = Some(value),
                        "xml:lang" => header.lang = Some(value),
                        "xmlns" => header.default_ns = Some(value),
                        k => {
                            if let Some(p) = k.strip_prefix("xmlns:") {
                                prefixes.push((p.to_owned(), value));
                            }
                        }
                    }
                }
                let qname = start.name().into_inner();
                let (prefix, local) = match qname.split_once(':') {
                    Some((p, l)) => (Some(p), l),
                    None => (None, qname),
                };
                let element_ns = match prefix {
                    Some(p) => prefixes
                        .iter()
                        .find(|(q, _)| q == p)
                        .map(|(_, u)| u.as_str()),
                    None => header.default_ns.as_deref(),
                };
                if local != "stream" || element_ns != Some(ns::STREAMS) {
                    return Err(StreamError::new(
                        StreamCondition::InvalidNamespace,
                        "expected <stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
                    ));
                }
                header.stream_prefix = prefix.unwrap_or("").to_owned();
                return Ok(header);
            }
            Ok(Event::PI(_)) | Ok(Event::DocType(_)) | Ok(Event::Comment(_)) => {
                return Err(StreamError::new(
                    StreamCondition::RestrictedXml,
                    "restricted XML (RFC 6120 §11.1)",
                ));
            }
            Ok(_) => {
                return Err(StreamError::new(
                    StreamCondition::NotWellFormed,
                    "expected a stream header",
                ));
            }
            Err(e) => {
                return Err(StreamError::new(
                    StreamCondition::NotWellFormed,
                    format!("header: {e}"),
                ));
            }
        }
    }
}

/// Our response header on a client stream.
pub fn client_response(from_domain: &str, to: Option<&str>, id: &str) -> String {
    let to = match to {
        Some(t) => format!(" to='{}'", escape(t)),
        None => String::new(),
    };
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}' id='{}' from='{}'{to} version='1.0' xml:lang='en'>",
        ns::CLIENT,
        ns::STREAMS,
        escape(id),
        escape(from_domain),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_example() {
        let h = parse(
            b"<?xml version='1.0'?><stream:stream from='juliet@im.example.com' to='im.example.com' \
              version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        )
        .expect("valid");
        assert_eq!(h.to.as_deref(), Some("im.example.com"));
        assert_eq!(h.from.as_deref(), Some("juliet@im.example.com"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.lang.as_deref(), Some("en"));
        assert_eq!(h.default_ns.as_deref(), Some("jabber:client"));
        assert_eq!(h.stream_prefix, "stream");
    }

    #[test]
    fn wrong_namespace() {
        let e = parse(b"<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>")
            .expect_err("ns");
        assert_eq!(e.condition, StreamCondition::InvalidNamespace);
        let e = parse(b"<foo xmlns='jabber:client'>").expect_err("name");
        assert_eq!(e.condition, StreamCondition::InvalidNamespace);
    }

    #[test]
    fn response_escapes() {
        let r = client_response("example.org", Some("a'b@example.org"), "id1");
        assert!(r.contains("to='a&apos;b@example.org'"));
    }
}
