//! What the router queues for a session: a stanza of its own, serialised
//! when it is queued, or one serialised once and shared by many sessions
//! (MUC fan-out), so that a room of N occupants costs one serialisation
//! instead of N deep clones, N JID parses and N serialisations.
//!
//! Queued stanzas are bytes, not parsed trees: a tree costs several times
//! its serialised size (a 100 KB message of many short bodies is about half
//! a megabyte of elements), and a session's queue is bounded in bytes, which
//! only means something if the bytes are what it holds.

use super::queue::Weigh;
use crate::xmpp::chars::InvalidChar;
use crate::xmpp::stanza::{self, Kind, remove_attr, set_attr};
use jid::FullJid;
use minidom::Element;
use std::sync::Arc;

/// What the router hands a session to write.
#[derive(Debug, Clone)]
pub enum Packet {
    /// A stanza for this session alone, as it will be written.
    Own(Box<[u8]>),
    /// A stanza shared by many sessions. It is addressed to whichever
    /// session takes it from its own queue: its `to` is that session's JID.
    Shared(Arc<SharedStanza>),
}

impl Packet {
    /// A stanza for one session, serialised now (it fails on a character
    /// XML forbids, which the stream parser keeps out of client input).
    pub fn new(el: &Element) -> Result<Packet, InvalidChar> {
        let bytes = stanza::to_bytes(el)?;
        crate::memory::note_stanza(bytes.len());
        Ok(Packet::Own(bytes.into_boxed_slice()))
    }

    /// Append the stanza's XML, addressed to the session whose `to`
    /// attribute is `to_attr` (from [`to_attr`]).
    pub fn write_to(&self, out: &mut Vec<u8>, to: &FullJid, to_attr: &[u8]) {
        match self {
            Packet::Own(bytes) => out.extend_from_slice(bytes),
            Packet::Shared(shared) => shared.write_to(out, to, to_attr),
        }
    }

    /// The stanza as an element addressed to `to` (the session whose queue
    /// held it), for the paths that route it again. None only if the bytes
    /// do not parse back, which what minidom wrote always does.
    pub fn into_element(self, to: &FullJid) -> Option<Element> {
        match self {
            Packet::Own(bytes) => std::str::from_utf8(&bytes).ok()?.parse().ok(),
            Packet::Shared(shared) => Some(shared.element_to(to)),
        }
    }
}

impl Weigh for Packet {
    /// The bytes the stanza takes in the queue (a shared stanza counts in
    /// full in each queue: it lives as long as the slowest of them).
    fn weight(&self) -> usize {
        match self {
            Packet::Own(bytes) => bytes.len(),
            Packet::Shared(shared) => shared.bytes.len(),
        }
    }
}

/// ` to="JID"` as it goes into a shared stanza's start tag, escaped once per session.
pub fn to_attr(to: &FullJid) -> Vec<u8> {
    let jid = to.to_string();
    let mut out = Vec::with_capacity(jid.len() + 6);
    out.extend_from_slice(b" to=\"");
    // Both quotes are escaped, so the value cannot end the attribute early.
    out.extend_from_slice(crate::xmpp::escape(&jid).as_bytes());
    out.push(b'"');
    out
}

/// A stanza without `to`, serialised once; each recipient's copy is the
/// start tag's name, its ` to="…"`, then the rest, byte for byte.
#[derive(Debug)]
pub struct SharedStanza {
    template: Element,
    /// The template's kind, classified once (the namespace check allocates).
    kind: Option<Kind>,
    bytes: Vec<u8>,
    /// Where the start tag's name ends in `bytes` (where `to` goes); None
    /// if the serialisation does not start as expected, in which case each
    /// recipient gets a serialisation of its own (slower, still correct).
    name_end: Option<usize>,
}

impl SharedStanza {
    /// Share `stanza`; any `to` it carries is dropped (each recipient gets its own).
    pub fn new(mut stanza: Element) -> Result<Arc<Self>, InvalidChar> {
        remove_attr(&mut stanza, "to");
        let bytes = stanza::to_bytes(&stanza)?;
        let name = stanza.name().as_bytes();
        // minidom writes `<name` then a space, `/` or `>`: an unprefixed
        // element name, which is what our builders make. Checked rather than
        // assumed, since inserting at the wrong place would corrupt the XML.
        let name_end = 1 + name.len();
        let fits = bytes.first() == Some(&b'<')
            && bytes.get(1..name_end) == Some(name)
            && matches!(bytes.get(name_end), Some(b' ' | b'/' | b'>'));
        Ok(Arc::new(SharedStanza {
            kind: Kind::of(&stanza),
            template: stanza,
            bytes,
            name_end: fits.then_some(name_end),
        }))
    }

    /// Its serialised size in bytes (without a `to`).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The stanza without `to` (what blocking rules and kinds look at).
    pub fn template(&self) -> &Element {
        &self.template
    }

    /// The stanza's kind (None: not a stanza of the client namespace).
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// The stanza as an element addressed to `to`.
    pub fn element_to(&self, to: &FullJid) -> Element {
        let mut el = self.template.clone();
        set_attr(&mut el, "to", to.to_string());
        el
    }

    /// Append the stanza addressed to `to`, whose escaped attribute is `to_attr`.
    fn write_to(&self, out: &mut Vec<u8>, to: &FullJid, to_attr: &[u8]) {
        match self.name_end {
            Some(at) => {
                out.extend_from_slice(&self.bytes[..at]);
                out.extend_from_slice(to_attr);
                out.extend_from_slice(&self.bytes[at..]);
            }
            // The template serialised, and a JID holds no forbidden
            // character (nodeprep and resourceprep refuse controls).
            None => match stanza::to_bytes(&self.element_to(to)) {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(e) => tracing::error!(error = %e, "cannot write a shared stanza"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Element {
        std::str::from_utf8(bytes)
            .expect("utf-8")
            .parse()
            .expect("well-formed")
    }

    #[test]
    fn each_recipient_gets_its_own_escaped_to() {
        let m: Element = "<message xmlns='jabber:client' from='r@muc.h/n&apos;ck' to='old@h/x' type='groupchat' id='a&amp;b'><body>x &lt; y</body></message>"
            .parse()
            .expect("xml");
        let shared = SharedStanza::new(m).expect("valid");
        assert!(shared.name_end.is_some());
        for to in ["u@h/plain", "u@h/it's & <ok>\"", "v@h/é"] {
            let to = FullJid::new(to).expect("jid");
            let mut out = Vec::new();
            Packet::Shared(shared.clone()).write_to(&mut out, &to, &to_attr(&to));
            let got = parse(&out);
            assert_eq!(got.attr("to"), Some(to.to_string().as_str()));
            assert_eq!(got.attr("from"), Some("r@muc.h/n'ck"));
            assert_eq!(got.attr("id"), Some("a&b"));
            assert_eq!(got.attr("type"), Some("groupchat"));
            assert_eq!(
                got.get_child("body", "jabber:client")
                    .map(Element::text)
                    .as_deref(),
                Some("x < y")
            );
            // The same stanza as an element, for re-routing.
            assert_eq!(shared.element_to(&to), got);
            assert_eq!(Packet::Shared(shared.clone()).into_element(&to), Some(got));
        }
    }

    #[test]
    fn an_empty_element_takes_a_to() {
        let p = Element::bare("presence", "jabber:client");
        let shared = SharedStanza::new(p).expect("valid");
        let to = FullJid::new("u@h/r").expect("jid");
        let mut out = Vec::new();
        Packet::Shared(shared).write_to(&mut out, &to, &to_attr(&to));
        assert_eq!(parse(&out).attr("to"), Some("u@h/r"));
    }
}
