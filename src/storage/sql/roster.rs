//! SQL for `features::roster::store::RosterStore`.

use super::owner;
use crate::features::roster::store::{RosterItem, RosterStore, Subscription};
use crate::storage::{Storage, StorageError};
use jid::BareJid;
use sqlx::Row;

impl Storage {
    /// Items matching `filter` (conditions on `i`, the item, over $1
    /// domain, $2 username and an optional $3), ordered by `order`, with
    /// their groups and the roster's current version: one statement, so one
    /// round trip and one consistent snapshot (a version read apart from the
    /// items could be newer than them, and a client caching it would miss a
    /// change).
    async fn load_items(
        &self,
        user: &BareJid,
        filter: &'static str,
        order: &'static str,
        param: Option<Param<'_>>,
    ) -> Result<(Vec<RosterItem>, i64), StorageError> {
        let (domain, username) = owner(user);
        let sql = format!(
            "SELECT v.version, i.contact, i.name, i.subscription, i.ask, i.approved, i.version, g.name \
             FROM (SELECT CAST($1 AS TEXT) AS domain, CAST($2 AS TEXT) AS username) o \
             LEFT JOIN roster_versions v ON v.domain = o.domain AND v.username = o.username \
             LEFT JOIN roster_items i ON i.domain = o.domain AND i.username = o.username {filter} \
             LEFT JOIN roster_groups g ON g.domain = i.domain AND g.username = i.username AND g.contact = i.contact \
             ORDER BY {order}, g.name"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(domain)
            .bind(username);
        match param {
            Some(Param::Since(v)) => q = q.bind(v),
            Some(Param::Contact(c)) => q = q.bind(c.to_owned()),
            None => {}
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut version = 0;
        let mut items: Vec<RosterItem> = Vec::with_capacity(rows.len());
        for r in &rows {
            if let Some(v) = r.try_get::<Option<i64>, _>(0)? {
                version = v;
            }
            // No item matched: the one row of the anchor, with NULLs.
            let Some(contact) = r.try_get::<Option<String>, _>(1)? else {
                continue;
            };
            let group: Option<String> = r.try_get(7)?;
            // An item's groups come on consecutive rows (ORDER BY).
            if let Some(last) = items.last_mut()
                && last.contact.as_str() == contact
            {
                last.groups.extend(group);
                continue;
            }
            if let Some(mut item) = item_from(r, 1, user, contact)? {
                item.groups.extend(group);
                items.push(item);
            }
        }
        Ok((items, version))
    }
}

/// The item whose columns (contact, name, subscription, ask, approved,
/// version) start at `first` in `r`; None (logged) for a contact that is
/// not a valid JID.
fn item_from(
    r: &sqlx::any::AnyRow,
    first: usize,
    owner: &BareJid,
    contact: String,
) -> Result<Option<RosterItem>, StorageError> {
    let Ok(jid) = BareJid::new(&contact) else {
        tracing::warn!(owner = %owner, contact, "skipping a roster item with an invalid JID");
        return Ok(None);
    };
    Ok(Some(RosterItem {
        contact: jid,
        name: r.try_get(first + 1)?,
        subscription: Subscription::parse(&r.try_get::<String, _>(first + 2)?),
        ask: r.try_get::<i64, _>(first + 3)? != 0,
        approved: r.try_get::<i64, _>(first + 4)? != 0,
        groups: Vec::new(),
        version: r.try_get(first + 5)?,
    }))
}

/// The third parameter of a roster query.
enum Param<'a> {
    Since(i64),
    Contact(&'a str),
}

impl RosterStore for Storage {
    async fn roster(&self, user: &BareJid) -> Result<(Vec<RosterItem>, i64), StorageError> {
        self.load_items(user, "AND i.subscription <> 'remove'", "i.contact", None)
            .await
    }

    async fn roster_items(&self, user: &BareJid) -> Result<Vec<RosterItem>, StorageError> {
        // One table: presence needs the subscriptions, not the groups or
        // the version, and at every login and logout the lighter read keeps
        // the database's page cache small.
        let (domain, username) = owner(user);
        let rows = sqlx::query(
            "SELECT contact, name, subscription, ask, approved, version FROM roster_items \
             WHERE domain = $1 AND username = $2 AND subscription <> 'remove'",
        )
        .bind(domain)
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.extend(item_from(r, 0, user, r.try_get(0)?)?);
        }
        Ok(items)
    }

    async fn roster_changes(
        &self,
        user: &BareJid,
        since: i64,
    ) -> Result<(Vec<RosterItem>, i64), StorageError> {
        self.load_items(
            user,
            "AND i.version > $3",
            "i.version, i.contact",
            Some(Param::Since(since)),
        )
        .await
    }

    async fn roster_item(
        &self,
        user: &BareJid,
        contact: &BareJid,
    ) -> Result<Option<RosterItem>, StorageError> {
        let (items, _) = self
            .load_items(
                user,
                "AND i.contact = $3 AND i.subscription <> 'remove'",
                "i.contact",
                Some(Param::Contact(contact.as_str())),
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
