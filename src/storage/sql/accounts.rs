//! SQL for `auth::AccountStore`.

use super::owner as parts;
use crate::auth::internal::{ScramKeys, StoredCredentials};
use crate::auth::store::AccountStore;
use crate::storage::{Storage, StorageError, now_micros};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use jid::BareJid;
use sqlx::Row;

fn decode(s: &str) -> Result<Vec<u8>, StorageError> {
    B64.decode(s)
        .map_err(|e| StorageError::Invalid(format!("corrupt credentials in database: {e}")))
}

/// Every table holding per-account data, keyed by (domain, username):
/// deleting an account empties them in the same transaction.
const USER_TABLES: &[&str] = &[
    "offline_messages",
    "roster_items",
    "roster_groups",
    "roster_versions",
    "subscription_requests",
    "last_activity",
    "vcards",
    "private_storage",
    "blocklist_items",
    "archive_prefs",
];

const INSERT: &str = "INSERT INTO accounts (domain, username, iterations, salt, sha1_stored_key, \
    sha1_server_key, sha256_stored_key, sha256_server_key, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (domain, username) DO NOTHING";

fn insert<'q>(
    user: &'q BareJid,
    c: &StoredCredentials,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let (domain, username) = parts(user);
    sqlx::query(INSERT)
        .bind(domain)
        .bind(username)
        .bind(c.iterations as i64)
        .bind(B64.encode(&c.salt))
        .bind(B64.encode(&c.sha1.stored_key))
        .bind(B64.encode(&c.sha1.server_key))
        .bind(B64.encode(&c.sha256.stored_key))
        .bind(B64.encode(&c.sha256.server_key))
        .bind(now_micros())
}

impl AccountStore for Storage {
    async fn create(
        &self,
        user: &BareJid,
        creds: &StoredCredentials,
    ) -> Result<bool, StorageError> {
        let done = insert(user, creds).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_many(
        &self,
        accounts: &[(BareJid, StoredCredentials)],
    ) -> Result<usize, StorageError> {
        let mut tx = self.pool.begin().await?;
        let mut created = 0;
        for (user, creds) in accounts {
            created += insert(user, creds).execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn set_credentials(
        &self,
        user: &BareJid,
        c: &StoredCredentials,
    ) -> Result<bool, StorageError> {
        let (domain, username) = parts(user);
        let done = sqlx::query(
            "UPDATE accounts SET iterations = $3, salt = $4, sha1_stored_key = $5, sha1_server_key = $6, \
             sha256_stored_key = $7, sha256_server_key = $8 WHERE domain = $1 AND username = $2",
        )
        .bind(domain)
        .bind(username)
        .bind(c.iterations as i64)
        .bind(B64.encode(&c.salt))
        .bind(B64.encode(&c.sha1.stored_key))
        .bind(B64.encode(&c.sha1.server_key))
        .bind(B64.encode(&c.sha256.stored_key))
        .bind(B64.encode(&c.sha256.server_key))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, user: &BareJid) -> Result<bool, StorageError> {
        let (domain, username) = parts(user);
        let mut tx = self.pool.begin().await?;
        for table in USER_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE domain = $1 AND username = $2"
            )))
            .bind(domain)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        }
        // Archives are keyed by the owner's JID (rooms will have some too).
        sqlx::query("DELETE FROM archive WHERE owner = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM accounts WHERE domain = $1 AND username = $2")
            .bind(domain)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn credentials(&self, user: &BareJid) -> Result<Option<StoredCredentials>, StorageError> {
        let (domain, username) = parts(user);
        let row = sqlx::query(
            "SELECT iterations, salt, sha1_stored_key, sha1_server_key, sha256_stored_key, \
             sha256_server_key FROM accounts WHERE domain = $1 AND username = $2",
        )
        .bind(domain)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let iterations: i64 = row.try_get(0)?;
        Ok(Some(StoredCredentials {
            iterations: u32::try_from(iterations)
                .map_err(|_| StorageError::Invalid("bad iteration count in database".into()))?,
            salt: decode(row.try_get(1)?)?,
            sha1: ScramKeys {
                stored_key: decode(row.try_get(2)?)?,
                server_key: decode(row.try_get(3)?)?,
            },
            sha256: ScramKeys {
                stored_key: decode(row.try_get(4)?)?,
                server_key: decode(row.try_get(5)?)?,
            },
        }))
    }

    async fn list(&self, domain: &str) -> Result<Vec<String>, StorageError> {
        let rows = sqlx::query("SELECT username FROM accounts WHERE domain = $1 ORDER BY username")
            .bind(domain)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StorageError::from))
            .collect()
    }
}
