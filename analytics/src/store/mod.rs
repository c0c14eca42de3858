//! The alert store: embedded SQLite, the single source of truth for the API
//! and the dashboard.
//!
//! One row per alert case (see [`cases`]), every transition and comment in an
//! append-only audit table, time-bounded silences ([`silences`]) and the
//! precision of each rule computed from the dispositions ([`precision`]).
//! The schema is created and upgraded by the numbered SQL files in
//! `analytics/migrations/`, tracked with SQLite's `user_version`, so a file
//! written by an older build opens in a newer one.
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
pub mod imported;
pub mod listing;
pub mod photos;
pub mod precision;
pub mod report;
pub mod silences;
pub mod stations;
pub mod tips;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

pub use cases::{AlertCase, AuditEntry, Recorded, RecordedKind};
pub use listing::{AlertFilter, AlertSummary};
pub use photos::{Photo, PhotoInfo};
pub use precision::RulePrecision;
pub use report::{ReportPeriod, ReportRow};
pub use silences::{NewSilence, Silence};

/// The schema, one file per version, applied in order.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_alerts",
        include_str!("../../migrations/0001_alerts.sql"),
    ),
    (
        "0002_inhibition",
        include_str!("../../migrations/0002_inhibition.sql"),
    ),
    (
        "0003_list_indexes",
        include_str!("../../migrations/0003_list_indexes.sql"),
    ),
    (
        "0004_imported_readings",
        include_str!("../../migrations/0004_imported_readings.sql"),
    ),
    (
        "0005_photos",
        include_str!("../../migrations/0005_photos.sql"),
    ),
    ("0006_tips", include_str!("../../migrations/0006_tips.sql")),
];

/// The `[store]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file. Without it the store lives in memory: alerts are
    /// kept, handled and served while the process runs and lost when it
    /// stops (what the demo uses; a deployment sets a path).
    pub path: Option<PathBuf>,
}

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

/// A handle on the store; cheap to clone, safe to share between tasks.
/// Calls are short and synchronous (SQLite on local disk).
#[derive(Debug, Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    origin: Arc<str>,
    lists: Arc<Mutex<listing::ListCache>>,
}

impl Store {
    /// Opens the store the config names, or one in memory.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        match &config.path {
            Some(p) => Self::open_file(p),
            None => Self::open_in_memory(),
        }
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
        let store = Self {
            conn: Arc::new(Mutex::new(conn)),
            origin: origin.into(),
            lists: Arc::default(),
        };
        {
            let mut c = store.lock();
            let pragmas = if file {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
            } else {
                "PRAGMA foreign_keys = ON;"
            };
            c.execute_batch(pragmas).map_err(|e| store.err(e))?;
            migrate(&mut c).map_err(|e| store.err(e))?;
        }
        Ok(store)
    }

    /// The schema version the store is at.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let c = self.lock();
        c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
            .map_err(|e| self.err(e))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every
        // change is one transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            origin: self.origin.to_string(),
            source,
        }
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

/// Applies the migrations the file has not seen yet, each in a transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let have: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (version, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(have.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (version + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_at_the_latest_schema() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn an_empty_scope_matches_nothing() {
        assert_eq!(Scope::Cells(vec![]).sql().0, "1 = 0");
        assert!(!Scope::Sites(vec![]).allows("c", "s"));
        assert!(Scope::Cells(vec!["c".into()]).allows("c", "x"));
    }
}
