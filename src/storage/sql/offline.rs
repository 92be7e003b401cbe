//! SQL for `features::offline::OfflineStore`.

use super::owner;
use crate::features::offline::{OfflineMessage, OfflineStore};
use crate::storage::{Storage, StorageError, now_micros};
use jid::BareJid;
use sqlx::Row;

impl OfflineStore for Storage {
    async fn store_offline(&self, user: &BareJid, stanza: &str) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        let _writing = self.hints.offline.writing(user);
        sqlx::query(
            "INSERT INTO offline_messages (domain, username, stanza, stamp) VALUES ($1, $2, $3, $4)",
        )
        .bind(domain)
        .bind(username)
        .bind(stanza)
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn count_offline(&self, user: &BareJid) -> Result<i64, StorageError> {
        let (domain, username) = owner(user);
        let row = sqlx::query(
            "SELECT COUNT(*) FROM offline_messages WHERE domain = $1 AND username = $2",
        )
        .bind(domain)
        .bind(username)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn load_offline(
        &self,
        user: &BareJid,
        limit: i64,
    ) -> Result<Vec<OfflineMessage>, StorageError> {
        let Some(ticket) = self.hints.offline.check(user) else {
            return Ok(Vec::new());
        };
        let (domain, username) = owner(user);
        let rows = sqlx::query(
            "SELECT id, stanza, stamp FROM offline_messages WHERE domain = $1 AND username = $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(domain)
        .bind(username)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            self.hints.offline.found_none(user, ticket);
        }
        rows.iter()
            .map(|r| {
                Ok(OfflineMessage {
                    id: r.try_get(0)?,
                    stanza: r.try_get(1)?,
                    stamp: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn remove_offline(&self, user: &BareJid, last_id: i64) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query(
            "DELETE FROM offline_messages WHERE domain = $1 AND username = $2 AND id <= $3",
        )
        .bind(domain)
        .bind(username)
        .bind(last_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
