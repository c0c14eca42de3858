//! Silences: "do not notify about these alerts until then", with who and why.
//!
//! A silence matches on any of cell, site, rule and entity (a missing one
//! matches anything). Silenced alerts are still stored and folded — the case
//! exists and shows in the API — but nobody is notified and it is audited.

use super::sql::{vals, Db, DbError, Row, Value};
use super::{Scope, Store, StoreError};
use gridwatch_telemetry::{Alert, Timestamp};
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

fn row(r: &Row) -> Result<Silence, DbError> {
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
pub(super) fn matching(tx: &mut dyn Db, alert: &Alert, now: i64) -> Result<Option<i64>, DbError> {
    tx.query_opt(
        "SELECT id FROM silences WHERE starts_ms <= ?1 AND ends_ms > ?1 \
         AND (cell IS NULL OR cell = ?2) AND (site IS NULL OR site = ?3) \
         AND (rule IS NULL OR rule = ?4) AND (entity IS NULL OR entity = ?5) \
         ORDER BY id LIMIT 1",
        vals![now, alert.cell, alert.site, alert.rule, alert.entity],
    )?
    .map(|r| r.get(0))
    .transpose()
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
        let starts = new.starts.unwrap_or(now);
        self.write(|db| {
            db.query_one(
                &format!(
                    "INSERT INTO silences (cell, site, rule, entity, starts_ms, ends_ms, \
                     created_by, reason, created_at_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {COLUMNS}"
                ),
                vals![
                    new.cell, new.site, new.rule, new.entity, starts.0, new.ends.0, created_by,
                    new.reason, now.0
                ],
            )
            .and_then(|r| row(&r))
            .map_err(|e| self.err(e))
        })
    }

    /// Silences not yet ended at `now` that a caller with `scope` may see:
    /// those bound to one of its cells or sites (admins see all).
    pub fn silences(&self, scope: &Scope, now: Timestamp) -> Result<Vec<Silence>, StoreError> {
        let (cond, args) = scope.sql();
        let sql =
            format!("SELECT {COLUMNS} FROM silences WHERE ends_ms > ? AND {cond} ORDER BY id");
        let mut params = vec![Value::Int(now.0)];
        params.extend(args.into_iter().map(Value::Text));
        self.read(|db| {
            db.query(&sql, &params)
                .and_then(|rows| rows.iter().map(row).collect())
                .map_err(|e| self.err(e))
        })
    }

    /// Ends a silence in `scope` at `now`.
    pub fn expire_silence(&self, scope: &Scope, id: i64, now: Timestamp) -> Result<(), StoreError> {
        let (cond, args) = scope.sql();
        let mut params = vec![Value::Int(now.0), Value::Int(id)];
        params.extend(args.into_iter().map(Value::Text));
        let n = self.write(|db| {
            db.execute(
                &format!(
                    "UPDATE silences SET ends_ms = CASE WHEN ends_ms < ?1 THEN ends_ms ELSE ?1 END \
                     WHERE id = ?2 AND {}",
                    numbered(&cond, 3)
                ),
                &params,
            )
            .map_err(|e| self.err(e))
        })?;
        if n == 0 {
            return Err(StoreError::SilenceNotFound(id));
        }
        Ok(())
    }
}

/// `cond` with its bare `?` numbered from `first`, to follow numbered ones.
fn numbered(cond: &str, first: usize) -> String {
    let mut out = String::new();
    for (i, part) in cond.split('?').enumerate() {
        if i > 0 {
            out.push_str(&format!("?{}", first + i - 1));
        }
        out.push_str(part);
    }
    out
}
