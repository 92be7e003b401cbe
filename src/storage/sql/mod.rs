//! SQL implementations of the feature stores, shared by SQLite and PostgreSQL.

pub mod accounts;
pub mod archive;
pub mod blocking;
pub mod last;
pub mod motd;
pub mod muc;
pub mod offline;
pub mod private;
pub mod roster;
pub mod vcard;

use jid::BareJid;

/// The (domain, username) key every per-account table uses.
pub(crate) fn owner(user: &BareJid) -> (&str, &str) {
    (
        user.domain().as_str(),
        user.node().map(|n| n.as_str()).unwrap_or(""),
    )
}

impl crate::storage::Storage {
    /// Fill the in-memory hints from the tables they summarise.
    pub(crate) async fn load_hints(&self) -> Result<(), crate::storage::StorageError> {
        use sqlx::Row;
        for (table, set) in [
            ("offline_messages", &self.hints.offline),
            ("subscription_requests", &self.hints.requests),
        ] {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT domain, username FROM {table}"
            )))
            .fetch_all(&self.pool)
            .await?;
            let mut users = Vec::with_capacity(rows.len());
            for r in &rows {
                let (domain, username): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                let jid = if username.is_empty() {
                    BareJid::new(&domain)
                } else {
                    BareJid::new(&format!("{username}@{domain}"))
                };
                match jid {
                    Ok(j) => users.push(j),
                    Err(_) => tracing::warn!(
                        table,
                        domain,
                        username,
                        "skipping a row with an invalid owner"
                    ),
                }
            }
            set.fill(users);
        }
        Ok(())
    }
}
