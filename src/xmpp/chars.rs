//! XML 1.0 §2.2 `Char`: the characters an XML document may contain.
//!
//! Valid UTF-8 is not enough: below U+0020 only tab, CR and LF are allowed,
//! and U+FFFE and U+FFFF never are (surrogates cannot occur in a `str`).
//! The stream parser refuses the others (RFC 6120 §4.9.3.13), and nothing
//! is serialised without this check, because minidom's encoder panics on
//! such a character instead of returning an error.

use minidom::{Element, Node};
use std::borrow::Cow;

/// Whether `c` is allowed in an XML 1.0 document.
pub fn is_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The first character of `s` that XML forbids, if any.
///
/// Looks at bytes, not characters: this runs over every stanza received,
/// and the two forbidden ranges are easy to see in UTF-8 (a byte below
/// 0x20, or the sequences EF BF BE and EF BF BF).
pub fn first_invalid(s: &str) -> Option<char> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x20 {
            if !matches!(b, b'\t' | b'\n' | b'\r') {
                return Some(char::from(b));
            }
        } else if b == 0xEF
            && bytes.get(i + 1) == Some(&0xBF)
            && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))
        {
            return s[i..].chars().next();
        }
        i += 1;
    }
    None
}

/// `s` with every character XML forbids replaced by U+FFFD, for text that
/// comes from elsewhere than a parsed stream (a directory, a config file).
pub fn sanitise(s: &str) -> Cow<'_, str> {
    if first_invalid(s).is_none() {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if is_char(c) { c } else { '\u{FFFD}' })
            .collect(),
    )
}

/// A character that XML forbids, found in an element about to be serialised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("character U+{:04X} is not allowed in XML, in <{element}>", u32::from(*.character))]
pub struct InvalidChar {
    pub character: char,
    /// The name of the element that holds it (in its text, an attribute or its namespace).
    pub element: String,
}

/// Check every text node and attribute value in `el`'s tree. Names cannot
/// hold such characters (minidom's name type refuses them), and namespaces
/// come from constants or from parsed input, which was checked: looking at
/// them would cost an allocation per element (minidom hands out copies).
pub fn check_element(el: &Element) -> Result<(), InvalidChar> {
    let found = |c: char| InvalidChar {
        character: c,
        element: el.name().to_owned(),
    };
    for (_, value) in el.attrs().iter() {
        if let Some(c) = first_invalid(value) {
            return Err(found(c));
        }
    }
    for node in el.nodes() {
        match node {
            Node::Element(child) => check_element(child)?,
            Node::Text(text) => {
                if let Some(c) = first_invalid(text) {
                    return Err(found(c));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_of_character() {
        // C0 controls but tab, LF and CR.
        for c in (0u8..0x20).map(char::from) {
            let allowed = matches!(c, '\t' | '\n' | '\r');
            assert_eq!(is_char(c), allowed, "{:?}", c);
            assert_eq!(
                first_invalid(&format!("ab{c}cd")).is_none(),
                allowed,
                "{c:?}"
            );
        }
        // The rest of the BMP up to the surrogates, then past them.
        for c in [
            '\u{20}', '\u{7F}', '\u{85}', '\u{D7FF}', '\u{E000}', '\u{FFFD}',
        ] {
            assert!(is_char(c), "{c:?}");
            assert_eq!(first_invalid(&format!("x{c}y")), None, "{c:?}");
        }
        // The two non-characters XML excludes.
        for c in ['\u{FFFE}', '\u{FFFF}'] {
            assert!(!is_char(c));
            assert_eq!(first_invalid(&format!("x{c}y")), Some(c));
        }
        // Astral planes, including their own non-characters (allowed by XML).
        for c in ['\u{10000}', '\u{1F600}', '\u{1FFFE}', '\u{10FFFF}'] {
            assert!(is_char(c), "{c:?}");
            assert_eq!(first_invalid(&format!("x{c}y")), None, "{c:?}");
        }
        // Sequences that merely start like U+FFFE.
        for s in ["\u{FFFD}", "\u{FFBE}", "\u{EFBF}", "ï¿"] {
            assert_eq!(first_invalid(s), None, "{s:?}");
        }
    }

    #[test]
    fn sanitise_replaces_only_what_is_forbidden() {
        assert!(matches!(sanitise("plain é\t"), Cow::Borrowed(_)));
        assert_eq!(
            sanitise("a\0b\u{1b}c\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
    }

    #[test]
    fn finds_what_minidom_would_choke_on() {
        let mut el = Element::bare("message", "jabber:client");
        let mut body = Element::bare("body", "jabber:client");
        body.append_text("hello");
        el.append_child(body.clone());
        assert_eq!(check_element(&el), Ok(()));
        body.append_text("\0");
        el.append_child(body);
        assert_eq!(
            check_element(&el),
            Err(InvalidChar {
                character: '\0',
                element: "body".into()
            })
        );
        let mut attr = Element::bare("iq", "jabber:client");
        crate::xmpp::stanza::set_attr(&mut attr, "id", "a\u{1}");
        assert!(check_element(&attr).is_err());
    }
}
