//! Pure protocol helpers on top of minidom and xmpp-parsers: no tokio, no storage.
//! Dates follow XEP-0082: XMPP Date and Time Profiles.

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

/// XEP-0082 date-time in UTC with millisecond precision, from µs since the epoch.
pub fn datetime(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let millis = micros.rem_euclid(1_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetimes() {
        assert_eq!(super::datetime(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::datetime(951_782_400_123_456),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            super::datetime(1_795_000_000_000_000),
            "2026-11-18T11:06:40.000Z"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(super::escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert!(matches!(
            super::escape("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
