//! SQL for `features::blocking::BlockingStore`.

use super::owner;
use crate::features::blocking::BlockingStore;
use crate::storage::{Storage, StorageError, now_micros};
use jid::BareJid;
use sqlx::Row;

impl BlockingStore for Storage {
    async fn blocklist(&self, user: &BareJid) -> Result<Vec<String>, StorageError> {
        let (domain, username) = owner(user);
        let rows = sqlx::query(
            "SELECT jid FROM blocklist_items WHERE domain = $1 AND username = $2 \
             ORDER BY created_at, jid",
        )
        .bind(domain)
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StorageError::from))
            .collect()
    }

    async fn block(
        &self,
        user: &BareJid,
        jids: &[String],
        max_items: usize,
    ) -> Result<bool, StorageError> {
        let (domain, username) = owner(user);
        let now = now_micros();
        // Insert first, then count in the same transaction: the count sees
        // duplicates only once, and SQLite takes its write lock at once.
        let mut tx = self.pool.begin().await?;
        for jid in jids {
            sqlx::query(
                "INSERT INTO blocklist_items (domain, username, jid, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (domain, username, jid) DO NOTHING",
            )
            .bind(domain)
            .bind(username)
            .bind(jid.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let count: i64 =
            sqlx::query("SELECT COUNT(*) FROM blocklist_items WHERE domain = $1 AND username = $2")
                .bind(domain)
                .bind(username)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if usize::try_from(count).unwrap_or(usize::MAX) > max_items {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn unblock(&self, user: &BareJid, jids: &[String]) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        let mut tx = self.pool.begin().await?;
        for jid in jids {
            sqlx::query(
                "DELETE FROM blocklist_items WHERE domain = $1 AND username = $2 AND jid = $3",
            )
            .bind(domain)
            .bind(username)
            .bind(jid.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unblock_all(&self, user: &BareJid) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query("DELETE FROM blocklist_items WHERE domain = $1 AND username = $2")
            .bind(domain)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_user(&self, user: &BareJid) -> Result<(), StorageError> {
        self.unblock_all(user).await
    }
}
