//! SQL for `features::last::LastActivityStore` (XEP-0012).

use super::owner;
use crate::features::last::LastActivityStore;
use crate::storage::{Storage, StorageError};
use jid::BareJid;
use sqlx::Row;

/// Rows written by one statement at most.
const BATCH_ROWS: usize = 200;

impl LastActivityStore for Storage {
    async fn record_last_activity(
        &self,
        user: &BareJid,
        stamp: i64,
        status: &str,
    ) -> Result<(), StorageError> {
        self.record_last_activities(&[(user.clone(), stamp, status.to_owned())])
            .await
    }

    async fn record_last_activities(
        &self,
        logouts: &[(BareJid, i64, String)],
    ) -> Result<(), StorageError> {
        for chunk in logouts.chunks(BATCH_ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let n = i * 4;
                    format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4)
                })
                .collect();
            // One row per account: only the latest logout matters (the
            // caller sends one per account).
            let sql = format!(
                "INSERT INTO last_activity (domain, username, stamp, status) VALUES {} \
                 ON CONFLICT (domain, username) DO UPDATE SET stamp = excluded.stamp, status = excluded.status",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (user, stamp, status) in chunk {
                let (domain, username) = owner(user);
                q = q
                    .bind(domain)
                    .bind(username)
                    .bind(*stamp)
                    .bind(status.clone());
            }
            q.execute(&self.pool).await?;
        }
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
