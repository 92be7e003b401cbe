//! Small helpers for working with stanzas as minidom elements.

use super::error::rxml_name;
use super::ns;
use minidom::Element;
use minidom::rxml::{Namespace, NcName};

/// The three stanza kinds of RFC 6120 §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

impl Kind {
    /// Classify a top-level element of a client stream; None for non-stanzas.
    pub fn of(el: &Element) -> Option<Kind> {
        if el.ns() != ns::CLIENT {
            return None;
        }
        match el.name() {
            "message" => Some(Kind::Message),
            "presence" => Some(Kind::Presence),
            "iq" => Some(Kind::Iq),
            _ => None,
        }
    }
}

/// `<forwarded/>` (XEP-0297) around `message`, with its delay stamp if any:
/// the original element as it was (xmpp-parsers' typed `Forwarded` keeps
/// only the attributes it knows).
pub fn forwarded(message: Element, delay: Option<Element>) -> Element {
    let mut f = Element::bare("forwarded", ns::FORWARD);
    if let Some(d) = delay {
        f.append_child(d);
    }
    f.append_child(message);
    f
}

/// A XEP-0203 delay stamp: `from` delayed it, `micros` (since the epoch) is
/// when it was first received, `reason` the optional human-readable text.
pub fn delay(from: &str, micros: i64, reason: Option<&str>) -> Element {
    let mut d = Element::bare("delay", ns::DELAY);
    set_attr(&mut d, "from", from);
    set_attr(&mut d, "stamp", super::datetime(micros));
    if let Some(r) = reason {
        d.append_text(r);
    }
    d
}

/// Set (or replace) an unqualified attribute whose name is a literal.
pub fn set_attr(el: &mut Element, name: &'static str, value: impl Into<String>) {
    el.set_attr(Namespace::none().clone(), rxml_name(name), value.into());
}

/// Remove an unqualified attribute.
pub fn remove_attr(el: &mut Element, name: &str) {
    if let Ok(n) = NcName::try_from(name) {
        el.attrs_mut().remove(Namespace::none(), &n);
    }
}

/// An iq result answering `request`, optionally with a payload.
pub fn iq_result(request: &Element, payload: Option<Element>) -> Element {
    let mut reply = Element::bare("iq", ns::CLIENT);
    if let Some(id) = request.attr("id") {
        set_attr(&mut reply, "id", id);
    }
    if let Some(from) = request.attr("from") {
        set_attr(&mut reply, "to", from);
    }
    if let Some(to) = request.attr("to") {
        set_attr(&mut reply, "from", to);
    }
    set_attr(&mut reply, "type", "result");
    if let Some(p) = payload {
        reply.append_child(p);
    }
    reply
}

/// Serialise an element (without XML declaration), or say which character
/// XML forbids it holds. The check comes first because minidom's encoder
/// panics on such a character instead of returning an error.
pub fn to_bytes(el: &Element) -> Result<Vec<u8>, super::chars::InvalidChar> {
    super::chars::check_element(el)?;
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail for I/O reasons, and minidom's other
    // errors are about names, which its types validate on construction.
    if el.write_to(&mut out).is_err() {
        out.clear();
    }
    Ok(out)
}

/// `to_bytes` as a string, for storage.
pub fn to_string(el: &Element) -> Result<String, super::chars::InvalidChar> {
    // minidom writes UTF-8 from `str` data: the conversion cannot fail, and
    // a lossy one keeps this free of a panic path all the same.
    to_bytes(el).map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_swaps() {
        let iq: Element = "<iq xmlns='jabber:client' type='get' id='p' from='u@h/r' to='h'/>"
            .parse()
            .expect("xml");
        let r = iq_result(&iq, None);
        assert_eq!(r.attr("to"), Some("u@h/r"));
        assert_eq!(r.attr("from"), Some("h"));
        assert_eq!(r.attr("type"), Some("result"));
        let mut m = iq.clone();
        remove_attr(&mut m, "from");
        assert_eq!(m.attr("from"), None);
    }
}
