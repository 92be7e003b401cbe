//! Storage: one SQL database (SQLite by default, PostgreSQL for scale) behind
//! the store traits that features declare next to themselves.
//!
//! The SQL is written once for both databases through `sqlx::AnyPool`
//! (`$1` placeholders, integer timestamps, text ids); the dialects differ only
//! in `migrations/sqlite` and `migrations/postgres`. See
//! docs/decisions/0002-storage.md.

pub mod hints;
pub mod sql;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use std::path::Path;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Errors from the database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
}

/// Which SQL database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle shared by every store.
#[derive(Debug, Clone)]
pub struct Storage {
    pub(crate) pool: AnyPool,
    backend: Backend,
    pub(crate) hints: std::sync::Arc<hints::Hints>,
}

impl Storage {
    /// Open the database at `url`, creating a SQLite file if needed, and apply migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Storage, StorageError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                return Err(StorageError::Invalid(
                    "storage.url: an in-memory SQLite database would lose everything; give a file"
                        .into(),
                ));
            }
            if let Some(dir) = Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError::Invalid(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
        } else {
            (Backend::Postgres, url.to_owned())
        };
        let mut options = AnyPoolOptions::new().max_connections(max_connections.max(1));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers and the one writer proceed together, and lets the
                    // CLI work on the database while the server runs. Each pooled
                    // connection has its own page cache (2 MiB by default): 512 KiB
                    // each keeps the pool's cache within 4 MiB however many accounts
                    // log in, while the kernel's page cache still holds the file.
                    sqlx::raw_sql(
                        "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA synchronous=NORMAL; \
                         PRAGMA cache_size=-512;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let storage = Storage {
            pool,
            backend,
            hints: Default::default(),
        };
        storage.load_hints().await?;
        Ok(storage)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Microseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
