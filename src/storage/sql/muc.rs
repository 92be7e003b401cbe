//! SQL for `muc::MucStore`.

use super::owner;
use crate::muc::{Affiliation, MucStore, StoredAffiliation, StoredRoom};
use crate::storage::{Storage, StorageError, now_micros};
use jid::BareJid;
use sqlx::Row;

/// (service, name) of a room JID: the same split as an account's (domain, username).
fn room_key(room: &BareJid) -> (&str, &str) {
    owner(room)
}

impl MucStore for Storage {
    async fn rooms(&self, service: &str) -> Result<Vec<StoredRoom>, StorageError> {
        let rows = sqlx::query(
            "SELECT name, config, subject, subject_by FROM muc_rooms WHERE service = $1 ORDER BY name",
        )
        .bind(service)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.try_get(0)?;
            let Ok(jid) = BareJid::new(&format!("{name}@{service}")) else {
                tracing::warn!(service, name, "stored room with an invalid name skipped");
                continue;
            };
            let subject: Option<String> = r.try_get(2)?;
            let by: Option<String> = r.try_get(3)?;
            out.push(StoredRoom {
                jid,
                config: r.try_get(1)?,
                subject: subject.map(|s| (s, by.unwrap_or_default())),
            });
        }
        Ok(out)
    }

    async fn save_room(&self, room: &StoredRoom) -> Result<(), StorageError> {
        let (service, name) = room_key(&room.jid);
        let (subject, by) = match &room.subject {
            Some((s, b)) => (Some(s.as_str()), Some(b.as_str())),
            None => (None, None),
        };
        sqlx::query(
            "INSERT INTO muc_rooms (service, name, config, subject, subject_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (service, name) DO UPDATE SET config = excluded.config, \
             subject = excluded.subject, subject_by = excluded.subject_by, updated_at = excluded.updated_at",
        )
        .bind(service)
        .bind(name)
        .bind(&room.config)
        .bind(subject)
        .bind(by)
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_room(&self, room: &BareJid) -> Result<bool, StorageError> {
        let (service, name) = room_key(room);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM muc_affiliations WHERE service = $1 AND name = $2")
            .bind(service)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM muc_rooms WHERE service = $1 AND name = $2")
            .bind(service)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn affiliations(&self, room: &BareJid) -> Result<Vec<StoredAffiliation>, StorageError> {
        let (service, name) = room_key(room);
        let rows = sqlx::query(
            "SELECT jid, affiliation, reason FROM muc_affiliations WHERE service = $1 AND name = $2 ORDER BY jid",
        )
        .bind(service)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let jid: String = r.try_get(0)?;
            let aff: String = r.try_get(1)?;
            let (Ok(jid), Some(affiliation)) = (BareJid::new(&jid), Affiliation::parse(&aff))
            else {
                tracing::warn!(room = %room, jid, aff, "unreadable stored affiliation skipped");
                continue;
            };
            out.push(StoredAffiliation {
                jid,
                affiliation,
                reason: r.try_get(2)?,
            });
        }
        Ok(out)
    }

    async fn set_affiliation(
        &self,
        room: &BareJid,
        entry: &StoredAffiliation,
    ) -> Result<(), StorageError> {
        let (service, name) = room_key(room);
        if entry.affiliation == Affiliation::None {
            sqlx::query(
                "DELETE FROM muc_affiliations WHERE service = $1 AND name = $2 AND jid = $3",
            )
            .bind(service)
            .bind(name)
            .bind(entry.jid.as_str())
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO muc_affiliations (service, name, jid, affiliation, reason) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (service, name, jid) DO UPDATE SET affiliation = excluded.affiliation, reason = excluded.reason",
        )
        .bind(service)
        .bind(name)
        .bind(entry.jid.as_str())
        .bind(entry.affiliation.as_str())
        .bind(entry.reason.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
