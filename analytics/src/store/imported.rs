//! Utility readings imported in bulk (`gridwatch-analytics import readings`).
//!
//! An import holds the store for its whole run and writes in batches: one
//! transaction per [`ImportWriter::BATCH_ROWS`] rows through statements
//! prepared once, because a transaction per row would cost an fsync per row. Rows of
//! a batch that was committed stay when a later batch fails; importing the
//! file again finishes the job, since every row is keyed by
//! (source, time, meter) and an unchanged row is left as it is.

use super::sql::{vals, Db, DbError, Lite};
use super::{Store, StoreError};

/// What a stored row is: a cumulative register or the use of one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A cumulative meter reading.
    Register,
    /// Use in the interval that ends at the row's time.
    Interval,
}

impl ValueKind {
    /// The name stored in `imported_readings.value_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Register => "register",
            ValueKind::Interval => "interval",
        }
    }
}

/// One reading to store, borrowed from the line it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImportedRow<'a> {
    /// UTC, ms since the epoch.
    pub ts_ms: i64,
    /// The meter number as the utility wrote it.
    pub meter: &'a str,
    /// The flat the register matched it to.
    pub flat: &'a str,
    /// Register or interval.
    pub value_kind: ValueKind,
    /// kWh (electricity) or m³ (water, gas).
    pub value: f64,
    /// The utility flagged the reading as estimated or failed.
    pub quality_bad: bool,
}

/// A stored reading as [`Store::imported_readings`] lists it: UTC ms,
/// meter, flat, value (kWh or m³), bad quality, revision.
pub type StoredReading = (i64, String, String, f64, bool, i64);

/// What storing one row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The key was new.
    Inserted,
    /// The key was there with the same value: nothing changed.
    Unchanged,
    /// The key was there with another value, which this row replaced.
    Corrected,
}

/// Writes the rows of one import; see [`Store::import_into`].
pub struct ImportWriter<'c> {
    sink: Sink<'c>,
    source_id: i64,
    in_batch: usize,
    origin: &'c str,
}

/// Where the rows go.
enum Sink<'c> {
    /// SQLite: [`INSERT_NEW`] and [`CORRECT`] prepared once and their
    /// parameters bound in place, so a row costs no allocation and no
    /// statement-cache lookup (the bulk import spends most of its time
    /// here).
    Sqlite {
        conn: &'c rusqlite::Connection,
        insert: rusqlite::CachedStatement<'c>,
        correct: rusqlite::CachedStatement<'c>,
    },
    /// PostgreSQL, through the store's common interface.
    Db(&'c mut dyn Db),
}

/// One upsert with the new revision back (none: unchanged), PostgreSQL's
/// way to store a row in one round trip.
const UPSERT: &str = "INSERT INTO imported_readings AS r
    (source_id, ts_ms, meter, flat, value_kind, value, quality_bad)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (source_id, ts_ms, meter) DO UPDATE SET
        flat = excluded.flat, value_kind = excluded.value_kind, value = excluded.value,
        quality_bad = excluded.quality_bad, revision = r.revision + 1
    WHERE r.value IS DISTINCT FROM excluded.value
        OR r.quality_bad IS DISTINCT FROM excluded.quality_bad
        OR r.value_kind IS DISTINCT FROM excluded.value_kind
        OR r.flat IS DISTINCT FROM excluded.flat
    RETURNING revision";

/// SQLite's first step: a new key is inserted, a known one left alone.
/// Two plain statements instead of [`UPSERT`], because SQLite builds a
/// temporary table for every statement with `RETURNING`, which cost the
/// bulk import more than a second look at a page it has just read.
const INSERT_NEW: &str = "INSERT INTO imported_readings
    (source_id, ts_ms, meter, flat, value_kind, value, quality_bad)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (source_id, ts_ms, meter) DO NOTHING";

/// SQLite's second step, for a key that was there: replaces a value that
/// differs and counts the revision; changes nothing otherwise.
const CORRECT: &str = "UPDATE imported_readings SET
        flat = ?4, value_kind = ?5, value = ?6, quality_bad = ?7, revision = revision + 1
    WHERE source_id = ?1 AND ts_ms = ?2 AND meter = ?3
        AND (value IS DISTINCT FROM ?6 OR quality_bad IS DISTINCT FROM ?7
            OR value_kind IS DISTINCT FROM ?5 OR flat IS DISTINCT FROM ?4)";

/// SQLite settings for the length of an import, put back after it: a page
/// cache of 64 MiB instead of 2 MiB, so the B-tree pages an import works
/// through stay in memory, and `synchronous = NORMAL`, which in WAL mode
/// syncs at checkpoints instead of at every commit. A power cut may then
/// lose the last batches committed, never the file's consistency; importing
/// the file again stores what was lost. Foreign keys are not checked row by
/// row: the one a row has, its source, was registered just before.
const IMPORT_PRAGMAS: &str =
    "PRAGMA cache_size = -65536; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;";

impl<'c> ImportWriter<'c> {
    /// Rows per transaction: large enough that the commit's fsync is noise,
    /// small enough that SQLite's WAL stays a few tens of megabytes.
    pub const BATCH_ROWS: usize = 50_000;

    /// Stores one row (an upsert on its key).
    pub fn put(&mut self, row: &ImportedRow<'_>) -> Result<Put, StoreError> {
        if self.in_batch == 0 {
            self.batch("BEGIN")?;
        }
        let put = match &mut self.sink {
            Sink::Sqlite {
                insert, correct, ..
            } => put_sqlite(insert, correct, self.source_id, row).map_err(DbError::from),
            Sink::Db(db) => db
                .query_opt(
                    UPSERT,
                    vals![
                        self.source_id,
                        row.ts_ms,
                        row.meter,
                        row.flat,
                        row.value_kind.as_str(),
                        row.value,
                        row.quality_bad,
                    ],
                )
                .and_then(|r| r.map(|r| r.get::<i64>(0)).transpose())
                .map(|revision| match revision {
                    None => Put::Unchanged,
                    Some(0) => Put::Inserted,
                    Some(_) => Put::Corrected,
                }),
        }
        .map_err(|e| self.err(e))?;
        self.in_batch += 1;
        if self.in_batch >= Self::BATCH_ROWS {
            self.commit()?;
        }
        Ok(put)
    }

    /// Commits the open batch, if any.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.in_batch > 0 {
            self.batch("COMMIT")?;
            self.in_batch = 0;
        }
        Ok(())
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match &mut self.sink {
            Sink::Sqlite { conn, .. } => conn.execute_batch(sql).map_err(DbError::from),
            Sink::Db(db) => db.batch(sql),
        }
        .map_err(|e| self.err(e))
    }

    /// Runs `f` on this writer and ends the batch: committed on `Ok`,
    /// rolled back on `Err`.
    fn run<T, E: From<StoreError>>(
        mut self,
        f: impl FnOnce(&mut ImportWriter<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match f(&mut self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                if self.in_batch > 0 {
                    // The error that matters is `e`; a failed rollback
                    // leaves the batch uncommitted all the same.
                    let _ = self.batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    fn err(&self, source: DbError) -> StoreError {
        super::db_err(self.origin, source)
    }
}

/// One row through SQLite's two prepared statements.
fn put_sqlite(
    insert: &mut rusqlite::CachedStatement<'_>,
    correct: &mut rusqlite::CachedStatement<'_>,
    source_id: i64,
    row: &ImportedRow<'_>,
) -> rusqlite::Result<Put> {
    if bind_and_run(insert, source_id, row)? == 1 {
        return Ok(Put::Inserted);
    }
    Ok(match bind_and_run(correct, source_id, row)? {
        0 => Put::Unchanged,
        _ => Put::Corrected,
    })
}

/// Binds a row to `?1`…`?7` (both statements number them alike) and runs
/// the statement; the rows it changed.
fn bind_and_run(
    stmt: &mut rusqlite::CachedStatement<'_>,
    source_id: i64,
    row: &ImportedRow<'_>,
) -> rusqlite::Result<usize> {
    stmt.raw_bind_parameter(1, source_id)?;
    stmt.raw_bind_parameter(2, row.ts_ms)?;
    stmt.raw_bind_parameter(3, row.meter)?;
    stmt.raw_bind_parameter(4, row.flat)?;
    stmt.raw_bind_parameter(5, row.value_kind.as_str())?;
    stmt.raw_bind_parameter(6, row.value)?;
    stmt.raw_bind_parameter(7, i64::from(row.quality_bad))?;
    stmt.raw_execute()
}

impl Store {
    /// Runs one import of `source` (a utility stream of `kind`, as its
    /// mapping names it) with exclusive use of the store. `f` stores rows
    /// through the writer; the last batch is committed when it returns
    /// `Ok`, rolled back when it returns `Err`.
    pub fn import_into<T, E: From<StoreError>>(
        &self,
        source: &str,
        kind: &str,
        f: impl FnOnce(&mut ImportWriter<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let origin = self.origin.to_string();
        match &*self.engine {
            super::Engine::Sqlite(c) => {
                let conn = super::lock(c);
                let before = sqlite_settings(&conn).map_err(|e| self.err(e.into()))?;
                let out = (|| {
                    conn.execute_batch(IMPORT_PRAGMAS)
                        .map_err(|e| self.err(e.into()))?;
                    let source_id =
                        source_id(&mut Lite(&conn), source, kind).map_err(|e| self.err(e))?;
                    let prepare = |sql| conn.prepare_cached(sql).map_err(|e| self.err(e.into()));
                    ImportWriter {
                        sink: Sink::Sqlite {
                            conn: &conn,
                            insert: prepare(INSERT_NEW)?,
                            correct: prepare(CORRECT)?,
                        },
                        source_id,
                        in_batch: 0,
                        origin: &origin,
                    }
                    .run(f)
                })();
                let restored = conn.execute_batch(&before);
                let out = out?;
                restored.map_err(|e| self.err(e.into()))?;
                Ok(out)
            }
            super::Engine::Postgres(_) => self.with_db(|db| {
                let source_id = source_id(db, source, kind).map_err(|e| self.err(e))?;
                ImportWriter {
                    sink: Sink::Db(db),
                    source_id,
                    in_batch: 0,
                    origin: &origin,
                }
                .run(f)
            })?,
        }
    }

    /// The stored readings of one source, ordered by time and meter (for
    /// tests and checks; an import's summary says what changed).
    pub fn imported_readings(&self, source: &str) -> Result<Vec<StoredReading>, StoreError> {
        self.read(|db| {
            db.query(
                "SELECT r.ts_ms, r.meter, r.flat, r.value, r.quality_bad, r.revision
                 FROM imported_readings r JOIN import_sources s ON s.id = r.source_id
                 WHERE s.name = ?1 ORDER BY r.ts_ms, r.meter",
                vals![source],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .collect()
            })
            .map_err(|e| self.err(e))
        })
    }
}

/// One imported reading with what a detector needs to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct UtilityReading {
    /// Its time, ms since the epoch (UTC).
    pub ts_ms: i64,
    /// The meter number.
    pub meter: String,
    /// The flat it was matched to.
    pub flat: String,
    /// `electricity`, `water` or `gas`.
    pub kind: String,
    /// A cumulative register (true) or use in the interval ending at `ts_ms`.
    pub register: bool,
    /// kWh or m³.
    pub value: f64,
}

impl Store {
    /// Every imported reading of every source in `[from_ms, to_ms)`, in
    /// time then meter order: what `assess` feeds the utility rules.
    pub fn utility_readings(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<UtilityReading>, StoreError> {
        self.read(|db| {
            db.query(
                "SELECT r.ts_ms, r.meter, r.flat, s.kind, r.value_kind, r.value
                 FROM imported_readings r JOIN import_sources s ON s.id = r.source_id
                 WHERE r.ts_ms >= ?1 AND r.ts_ms < ?2 ORDER BY r.ts_ms, r.meter",
                vals![from_ms, to_ms],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok(UtilityReading {
                            ts_ms: r.get(0)?,
                            meter: r.get(1)?,
                            flat: r.get(2)?,
                            kind: r.get(3)?,
                            register: r.get::<String>(4)? == "register",
                            value: r.get(5)?,
                        })
                    })
                    .collect()
            })
            .map_err(|e| self.err(e))
        })
    }
}

/// The SQLite settings [`IMPORT_PRAGMAS`] changes, as statements that put
/// them back.
fn sqlite_settings(conn: &rusqlite::Connection) -> rusqlite::Result<String> {
    let cache: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    Ok(format!(
        "PRAGMA cache_size = {cache}; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = {fk};"
    ))
}

/// The id of a source, registering it on first use. A source's kind is
/// fixed by its first import; a mapping that changes it is refused (its
/// stored values are in another unit).
fn source_id(db: &mut dyn Db, name: &str, kind: &str) -> Result<i64, DbError> {
    db.execute(
        "INSERT INTO import_sources (name, kind) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        vals![name, kind],
    )?;
    let row = db.query_one(
        "SELECT id, kind FROM import_sources WHERE name = ?1",
        vals![name],
    )?;
    let (id, stored): (i64, String) = (row.get(0)?, row.get(1)?);
    if stored != kind {
        return Err(DbError::Value(format!(
            "source {name:?} was imported as {stored}, not {kind}; give this mapping another `source`"
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: f64) -> ImportedRow<'static> {
        ImportedRow {
            ts_ms: 1_000,
            meter: "m1",
            flat: "s/b/1",
            value_kind: ValueKind::Register,
            value,
            quality_bad: false,
        }
    }

    fn put(store: &Store, value: f64) -> Put {
        store
            .import_into("src", "electricity", |w| w.put(&row(value)))
            .unwrap()
    }

    #[test]
    fn a_key_is_inserted_then_unchanged_then_corrected() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(put(&store, 1.5), Put::Inserted);
        assert_eq!(put(&store, 1.5), Put::Unchanged);
        assert_eq!(put(&store, 1.75), Put::Corrected);
        let rows = store.imported_readings("src").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].3, rows[0].5), (1.75, 1));
    }

    #[test]
    fn a_source_keeps_its_kind() {
        let store = Store::open_in_memory().unwrap();
        put(&store, 1.0);
        let e = store
            .import_into("src", "water", |w| w.put(&row(1.0)))
            .unwrap_err();
        assert!(e.to_string().contains("imported as electricity"), "{e}");
    }

    #[test]
    fn a_failed_import_rolls_back_its_open_batch() {
        let store = Store::open_in_memory().unwrap();
        let r: Result<(), StoreError> = store.import_into("src", "electricity", |w| {
            w.put(&row(1.0))?;
            Err(StoreError::NotFound(0))
        });
        assert!(r.is_err());
        assert!(store.imported_readings("src").unwrap().is_empty());
    }
}
