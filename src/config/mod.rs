//! The configuration file (TOML): structs, defaults and validation.
//!
//! Every struct denies unknown keys so that a typo fails at start with the
//! key and line named, instead of silently running with a default.
//! `config/jaseur.toml` documents every key; a test parses it.
//!
//! One file per section holds its struct, its defaults and its own rules;
//! this one holds the whole file: loading, the order of the checks, the
//! rules that span sections, and the lookups that combine them.

mod archive;
mod auth;
mod c2s;
mod domain;
mod http;
mod ldap;
mod limits;
mod log;
mod muc;
mod server;
mod storage;
mod tls;

// `self::` because a section may share its name with a crate (`log`, `http`).
pub use self::archive::{ArchiveConfig, ArchiveDefault};
pub use self::auth::{AuthBackendKind, AuthConfig, Backends};
pub use self::c2s::{C2sConfig, ResourceConflict};
pub use self::domain::DomainConfig;
pub use self::http::HttpConfig;
pub use self::ldap::{LdapConfig, SharedGroup, VCARD_FIELDS};
pub use self::limits::LimitsConfig;
pub use self::log::LogConfig;
pub use self::muc::{MucConfig, RoomCreation};
pub use self::server::ServerConfig;
pub use self::storage::StorageConfig;
pub use self::tls::TlsConfig;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// A rule a section's values break: the key, relative to the section, and why.
///
/// Sections do not know the file's path nor where their table sits (the
/// same `LdapConfig` is `auth.ldap` or `domain."NAME".ldap`); the root adds both.
#[derive(Debug)]
struct Invalid {
    key: String,
    message: String,
}

impl Invalid {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The error for the file at `path`, the key named from the file's root.
    fn under(self, table: &str, path: &Path) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_owned(),
            key: format!("{table}.{}", self.key),
            message: self.message,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub c2s: C2sConfig,
    /// XMPP over WebSocket, and its discovery.
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub muc: MucConfig,
    /// Message archives (XEP-0313).
    pub archive: ArchiveConfig,
    /// Per-domain overrides, keyed by a domain listed in `server.domains`.
    pub domain: BTreeMap<String, DomainConfig>,
    /// Where the file was read from (None: embedded defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl Config {
    /// Read and validate a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Load `path` when given, else the embedded defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::load(p),
            None => Ok(Config::default()),
        }
    }

    /// Parse and validate TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Each section's own rules, then those that span sections; the first
    /// broken rule is the error.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        self.server
            .validate()
            .map_err(|e| e.under("server", path))?;
        for (name, d) in &self.domain {
            if !self.server.domains.contains(name) {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    key: format!("domain.{name}"),
                    message: "this domain is not listed in server.domains".into(),
                });
            }
            d.validate()
                .map_err(|e| e.under(&format!("domain.{name}"), path))?;
        }
        self.tls.validate().map_err(|e| e.under("tls", path))?;
        self.c2s
            .validate(&self.muc)
            .map_err(|e| e.under("c2s", path))?;
        self.http.validate().map_err(|e| e.under("http", path))?;
        self.auth.validate().map_err(|e| e.under("auth", path))?;
        self.validate_auth(path)?;
        self.storage
            .validate()
            .map_err(|e| e.under("storage", path))?;
        self.log.validate().map_err(|e| e.under("log", path))?;
        self.archive
            .validate()
            .map_err(|e| e.under("archive", path))?;
        Ok(())
    }

    /// Every served domain's backends, as `[auth]` and `[domain]` combine
    /// them, and every directory table wherever it sits.
    fn validate_auth(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        for domain in &self.server.domains {
            let key = if self
                .domain
                .get(domain)
                .is_some_and(|d| d.auth_backend.is_some())
            {
                format!("domain.{domain}.auth_backend")
            } else {
                "auth.backend".to_owned()
            };
            let list = self.auth_backends(domain).list();
            if list.is_empty() {
                return Err(invalid(&key, "name at least one backend".into()));
            }
            if list.iter().enumerate().any(|(i, k)| list[..i].contains(k)) {
                return Err(invalid(&key, "a backend is listed twice".into()));
            }
            if self.auth_backends(domain).has(AuthBackendKind::Ldap) && self.ldap(domain).is_none()
            {
                return Err(invalid(
                    &key,
                    format!(
                        "{domain} uses ldap but neither [auth.ldap] nor [domain.\"{domain}\".ldap] is set"
                    ),
                ));
            }
        }
        let tables = self
            .auth
            .ldap
            .iter()
            .map(|l| ("auth.ldap".to_owned(), l))
            .chain(self.domain.iter().filter_map(|(name, d)| {
                d.ldap.as_ref().map(|l| (format!("domain.{name}.ldap"), l))
            }));
        for (prefix, l) in tables {
            l.validate().map_err(|e| e.under(&prefix, path))?;
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file under the data directory.
    pub fn storage_url(&self) -> String {
        match &self.storage.url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.server.data_dir.join("jaseur.db").display()
            ),
        }
    }

    /// The first served domain, used when a client names none.
    pub fn default_domain(&self) -> &str {
        self.server
            .domains
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    /// Whether `domain` is served here.
    pub fn serves(&self, domain: &str) -> bool {
        self.server.domains.iter().any(|d| d == domain)
    }

    /// Whether `jid` (bare) is a server administrator.
    pub fn is_admin(&self, bare: &str) -> bool {
        self.server.admins.iter().any(|a| a == bare)
    }

    /// The auth backends for one domain, in lookup order.
    pub fn auth_backends(&self, domain: &str) -> &Backends {
        self.domain
            .get(domain)
            .and_then(|d| d.auth_backend.as_ref())
            .unwrap_or(&self.auth.backend)
    }

    /// The directory of one domain, when its backends include LDAP.
    pub fn ldap(&self, domain: &str) -> Option<&LdapConfig> {
        if !self.auth_backends(domain).has(AuthBackendKind::Ldap) {
            return None;
        }
        self.domain
            .get(domain)
            .and_then(|d| d.ldap.as_ref())
            .or(self.auth.ldap.as_ref())
    }

    /// The MUC service's domain for a served domain, when MUC is on.
    pub fn muc_service(&self, domain: &str) -> Option<String> {
        self.muc
            .enabled
            .then(|| format!("{}.{domain}", self.muc.subdomain))
    }

    /// The admin socket's path.
    pub fn admin_socket(&self) -> PathBuf {
        self.server.data_dir.join("admin.sock")
    }

    /// The file where a running server writes the addresses it bound.
    pub fn ready_file(&self) -> PathBuf {
        self.server.data_dir.join("ready")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/jaseur.toml"));
        let c = Config::load(path).expect("the example config must stay valid");
        assert!(!c.server.domains.is_empty());
    }

    /// Every key of the configuration (as dotted paths), from the defaults.
    fn default_keys() -> Vec<String> {
        let text = toml::to_string(&Config::default()).expect("serialise defaults");
        let table: toml::Table = text.parse().expect("reparse");
        let mut keys = Vec::new();
        for (section, value) in &table {
            if let Some(t) = value.as_table() {
                keys.extend(t.keys().map(|k| format!("{section}.{k}")));
            }
        }
        // Optional keys have no default, so serialisation skips them: name them here.
        keys.extend(
            [
                "tls.cert",
                "tls.key",
                "storage.url",
                "http.public_url",
                "domain.tls_cert",
                "domain.tls_key",
                "domain.auth_backend",
                "domain.ldap",
                "auth.ldap",
            ]
            .map(String::from),
        );
        let ldap = toml::to_string(&LdapConfig::default()).expect("serialise ldap defaults");
        let ldap: toml::Table = ldap.parse().expect("reparse");
        keys.extend(ldap.keys().map(|k| format!("auth.ldap.{k}")));
        keys.extend(
            [
                "tls_ca",
                "bind_dn",
                "bind_password",
                "bind_password_file",
                "user_dn_template",
            ]
            .map(|k| format!("auth.ldap.{k}")),
        );
        keys
    }

    #[test]
    fn example_and_docs_cover_every_key() {
        let root = env!("CARGO_MANIFEST_DIR");
        let example =
            std::fs::read_to_string(format!("{root}/config/jaseur.toml")).expect("example");
        let docs = std::fs::read_to_string(format!("{root}/docs/configuration.md")).expect("docs");
        for key in default_keys() {
            let name = key.rsplit('.').next().expect("key name");
            assert!(
                example.contains(&format!("{name} = ")),
                "config/jaseur.toml does not document {key}"
            );
            assert!(
                docs.contains(&format!("`{key}`")),
                "docs/configuration.md does not document `{key}`"
            );
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::parse(
            "[server]\ndomains = [\"a.org\"]\nfoo = 1\n",
            Path::new("x.toml"),
        )
        .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("foo"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn bad_value_names_key() {
        let err = Config::parse("[c2s]\nlisten = [\"nope\"]\n", Path::new("x.toml"))
            .expect_err("bad address");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = Config::parse("[server]\ndomains = [\"A b\"]\n", Path::new("x.toml"))
            .expect_err("bad domain");
        assert!(err.to_string().contains("server.domains"), "{err}");
        let err = Config::parse("[domain.\"x.org\"]\n", Path::new("x.toml")).expect_err("unserved");
        assert!(err.to_string().contains("domain.x.org"), "{err}");
    }

    #[test]
    fn defaults_are_sane() {
        let c = Config::parse("", Path::new("x.toml")).expect("empty is fine");
        assert_eq!(c.server.domains, vec!["localhost".to_string()]);
        assert_eq!(c.c2s.max_stanza_size, 262144);
        assert_eq!(c.storage_url(), "sqlite://data/jaseur.db");
    }
}
