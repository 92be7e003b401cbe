//! SQL for `features::last::LastActivityStore` (XEP-0012).

use super::owner;
use crate::features::last::LastActivityStore;
use crate::storage::{Storage, StorageError};
use jid::BareJid;
use sqlx::Row;

impl LastActivityStore for Storage {
    async fn record_last_activity(
        &self,
        user: &BareJid,
        stamp: i64,
        status: &str,
    ) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        // One row per account: only the latest logout matters.
        sqlx::query(
            "INSERT INTO last_activity (domain, username, stamp, status) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (domain, username) DO UPDATE SET stamp = excluded.stamp, status = excluded.status",
        )
        .bind(domain)
        .bind(username)
        .bind(stamp)
        .bind(status)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn last_activity(&self, user: &BareJid) -> Result<Option<(i64, String)>, StorageError> {
        let (domain, username) = owner(user);
        let row = sqlx::query(
            "SELECT stamp, status FROM last_activity WHERE domain = $1 AND username = $2",
        )
        .bind(domain)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?))),
            None => Ok(None),
        }
    }

    async fn remove_last_activity(&self, user: &BareJid) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query("DELETE FROM last_activity WHERE domain = $1 AND username = $2")
            .bind(domain)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
