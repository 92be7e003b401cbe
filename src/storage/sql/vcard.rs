//! SQL for `features::vcard::VCardStore`.

use super::owner;
use crate::features::vcard::VCardStore;
use crate::storage::{Storage, StorageError, now_micros};
use jid::BareJid;
use sqlx::Row;

impl VCardStore for Storage {
    async fn get_vcard(&self, user: &BareJid) -> Result<Option<String>, StorageError> {
        let (domain, username) = owner(user);
        let row = sqlx::query("SELECT xml FROM vcards WHERE domain = $1 AND username = $2")
            .bind(domain)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn set_vcard(&self, user: &BareJid, xml: &str) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query(
            "INSERT INTO vcards (domain, username, xml, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (domain, username) DO UPDATE SET xml = excluded.xml, updated_at = excluded.updated_at",
        )
        .bind(domain)
        .bind(username)
        .bind(xml)
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_user(&self, user: &BareJid) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query("DELETE FROM vcards WHERE domain = $1 AND username = $2")
            .bind(domain)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
