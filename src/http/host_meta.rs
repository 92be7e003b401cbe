//! XEP-0156: Discovering Alternative XMPP Connection Methods. Web clients
//! fetch `/.well-known/host-meta` (XRD) or `host-meta.json` (JRD) from the
//! domain and find the WebSocket endpoint there.

use axum::extract::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The link relation of a WebSocket endpoint (XEP-0156 §3).
const WEBSOCKET_REL: &str = "urn:xmpp:alt-connections:websocket";

/// What clients are told, per listener.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The WebSocket endpoint's URL.
    pub websocket: Option<String>,
}

/// The WebSocket endpoint's URL as clients are given it: the base URL
/// (`public_url`, or the listener's own address) with its scheme turned
/// into ws/wss, then `xmpp-websocket`.
pub fn websocket_url(base: &str) -> Option<String> {
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return None;
    };
    Some(format!(
        "{ws}{}",
        super::WEBSOCKET_PATH.trim_start_matches('/')
    ))
}

/// `/.well-known/host-meta`.
pub async fn xrd(Extension(endpoints): Extension<Endpoints>) -> Response {
    let links = endpoints
        .websocket
        .map(|url| {
            format!(
                "  <Link rel='{WEBSOCKET_REL}' href='{}'/>\n",
                crate::xmpp::escape(&url)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n{links}</XRD>\n"
    );
    (
        [
            (header::CONTENT_TYPE, "application/xrd+xml"),
            // Web clients on other origins read it (XEP-0156 §3.2).
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// `/.well-known/host-meta.json`.
pub async fn jrd(Extension(endpoints): Extension<Endpoints>) -> Response {
    let links = endpoints
        .websocket
        .map(|url| {
            format!(
                "{{\"rel\":\"{WEBSOCKET_REL}\",\"href\":\"{}\"}}",
                json_escape(&url)
            )
        })
        .unwrap_or_default();
    let body = format!("{{\"links\":[{links}]}}\n");
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// A string as the inside of a JSON string literal.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::json_escape;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_escape("wss://a/\"b\\"), "wss://a/\\\"b\\\\");
        assert_eq!(json_escape("\u{1}"), "\\u0001");
    }
}
