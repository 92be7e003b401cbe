//! `[http]`: the HTTP listeners, for XMPP over WebSocket (RFC 7395) and
//! the discovery of that endpoint by clients.

use super::Invalid;
use serde::{Deserialize, Serialize};
use std::net::{Ipv6Addr, SocketAddr};

/// HTTP listeners: WebSocket connections at `/xmpp-websocket` and the
/// XEP-0156 host-meta files that tell browsers where it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listeners for HTTP (or HTTPS with `tls`); empty: none.
    pub listen: Vec<SocketAddr>,
    /// The base URL clients are given, e.g. behind a reverse proxy. Omitted: from the first listener.
    pub public_url: Option<String>,
    /// Origins (`scheme://host[:port]`) allowed to open WebSocket connections; `*`: any.
    pub allowed_origins: Vec<String>,
    /// HTTP connections one IP address may hold at once.
    pub max_connections_per_ip: usize,
    /// Serve HTTPS with the server's own certificates (usually a reverse proxy does TLS).
    pub tls: bool,
    /// Treat clients as on a secure channel without `tls`, behind a TLS-terminating proxy.
    pub consider_secure: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5280))],
            public_url: None,
            allowed_origins: vec!["*".into()],
            max_connections_per_ip: 64,
            tls: false,
            consider_secure: false,
        }
    }
}

impl HttpConfig {
    /// The base URL clients are given, always ending with `/`; None when
    /// there is neither a listener nor a `public_url`.
    pub fn public_base(&self) -> Option<String> {
        match &self.public_url {
            Some(url) if url.ends_with('/') => Some(url.clone()),
            Some(url) => Some(format!("{url}/")),
            None => {
                // A listener with `tls` speaks only HTTPS: an http:// URL to it would fail.
                let scheme = if self.tls { "https" } else { "http" };
                self.listen.first().map(|a| format!("{scheme}://{a}/"))
            }
        }
    }

    /// Whether WebSocket clients count as on a secure channel, which decides
    /// whether SASL PLAIN is offered to them.
    pub fn secure(&self) -> bool {
        self.tls
            || self.consider_secure
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }

    /// The URL and origins must be usable as given: a mistake here shows up
    /// only as browsers failing to connect, far from this file.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if let Some(url) = &self.public_url {
            check_base_url(url).map_err(|why| {
                Invalid::new(
                    "public_url",
                    format!("{url:?} {why}, e.g. \"https://chat.example.org/\""),
                )
            })?;
        }
        for origin in &self.allowed_origins {
            if origin != "*" {
                check_origin(origin).map_err(|why| {
                    Invalid::new(
                        "allowed_origins",
                        format!(
                            "{origin:?} {why}: write \"*\" or scheme://host[:port], e.g. \"https://chat.example.org\""
                        ),
                    )
                })?;
            }
        }
        if self.max_connections_per_ip == 0 {
            return Err(Invalid::new("max_connections_per_ip", "must be above 0"));
        }
        Ok(())
    }
}

/// `http://` or `https://`, a host, then any path; no query or fragment,
/// since paths are appended to it.
fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if url
        .chars()
        .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err("has spaces, a query or a fragment".into());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    check_host_port(authority)
}

/// `scheme://host[:port]`, as browsers send it in `Origin`: compared as
/// text, so a path (even a final `/`) would never match.
fn check_origin(origin: &str) -> Result<(), String> {
    let (scheme, authority) = origin
        .split_once("://")
        .ok_or("is not an origin (no scheme://)")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("has no valid scheme ({scheme:?})"));
    }
    if authority.contains('/') {
        return Err("has a path (an origin has none, not even a final /)".into());
    }
    check_host_port(authority)
}

/// `host[:port]`: a name or IPv4 address, or an IPv6 address in brackets.
fn check_host_port(authority: &str) -> Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (v6, after) = bracketed
                .split_once(']')
                .ok_or("has an IPv6 address without its closing ]")?;
            if v6.parse::<Ipv6Addr>().is_err() {
                return Err(format!("has {v6:?}, which is not an IPv6 address"));
            }
            match after {
                "" => (v6, None),
                _ => (
                    v6,
                    Some(after.strip_prefix(':').ok_or("has text after its host")?),
                ),
            }
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                return Err(format!("has {host:?}, which is not a host name"));
            }
            (host, port)
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(format!("has {p:?}, which is not a port"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn with_url(url: &str) -> HttpConfig {
        HttpConfig {
            public_url: Some(url.into()),
            ..HttpConfig::default()
        }
    }

    fn with_origin(origin: &str) -> HttpConfig {
        HttpConfig {
            allowed_origins: vec![origin.into()],
            ..HttpConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let h = HttpConfig::default();
        assert_eq!(h.public_base().as_deref(), Some("http://127.0.0.1:5280/"));
        assert!(!h.secure());
        assert!(h.validate().is_ok());
    }

    #[test]
    fn public_base_ends_with_a_slash() {
        let h = with_url("https://chat.example.org");
        assert_eq!(
            h.public_base().as_deref(),
            Some("https://chat.example.org/")
        );
        let h = with_url("https://example.org/xmpp/");
        assert_eq!(
            h.public_base().as_deref(),
            Some("https://example.org/xmpp/")
        );
        let h = HttpConfig {
            listen: vec!["[::1]:8080".parse().expect("address")],
            tls: true,
            ..HttpConfig::default()
        };
        assert_eq!(h.public_base().as_deref(), Some("https://[::1]:8080/"));
    }

    #[test]
    fn no_listener_no_url_no_base() {
        let h = HttpConfig {
            listen: Vec::new(),
            ..HttpConfig::default()
        };
        assert_eq!(h.public_base(), None);
        let h = HttpConfig {
            listen: Vec::new(),
            ..with_url("https://chat.example.org/")
        };
        assert_eq!(
            h.public_base().as_deref(),
            Some("https://chat.example.org/")
        );
    }

    #[test]
    fn secure_when_tls_proxy_or_https_url() {
        assert!(with_url("https://chat.example.org/").secure());
        assert!(!with_url("http://chat.example.org/").secure());
        let proxied = HttpConfig {
            consider_secure: true,
            ..HttpConfig::default()
        };
        assert!(proxied.secure());
        let direct = HttpConfig {
            tls: true,
            ..HttpConfig::default()
        };
        assert!(direct.secure());
    }

    #[test]
    fn public_url_must_be_http_with_a_host() {
        for good in [
            "https://chat.example.org/",
            "http://chat.example.org",
            "https://chat.example.org:8443/xmpp/",
            "http://127.0.0.1:5280/",
            "http://[::1]:5280/",
        ] {
            assert!(with_url(good).validate().is_ok(), "{good}");
        }
        for bad in [
            "chat.example.org",
            "ftp://chat.example.org/",
            "https://",
            "https:///xmpp",
            "https://chat.example.org:port/",
            "https://user@chat.example.org/",
            "https://chat.example.org/?a=b",
            "https://[::1/",
        ] {
            let err = with_url(bad).validate().expect_err(bad);
            assert_eq!(err.key, "public_url", "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_port() {
        for good in [
            "*",
            "https://chat.example.org",
            "http://localhost:8080",
            "http://[::1]:8080",
            "moz-extension://0b7cb1b9-6c8f",
        ] {
            assert!(with_origin(good).validate().is_ok(), "{good}");
        }
        for bad in [
            "https://chat.example.org/",
            "https://chat.example.org/app",
            "chat.example.org",
            "https://",
            "https://chat.example.org:",
            "1http://chat.example.org",
            "**",
        ] {
            let err = with_origin(bad).validate().expect_err(bad);
            assert_eq!(err.key, "allowed_origins", "{bad}");
        }
    }

    #[test]
    fn connections_per_ip_above_zero() {
        let h = HttpConfig {
            max_connections_per_ip: 0,
            ..HttpConfig::default()
        };
        assert_eq!(h.validate().expect_err("0").key, "max_connections_per_ip");
    }

    #[test]
    fn errors_name_the_key_in_the_file() {
        let err = Config::parse(
            "[http]\npublic_url = \"chat.example.org\"\n",
            Path::new("x.toml"),
        )
        .expect_err("no scheme");
        let msg = err.to_string();
        assert!(msg.contains("http.public_url"), "{msg}");
        assert!(msg.contains("http:// or https://"), "{msg}");
        let c = Config::parse("[http]\nlisten = []\n", Path::new("x.toml")).expect("no listener");
        assert_eq!(c.http.public_base(), None);
    }
}
