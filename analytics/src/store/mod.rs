//! The alert store: embedded SQLite, or a PostgreSQL server shared by
//! several analytics workers and API instances (`[store] url`, see
//! [`postgres`]); the single source of truth for the API and the dashboard.
//!
//! One row per alert case (see [`cases`]), every transition and comment in an
//! append-only audit table, time-bounded silences ([`silences`]) and the
//! precision of each rule computed from the dispositions ([`precision`]).
//! The schema is created and upgraded by the numbered SQL files in
//! `analytics/migrations/` (SQLite, tracked with its `user_version`) and
//! `analytics/migrations/postgres/` (the same tables and columns in
//! PostgreSQL's types, tracked in a `schema_version` table), so a database
//! written by an older build opens in a newer one ([`migrations`]).
//!
//! Every read and change takes a [`Scope`]: the set of cells or sites the
//! caller may see. The scope is part of the SQL `WHERE`, so an id outside it
//! is indistinguishable from an id that does not exist.
//!
//! Nothing here reads the clock: callers pass `now` (event time for alerts
//! from the pipeline, the API's injected clock for people's actions).
//!
//! ```
//! use gridwatch_analytics::store::{Scope, Store};
//! let store = Store::open_in_memory()?;
//! assert!(store.list(&Scope::All, &Default::default())?.is_empty());
//! # Ok::<(), gridwatch_analytics::store::StoreError>(())
//! ```

mod case_actions;
pub mod cases;
mod config;
pub mod episodes;
pub mod imported;
pub mod listing;
pub mod migrations;
pub mod photos;
pub mod postgres;
pub mod precision;
pub mod renovations;
pub mod report;
pub mod silences;
pub(crate) mod sql;
pub mod stations;
pub mod tips;

use postgres::PgConn;
use rusqlite::Connection;
use sql::{Db, DbError, Lite};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

pub use cases::{AlertCase, AuditEntry, Recorded, RecordedKind};
pub use config::StoreConfig;
pub use episodes::Episode;
pub use listing::{AlertFilter, AlertSummary};
pub use photos::{Photo, PhotoInfo};
pub use precision::RulePrecision;
pub use report::{ReportPeriod, ReportRow};
pub use silences::{NewSilence, Silence};
pub use sql::Backend;

/// Why the store could not do something.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite failed (disk full, corrupt file, locked beyond the timeout).
    #[error("alert store {origin}: {source}")]
    Sqlite {
        /// The file, or `memory`.
        origin: String,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL failed (server unreachable, refused the login, a
    /// constraint): the next call tries again, on a new connection if the
    /// old one was lost.
    #[error("alert store {origin}: {}", postgres::reason(source))]
    Postgres {
        /// The server and database (`postgres://host:port/db`, no password).
        origin: String,
        /// The server's or the client's reason.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The store refused a value or found one of an unexpected type.
    #[error("alert store {origin}: {message}")]
    Value {
        /// The file, server or `memory`.
        origin: String,
        /// What and where.
        message: String,
    },
    /// A change the data does not allow (a renovation step out of order,
    /// a hazard with no renovation); the message says which.
    #[error("{0}")]
    Refused(String),
    /// The `[store]` section cannot be used as it is.
    #[error("[store] {0}")]
    Config(String),
    /// No alert with that id in the caller's scope.
    #[error("no alert {0}")]
    NotFound(i64),
    /// No silence with that id in the caller's scope.
    #[error("no silence {0}")]
    SilenceNotFound(i64),
    /// No photo with that number on the case.
    #[error("no photo {0}")]
    PhotoNotFound(i64),
    /// The action is not allowed in the alert's state.
    #[error(transparent)]
    Transition(#[from] crate::lifecycle::TransitionError),
    /// A stored value could not be read back (written by a newer build?).
    #[error("alert store {origin}: row {id} has an unreadable {field}: {value:?}")]
    Corrupt {
        /// The file, or `memory`.
        origin: String,
        /// The row.
        id: i64,
        /// The column.
        field: &'static str,
        /// What was there.
        value: String,
    },
}

/// What a caller may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything (admin, the service itself).
    All,
    /// Alerts of these grid cells (grid staff).
    Cells(Vec<String>),
    /// Alerts of these sites (property managers).
    Sites(Vec<String>),
}

impl Scope {
    /// The SQL condition and its parameters.
    fn sql(&self) -> (String, Vec<String>) {
        let (column, values) = match self {
            Scope::All => return ("1 = 1".into(), Vec::new()),
            Scope::Cells(v) => ("cell", v),
            Scope::Sites(v) => ("site", v),
        };
        if values.is_empty() {
            return ("1 = 0".into(), Vec::new());
        }
        let marks = vec!["?"; values.len()].join(", ");
        (format!("{column} IN ({marks})"), values.clone())
    }

    /// Whether an alert of `cell` at `site` is in scope.
    pub fn allows(&self, cell: &str, site: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Cells(v) => v.iter().any(|c| c == cell),
            Scope::Sites(v) => v.iter().any(|s| s == site),
        }
    }
}

/// The database behind a [`Store`].
#[derive(Debug)]
enum Engine {
    Sqlite(Mutex<Connection>),
    Postgres(Box<Mutex<PgConn>>),
}

/// A handle on the store; cheap to clone, safe to share between tasks.
/// Calls are short and synchronous (SQLite on local disk, or one or a few
/// round trips to PostgreSQL); one handle runs one call at a time.
#[derive(Debug, Clone)]
pub struct Store {
    engine: Arc<Engine>,
    origin: Arc<str>,
    lists: Arc<Mutex<listing::ListCache>>,
}

impl Store {
    /// Opens the store the config names: the PostgreSQL database of `url`,
    /// the SQLite file of `path`, or one in memory.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        config.validate().map_err(StoreError::Config)?;
        match (&config.url, &config.path) {
            (Some(_), _) => Self::open_postgres_config(config),
            (None, Some(p)) => Self::open_file(p),
            (None, None) => Self::open_in_memory(),
        }
    }

    /// Opens the PostgreSQL database at `url` (password in it, if any) and
    /// brings its schema up to date. Several processes may open one
    /// database: the schema is upgraded by one of them at a time.
    pub fn open_postgres(url: &str) -> Result<Self, StoreError> {
        Self::open_postgres_config(&StoreConfig {
            url: Some(url.to_owned()),
            ..StoreConfig::default()
        })
    }

    fn open_postgres_config(config: &StoreConfig) -> Result<Self, StoreError> {
        let (pg, origin) = config.postgres().map_err(StoreError::Config)?;
        let conn = PgConn::connect(pg).map_err(|e| db_err(&origin, e))?;
        let store = Self {
            engine: Arc::new(Engine::Postgres(Box::new(Mutex::new(conn)))),
            origin: origin.into(),
            lists: Arc::default(),
        };
        store.write(|db| migrations::migrate(db).map_err(|e| store.err(e)))?;
        Ok(store)
    }

    /// Opens (creating if needed) the SQLite file at `path` and brings its
    /// schema up to date.
    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let origin = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite {
            origin: origin.clone(),
            source,
        })?;
        Self::prepare(conn, origin, true)
    }

    /// A store in memory, gone when the last handle drops.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            origin: "memory".into(),
            source,
        })?;
        Self::prepare(conn, "memory".into(), false)
    }

    fn prepare(conn: Connection, origin: String, file: bool) -> Result<Self, StoreError> {
        let pragmas = if file {
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
        } else {
            "PRAGMA foreign_keys = ON;"
        };
        conn.execute_batch(pragmas)
            .map_err(|e| db_err(&origin, e.into()))?;
        let store = Self {
            engine: Arc::new(Engine::Sqlite(Mutex::new(conn))),
            origin: origin.into(),
            lists: Arc::default(),
        };
        store.write(|db| migrations::migrate(db).map_err(|e| store.err(e)))?;
        Ok(store)
    }

    /// Which database this store is in.
    pub fn backend(&self) -> Backend {
        match &*self.engine {
            Engine::Sqlite(_) => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// The schema version the store is at (the number of migrations
    /// applied).
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        self.read(|db| migrations::version(db).map_err(|e| self.err(e)))
    }

    /// Runs `f` on the connection, outside a transaction (one statement,
    /// or reads that need not agree with each other).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_db(f)?
    }

    /// Runs `f` on the connection; `Err` only when there is none (the
    /// PostgreSQL server cannot be reached).
    fn with_db<R>(&self, f: impl FnOnce(&mut dyn Db) -> R) -> Result<R, StoreError> {
        match &*self.engine {
            Engine::Sqlite(c) => Ok(f(&mut Lite(&lock(c)))),
            Engine::Postgres(c) => lock(c).with(f).map_err(|e| self.err(e)),
        }
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled
    /// back when it returns `Err`. SQLite's is `IMMEDIATE` (it takes the
    /// write lock first), so two processes on one file never both read
    /// and then fail to upgrade. On PostgreSQL a transaction the server
    /// aborted to break a deadlock with another instance's (a sweep and an
    /// action taking two cases' rows in opposite order) is run again, at
    /// most three times in all.
    fn write<T>(
        &self,
        mut f: impl FnMut(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &*self.engine {
            Engine::Sqlite(c) => {
                let mut conn = lock(c);
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| self.err(e.into()))?;
                let out = f(&mut Lite(&tx))?;
                tx.commit().map_err(|e| self.err(e.into()))?;
                Ok(out)
            }
            Engine::Postgres(c) => {
                let mut conn = lock(c);
                let mut attempt = 1;
                loop {
                    match conn.transaction(&mut f, |e| self.err(e)) {
                        Err(StoreError::Postgres { source, .. })
                            if attempt < 3 && postgres::retry(&source) =>
                        {
                            attempt += 1;
                        }
                        other => return other,
                    }
                }
            }
        }
    }

    /// SQLite's count of changes on this handle's connection, which lists
    /// are cached against; `None` on PostgreSQL, where other processes
    /// change the data unseen.
    fn changes(&self) -> Option<u64> {
        match &*self.engine {
            Engine::Sqlite(c) => Some(lock(c).total_changes()),
            Engine::Postgres(_) => None,
        }
    }

    fn err(&self, source: DbError) -> StoreError {
        db_err(&self.origin, source)
    }

    fn corrupt(&self, id: i64, field: &'static str, value: &str) -> StoreError {
        StoreError::Corrupt {
            origin: self.origin.to_string(),
            id,
            field,
            value: value.to_owned(),
        }
    }
}

fn db_err(origin: &str, source: DbError) -> StoreError {
    let origin = origin.to_owned();
    match source {
        DbError::Sqlite(source) => StoreError::Sqlite { origin, source },
        DbError::Postgres(source) => StoreError::Postgres { origin, source },
        DbError::Value(message) => StoreError::Value { origin, message },
    }
}

/// A panic while holding the lock leaves the database consistent (every
/// change is one transaction), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_at_the_latest_schema() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::SQLITE.len());
    }

    #[test]
    fn an_empty_scope_matches_nothing() {
        assert_eq!(Scope::Cells(vec![]).sql().0, "1 = 0");
        assert!(!Scope::Sites(vec![]).allows("c", "s"));
        assert!(Scope::Cells(vec!["c".into()]).allows("c", "x"));
    }
}
