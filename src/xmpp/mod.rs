//! Pure protocol helpers on top of minidom and xmpp-parsers: no tokio, no storage.

pub mod error;
pub mod ns;
pub mod stanza;

/// Escape text for XML character data or a single- or double-quoted attribute.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['<', '>', '&', '\'', '"']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert!(matches!(
            super::escape("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
