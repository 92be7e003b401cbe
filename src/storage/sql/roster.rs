//! SQL for `features::roster::store::RosterStore`.

use super::owner;
use crate::features::roster::store::{RosterItem, RosterStore, Subscription};
use crate::storage::{Storage, StorageError};
use jid::BareJid;
use sqlx::Row;
use std::collections::HashMap;

const ITEM_COLUMNS: &str = "contact, name, subscription, ask, approved, version";

impl Storage {
    /// Items matching `filter` (a WHERE clause over $1 domain, $2 username and an optional $3), with their groups.
    async fn load_items(
        &self,
        user: &BareJid,
        filter: &'static str,
        since: Option<i64>,
        contact: Option<&str>,
    ) -> Result<Vec<RosterItem>, StorageError> {
        let (domain, username) = owner(user);
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM roster_items WHERE domain = $1 AND username = $2 {filter}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(domain)
            .bind(username);
        if let Some(v) = since {
            q = q.bind(v);
        }
        if let Some(c) = contact {
            q = q.bind(c.to_owned());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let contact: String = r.try_get(0)?;
            let Ok(contact) = BareJid::new(&contact) else {
                tracing::warn!(owner = %user, contact, "skipping a roster item with an invalid JID");
                continue;
            };
            items.push(RosterItem {
                contact,
                name: r.try_get(1)?,
                subscription: Subscription::parse(&r.try_get::<String, _>(2)?),
                ask: r.try_get::<i64, _>(3)? != 0,
                approved: r.try_get::<i64, _>(4)? != 0,
                groups: Vec::new(),
                version: r.try_get(5)?,
            });
        }
        if items.is_empty() {
            return Ok(items);
        }
        let rows = sqlx::query("SELECT contact, name FROM roster_groups WHERE domain = $1 AND username = $2 ORDER BY name")
            .bind(domain)
            .bind(username)
            .fetch_all(&self.pool)
            .await?;
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for r in &rows {
            groups.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        for item in &mut items {
            if let Some(g) = groups.remove(item.contact.as_str()) {
                item.groups = g;
            }
        }
        Ok(items)
    }

    async fn current_version(&self, user: &BareJid) -> Result<i64, StorageError> {
        let (domain, username) = owner(user);
        let row =
            sqlx::query("SELECT version FROM roster_versions WHERE domain = $1 AND username = $2")
                .bind(domain)
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => r.try_get(0)?,
            None => 0,
        })
    }
}

impl RosterStore for Storage {
    async fn roster(&self, user: &BareJid) -> Result<(Vec<RosterItem>, i64), StorageError> {
        let items = self
            .load_items(
                user,
                "AND subscription <> 'remove' ORDER BY contact",
                None,
                None,
            )
            .await?;
        Ok((items, self.current_version(user).await?))
    }

    async fn roster_items(&self, user: &BareJid) -> Result<Vec<RosterItem>, StorageError> {
        self.load_items(
            user,
            "AND subscription <> 'remove' ORDER BY contact",
            None,
            None,
        )
        .await
    }

    async fn roster_changes(
        &self,
        user: &BareJid,
        since: i64,
    ) -> Result<(Vec<RosterItem>, i64), StorageError> {
        let items = self
            .load_items(user, "AND version > $3 ORDER BY version", Some(since), None)
            .await?;
        Ok((items, self.current_version(user).await?))
    }

    async fn roster_item(
        &self,
        user: &BareJid,
        contact: &BareJid,
    ) -> Result<Option<RosterItem>, StorageError> {
        let items = self
            .load_items(
                user,
                "AND contact = $3 AND subscription <> 'remove'",
                None,
                Some(contact.as_str()),
            )
            .await?;
        Ok(items.into_iter().next())
    }

    async fn put_roster_item(
        &self,
        user: &BareJid,
        item: &RosterItem,
    ) -> Result<i64, StorageError> {
        let (domain, username) = owner(user);
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO roster_versions (domain, username, version) VALUES ($1, $2, 1) \
             ON CONFLICT (domain, username) DO UPDATE SET version = roster_versions.version + 1 \
             RETURNING version",
        )
        .bind(domain)
        .bind(username)
        .fetch_one(&mut *tx)
        .await?;
        let version: i64 = row.try_get(0)?;
        sqlx::query(
            "INSERT INTO roster_items (domain, username, contact, name, subscription, ask, approved, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (domain, username, contact) DO UPDATE SET name = excluded.name, \
             subscription = excluded.subscription, ask = excluded.ask, approved = excluded.approved, \
             version = excluded.version",
        )
        .bind(domain)
        .bind(username)
        .bind(item.contact.as_str())
        .bind(item.name.clone())
        .bind(item.subscription.as_str())
        .bind(i64::from(item.ask))
        .bind(i64::from(item.approved))
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM roster_groups WHERE domain = $1 AND username = $2 AND contact = $3",
        )
        .bind(domain)
        .bind(username)
        .bind(item.contact.as_str())
        .execute(&mut *tx)
        .await?;
        if item.subscription != Subscription::Remove {
            for g in &item.groups {
                sqlx::query("INSERT INTO roster_groups (domain, username, contact, name) VALUES ($1, $2, $3, $4)")
                    .bind(domain)
                    .bind(username)
                    .bind(item.contact.as_str())
                    .bind(g.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(version)
    }

    async fn roster_size(&self, user: &BareJid) -> Result<i64, StorageError> {
        let (domain, username) = owner(user);
        let row = sqlx::query(
            "SELECT COUNT(*) FROM roster_items WHERE domain = $1 AND username = $2 AND subscription <> 'remove'",
        )
        .bind(domain)
        .bind(username)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    async fn store_request(
        &self,
        user: &BareJid,
        contact: &BareJid,
        stanza: &str,
    ) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        let _writing = self.hints.requests.writing(user);
        sqlx::query(
            "INSERT INTO subscription_requests (domain, username, contact, stanza) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (domain, username, contact) DO UPDATE SET stanza = excluded.stanza",
        )
        .bind(domain)
        .bind(username)
        .bind(contact.as_str())
        .bind(stanza)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn requests(&self, user: &BareJid) -> Result<Vec<(BareJid, String)>, StorageError> {
        let Some(ticket) = self.hints.requests.check(user) else {
            return Ok(Vec::new());
        };
        let (domain, username) = owner(user);
        let rows = sqlx::query(
            "SELECT contact, stanza FROM subscription_requests WHERE domain = $1 AND username = $2 ORDER BY contact",
        )
        .bind(domain)
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            self.hints.requests.found_none(user, ticket);
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Ok(c) = BareJid::new(&r.try_get::<String, _>(0)?) {
                out.push((c, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    async fn take_request(&self, user: &BareJid, contact: &BareJid) -> Result<bool, StorageError> {
        let (domain, username) = owner(user);
        let done = sqlx::query("DELETE FROM subscription_requests WHERE domain = $1 AND username = $2 AND contact = $3")
            .bind(domain)
            .bind(username)
            .bind(contact.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_roster_user(&self, user: &BareJid) -> Result<(), StorageError> {
        let (domain, username) = owner(user);
        for table in [
            "roster_items",
            "roster_groups",
            "roster_versions",
            "subscription_requests",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE domain = $1 AND username = $2"
            )))
            .bind(domain)
            .bind(username)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}
