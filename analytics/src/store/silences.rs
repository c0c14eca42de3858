//! Silences: "do not notify about these alerts until then", with who and why.
//!
//! A silence matches on any of cell, site, rule and entity (a missing one
//! matches anything). Silenced alerts are still stored and folded — the case
//! exists and shows in the API — but nobody is notified and it is audited.

use super::{Scope, Store, StoreError};
use gridwatch_telemetry::{Alert, Timestamp};
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Store id.
    pub id: i64,
    /// Only alerts of this cell.
    pub cell: Option<String>,
    /// Only alerts of this site.
    pub site: Option<String>,
    /// Only alerts of this rule.
    pub rule: Option<String>,
    /// Only alerts of this entity.
    pub entity: Option<String>,
    /// From.
    pub starts: Timestamp,
    /// Until (exclusive).
    pub ends: Timestamp,
    /// Who.
    pub created_by: String,
    /// Why.
    pub reason: String,
}

/// A silence to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// Only alerts of this cell.
    #[serde(default)]
    pub cell: Option<String>,
    /// Only alerts of this site.
    #[serde(default)]
    pub site: Option<String>,
    /// Only alerts of this rule.
    #[serde(default)]
    pub rule: Option<String>,
    /// Only alerts of this entity.
    #[serde(default)]
    pub entity: Option<String>,
    /// From (default: now).
    #[serde(default)]
    pub starts: Option<Timestamp>,
    /// Until (exclusive).
    pub ends: Timestamp,
    /// Why; required.
    pub reason: String,
}

const COLUMNS: &str = "id, cell, site, rule, entity, starts_ms, ends_ms, created_by, reason";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Silence> {
    Ok(Silence {
        id: r.get(0)?,
        cell: r.get(1)?,
        site: r.get(2)?,
        rule: r.get(3)?,
        entity: r.get(4)?,
        starts: Timestamp(r.get(5)?),
        ends: Timestamp(r.get(6)?),
        created_by: r.get(7)?,
        reason: r.get(8)?,
    })
}

/// The id of a silence active at `now` that covers `alert`, if any.
pub(super) fn matching(
    tx: &Transaction<'_>,
    alert: &Alert,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    tx.query_row(
        "SELECT id FROM silences WHERE starts_ms <= ?1 AND ends_ms > ?1 \
         AND (cell IS NULL OR cell = ?2) AND (site IS NULL OR site = ?3) \
         AND (rule IS NULL OR rule = ?4) AND (entity IS NULL OR entity = ?5) \
         ORDER BY id LIMIT 1",
        params![now, alert.cell, alert.site, alert.rule, alert.entity],
        |r| r.get(0),
    )
    .optional()
}

impl Store {
    /// Creates a silence. The caller has checked that `new` lies within its
    /// scope (see [`Scope::allows`]).
    pub fn add_silence(
        &self,
        new: &NewSilence,
        created_by: &str,
        now: Timestamp,
    ) -> Result<Silence, StoreError> {
        let conn = self.lock();
        let starts = new.starts.unwrap_or(now);
        conn.execute(
            "INSERT INTO silences (cell, site, rule, entity, starts_ms, ends_ms, created_by, reason, created_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![new.cell, new.site, new.rule, new.entity, starts.0, new.ends.0, created_by, new.reason, now.0],
        )
        .map_err(|e| self.err(e))?;
        let id = conn.last_insert_rowid();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM silences WHERE id = ?1"),
            [id],
            row,
        )
        .map_err(|e| self.err(e))
    }

    /// Silences not yet ended at `now` that a caller with `scope` may see:
    /// those bound to one of its cells or sites (admins see all).
    pub fn silences(&self, scope: &Scope, now: Timestamp) -> Result<Vec<Silence>, StoreError> {
        let (cond, args) = scope.sql();
        let sql =
            format!("SELECT {COLUMNS} FROM silences WHERE ends_ms > ? AND {cond} ORDER BY id");
        let mut all: Vec<String> = vec![now.0.to_string()];
        all.extend(args);
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(all.iter()), row)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Ends a silence in `scope` at `now`.
    pub fn expire_silence(&self, scope: &Scope, id: i64, now: Timestamp) -> Result<(), StoreError> {
        let (cond, args) = scope.sql();
        let mut all: Vec<String> = vec![now.0.to_string(), id.to_string()];
        all.extend(args);
        let conn = self.lock();
        let n = conn
            .execute(
                &format!(
                    "UPDATE silences SET ends_ms = MIN(ends_ms, CAST(? AS INTEGER)) \
                     WHERE id = CAST(? AS INTEGER) AND {cond}"
                ),
                params_from_iter(all.iter()),
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(StoreError::SilenceNotFound(id));
        }
        Ok(())
    }
}
