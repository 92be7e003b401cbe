//! Turns the bytes of one framed top-level element into a `minidom::Element`.
//!
//! quick-xml tokenizes and checks well-formedness (matching end tags,
//! attribute syntax, UTF-8); this module resolves namespaces against the
//! declarations of the stream header, resolves the five predefined entities
//! and character references, and refuses anything else (RFC 6120 §11.1).

use super::error::{StreamCondition, StreamError};
use crate::xmpp::{chars, ns};
use minidom::Element;
use minidom::rxml::{Namespace, NcName};
use quick_xml::events::{BytesStart, Event};

/// The namespace context a stanza inherits from its stream header.
#[derive(Debug, Clone)]
pub struct StreamNamespaces {
    /// The stream's default namespace (`jabber:client` for C2S).
    pub default: String,
    /// The prefix bound to `http://etherx.jabber.org/streams` (normally "stream").
    pub stream_prefix: String,
}

impl StreamNamespaces {
    /// The usual client-stream context.
    pub fn client() -> Self {
        StreamNamespaces {
            default: ns::CLIENT.into(),
            stream_prefix: "stream".into(),
        }
    }
}

fn not_well_formed(text: impl Into<String>) -> StreamError {
    StreamError::new(StreamCondition::NotWellFormed, text)
}

/// The error for a character outside XML 1.0's `Char` production (RFC 6120 §4.9.3.13).
pub fn forbidden_char(c: char) -> StreamError {
    not_well_formed(format!(
        "character U+{:04X} is not allowed in XML",
        u32::from(c)
    ))
}

/// Refuse `s` if it holds a character XML forbids.
fn check_chars(s: &str) -> Result<(), StreamError> {
    match chars::first_invalid(s) {
        Some(c) => Err(forbidden_char(c)),
        None => Ok(()),
    }
}

/// One element's namespace declarations.
type Scope = Vec<(Option<String>, String)>;

struct Resolver<'a> {
    base: &'a StreamNamespaces,
    scopes: Vec<Scope>,
}

impl Resolver<'_> {
    /// The namespace `prefix` is bound to. `jabber:server` (the content
    /// namespace of server-to-server streams, RFC 6120 §4.8.3) comes out as
    /// `jabber:client`: the two mean the same stanzas, and past the stream's
    /// edge the code knows one namespace.
    fn lookup(&self, prefix: Option<&str>) -> Option<&str> {
        self.lookup_declared(prefix).map(|uri| match uri {
            ns::SERVER => ns::CLIENT,
            other => other,
        })
    }

    fn lookup_declared(&self, prefix: Option<&str>) -> Option<&str> {
        for scope in self.scopes.iter().rev() {
            for (p, uri) in scope.iter().rev() {
                if p.as_deref() == prefix {
                    return Some(uri);
                }
            }
        }
        match prefix {
            None => Some(&self.base.default),
            Some("xml") => Some(ns::XML),
            Some(p) if p == self.base.stream_prefix => Some(ns::STREAMS),
            Some(_) => None,
        }
    }
}

fn split(qname: &str) -> (Option<&str>, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    }
}

fn predefined(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// Parse one complete element framed out of a stream.
pub fn parse_element(
    bytes: &[u8],
    base: &StreamNamespaces,
    max_attributes: usize,
) -> Result<Element, StreamError> {
    let text = std::str::from_utf8(bytes).map_err(|_| not_well_formed("invalid UTF-8"))?;
    // Raw characters anywhere (names, text, attribute values, CDATA); what
    // character references produce is checked where they are resolved.
    check_chars(text)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut resolver = Resolver {
        base,
        scopes: Vec::new(),
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| not_well_formed(format!("XML error: {e}")))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(not_well_formed("content after the element"));
            }
            Event::Start(start) => {
                let el = open(&start, &mut resolver, max_attributes)?;
                stack.push(el);
            }
            Event::Empty(start) => {
                let el = open(&start, &mut resolver, max_attributes)?;
                resolver.scopes.pop();
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => {
                resolver.scopes.pop();
                let el = stack
                    .pop()
                    .ok_or_else(|| not_well_formed("unbalanced end tag"))?;
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                append_text(&mut stack, &content)?;
            }
            Event::CData(c) => {
                let content = c.xml10_content();
                append_text(&mut stack, &content)?;
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|_| not_well_formed("bad character reference"))?
                } else {
                    predefined(&r.xml10_content())
                };
                let c = c.ok_or_else(|| not_well_formed("undeclared entity"))?;
                if !chars::is_char(c) {
                    return Err(forbidden_char(c));
                }
                append_text(&mut stack, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) | Event::Decl(_) => {
                return Err(StreamError::new(
                    StreamCondition::RestrictedXml,
                    "restricted XML (RFC 6120 §11.1)",
                ));
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(not_well_formed("unclosed element"));
    }
    root.ok_or_else(|| not_well_formed("no element"))
}

fn append_text(stack: &mut [Element], text: &str) -> Result<(), StreamError> {
    match stack.last_mut() {
        Some(el) => {
            el.append_text(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(not_well_formed("text outside the element")),
    }
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => {
            parent.append_child(el);
        }
        None => *root = Some(el),
    }
}

fn open(
    start: &BytesStart<'_>,
    resolver: &mut Resolver<'_>,
    max_attributes: usize,
) -> Result<Element, StreamError> {
    let mut scope: Scope = Vec::new();
    let mut attrs: Vec<(Option<String>, String, String)> = Vec::new();
    for (count, attr) in start.attributes().enumerate() {
        if count >= max_attributes {
            return Err(StreamError::new(
                StreamCondition::PolicyViolation,
                "too many attributes",
            ));
        }
        let attr = attr.map_err(|e| not_well_formed(format!("attribute: {e}")))?;
        let key = attr.key.into_inner();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| not_well_formed(format!("attribute value: {e}")))?
            .into_owned();
        check_chars(&value)?;
        match split(key) {
            (None, "xmlns") => scope.push((None, value)),
            (Some("xmlns"), p) => {
                if value.is_empty() {
                    return Err(not_well_formed("empty prefix declaration"));
                }
                scope.push((Some(p.to_owned()), value))
            }
            (p, local) => attrs.push((p.map(str::to_owned), local.to_owned(), value)),
        }
    }
    resolver.scopes.push(scope);
    let qname = start.name().into_inner();
    let (prefix, local) = split(qname);
    let element_ns = resolver
        .lookup(prefix)
        .ok_or_else(|| not_well_formed(format!("unbound prefix in <{qname}>")))?;
    let mut el = Element::bare(local, element_ns);
    for (prefix, local, value) in attrs {
        let name = NcName::try_from(local.as_str())
            .map_err(|_| not_well_formed(format!("bad attribute name {local:?}")))?;
        let attr_ns: Namespace<'static> = match prefix.as_deref() {
            None => Namespace::none().clone(),
            Some(p) => {
                let uri = resolver
                    .lookup(Some(p))
                    .ok_or_else(|| not_well_formed(format!("unbound attribute prefix {p:?}")))?;
                Namespace::from(uri.to_owned())
            }
        };
        if el.attrs().get(&attr_ns, &name).is_some() {
            return Err(not_well_formed("duplicate attribute"));
        }
        el.set_attr(attr_ns, name, value);
    }
    Ok(el)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::stanza::Kind;

    fn parse(s: &str) -> Result<Element, StreamError> {
        parse_element(s.as_bytes(), &StreamNamespaces::client(), 16)
    }

    #[test]
    fn resolves_namespaces_and_entities() {
        let el = parse(
            "<message to='a@b' xml:lang='fr'><body>x &lt; y &#x263A; &amp;<![CDATA[<z>]]></body>\
             <x:foo xmlns:x='urn:x' x:attr='1'/><stream:error/></message>",
        )
        .expect("valid");
        assert_eq!(el.ns(), ns::CLIENT);
        assert_eq!(el.attr("to"), Some("a@b"));
        assert_eq!(el.attr_ns(ns::XML, "lang"), Some("fr"));
        let body = el.get_child("body", ns::CLIENT).expect("body");
        assert_eq!(body.text(), "x < y \u{263A} &<z>");
        let foo = el.get_child("foo", "urn:x").expect("foo");
        assert_eq!(foo.attr_ns("urn:x", "attr"), Some("1"));
        assert!(el.has_child("error", ns::STREAMS));
        let msg = xmpp_parsers::message::Message::try_from(el).expect("typed");
        assert_eq!(msg.bodies.len(), 1);
    }

    #[test]
    fn jabber_server_becomes_jabber_client_at_the_edge() {
        let server = StreamNamespaces {
            default: ns::SERVER.into(),
            stream_prefix: "stream".into(),
        };
        let el = parse_element(
            b"<message from='a@remote.example' to='b@localhost'><body>hi</body><x xmlns='jabber:server'/></message>",
            &server,
            16,
        )
        .expect("valid");
        assert_eq!(el.ns(), ns::CLIENT);
        assert!(el.has_child("body", ns::CLIENT));
        assert!(el.has_child("x", ns::CLIENT));
        assert_eq!(Kind::of(&el), Some(Kind::Message));
    }

    #[test]
    fn survives_store_and_reload() {
        // What users store (vCards, private XML, offline messages) is serialised,
        // parsed back by minidom and serialised again: prefixes must not trip it.
        let el = parse(
            "<iq type='set'><query xmlns='jabber:iq:private'><x:a xmlns:x='urn:a' xmlns:y='urn:b' y:k='v'>\
             <x:b><y:c x:k='w'/><d xmlns='urn:d' xmlns:x='urn:other'><x:e/></d></x:b></x:a></query></iq>",
        )
        .expect("valid");
        let mut bytes = crate::xmpp::stanza::to_bytes(&el).expect("serialises");
        for _ in 0..3 {
            let back: Element = String::from_utf8(bytes.clone())
                .expect("utf-8")
                .parse()
                .expect("reparses");
            assert_eq!(back, el);
            bytes = crate::xmpp::stanza::to_bytes(&back).expect("serialises");
        }
    }

    fn is_forbidden_char_error(r: Result<Element, StreamError>) -> bool {
        matches!(r, Err(e) if e.condition == StreamCondition::NotWellFormed)
    }

    #[test]
    fn refuses_each_forbidden_character_class_wherever_it_is() {
        // Every C0 control but tab, LF and CR, then the two BMP non-characters.
        let forbidden: Vec<char> = (0u8..0x20)
            .map(char::from)
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .chain(['\u{FFFE}', '\u{FFFF}'])
            .collect();
        for c in forbidden {
            let n = u32::from(c);
            for bad in [
                format!("<message><body>a{c}b</body></message>"),
                format!("<message id='a{c}b'/>"),
                format!("<message><body><![CDATA[a{c}b]]></body></message>"),
                format!("<message><body>&#{n};</body></message>"),
                format!("<message><body>&#x{n:X};</body></message>"),
                format!("<message id='&#{n};'/>"),
                format!("<message xmlns:p='urn:{c}'/>"),
            ] {
                assert!(is_forbidden_char_error(parse(&bad)), "{bad:?}");
            }
        }
        // Allowed neighbours still parse, raw and as references.
        for ok in [
            "<message><body>tab\tcr\rlf\n&#9;&#10;&#13;&#x20;&#xD7FF;&#xE000;&#xFFFD;&#x10000;&#x10FFFF;</body></message>",
            "<message id='\u{FFFD}\u{1F600}'/>",
        ] {
            let el = parse(ok).expect(ok);
            assert!(crate::xmpp::stanza::to_bytes(&el).is_ok());
        }
    }

    use proptest::prelude::*;

    /// Text pieces that mix ordinary characters, every C0 control, the
    /// non-characters, markup and references (valid and not).
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 é\u{263A}]{0,6}",
            (0u32..0x20).prop_map(|n| char::from_u32(n).map(String::from).unwrap_or_default()),
            Just("\u{FFFE}".to_owned()),
            Just("\u{FFFF}".to_owned()),
            (0u32..0x11_0000).prop_map(|n| format!("&#{n};")),
            (0u32..0x11_0000).prop_map(|n| format!("&#x{n:x};")),
            Just("&amp;&lt;&gt;&quot;&apos;".to_owned()),
            Just("<![CDATA[x]]>".to_owned()),
            Just("<b/>".to_owned()),
            Just("'\"".to_owned()),
        ]
    }

    proptest! {
        /// Whatever the parser accepts, minidom can serialise (it panics on
        /// a forbidden character), and it reads back the same.
        #[test]
        fn anything_accepted_serialises_back(
            text in proptest::collection::vec(piece(), 0..8),
            attr in proptest::collection::vec(piece(), 0..4),
        ) {
            let xml = format!(
                "<message id='{}'><body xml:lang=\"{}\">{}</body></message>",
                attr.concat().replace(['\'', '<'], ""),
                attr.concat().replace(['"', '<'], ""),
                text.concat()
            );
            if let Ok(el) = parse(&xml) {
                let bytes = crate::xmpp::stanza::to_bytes(&el);
                prop_assert!(bytes.is_ok(), "{:?} accepted but not serialisable", xml);
                let back: Element = String::from_utf8(bytes.unwrap_or_default())
                    .expect("utf-8")
                    .parse()
                    .expect("reparses");
                prop_assert_eq!(back, el);
            }
        }
    }

    #[test]
    fn rejects_bad_xml() {
        for bad in [
            "<a><b></a>",
            "<a>&lol;</a>",
            "<p:a/>",
            "<a x='1' x='2'/>",
            "<a xmlns:p=''/>",
            "<a><!-- c --></a>",
            "<a/><b/>",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many = format!(
            "<a {}/>",
            (0..20)
                .map(|i| format!("a{i}='1'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(
            parse(&many).expect_err("attrs").condition,
            StreamCondition::PolicyViolation
        );
        assert!(parse_element(b"<a>\xff</a>", &StreamNamespaces::client(), 4).is_err());
    }
}
