//! `jaseur user ...`: accounts of the internal backend.

use crate::admin;
use crate::auth::{AccountStore, credentials_for};
use crate::config::{AuthBackendKind, Config};
use anyhow::{Context, bail};
use jid::BareJid;
use std::io::BufRead;

/// Parse an account JID and check that this server serves its domain.
pub fn account_jid(config: &Config, s: &str) -> anyhow::Result<BareJid> {
    let jid = BareJid::new(s.trim()).with_context(|| format!("{s:?} is not a valid JID"))?;
    if jid.node().is_none() {
        bail!("{s:?} has no user part: write user@domain");
    }
    if !config.serves(jid.domain().as_str()) {
        bail!(
            "{} is not served here (server.domains = {:?})",
            jid.domain(),
            config.server.domains
        );
    }
    if !config
        .auth_backends(jid.domain().as_str())
        .has(AuthBackendKind::Internal)
    {
        bail!(
            "{} authenticates against its LDAP directory only: manage its accounts there, or add \"internal\" to its auth backends for local accounts",
            jid.domain()
        );
    }
    Ok(jid)
}

/// The password from the flag, or one line of standard input.
pub(crate) fn password(flag: Option<String>) -> anyhow::Result<String> {
    let p = match flag {
        Some(p) => p,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if p.is_empty() {
        bail!("empty password: give --password or one line on standard input");
    }
    Ok(p)
}

/// `user add JID`.
pub async fn add(config: &Config, jid: &str, pw: Option<String>) -> anyhow::Result<()> {
    let jid = account_jid(config, jid)?;
    let password = password(pw)?;
    let creds = credentials_for(password, config.auth.scram_iterations).await?;
    let storage = super::open_storage(config).await?;
    if !storage.create(&jid, &creds).await? {
        bail!("{jid} already exists (use `jaseur user passwd` to change its password)");
    }
    println!("created {jid}");
    Ok(())
}

/// `user add --bulk FILE`: lines of `JID PASSWORD`; `#` starts a comment.
pub async fn add_bulk(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut wanted = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (jid, password) = line
            .split_once(char::is_whitespace)
            .with_context(|| format!("{}:{}: expected `JID PASSWORD`", file.display(), n + 1))?;
        let jid =
            account_jid(config, jid).with_context(|| format!("{}:{}", file.display(), n + 1))?;
        wanted.push((jid, password.trim().to_owned()));
    }
    let iterations = config.auth.scram_iterations;
    // PBKDF2 is the cost here; spread it over the cores.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = wanted.len().div_ceil(threads).max(1);
    let mut handles = Vec::new();
    for part in wanted.chunks(chunk) {
        let part = part.to_vec();
        handles.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|(jid, pw)| {
                    crate::auth::StoredCredentials::from_password(&pw, iterations).map(|c| (jid, c))
                })
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    let mut accounts = Vec::with_capacity(wanted.len());
    for h in handles {
        accounts.extend(h.await??);
    }
    let storage = super::open_storage(config).await?;
    let created = storage.create_many(&accounts).await?;
    println!(
        "created {created} accounts ({} already existed)",
        accounts.len() - created
    );
    Ok(())
}

/// `user passwd JID`.
pub async fn passwd(config: &Config, jid: &str, pw: Option<String>) -> anyhow::Result<()> {
    let jid = account_jid(config, jid)?;
    let password = password(pw)?;
    let creds = credentials_for(password, config.auth.scram_iterations).await?;
    let storage = super::open_storage(config).await?;
    if !storage.set_credentials(&jid, &creds).await? {
        bail!("{jid} does not exist");
    }
    println!("password changed for {jid}");
    Ok(())
}

/// `user del JID`: delete, then close the account's sessions on a running server.
pub async fn del(config: &Config, jid: &str) -> anyhow::Result<()> {
    let jid = account_jid(config, jid)?;
    let storage = super::open_storage(config).await?;
    if !storage.delete(&jid).await? {
        bail!("{jid} does not exist");
    }
    match admin::request(config, &format!("close-sessions {jid}")).await? {
        Some(n) => println!("deleted {jid} (closed {n} live sessions)"),
        None => println!("deleted {jid}"),
    }
    Ok(())
}

/// `user list DOMAIN`.
pub async fn list(config: &Config, domain: &str) -> anyhow::Result<()> {
    if !config.serves(domain) {
        bail!(
            "{domain} is not served here (server.domains = {:?})",
            config.server.domains
        );
    }
    let storage = super::open_storage(config).await?;
    for user in storage.list(domain).await? {
        println!("{user}@{domain}");
    }
    Ok(())
}
