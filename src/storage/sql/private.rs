//! SQL for `features::private::PrivateStore`.

use super::owner;
use crate::features::private::PrivateStore;
use crate::storage::{Storage, StorageError, now_micros};
use jid::BareJid;
use sqlx::Row;

impl PrivateStore for Storage {
    async fn get_private(
        &self,
        user: &BareJid,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, StorageError> {
        let (domain, username) = owner(user);
        let row = sqlx::query(
            "SELECT xml FROM private_storage \
             WHERE domain = $1 AND username = $2 AND namespace = $3 AND name = $4",
        )
        .bind(domain)
        .bind(username)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn set_private(
        &self,
        user: &BareJid,
        namespace: &str,
        name: &str,
        xml: &str,
        max_total: usize,
    ) -> Result<bool, StorageError> {
        let (domain, username) = owner(user);
        let size = i64::try_from(xml.len()).unwrap_or(i64::MAX);
        let max_total = i64::try_from(max_total).unwrap_or(i64::MAX);
        // Write first, then check the quota in the same transaction: the sum
        // then counts the new element instead of the one it replaces, and
        // SQLite takes its write lock at once instead of upgrading a read
        // lock (which fails outright when another writer went first).
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO private_storage (domain, username, namespace, name, xml, size, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (domain, username, namespace, name) \
             DO UPDATE SET xml = excluded.xml, size = excluded.size, updated_at = excluded.updated_at",
        )
        .bind(domain)
        .bind(username)
        .bind(namespace)
        .bind(name)
        .bind(xml)
        .bind(size)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        // SUM of a BIGINT is NUMERIC in PostgreSQL, which AnyPool cannot decode: cast it back.
        let total: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM private_storage \
             WHERE domain = $1 AND username = $2",
        )
        .bind(domain)
        .bind(username)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if total > max_total {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_private(
        &self,
        user: &BareJid,
        namespace: &str,
        name: &str,
    ) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query(
            "DELETE FROM private_storage \
             WHERE domain = $1 AND username = $2 AND namespace = $3 AND name = $4",
        )
        .bind(domain)
        .bind(username)
        .bind(namespace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_user(&self, user: &BareJid) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query("DELETE FROM private_storage WHERE domain = $1 AND username = $2")
            .bind(domain)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
