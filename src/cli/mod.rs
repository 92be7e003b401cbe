//! The sysadmin's commands (like prosodyctl and ejabberdctl). They work with
//! the server stopped (on the database) and running (the database plus the
//! admin socket for what touches live sessions).

pub mod check;
pub mod ldap;
pub mod muc;
pub mod user;

use crate::config::Config;
use crate::storage::Storage;
use anyhow::Context;

/// Open the configured database for a command.
pub async fn open_storage(config: &Config) -> anyhow::Result<Storage> {
    std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
        format!(
            "cannot create data_dir {}",
            config.server.data_dir.display()
        )
    })?;
    Storage::open(&config.storage_url(), 2)
        .await
        .with_context(|| format!("cannot open storage {}", config.storage_url()))
}
