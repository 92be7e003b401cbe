//! The configuration file (TOML): structs, defaults and validation.
//!
//! Every struct denies unknown keys so that a typo fails at start with the
//! key and line named, instead of silently running with a default.
//! `config/jaseur.toml` documents every key; a test parses it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
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

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub c2s: C2sConfig,
    pub tls: TlsConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub muc: MucConfig,
    /// Per-domain overrides, keyed by a domain listed in `server.domains`.
    pub domain: BTreeMap<String, DomainConfig>,
    /// Where the file was read from (None: embedded defaults).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Domains served (virtual hosts).
    pub domains: Vec<String>,
    /// Server administrators' bare JIDs.
    pub admins: Vec<String>,
    /// Where the database, generated certificates, the ready file and the admin socket live.
    pub data_dir: PathBuf,
    /// Seconds given to sessions to close when shutting down.
    pub shutdown_grace: u64,
    /// Answer XEP-0092 software version requests.
    pub software_version: bool,
    /// XEP-0157 contact addresses by type (abuse, admin, feedback, sales, security, status, support).
    pub contact: BTreeMap<String, Vec<String>>,
}

/// What to do when a client binds a resource already in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceConflict {
    /// The newest session wins; the old one gets a `<conflict/>` stream error.
    Replace,
    /// The new bind is refused with a `<conflict/>` stanza error.
    Refuse,
    /// The new session gets a server-generated resource instead.
    Rename,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sConfig {
    /// Listeners for STARTTLS (RFC 6120 §5).
    pub listen: Vec<SocketAddr>,
    /// Listeners for direct TLS (XEP-0368).
    pub direct_tls: Vec<SocketAddr>,
    /// Largest top-level element accepted, in bytes.
    pub max_stanza_size: usize,
    /// Deepest element nesting accepted inside a stanza.
    pub max_depth: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Seconds to finish TLS, authentication and binding.
    pub handshake_timeout: u64,
    /// Stanzas queued towards one session before it is judged too slow and closed.
    pub queue_size: usize,
    /// Bytes of stanzas queued towards one session before it is judged too slow and closed.
    pub queue_bytes: usize,
    /// Open client connections at most.
    pub max_connections: usize,
    pub resource_conflict: ResourceConflict,
    /// Seconds of silence from a client before the server pings it (XEP-0199).
    pub ping_interval: u64,
    /// Seconds to answer that ping before the connection is considered dead.
    pub ping_timeout: u64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`. Omitted: a self-signed one under data_dir.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://path` or `postgres://...`. Omitted: `sqlite://DATA_DIR/jaseur.db`.
    pub url: Option<String>,
    /// Database connections at most.
    pub max_connections: u32,
}

/// Which credential store authenticates a domain's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthBackendKind {
    /// Accounts in our database (SCRAM keys).
    Internal,
    /// Accounts of an LDAP directory (password checked by a bind).
    Ldap,
}

/// One backend, or several tried in order: `"ldap"` or `["internal", "ldap"]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Backends {
    One(AuthBackendKind),
    Many(Vec<AuthBackendKind>),
}

impl Backends {
    /// The backends in the order accounts are looked up.
    pub fn list(&self) -> &[AuthBackendKind] {
        match self {
            Backends::One(k) => std::slice::from_ref(k),
            Backends::Many(v) => v,
        }
    }

    /// Whether `kind` is one of them.
    pub fn has(&self, kind: AuthBackendKind) -> bool {
        self.list().contains(&kind)
    }
}

/// An LDAP directory (RFC 4510-4516) that holds a domain's accounts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// `ldap://host[:port]` (with StartTLS unless `starttls = false`) or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade `ldap://` connections with StartTLS.
    pub starttls: bool,
    /// PEM file of the CA that signed the directory's certificate (else the system's).
    pub tls_ca: Option<PathBuf>,
    /// Where accounts are searched (subtree).
    pub base_dn: String,
    /// The attribute holding the login, which becomes the XMPP localpart.
    pub uid_attribute: String,
    /// Extra filter an account must match, e.g. `(employeeType=actif)`.
    pub filter: String,
    /// DN to search as (search-then-bind); omitted: anonymous search, or `user_dn_template`.
    pub bind_dn: Option<String>,
    /// Password of `bind_dn`.
    pub bind_password: Option<String>,
    /// File holding the password of `bind_dn` (instead of `bind_password`).
    pub bind_password_file: Option<PathBuf>,
    /// Bind directly as this DN, `{user}` replaced by the escaped login (no search).
    pub user_dn_template: Option<String>,
    /// Seconds to open a connection.
    pub connect_timeout: u64,
    /// Seconds for a whole login check, waiting for a connection included.
    pub timeout: u64,
    /// Connections to the directory at most.
    pub pool_size: usize,
    /// Seconds a successful check is remembered (0: ask the directory every time).
    pub cache_ttl: u64,
    /// Distinct wrong passwords per account and `auth.throttle_window` sent to the directory.
    pub max_failed_binds: u32,
    /// vCard fields filled from attributes (fn, family, given, nickname, email, tel, orgname, orgunit, title, role, url, photo).
    pub vcard: BTreeMap<String, String>,
    /// Offer XEP-0055 directory search at `search.DOMAIN`.
    pub search: bool,
    /// Most results of one search.
    pub search_max_results: usize,
    /// Searches one user may make per minute.
    pub search_per_minute: u32,
    /// Shortest search term accepted.
    pub search_min_length: usize,
    /// Shared roster groups built from the directory.
    pub shared_groups: Vec<SharedGroup>,
    /// Attribute of a group entry that lists its members (DNs, or logins for `memberUid`).
    pub member_attribute: String,
    /// Largest shared group: a larger one is left out (with a warning).
    pub shared_group_max: usize,
    /// Seconds between refreshes of the shared groups.
    pub shared_group_refresh: u64,
}

/// A shared roster group: its members see each other under `name`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedGroup {
    /// The roster group name members see.
    pub name: String,
    /// DN of a group entry (groupOfNames, groupOfUniqueNames, posixGroup).
    pub dn: Option<String>,
    /// Or: every account whose `ou` is this value.
    pub ou: Option<String>,
}

impl LdapConfig {
    /// Check one directory's settings: the offending key and why.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.url.starts_with("ldap://")
            || self.url.starts_with("ldaps://")
            || self.url.starts_with("ldapi://"))
        {
            return Err(("url", "use ldap://, ldaps:// or ldapi://".into()));
        }
        if self.base_dn.trim().is_empty() {
            return Err(("base_dn", "the directory's base DN is needed".into()));
        }
        if self.uid_attribute.is_empty()
            || !self
                .uid_attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return Err(("uid_attribute", "not an attribute name".into()));
        }
        if !self.filter.is_empty()
            && (!self.filter.starts_with('(') || ldap3::parse_filter(&self.filter).is_err())
        {
            return Err((
                "filter",
                format!(
                    "{:?} is not an LDAP filter (RFC 4515), e.g. (employeeType=actif)",
                    self.filter
                ),
            ));
        }
        if self.bind_password.is_some() && self.bind_password_file.is_some() {
            return Err((
                "bind_password",
                "set bind_password or bind_password_file, not both".into(),
            ));
        }
        if self.bind_dn.is_none()
            && (self.bind_password.is_some() || self.bind_password_file.is_some())
        {
            return Err(("bind_dn", "a bind password without bind_dn".into()));
        }
        if let Some(t) = &self.user_dn_template
            && !t.contains("{user}")
        {
            return Err(("user_dn_template", "must contain {user}".into()));
        }
        if self.pool_size == 0 {
            return Err(("pool_size", "must be above 0".into()));
        }
        if self.timeout == 0 || self.connect_timeout == 0 {
            return Err((
                "timeout",
                "timeout and connect_timeout must be above 0".into(),
            ));
        }
        if self.max_failed_binds == 0 {
            return Err(("max_failed_binds", "must be above 0".into()));
        }
        for field in self.vcard.keys() {
            if !VCARD_FIELDS.contains(&field.as_str()) {
                return Err((
                    "vcard",
                    format!(
                        "unknown vCard field {field:?}; known: {}",
                        VCARD_FIELDS.join(", ")
                    ),
                ));
            }
        }
        for g in &self.shared_groups {
            if g.name.trim().is_empty() || g.dn.is_some() == g.ou.is_some() {
                return Err((
                    "shared_groups",
                    format!(
                        "group {:?}: give a name and exactly one of dn or ou",
                        g.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for LdapConfig {
    fn default() -> Self {
        let vcard = [
            ("fn", "displayName"),
            ("family", "sn"),
            ("given", "givenName"),
            ("email", "mail"),
            ("tel", "telephoneNumber"),
            ("orgname", "o"),
            ("orgunit", "ou"),
            ("title", "title"),
            ("photo", "jpegPhoto"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        LdapConfig {
            url: "ldap://127.0.0.1".into(),
            starttls: true,
            tls_ca: None,
            base_dn: String::new(),
            uid_attribute: "uid".into(),
            filter: String::new(),
            bind_dn: None,
            bind_password: None,
            bind_password_file: None,
            user_dn_template: None,
            connect_timeout: 5,
            timeout: 5,
            pool_size: 8,
            cache_ttl: 300,
            max_failed_binds: 3,
            vcard,
            search: true,
            search_max_results: 50,
            search_per_minute: 10,
            search_min_length: 2,
            shared_groups: Vec::new(),
            member_attribute: "member".into(),
            shared_group_max: 500,
            shared_group_refresh: 600,
        }
    }
}

/// vCard fields the directory may fill.
pub const VCARD_FIELDS: &[&str] = &[
    "fn", "family", "given", "nickname", "email", "tel", "orgname", "orgunit", "title", "role",
    "url", "photo",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `"internal"`, `"ldap"`, or a list tried in order.
    pub backend: Backends,
    /// PBKDF2 iterations for new SCRAM credentials (RFC 7677 asks for 4096 at least).
    pub scram_iterations: u32,
    /// Offer PLAIN (always only over TLS).
    pub allow_plain: bool,
    /// First delay, in milliseconds, after a failed attempt; it doubles per failure.
    pub throttle_base_ms: u64,
    /// Longest delay, in milliseconds, however many failures.
    pub throttle_max_ms: u64,
    /// Seconds after which failures are forgotten.
    pub throttle_window: u64,
    /// Let clients create accounts with XEP-0077 in-band registration.
    pub allow_registration: bool,
    /// The directory, for domains whose backend includes `ldap`.
    pub ldap: Option<LdapConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// tracing filter: "info", "debug", "jaseur=debug,sqlx=warn", ...
    pub level: String,
}

/// Who may create rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomCreation {
    /// Any user, local or (once federation exists) remote.
    Anyone,
    /// Users of the served domains.
    Local,
    /// Server administrators only.
    Admins,
}

/// The conference service (XEP-0045) of each served domain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MucConfig {
    /// Run a MUC service for every served domain.
    pub enabled: bool,
    /// Its address is SUBDOMAIN.DOMAIN.
    pub subdomain: String,
    pub room_creation: RoomCreation,
    /// Messages of history a new room keeps (owners can change it).
    pub default_history: usize,
    /// Most messages of history a room may keep.
    pub max_history: usize,
    /// Most occupants a room may have (owners can set less).
    pub max_occupants: usize,
    /// Stanzas waiting for the service before senders get resource-constraint.
    pub queue_size: usize,
    /// Rooms one account may own (server admins: no limit).
    pub max_rooms_per_user: usize,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            enabled: true,
            subdomain: "conference".into(),
            room_creation: RoomCreation::Local,
            default_history: 20,
            max_history: 100,
            max_occupants: 1000,
            queue_size: 8192,
            max_rooms_per_user: 100,
        }
    }
}

/// Per-account storage bounds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Messages kept for an account while it is offline.
    pub offline_messages: i64,
    /// Contacts in one roster.
    pub roster_items: usize,
    /// Bytes of one vCard (XEP-0054).
    pub vcard_size: usize,
    /// Bytes of private XML storage per account (XEP-0049).
    pub private_size: usize,
    /// Entries in one blocklist (XEP-0191).
    pub blocklist_items: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            offline_messages: 1000,
            roster_items: 2000,
            vcard_size: 256 * 1024,
            private_size: 256 * 1024,
            blocklist_items: 1000,
        }
    }
}

/// Settings that one served domain overrides.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainConfig {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub auth_backend: Option<Backends>,
    /// This domain's own directory (else `auth.ldap`).
    pub ldap: Option<LdapConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            domains: vec!["localhost".into()],
            admins: Vec::new(),
            data_dir: PathBuf::from("data"),
            shutdown_grace: 5,
            software_version: true,
            contact: BTreeMap::new(),
        }
    }
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5222))],
            direct_tls: vec![SocketAddr::from(([127, 0, 0, 1], 5223))],
            max_stanza_size: 256 * 1024,
            max_depth: 64,
            max_attributes: 64,
            handshake_timeout: 60,
            queue_size: 2048,
            queue_bytes: 1024 * 1024,
            max_connections: 100_000,
            resource_conflict: ResourceConflict::Replace,
            ping_interval: 300,
            ping_timeout: 60,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            url: None,
            max_connections: 8,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            backend: Backends::One(AuthBackendKind::Internal),
            scram_iterations: 4096,
            allow_plain: true,
            throttle_base_ms: 500,
            throttle_max_ms: 15_000,
            throttle_window: 900,
            allow_registration: false,
            ldap: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
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

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        if self.server.domains.is_empty() {
            return Err(invalid(
                "server.domains",
                "at least one domain is needed".into(),
            ));
        }
        for d in &self.server.domains {
            let parsed = jid::BareJid::new(d)
                .map_err(|e| invalid("server.domains", format!("{d:?} is not a domain: {e}")))?;
            if parsed.node().is_some() || parsed.as_str() != d {
                return Err(invalid(
                    "server.domains",
                    format!(
                        "{d:?} is not a normalised domain name (write it in lower case, without user or resource)"
                    ),
                ));
            }
        }
        for a in &self.server.admins {
            jid::BareJid::new(a)
                .map_err(|e| invalid("server.admins", format!("{a:?} is not a JID: {e}")))?;
        }
        for (name, d) in &self.domain {
            if !self.server.domains.contains(name) {
                return Err(invalid(
                    &format!("domain.{name}"),
                    "this domain is not listed in server.domains".into(),
                ));
            }
            if d.tls_cert.is_some() != d.tls_key.is_some() {
                return Err(invalid(
                    &format!("domain.{name}.tls_cert"),
                    "tls_cert and tls_key go together".into(),
                ));
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid("tls.cert", "cert and key go together".into()));
        }
        if self.c2s.max_stanza_size < 1024 {
            return Err(invalid(
                "c2s.max_stanza_size",
                "must be at least 1024 bytes".into(),
            ));
        }
        if self.c2s.max_depth < 4 {
            return Err(invalid("c2s.max_depth", "must be at least 4".into()));
        }
        if self.c2s.queue_size == 0 || self.c2s.max_connections == 0 {
            return Err(invalid(
                "c2s.queue_size",
                "queue_size and max_connections must be above 0".into(),
            ));
        }
        if self.c2s.queue_bytes < self.c2s.max_stanza_size {
            return Err(invalid(
                "c2s.queue_bytes",
                format!(
                    "must be at least c2s.max_stanza_size ({}): a stanza of the largest size must fit behind others",
                    self.c2s.max_stanza_size
                ),
            ));
        }
        if self.muc.enabled {
            // Joining a full room queues the whole occupant list, the history
            // and the subject for the newcomer at once.
            let join = self.muc.max_occupants + self.muc.max_history + 16;
            if self.c2s.queue_size < join {
                return Err(invalid(
                    "c2s.queue_size",
                    format!(
                        "must be at least muc.max_occupants + muc.max_history + 16 = {join}: joining a full room queues its whole occupant list"
                    ),
                ));
            }
        }
        if self.c2s.ping_interval == 0 || self.c2s.ping_timeout == 0 {
            return Err(invalid(
                "c2s.ping_interval",
                "ping_interval and ping_timeout must be above 0".into(),
            ));
        }
        for kind in self.server.contact.keys() {
            if ![
                "abuse", "admin", "feedback", "sales", "security", "status", "support",
            ]
            .contains(&kind.as_str())
            {
                return Err(invalid(
                    &format!("server.contact.{kind}"),
                    "XEP-0157 types are abuse, admin, feedback, sales, security, status, support"
                        .into(),
                ));
            }
        }
        if self.auth.scram_iterations < 4096 {
            return Err(invalid(
                "auth.scram_iterations",
                "RFC 7677 asks for 4096 at least".into(),
            ));
        }
        self.validate_auth(path)?;
        if let Some(url) = &self.storage.url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres:")
                || url.starts_with("postgresql:"))
        {
            return Err(invalid(
                "storage.url",
                format!("{url:?}: use sqlite://FILE or postgres://..."),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| invalid("log.level", e.to_string()))?;
        Ok(())
    }

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
            l.validate()
                .map_err(|(k, m)| invalid(&format!("{prefix}.{k}"), m))?;
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
