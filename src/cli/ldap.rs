//! `jaseur ldap`: look at a domain's directory the way the server does.

use crate::auth::backends::Directories;
use crate::auth::ldap::Check;
use crate::config::Config;
use anyhow::{Context, bail};

/// `jaseur ldap test JID`: check one account's password against its
/// directory (password from --password or one line of stdin), saying which
/// step failed. This is a real bind: it counts in the directory's password policy.
pub async fn test(config: &Config, jid: &str, password: Option<String>) -> anyhow::Result<()> {
    let jid = jid::BareJid::new(jid).with_context(|| format!("{jid:?} is not a JID"))?;
    let domain = jid.domain().as_str();
    let Some(node) = jid.node() else {
        bail!("give an account, login@{domain}");
    };
    let dirs = Directories::new(config).map_err(anyhow::Error::msg)?;
    let Some(dir) = dirs.get(domain) else {
        bail!(
            "{domain} has no directory (its backends: {:?})",
            config.auth_backends(domain).list()
        );
    };
    let entry = dir
        .find(node.as_str())
        .await
        .context("the directory did not answer")?;
    match &entry {
        Some(e) => println!("found    {}", e.dn),
        None => bail!(
            "no entry ({}={node}) under {} passes the filter {:?}",
            dir.config().uid_attribute,
            dir.config().base_dn,
            dir.config().filter
        ),
    }
    let password = super::user::password(password)?;
    match dir.check(node.as_str(), &password).await {
        Check::Verified => {
            println!("ok       the directory accepts this password");
            Ok(())
        }
        Check::Rejected => bail!("the directory refuses this password (or the account is locked)"),
        Check::Unknown => bail!("the account vanished between the two requests"),
        Check::Unavailable => bail!("the directory did not answer the bind"),
    }
}

/// `jaseur ldap status`: the running server's connections to each directory.
pub async fn status(config: &Config) -> anyhow::Result<()> {
    match crate::admin::request(config, "ldap-stats").await? {
        None => bail!("no server runs with this data_dir"),
        Some(s) if s.is_empty() => println!("no domain uses a directory"),
        Some(s) => {
            for d in s.split_whitespace() {
                println!("{}", d.replace([':', ','], " "));
            }
        }
    }
    Ok(())
}
