//! `jaseur check`: what is wrong with this installation, and how to fix it.

use crate::admin;
use crate::config::Config;
use crate::stream::tls::{self, CertInfo};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Findings, printed as they come.
#[derive(Default)]
struct Report {
    errors: usize,
    warnings: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("ok       {what}");
    }
    fn warn(&mut self, what: &str, fix: &str) {
        self.warnings += 1;
        println!("warning  {what}\n         -> {fix}");
    }
    fn error(&mut self, what: &str, fix: &str) {
        self.errors += 1;
        println!("error    {what}\n         -> {fix}");
    }
}

/// Run every check; Err when something must be fixed.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut r = Report::default();
    match &config.source {
        Some(p) => r.ok(&format!("configuration {} is valid", p.display())),
        None => r.ok("no configuration file: using the embedded defaults"),
    }
    let running = admin::request(config, "ping")
        .await
        .ok()
        .flatten()
        .is_some();
    if running {
        r.ok("a jaseur server is running with this data_dir");
    }
    certificates(config, &mut r);
    for addr in config.c2s.listen.iter().chain(&config.c2s.direct_tls) {
        port(*addr, running, &mut r);
    }
    match super::open_storage(config).await {
        Ok(s) => {
            r.ok(&format!(
                "storage {} opens and is migrated",
                config.storage_url()
            ));
            s.close().await;
        }
        Err(e) => r.error(
            &format!("storage: {e:#}"),
            "check [storage] url, that the database server runs and that the data_dir is writable",
        ),
    }
    directories(config, &mut r).await;
    for domain in &config.server.domains {
        if let Some(service) = config.muc_service(domain) {
            r.ok(&format!(
                "{domain}: rooms at {service} (creation: {:?}, at most {} occupants each)",
                config.muc.room_creation, config.muc.max_occupants
            ));
        }
    }
    if config.server.admins.is_empty() {
        r.warn(
            "no server admins",
            "list admin JIDs in [server] admins to send announcements and manage rooms",
        );
    }
    println!("{} errors, {} warnings", r.errors, r.warnings);
    if r.errors > 0 {
        anyhow::bail!("jaseur check found {} errors", r.errors);
    }
    Ok(())
}

/// Each domain's backends and SASL mechanisms, and whether its directory answers.
async fn directories(config: &Config, r: &mut Report) {
    use crate::auth::backends;
    let dirs = match backends::Directories::new(config) {
        Ok(d) => d,
        Err(e) => {
            r.error(
                &format!("directory: {e}"),
                "check the [auth.ldap] files (tls_ca, bind_password_file)",
            );
            return;
        }
    };
    for domain in &config.server.domains {
        let list = config.auth_backends(domain).list();
        let mut mechs = Vec::new();
        if backends::scram_possible(config, domain) {
            mechs.push("SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS)");
        }
        if config.auth.allow_plain || backends::plain_needed(config, domain) {
            mechs.push("PLAIN (over TLS only)");
        }
        r.ok(&format!(
            "{domain}: backends {list:?}, SASL offered: {}",
            mechs.join(", ")
        ));
        if backends::plain_needed(config, domain) && backends::scram_possible(config, domain) {
            r.ok(&format!(
                "{domain}: directory accounts log in with PLAIN, internal ones with SCRAM or PLAIN"
            ));
        }
        let Some(dir) = dirs.get(domain) else {
            continue;
        };
        let l = dir.config();
        let local = l.url.starts_with("ldapi://")
            || l.url.starts_with("ldap://127.")
            || l.url.starts_with("ldap://localhost")
            || l.url.starts_with("ldap://[::1]");
        if l.url.starts_with("ldap://") && !l.starttls && !local {
            r.warn(
                &format!("{domain}: passwords go to {} unencrypted", l.url),
                "set starttls = true or use ldaps://",
            );
        }
        match dir.probe().await {
            Ok(true) => r.ok(&format!(
                "{domain}: directory {} answers and holds accounts",
                l.url
            )),
            Ok(false) => r.warn(
                &format!(
                    "{domain}: directory {} answers, but no account under {} passes the filter",
                    l.url, l.base_dn
                ),
                "check base_dn, uid_attribute, filter and what bind_dn may read",
            ),
            Err(e) => r.error(
                &format!("{domain}: directory {}: {e}", l.url),
                "check url, tls_ca, bind_dn and bind_password, and that the directory runs",
            ),
        }
    }
}

fn port(addr: SocketAddr, running: bool, r: &mut Report) {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => r.ok(&format!("{addr} is free")),
        Err(_) if running => r.ok(&format!("{addr} is held (by the running server)")),
        Err(e) => r.error(
            &format!("{addr} cannot be bound: {e}"),
            "another program listens there (ss -ltnp), or pick another address in [c2s]",
        ),
    }
}

fn certificates(config: &Config, r: &mut Report) {
    for domain in &config.server.domains {
        let configured = config
            .domain
            .get(domain)
            .and_then(|d| d.tls_cert.clone().zip(d.tls_key.clone()))
            .or_else(|| config.tls.cert.clone().zip(config.tls.key.clone()));
        let Some((cert, key)) = configured else {
            let (path, _) = tls::self_signed_paths(config);
            r.warn(
                &format!("{domain}: no certificate configured; a self-signed one is used ({})", path.display()),
                "clients will warn about it: set [tls] cert and key (e.g. from Let's Encrypt) for production",
            );
            continue;
        };
        match tls::load_pem(&cert, &key) {
            Ok(loaded) => cert_info(domain, &cert.display().to_string(), &loaded.info, r),
            Err(e) => r.error(
                &format!("{domain}: {e}"),
                "check the paths and that the files are readable PEM (certificate chain, then private key)",
            ),
        }
    }
}

fn cert_info(domain: &str, path: &str, info: &CertInfo, r: &mut Report) {
    let covers = |host: &str| info.names.iter().any(|n| tls::name_matches(n, host));
    if covers(domain) {
        r.ok(&format!("{domain}: certificate {path} covers it"));
    } else {
        r.error(
            &format!(
                "{domain}: certificate {path} does not name it (names: {:?})",
                info.names
            ),
            "get a certificate whose subjectAltName lists this domain",
        );
    }
    let conference = format!("conference.{domain}");
    if !covers(&conference) {
        r.warn(
            &format!("{domain}: certificate does not cover {conference}"),
            "add the conference subdomain to the certificate so clients can reach rooms over TLS",
        );
    }
    let now = SystemTime::now();
    match info.not_after.duration_since(now) {
        Err(_) => r.error(
            &format!("{domain}: certificate {path} has expired"),
            "renew it, then `kill -HUP` the server",
        ),
        Ok(left) if left < Duration::from_secs(14 * 86400) => r.warn(
            &format!(
                "{domain}: certificate expires in {} days",
                left.as_secs() / 86400
            ),
            "renew it, then `kill -HUP` the server (no restart needed)",
        ),
        Ok(left) => r.ok(&format!(
            "{domain}: certificate valid for {} more days",
            left.as_secs() / 86400
        )),
    }
}
