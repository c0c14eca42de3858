//! What happens to an alert case after it is recorded: reading it and its
//! trail within a person's scope, the actions people take (acknowledge,
//! start, assign, comment, close), and the sweeps event time drives
//! (escalating cases not acknowledged in time, closing resolved ones whose
//! re-check is due).

use super::cases::{raw, AlertCase, AuditEntry, COLUMNS};
use super::{Scope, Store, StoreError};
use crate::lifecycle::{parse_severity, state_name, transition, AckWithin, Action};
use gridwatch_telemetry::Timestamp;
use rusqlite::{params, params_from_iter, OptionalExtension};

impl Store {
    /// One case, if it exists and is in `scope`.
    pub fn get(&self, scope: &Scope, id: i64) -> Result<AlertCase, StoreError> {
        let conn = self.lock();
        self.get_in(&conn, scope, id)
    }

    pub(super) fn get_in(
        &self,
        conn: &rusqlite::Connection,
        scope: &Scope,
        id: i64,
    ) -> Result<AlertCase, StoreError> {
        let (cond, mut args) = scope.sql();
        args.insert(0, id.to_string());
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = CAST(? AS INTEGER) AND {cond}");
        let row = conn
            .query_row(&sql, params_from_iter(args.iter()), raw)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))?;
        self.finish(row)
    }

    /// The trail of a case in `scope`, oldest first.
    pub fn audit(&self, scope: &Scope, id: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.lock();
        self.get_in(&conn, scope, id)?;
        let mut stmt = conn
            .prepare(
                "SELECT at_ms, actor, action, from_state, to_state, note FROM audit \
                 WHERE alert_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(AuditEntry {
                    at: Timestamp(r.get(0)?),
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    from_state: r.get(3)?,
                    to_state: r.get(4)?,
                    note: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Applies a person's action to a case in their scope, at `now`.
    /// Closing sets the automatic re-check `recheck_after_ms` later.
    pub fn act(
        &self,
        scope: &Scope,
        id: i64,
        actor: &str,
        action: &Action,
        now: Timestamp,
        recheck_after_ms: i64,
    ) -> Result<AlertCase, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let case = self.get_in(&tx, scope, id)?;
        let next = transition(case.state, action)?;
        let (from, to) = (state_name(case.state), state_name(next));
        let now_ms = now.0;
        let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            tx.execute(sql, p).map(|_| ()).map_err(|e| self.err(e))
        };
        let note: Option<String> = match action {
            Action::Acknowledge => {
                exec(
                    "UPDATE alerts SET state = ?2, acknowledged_by = ?3, acknowledged_at_ms = ?4, \
                     assignee = COALESCE(assignee, ?3), updated_at_ms = ?4 WHERE id = ?1",
                    &[&id, &to, &actor, &now_ms],
                )?;
                None
            }
            Action::Start => {
                exec(
                    "UPDATE alerts SET state = ?2, assignee = COALESCE(assignee, ?3), \
                     acknowledged_by = COALESCE(acknowledged_by, ?3), \
                     acknowledged_at_ms = COALESCE(acknowledged_at_ms, ?4), updated_at_ms = ?4 WHERE id = ?1",
                    &[&id, &to, &actor, &now_ms],
                )?;
                None
            }
            Action::Assign(who) => {
                exec(
                    "UPDATE alerts SET assignee = ?2, updated_at_ms = ?3 WHERE id = ?1",
                    &[&id, who, &now_ms],
                )?;
                Some(who.clone())
            }
            Action::Comment(text) => Some(text.clone()),
            Action::Close {
                disposition,
                note,
                photos,
            } => {
                let photos = serde_json::to_string(photos).unwrap_or_else(|_| "[]".into());
                let due = now_ms.saturating_add(recheck_after_ms);
                exec(
                    "UPDATE alerts SET state = ?2, disposition = ?3, disposition_note = ?4, photos = ?5, \
                     resolved_by = ?6, resolved_at_ms = ?7, recheck_due_ms = ?8, updated_at_ms = ?7 WHERE id = ?1",
                    &[&id, &to, &disposition.as_str(), note, &photos, &actor, &now_ms, &due],
                )?;
                self.lift_in(&tx, id, actor, now_ms)?;
                Some(format!("{disposition}: {note}"))
            }
        };
        let changed = from != to;
        exec(
            "INSERT INTO audit (alert_id, at_ms, actor, action, from_state, to_state, note) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                &id,
                &now_ms,
                &actor,
                &action.name(),
                &changed.then_some(from),
                &changed.then_some(to),
                &note,
            ],
        )?;
        let case = self.get_in(&tx, &Scope::All, id)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(case)
    }

    /// Open (unacknowledged) cases whose escalation level is behind what
    /// their age at `now` calls for: one level per `ack_within` of their
    /// severity, at most 2. Raises their level, audits it and returns them.
    pub fn escalate_due(
        &self,
        now: Timestamp,
        ack: &AckWithin,
    ) -> Result<Vec<AlertCase>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let due: Vec<(i64, String, i64, i64)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, severity, opened_at_ms, escalation_level FROM alerts \
                     WHERE state = 'open' AND escalation_level < 2",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| self.err(e))?;
            rows
        };
        let mut out = Vec::new();
        for (id, severity, opened, level) in due {
            let sev =
                parse_severity(&severity).ok_or_else(|| self.corrupt(id, "severity", &severity))?;
            let wanted = ((now.0 - opened) / ack.millis(sev).max(1)).clamp(0, 2);
            if wanted <= level {
                continue;
            }
            tx.execute(
                "UPDATE alerts SET escalation_level = ?2, updated_at_ms = ?3 WHERE id = ?1",
                params![id, wanted, now.0],
            )
            .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO audit (alert_id, at_ms, actor, action, note) VALUES (?1, ?2, 'escalation', 'escalate', ?3)",
                params![id, now.0, format!("not acknowledged in time; escalation level {wanted}")],
            )
            .map_err(|e| self.err(e))?;
            out.push(self.get_in(&tx, &Scope::All, id)?);
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Closes (verifies) resolved cases whose re-check is due at `now` and
    /// whose condition has not returned since; returns their ids.
    pub fn verify_due(&self, now: Timestamp) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let ids: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id FROM alerts WHERE state = 'resolved' AND recheck_due_ms <= ?1 \
                     AND last_seen_ms <= resolved_at_ms",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([now.0], |r| r.get(0))
                .map_err(|e| self.err(e))?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(|e| self.err(e))?;
            rows
        };
        for id in &ids {
            tx.execute(
                "UPDATE alerts SET state = 'closed', updated_at_ms = ?2 WHERE id = ?1",
                params![id, now.0],
            )
            .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO audit (alert_id, at_ms, actor, action, from_state, to_state, note) \
                 VALUES (?1, ?2, 'recheck', 'verify', 'resolved', 'closed', 'the condition did not return')",
                params![id, now.0],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(ids)
    }
}
