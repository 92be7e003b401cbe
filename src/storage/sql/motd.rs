//! SQL for `features::announce::MotdStore`.

use crate::features::announce::{Motd, MotdStore};
use crate::storage::{Storage, StorageError};
use sqlx::Row;

impl MotdStore for Storage {
    async fn motd(&self, domain: &str) -> Result<Option<Motd>, StorageError> {
        if let Some(known) = self.hints.motd().get(domain) {
            return Ok(known.as_deref().cloned());
        }
        let row = sqlx::query("SELECT subject, body FROM motd WHERE domain = $1")
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?;
        let motd = row
            .map(|r| {
                Ok::<_, StorageError>(Motd {
                    subject: r.try_get(0)?,
                    body: r.try_get(1)?,
                })
            })
            .transpose()?;
        self.hints
            .motd()
            .insert(domain.to_owned(), motd.clone().map(std::sync::Arc::new));
        Ok(motd)
    }

    async fn set_motd(&self, domain: &str, motd: &Motd) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO motd (domain, subject, body) VALUES ($1, $2, $3) \
             ON CONFLICT (domain) DO UPDATE SET subject = excluded.subject, body = excluded.body",
        )
        .bind(domain)
        .bind(motd.subject.clone())
        .bind(motd.body.as_str())
        .execute(&self.pool)
        .await?;
        self.hints
            .motd()
            .insert(domain.to_owned(), Some(std::sync::Arc::new(motd.clone())));
        Ok(())
    }

    async fn delete_motd(&self, domain: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM motd WHERE domain = $1")
            .bind(domain)
            .execute(&self.pool)
            .await?;
        self.hints.motd().insert(domain.to_owned(), None);
        Ok(done.rows_affected() > 0)
    }
}
