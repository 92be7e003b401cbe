//! The LDAP backend: accounts of a directory (RFC 4510), passwords checked by
//! a simple bind (RFC 4513 §5.1), user input escaped per RFC 4515 in filters
//! and RFC 4514 in DNs.
//!
//! A check searches the account as the service account (or anonymously) with
//! the configured filter, then binds as the entry found with the user's
//! password; with `user_dn_template` it binds directly. The directory is
//! protected from us as much as from attackers: an empty password never
//! reaches it (it would be an unauthenticated bind, RFC 4513 §5.1.2, which
//! many servers report as a success), the same wrong password is not sent
//! twice, and only `max_failed_binds` distinct wrong passwords per account
//! and window are, so that a phone with a stale password cannot lock the
//! person's central account through the directory's password policy.

mod pool;

pub use pool::{PoolError, PoolStats};

use crate::config::{LdapConfig, SharedGroup};
use hmac::{Hmac, KeyInit, Mac};
use ldap3::{LdapConnSettings, Scope, SearchEntry, SearchOptions, dn_escape, ldap_escape};
use pool::{Identity, Lease, Pool};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The directory accepted the password.
    Verified,
    /// Wrong password, or an account refused (locked, excluded by the filter).
    Rejected,
    /// The directory has no such account (that passes the filter).
    Unknown,
    /// The directory did not answer in time, or failed.
    Unavailable,
}

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error("LDAP: {0}")]
    Ldap(#[from] ldap3::LdapError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the service account cannot bind: {0}")]
    ServiceBind(String),
    #[error("search failed: {0}")]
    Search(String),
}

/// One directory entry, with the attributes we asked for.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub dn: String,
    /// The login (uid attribute), as the directory spells it.
    pub uid: String,
    attrs: HashMap<String, Vec<String>>,
    binary: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The first value of a text attribute (names are case-insensitive).
    pub fn first(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The first value of an attribute as bytes (jpegPhoto comes as binary).
    pub fn bytes(&self, attr: &str) -> Option<&[u8]> {
        self.binary
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first())
            .map(Vec::as_slice)
            .or_else(|| self.first(attr).map(str::as_bytes))
    }

    fn from_search(e: SearchEntry, uid_attribute: &str) -> Entry {
        let mut entry = Entry {
            dn: e.dn,
            uid: String::new(),
            attrs: e.attrs,
            binary: e.bin_attrs,
        };
        entry.uid = entry.first(uid_attribute).unwrap_or_default().to_owned();
        entry
    }
}

type Key = [u8; 32];

/// What the directory told us recently, per account.
#[derive(Default)]
struct Memory {
    /// Successful checks: (password key, until when).
    verified: HashMap<String, (Key, Instant)>,
    /// Wrong passwords sent to the directory in this window.
    failed: HashMap<String, Failures>,
    /// Entries found recently (existence checks, vCards).
    entries: HashMap<String, (Arc<Entry>, Instant)>,
}

struct Failures {
    since: Instant,
    keys: Vec<Key>,
    logged: bool,
}

/// Entries of each cache above which expired ones are swept.
const MEMORY_SWEEP: usize = 10_000;

/// One configured directory.
pub struct Directory {
    config: LdapConfig,
    bind_password: Option<String>,
    pool: Pool,
    /// Keys the password fingerprints kept in memory; never leaves the process.
    key: Key,
    window: Duration,
    memory: Mutex<Memory>,
    /// Attributes fetched with an entry.
    attributes: Vec<String>,
}

impl Directory {
    /// Set up the directory (no connection is made until needed).
    pub fn new(config: &LdapConfig, throttle_window: Duration) -> Result<Directory, String> {
        let bind_password = match (&config.bind_password, &config.bind_password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| format!("bind_password_file {}: {e}", file.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(config.connect_timeout))
            .set_starttls(config.starttls && config.url.starts_with("ldap://"));
        if let Some(ca) = &config.tls_ca {
            settings = settings.set_config(Arc::new(tls_config(ca)?));
        }
        let mut attributes: Vec<String> = vec![config.uid_attribute.clone()];
        for a in config.vcard.values().map(String::as_str).chain([
            "cn",
            "displayName",
            "mail",
            "ou",
            "title",
        ]) {
            if !attributes.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                attributes.push(a.to_owned());
            }
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        Ok(Directory {
            pool: Pool::new(config.url.clone(), settings, config.pool_size),
            config: config.clone(),
            bind_password,
            key,
            window: throttle_window,
            memory: Mutex::new(Memory::default()),
            attributes,
        })
    }

    /// The settings it was made from.
    pub fn config(&self) -> &LdapConfig {
        &self.config
    }

    /// Connections open, most ever open, and the limit.
    pub fn stats(&self) -> PoolStats {
        self.pool.stats()
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs(self.config.timeout)
    }

    fn fingerprint(&self, uid: &str, password: &str) -> Key {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(uid.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Check `password` for the login `uid` (already a valid, case-folded
    /// XMPP localpart).
    pub async fn check(&self, uid: &str, password: &str) -> Check {
        if password.is_empty() {
            return Check::Rejected;
        }
        let key = self.fingerprint(uid, password);
        if let Some(verdict) = self.remembered(uid, &key) {
            return verdict;
        }
        let result = tokio::time::timeout(self.deadline(), self.check_now(uid, password)).await;
        let verdict = match result {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::debug!(account = uid, error = %e, "LDAP check failed");
                Check::Unavailable
            }
            Err(_) => {
                self.timed_out();
                Check::Unavailable
            }
        };
        self.remember(uid, key, &verdict);
        verdict
    }

    /// An answer from memory, without asking the directory.
    fn remembered(&self, uid: &str, key: &Key) -> Option<Check> {
        let now = Instant::now();
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, until)) = m.verified.get(uid)
            && k == key
            && *until > now
        {
            return Some(Check::Verified);
        }
        let window = self.window;
        let max = self.config.max_failed_binds as usize;
        let f = m.failed.get_mut(uid)?;
        if now.duration_since(f.since) > window {
            m.failed.remove(uid);
            return None;
        }
        if f.keys.contains(key) {
            return Some(Check::Rejected);
        }
        if f.keys.len() >= max {
            if !f.logged {
                f.logged = true;
                tracing::warn!(
                    account = uid,
                    max,
                    "wrong passwords refused without asking the directory until the throttle window ends (protects the central account from lockout)"
                );
            }
            return Some(Check::Rejected);
        }
        None
    }

    fn remember(&self, uid: &str, key: Key, verdict: &Check) {
        let now = Instant::now();
        let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        match verdict {
            Check::Verified => {
                m.failed.remove(uid);
                if self.config.cache_ttl > 0 {
                    if m.verified.len() >= MEMORY_SWEEP {
                        m.verified.retain(|_, (_, until)| *until > now);
                    }
                    let until = now + Duration::from_secs(self.config.cache_ttl);
                    m.verified.insert(uid.to_owned(), (key, until));
                }
            }
            Check::Rejected => {
                if m.failed.len() >= MEMORY_SWEEP {
                    let window = self.window;
                    m.failed
                        .retain(|_, f| now.duration_since(f.since) <= window);
                }
                let f = m.failed.entry(uid.to_owned()).or_insert(Failures {
                    since: now,
                    keys: Vec::new(),
                    logged: false,
                });
                if !f.keys.contains(&key) {
                    f.keys.push(key);
                }
            }
            Check::Unknown | Check::Unavailable => {}
        }
    }

    fn timed_out(&self) {
        self.pool
            .failed(&format!("no answer within {:?}", self.deadline()));
    }

    async fn leased(&self) -> Result<Lease<'_>, DirectoryError> {
        let permit = self
            .pool
            .slot()
            .await
            .ok_or_else(|| DirectoryError::Search("pool closed".into()))?;
        Ok(self.pool.lease(permit).await?)
    }

    async fn check_now(&self, uid: &str, password: &str) -> Result<Check, DirectoryError> {
        let mut lease = self.leased().await?;
        let dn = match &self.config.user_dn_template {
            Some(template) if self.config.bind_dn.is_none() => {
                template.replace("{user}", &dn_escape(uid))
            }
            _ => match self.find_on(&mut lease, uid).await? {
                Some(e) => e.dn.clone(),
                None => return Ok(Check::Unknown),
            },
        };
        let ldap = lease
            .start()
            .ok_or_else(|| DirectoryError::Search("no connection".into()))?;
        let res = ldap.simple_bind(&dn, password).await;
        lease.done(res.is_ok());
        lease.set_identity(Identity::User);
        let res = res?;
        self.pool.succeeded();
        match res.rc {
            0 => {}
            // invalidCredentials; also what a locked account gets from most
            // password policies, and unwillingToPerform/inappropriateAuthentication
            // from others: all are "no" to the user.
            49 | 53 | 48 | 50 => return Ok(Check::Rejected),
            rc => {
                tracing::warn!(rc, text = %res.text, "unexpected LDAP bind result");
                return Ok(Check::Rejected);
            }
        }
        // With a direct bind nothing has checked the filter yet: read the
        // entry back (as the user) with it.
        if self.config.user_dn_template.is_some()
            && self.config.bind_dn.is_none()
            && !self.config.filter.is_empty()
        {
            let found = self
                .search_on(&mut lease, &dn, Scope::Base, &self.config.filter, 1)
                .await?;
            if found.is_empty() {
                return Ok(Check::Rejected);
            }
        }
        Ok(Check::Verified)
    }

    /// Bind the lease as the service account (or anonymous) if it is not.
    async fn as_service(&self, lease: &mut Lease<'_>) -> Result<(), DirectoryError> {
        let wanted = if self.config.bind_dn.is_some() {
            Identity::Service
        } else {
            Identity::Anonymous
        };
        if lease.identity() == wanted {
            return Ok(());
        }
        let (dn, pw) = match &self.config.bind_dn {
            Some(dn) => (dn.as_str(), self.bind_password.as_deref().unwrap_or("")),
            None => ("", ""),
        };
        let ldap = lease
            .start()
            .ok_or_else(|| DirectoryError::Search("no connection".into()))?;
        let res = ldap.simple_bind(dn, pw).await;
        lease.done(res.is_ok());
        let res = res?;
        if res.rc != 0 {
            // Misconfiguration, not an outage of one user: say it loudly.
            tracing::error!(bind_dn = dn, rc = res.rc, text = %res.text, "LDAP service bind refused");
            return Err(DirectoryError::ServiceBind(format!(
                "rc {} {}",
                res.rc, res.text
            )));
        }
        lease.set_identity(wanted);
        Ok(())
    }

    fn account_filter(&self, uid: &str) -> String {
        let own = format!("({}={})", self.config.uid_attribute, ldap_escape(uid));
        if self.config.filter.is_empty() {
            own
        } else {
            format!("(&{own}{})", self.config.filter)
        }
    }

    async fn search_on(
        &self,
        lease: &mut Lease<'_>,
        base: &str,
        scope: Scope,
        filter: &str,
        limit: usize,
    ) -> Result<Vec<Entry>, DirectoryError> {
        let ldap = lease
            .start()
            .ok_or_else(|| DirectoryError::Search("no connection".into()))?;
        let attrs: Vec<&str> = self.attributes.iter().map(String::as_str).collect();
        let res = ldap
            .with_search_options(
                SearchOptions::new().sizelimit(limit.min(i32::MAX as usize) as i32),
            )
            .search(base, scope, filter, attrs)
            .await;
        lease.done(res.is_ok());
        let ldap3::SearchResult(entries, result) = res?;
        self.pool.succeeded();
        // 4: sizeLimitExceeded, with the entries up to the limit; 32: noSuchObject (base gone).
        match result.rc {
            0 | 4 => {}
            32 => return Ok(Vec::new()),
            rc => {
                return Err(DirectoryError::Search(format!("rc {rc} {}", result.text)));
            }
        }
        let uid_attribute = &self.config.uid_attribute;
        Ok(entries
            .into_iter()
            .filter_map(|raw| {
                // SearchEntry::construct panics on BER it cannot read; a
                // broken answer must not take the server down.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    SearchEntry::construct(raw)
                }))
                .ok()
            })
            .map(|e| Entry::from_search(e, uid_attribute))
            .collect())
    }

    /// The account's entry, on a leased connection.
    async fn find_on(
        &self,
        lease: &mut Lease<'_>,
        uid: &str,
    ) -> Result<Option<Entry>, DirectoryError> {
        self.as_service(lease).await?;
        let filter = self.account_filter(uid);
        let mut found = self
            .search_on(lease, &self.config.base_dn, Scope::Subtree, &filter, 2)
            .await?;
        if found.len() > 1 {
            tracing::warn!(
                account = uid,
                "two directory entries match one login: refused"
            );
            return Ok(None);
        }
        Ok(found.pop())
    }

    /// The entry of an account that passes the filter (remembered `cache_ttl`).
    pub async fn find(&self, uid: &str) -> Result<Option<Arc<Entry>>, DirectoryError> {
        let now = Instant::now();
        {
            let m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((e, until)) = m.entries.get(uid)
                && *until > now
            {
                return Ok(Some(e.clone()));
            }
        }
        let run = async {
            let mut lease = self.leased().await?;
            self.find_on(&mut lease, uid).await
        };
        let found = match tokio::time::timeout(self.deadline(), run).await {
            Ok(r) => r?,
            Err(_) => {
                self.timed_out();
                return Err(DirectoryError::Timeout(self.deadline()));
            }
        };
        let Some(entry) = found else {
            return Ok(None);
        };
        let entry = Arc::new(entry);
        if self.config.cache_ttl > 0 {
            let mut m = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            if m.entries.len() >= MEMORY_SWEEP {
                m.entries.retain(|_, (_, until)| *until > now);
            }
            let until = now + Duration::from_secs(self.config.cache_ttl);
            m.entries.insert(uid.to_owned(), (entry.clone(), until));
        }
        Ok(Some(entry))
    }

    /// Connect, bind as the service account and look for one account: what
    /// `jaseur check` reports. Ok(false): the directory answers but no
    /// account under `base_dn` passes the filter.
    pub async fn probe(&self) -> Result<bool, DirectoryError> {
        let filter = format!("(&{}({}=*))", self.config.filter, self.config.uid_attribute);
        Ok(!self.search_filter(&filter, 1).await?.is_empty())
    }

    /// Accounts matching every `(attribute, substring)` term, at most `limit`.
    pub async fn search(
        &self,
        terms: &[(String, String)],
        limit: usize,
    ) -> Result<Vec<Entry>, DirectoryError> {
        let mut filter = String::from("(&");
        filter.push_str(&self.config.filter);
        filter.push_str(&format!("({}=*)", self.config.uid_attribute));
        for (attr, value) in terms {
            filter.push_str(&format!("({attr}=*{}*)", ldap_escape(value.trim())));
        }
        filter.push(')');
        self.search_filter(&filter, limit).await
    }

    async fn search_filter(
        &self,
        filter: &str,
        limit: usize,
    ) -> Result<Vec<Entry>, DirectoryError> {
        let run = async {
            let mut lease = self.leased().await?;
            self.as_service(&mut lease).await?;
            self.search_on(
                &mut lease,
                &self.config.base_dn,
                Scope::Subtree,
                filter,
                limit,
            )
            .await
        };
        match tokio::time::timeout(self.deadline(), run).await {
            Ok(r) => r,
            Err(_) => {
                self.timed_out();
                Err(DirectoryError::Timeout(self.deadline()))
            }
        }
    }

    /// A shared group's members as (login, display name), or None when it
    /// has more than `shared_group_max` (a whole faculty in everyone's
    /// roster would flood presence).
    pub async fn group_members(
        &self,
        group: &SharedGroup,
    ) -> Result<Option<Vec<(String, Option<String>)>>, DirectoryError> {
        let max = self.config.shared_group_max;
        let uid_attr = &self.config.uid_attribute;
        let escaped_filter = if let Some(ou) = &group.ou {
            format!("(&{}(ou={}))", self.config.filter, ldap_escape(ou.as_str()))
        } else {
            let Some(dn) = &group.dn else {
                return Ok(Some(Vec::new()));
            };
            let logins = self.group_entry_logins(dn).await?;
            if logins.len() > max {
                return Ok(None);
            }
            if logins.is_empty() {
                return Ok(Some(Vec::new()));
            }
            let mut f = format!("(&{}(|", self.config.filter);
            for l in &logins {
                f.push_str(&format!("({uid_attr}={})", ldap_escape(l.as_str())));
            }
            f.push_str("))");
            f
        };
        let entries = self.search_filter(&escaped_filter, max + 1).await?;
        if entries.len() > max {
            return Ok(None);
        }
        let mut seen = HashSet::new();
        Ok(Some(
            entries
                .into_iter()
                .map(|e| {
                    // Roster item names go into XML: keep out what XML forbids.
                    let name = e
                        .first("displayName")
                        .or(e.first("cn"))
                        .map(crate::features::vcard::directory_text);
                    (e.uid.to_lowercase(), name)
                })
                .filter(|(u, _)| !u.is_empty() && seen.insert(u.clone()))
                .collect(),
        ))
    }

    /// Member logins named by a group entry: memberUid values directly,
    /// member DNs through their first RDN when it is the login attribute,
    /// else by reading the member's entry.
    async fn group_entry_logins(&self, dn: &str) -> Result<Vec<String>, DirectoryError> {
        let member_attr = self.config.member_attribute.clone();
        let uid_attr = self.config.uid_attribute.clone();
        let run = async {
            let mut lease = self.leased().await?;
            self.as_service(&mut lease).await?;
            let ldap = lease
                .start()
                .ok_or_else(|| DirectoryError::Search("no connection".into()))?;
            let res = ldap
                .search(
                    dn,
                    Scope::Base,
                    "(objectClass=*)",
                    vec![member_attr.as_str()],
                )
                .await;
            lease.done(res.is_ok());
            let ldap3::SearchResult(entries, result) = res?;
            if result.rc != 0 {
                return Err(DirectoryError::Search(format!(
                    "group {dn}: rc {} {}",
                    result.rc, result.text
                )));
            }
            let mut values = Vec::new();
            for raw in entries {
                if let Ok(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    SearchEntry::construct(raw)
                })) {
                    for (k, v) in e.attrs {
                        if k.eq_ignore_ascii_case(&member_attr) {
                            values.extend(v);
                        }
                    }
                }
            }
            let mut logins = Vec::new();
            for v in values {
                if !v.contains('=') {
                    logins.push(v);
                    continue;
                }
                if let Some(login) = rdn_value(&v, &uid_attr) {
                    logins.push(login);
                    continue;
                }
                let found = self
                    .search_on(&mut lease, &v, Scope::Base, "(objectClass=*)", 1)
                    .await?;
                logins.extend(found.into_iter().map(|e| e.uid).filter(|u| !u.is_empty()));
            }
            Ok(logins)
        };
        match tokio::time::timeout(self.deadline() * 4, run).await {
            Ok(r) => r,
            Err(_) => {
                self.timed_out();
                Err(DirectoryError::Timeout(self.deadline()))
            }
        }
    }
}

/// The value of a DN's first RDN when its attribute is `attr`
/// (`uid=jean.dupont,ou=people,...` → `jean.dupont`), unescaped per RFC 4514.
fn rdn_value(dn: &str, attr: &str) -> Option<String> {
    let (name, rest) = dn.split_once('=')?;
    if !name.trim().eq_ignore_ascii_case(attr) {
        return None;
    }
    let mut out = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'+' => break,
            b'\\' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(|s| s.trim().to_owned())
}

fn tls_config(ca: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("tls_ca {}: {e}", ca.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("tls_ca {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("tls_ca {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("tls_ca {}: no certificate in it", ca.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdn_values() {
        assert_eq!(
            rdn_value("uid=jean.dupont,ou=people,dc=x", "uid").as_deref(),
            Some("jean.dupont")
        );
        assert_eq!(
            rdn_value("UID=a\\2cb,ou=people", "uid").as_deref(),
            Some("a,b")
        );
        assert_eq!(rdn_value("cn=Jean,ou=people", "uid"), None);
    }

    #[test]
    fn filters_escape_user_input() {
        let d = Directory::new(
            &LdapConfig {
                base_dn: "dc=x".into(),
                filter: "(employeeType=actif)".into(),
                ..LdapConfig::default()
            },
            Duration::from_secs(60),
        )
        .expect("directory");
        assert_eq!(
            d.account_filter("a)(uid=*"),
            "(&(uid=a\\29\\28uid=\\2a)(employeeType=actif))"
        );
        assert_eq!(d.account_filter("*"), "(&(uid=\\2a)(employeeType=actif))");
    }

    #[tokio::test]
    async fn an_empty_password_is_refused_without_asking() {
        // Nothing listens on port 9: asking would be Unavailable, not Rejected.
        let d = Directory::new(
            &LdapConfig {
                url: "ldap://127.0.0.1:9".into(),
                base_dn: "dc=x".into(),
                ..LdapConfig::default()
            },
            Duration::from_secs(60),
        )
        .expect("directory");
        assert_eq!(d.check("jean", "").await, Check::Rejected);
        assert_eq!(d.check("jean", "x").await, Check::Unavailable);
        assert_eq!(d.stats().high_water, 0);
    }

    #[test]
    fn wrong_passwords_are_remembered_and_capped() {
        let d = Directory::new(
            &LdapConfig {
                base_dn: "dc=x".into(),
                max_failed_binds: 2,
                ..LdapConfig::default()
            },
            Duration::from_secs(60),
        )
        .expect("directory");
        let k1 = d.fingerprint("u", "one");
        let k2 = d.fingerprint("u", "two");
        let k3 = d.fingerprint("u", "three");
        assert_eq!(d.remembered("u", &k1), None);
        d.remember("u", k1, &Check::Rejected);
        assert_eq!(
            d.remembered("u", &k1),
            Some(Check::Rejected),
            "same wrong password"
        );
        assert_eq!(d.remembered("u", &k2), None, "a new one may still be tried");
        d.remember("u", k2, &Check::Rejected);
        assert_eq!(d.remembered("u", &k3), Some(Check::Rejected), "cap reached");
        d.remember("u", k3, &Check::Verified);
        assert_eq!(d.remembered("u", &k3), Some(Check::Verified));
        assert_eq!(d.remembered("u", &k1), None, "success clears the failures");
    }
}
