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
