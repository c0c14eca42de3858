//! Utility readings imported in bulk (`gridwatch-analytics import readings`).
//!
//! An import holds the store for its whole run and writes in batches: one
//! transaction per [`ImportWriter::BATCH_ROWS`] rows through one prepared
//! upsert, because a transaction per row would cost an fsync per row. Rows of
//! a batch that was committed stay when a later batch fails; importing the
//! file again finishes the job, since every row is keyed by
//! (source, time, meter) and an unchanged row is left as it is.

use super::sql::{vals, Db, DbError};
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
    db: &'c mut dyn Db,
    source_id: i64,
    in_batch: usize,
    origin: &'c str,
}

/// One upsert, the same in both dialects (SQLite has `IS DISTINCT FROM`
/// since 3.39; the bundled one is newer).
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

impl<'c> ImportWriter<'c> {
    /// Rows per transaction: large enough that the commit's fsync is noise,
    /// small enough that SQLite's WAL stays a few tens of megabytes.
    pub const BATCH_ROWS: usize = 50_000;

    /// Stores one row (an upsert on its key).
    pub fn put(&mut self, row: &ImportedRow<'_>) -> Result<Put, StoreError> {
        if self.in_batch == 0 {
            self.db.batch("BEGIN").map_err(|e| self.err(e))?;
        }
        let revision: Option<i64> = self
            .db
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
            .and_then(|r| r.map(|r| r.get(0)).transpose())
            .map_err(|e| self.err(e))?;
        let put = match revision {
            None => Put::Unchanged,
            Some(0) => Put::Inserted,
            Some(_) => Put::Corrected,
        };
        self.in_batch += 1;
        if self.in_batch >= Self::BATCH_ROWS {
            self.commit()?;
        }
        Ok(put)
    }

    /// Commits the open batch, if any.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.in_batch > 0 {
            self.db.batch("COMMIT").map_err(|e| self.err(e))?;
            self.in_batch = 0;
        }
        Ok(())
    }

    fn err(&self, source: DbError) -> StoreError {
        super::db_err(self.origin, source)
    }
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
        self.with_db(|db| {
            let source_id = source_id(db, source, kind).map_err(|e| self.err(e))?;
            let mut writer = ImportWriter {
                db,
                source_id,
                in_batch: 0,
                origin: &origin,
            };
            match f(&mut writer) {
                Ok(v) => {
                    writer.commit()?;
                    Ok(v)
                }
                Err(e) => {
                    if writer.in_batch > 0 {
                        // The error that matters is `e`; a failed rollback
                        // leaves the batch uncommitted all the same.
                        let _ = writer.db.batch("ROLLBACK");
                    }
                    Err(e)
                }
            }
        })?
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
