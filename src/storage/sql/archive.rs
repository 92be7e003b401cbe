//! SQL for `features::mam::store::ArchiveStore`.
//!
//! Pages are read with `id` bounds on the (owner, id) and (owner, with_jid,
//! id) indexes, never with OFFSET: the cost of a page does not grow with the
//! archive.

use super::owner;
use crate::features::mam::store::{ArchiveRow, ArchiveStore, Archived, Filter, StoredPrefs};
use crate::storage::{Storage, StorageError};
use jid::BareJid;
use sqlx::Row;

/// Rows per INSERT: 8 parameters each stay well under SQLite's limit.
const ROWS_PER_INSERT: usize = 100;

impl ArchiveStore for Storage {
    async fn archive(&self, rows: &[ArchiveRow]) -> Result<(), StorageError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut sql = String::from(
                "INSERT INTO archive (owner, id, with_jid, with_resource, outgoing, origin_id, \
                 body, stanza) VALUES ",
            );
            for i in 0..chunk.len() {
                let p = i * 8;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8
                ));
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.owner.as_str())
                    .bind(r.id)
                    .bind(r.with_jid.as_str())
                    .bind(r.with_resource.as_str())
                    .bind(i16::from(r.outgoing))
                    .bind(r.origin_id.as_deref())
                    .bind(r.body.as_str())
                    .bind(r.stanza.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn archived(
        &self,
        owner: &BareJid,
        filter: &Filter,
        newest_first: bool,
        limit: i64,
    ) -> Result<Vec<Archived>, StorageError> {
        // Only placeholders are formatted in; every value is bound.
        let mut sql = String::from("SELECT id, stanza FROM archive WHERE owner = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.with_jid.is_some() {
            sql.push_str(&format!(" AND with_jid = ${}", next()));
        }
        if filter.with_resource.is_some() {
            sql.push_str(&format!(" AND with_resource = ${}", next()));
        }
        for (bound, op) in [
            (filter.from_id, ">="),
            (filter.to_id, "<="),
            (filter.after, ">"),
            (filter.before, "<"),
        ] {
            if bound.is_some() {
                sql.push_str(&format!(" AND id {op} ${}", next()));
            }
        }
        if let Some(ids) = &filter.ids {
            let list: Vec<String> = ids.iter().map(|_| format!("${}", next())).collect();
            if list.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(" AND id IN ({})", list.join(", ")));
        }
        sql.push_str(if newest_first {
            " ORDER BY id DESC"
        } else {
            " ORDER BY id ASC"
        });
        sql.push_str(&format!(" LIMIT ${}", next()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(owner.as_str());
        if let Some(w) = &filter.with_jid {
            q = q.bind(w.as_str());
        }
        if let Some(r) = &filter.with_resource {
            q = q.bind(r.as_str());
        }
        for bound in [filter.from_id, filter.to_id, filter.after, filter.before]
            .into_iter()
            .flatten()
        {
            q = q.bind(bound);
        }
        for id in filter.ids.iter().flatten() {
            q = q.bind(*id);
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Archived {
                    id: r.try_get(0)?,
                    stanza: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn has_archived(&self, owner: &BareJid, id: i64) -> Result<bool, StorageError> {
        let row = sqlx::query("SELECT 1 FROM archive WHERE owner = $1 AND id = $2")
            .bind(owner.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn archive_bounds(&self, owner: &BareJid) -> Result<Option<(i64, i64)>, StorageError> {
        // Two index lookups; MIN and MAX in one statement may scan on SQLite.
        let edge = |order: &'static str| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM archive WHERE owner = $1 ORDER BY id {order} LIMIT 1"
            )))
            .bind(owner.as_str())
            .fetch_optional(&self.pool)
        };
        let (Some(first), Some(last)) = (edge("ASC").await?, edge("DESC").await?) else {
            return Ok(None);
        };
        Ok(Some((first.try_get(0)?, last.try_get(0)?)))
    }

    async fn last_archive_id(&self) -> Result<Option<i64>, StorageError> {
        let row = sqlx::query("SELECT MAX(id) FROM archive")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    async fn archive_prefs(&self, user: &BareJid) -> Result<Option<StoredPrefs>, StorageError> {
        let (domain, username) = owner(user);
        let row = sqlx::query(
            "SELECT default_mode, always_jids, never_jids FROM archive_prefs \
             WHERE domain = $1 AND username = $2",
        )
        .bind(domain)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| prefs(&r, 0)).transpose()
    }

    async fn all_archive_prefs(&self) -> Result<Vec<(BareJid, StoredPrefs)>, StorageError> {
        let rows = sqlx::query(
            "SELECT default_mode, always_jids, never_jids, domain, username FROM archive_prefs",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (domain, username): (String, String) = (r.try_get(3)?, r.try_get(4)?);
            match BareJid::new(&format!("{username}@{domain}")) {
                Ok(user) => out.push((user, prefs(r, 0)?)),
                Err(e) => {
                    tracing::warn!(%domain, %username, error = %e, "archive preferences of an invalid JID ignored")
                }
            }
        }
        Ok(out)
    }

    async fn set_archive_prefs(
        &self,
        user: &BareJid,
        prefs: &StoredPrefs,
    ) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        sqlx::query(
            "INSERT INTO archive_prefs (domain, username, default_mode, always_jids, never_jids) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (domain, username) DO UPDATE SET \
             default_mode = excluded.default_mode, always_jids = excluded.always_jids, \
             never_jids = excluded.never_jids",
        )
        .bind(domain)
        .bind(username)
        .bind(prefs.default_mode.as_str())
        .bind(prefs.always.join("\n"))
        .bind(prefs.never.join("\n"))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Preferences from the row's columns `first..first + 3`.
fn prefs(row: &sqlx::any::AnyRow, first: usize) -> Result<StoredPrefs, StorageError> {
    let list = |s: String| -> Vec<String> {
        s.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok(StoredPrefs {
        default_mode: row.try_get(first)?,
        always: list(row.try_get(first + 1)?),
        never: list(row.try_get(first + 2)?),
    })
}
