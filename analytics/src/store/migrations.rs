//! The schema, one file per version, in two sets: SQLite's
//! (`analytics/migrations/*.sql`, version in `PRAGMA user_version`, as
//! files written by older builds have it) and PostgreSQL's
//! (`analytics/migrations/postgres/*.sql`, version in a `schema_version`
//! table with one row per migration applied). Both sets define the same
//! tables and columns; `analytics/tests/store_schema.rs` checks it.
//!
//! A migration that PostgreSQL needs differently (types, an index too wide
//! for its B-tree) keeps its number and name in both sets.

use super::sql::{vals, Backend, Db, DbError};

/// SQLite's migrations, in order.
pub const SQLITE: &[(&str, &str)] = &[
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
    (
        "0006_episodes",
        include_str!("../../migrations/0006_episodes.sql"),
    ),
    ("0007_tips", include_str!("../../migrations/0007_tips.sql")),
    (
        "0008_renovations",
        include_str!("../../migrations/0008_renovations.sql"),
    ),
];

/// PostgreSQL's migrations, in order, named as SQLite's.
pub const POSTGRES: &[(&str, &str)] = &[
    (
        "0001_alerts",
        include_str!("../../migrations/postgres/0001_alerts.sql"),
    ),
    (
        "0002_inhibition",
        include_str!("../../migrations/postgres/0002_inhibition.sql"),
    ),
    (
        "0003_list_indexes",
        include_str!("../../migrations/postgres/0003_list_indexes.sql"),
    ),
    (
        "0004_imported_readings",
        include_str!("../../migrations/postgres/0004_imported_readings.sql"),
    ),
    (
        "0005_photos",
        include_str!("../../migrations/postgres/0005_photos.sql"),
    ),
    (
        "0006_episodes",
        include_str!("../../migrations/postgres/0006_episodes.sql"),
    ),
    (
        "0007_tips",
        include_str!("../../migrations/postgres/0007_tips.sql"),
    ),
    (
        "0008_renovations",
        include_str!("../../migrations/postgres/0008_renovations.sql"),
    ),
];

/// The advisory lock that lets one process at a time upgrade a shared
/// PostgreSQL database (any constant; "gridwatch" in ASCII).
const MIGRATION_LOCK: i64 = 0x67_72_69_64_77_61_74;

/// The migrations of `backend`.
pub fn set(backend: Backend) -> &'static [(&'static str, &'static str)] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// Applies the migrations the database has not seen yet, within the
/// caller's transaction (all or none). On PostgreSQL, a second process
/// starting at the same time waits for the first and then finds nothing
/// to do.
pub(crate) fn migrate(db: &mut dyn Db) -> Result<(), DbError> {
    let backend = db.backend();
    if backend == Backend::Postgres {
        db.execute("SELECT pg_advisory_xact_lock(?1)", vals![MIGRATION_LOCK])?;
        db.batch(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version    BIGINT PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )?;
    }
    let have = version(db)?;
    for (i, (name, sql)) in set(backend).iter().enumerate().skip(have) {
        let version = (i + 1) as i64;
        db.batch(sql)
            .map_err(|e| DbError::Value(format!("migration {name} failed: {e}")))?;
        match backend {
            Backend::Sqlite => db.batch(&format!("PRAGMA user_version = {version}"))?,
            Backend::Postgres => {
                db.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?1, ?2)",
                    vals![version, name],
                )?;
            }
        }
    }
    Ok(())
}

/// How many migrations the database has had.
pub(crate) fn version(db: &mut dyn Db) -> Result<usize, DbError> {
    let v: i64 = match db.backend() {
        Backend::Sqlite => db.query_one("PRAGMA user_version", &[])?.get(0)?,
        Backend::Postgres => db
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
            .get(0)?,
    };
    Ok(v.max(0) as usize)
}
