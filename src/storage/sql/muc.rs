//! SQL for `muc::MucStore`.

use crate::muc::{Affiliation, MucStore, StoredAffiliation, StoredRoom};
use crate::storage::{Storage, StorageError, now_micros};
use jid::BareJid;
use sqlx::Row;

/// The (service, name) key of a room; a room JID always has a node.
fn room_key(room: &BareJid) -> Result<(&str, &str), StorageError> {
    let name = room
        .node()
        .ok_or_else(|| StorageError::Invalid(format!("{room} is not a room JID (no name)")))?;
    Ok((room.domain().as_str(), name.as_str()))
}

impl MucStore for Storage {
    async fn rooms(&self, service: &str) -> Result<Vec<StoredRoom>, StorageError> {
        let rows = sqlx::query(
            "SELECT name, config, subject, subject_by FROM muc_rooms WHERE service = $1 \
             ORDER BY name",
        )
        .bind(service)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.try_get(0)?;
            // One hand-edited row must not keep the whole service from starting.
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
        let (service, name) = room_key(&room.jid)?;
        let (subject, by) = match &room.subject {
            Some((s, by)) => (Some(s.as_str()), Some(by.as_str())),
            None => (None, None),
        };
        let now = now_micros();
        sqlx::query(
            "INSERT INTO muc_rooms (service, name, config, subject, subject_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (service, name) DO UPDATE SET config = excluded.config, \
             subject = excluded.subject, subject_by = excluded.subject_by, \
             updated_at = excluded.updated_at",
        )
        .bind(service)
        .bind(name)
        .bind(room.config.as_str())
        .bind(subject)
        .bind(by)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_room(&self, room: &BareJid) -> Result<bool, StorageError> {
        let (service, name) = room_key(room)?;
        // One transaction: a crash between the two deletes must not leave
        // affiliations that a later room of the same name would inherit.
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM muc_nicks WHERE service = $1 AND name = $2")
            .bind(service)
            .bind(name)
            .execute(&mut *tx)
            .await?;
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
        let (service, name) = room_key(room)?;
        let rows = sqlx::query(
            "SELECT jid, affiliation, reason FROM muc_affiliations \
             WHERE service = $1 AND name = $2 ORDER BY jid",
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

    async fn nicks(&self, room: &BareJid) -> Result<Vec<(BareJid, String)>, StorageError> {
        let (service, name) = room_key(room)?;
        let rows = sqlx::query(
            "SELECT jid, nick FROM muc_nicks WHERE service = $1 AND name = $2 ORDER BY jid",
        )
        .bind(service)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let jid: String = r.try_get(0)?;
            let nick: String = r.try_get(1)?;
            match BareJid::new(&jid) {
                Ok(j) => out.push((j, nick)),
                Err(_) => tracing::warn!(room = %room, jid, "unreadable registered nick skipped"),
            }
        }
        Ok(out)
    }

    async fn set_nick(
        &self,
        room: &BareJid,
        jid: &BareJid,
        nick: Option<&str>,
    ) -> Result<(), StorageError> {
        let (service, name) = room_key(room)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM muc_nicks WHERE service = $1 AND name = $2 AND jid = $3")
            .bind(service)
            .bind(name)
            .bind(jid.as_str())
            .execute(&mut *tx)
            .await?;
        if let Some(nick) = nick {
            sqlx::query("INSERT INTO muc_nicks (service, name, jid, nick) VALUES ($1, $2, $3, $4)")
                .bind(service)
                .bind(name)
                .bind(jid.as_str())
                .bind(nick)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_affiliation(
        &self,
        room: &BareJid,
        entry: &StoredAffiliation,
    ) -> Result<(), StorageError> {
        let (service, name) = room_key(room)?;
        let jid = entry.jid.as_str();
        if entry.affiliation == Affiliation::None {
            sqlx::query(
                "DELETE FROM muc_affiliations WHERE service = $1 AND name = $2 AND jid = $3",
            )
            .bind(service)
            .bind(name)
            .bind(jid)
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO muc_affiliations (service, name, jid, affiliation, reason) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (service, name, jid) DO UPDATE SET \
             affiliation = excluded.affiliation, reason = excluded.reason",
        )
        .bind(service)
        .bind(name)
        .bind(jid)
        .bind(entry.affiliation.as_str())
        .bind(entry.reason.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
