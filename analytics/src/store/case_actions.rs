//! What happens to an alert case after it is recorded: reading it and its
//! trail within a person's scope, the actions people take (acknowledge,
//! start, assign, comment, close), and the sweeps event time drives
//! (escalating cases not acknowledged in time, closing resolved ones whose
//! re-check is due).

use super::cases::{raw, AlertCase, AuditEntry, COLUMNS};
use super::sql::{vals, Backend, Db, Value};
use super::{Scope, Store, StoreError};
use crate::lifecycle::{parse_severity, state_name, transition, AckWithin, Action};
use gridwatch_telemetry::Timestamp;

impl Store {
    /// One case, if it exists and is in `scope`.
    pub fn get(&self, scope: &Scope, id: i64) -> Result<AlertCase, StoreError> {
        self.read(|db| self.get_in(db, scope, id, false))
    }

    /// One case in `scope`; with `for_update`, locked on PostgreSQL until
    /// the transaction ends, so that two instances acting on one case at
    /// once act one after the other, each on the state the other left.
    pub(super) fn get_in(
        &self,
        db: &mut dyn Db,
        scope: &Scope,
        id: i64,
        for_update: bool,
    ) -> Result<AlertCase, StoreError> {
        let (cond, args) = scope.sql();
        let mut params = vec![Value::Int(id)];
        params.extend(args.into_iter().map(Value::Text));
        let lock = if for_update && db.backend() == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = ? AND {cond}{lock}");
        let row = db
            .query_opt(&sql, &params)
            .and_then(|r| r.as_ref().map(raw).transpose())
            .map_err(|e| self.err(e))?
            .ok_or(StoreError::NotFound(id))?;
        self.finish(row)
    }

    /// The trail of a case in `scope`, oldest first.
    pub fn audit(&self, scope: &Scope, id: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|db| {
            self.get_in(db, scope, id, false)?;
            db.query(
                "SELECT at_ms, actor, action, from_state, to_state, note FROM audit \
                 WHERE alert_id = ?1 ORDER BY id",
                vals![id],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|r| {
                        Ok(AuditEntry {
                            at: Timestamp(r.get(0)?),
                            actor: r.get(1)?,
                            action: r.get(2)?,
                            from_state: r.get(3)?,
                            to_state: r.get(4)?,
                            note: r.get(5)?,
                        })
                    })
                    .collect()
            })
            .map_err(|e| self.err(e))
        })
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
        self.write(|tx| {
            let case = self.get_in(tx, scope, id, true)?;
            let next = transition(case.state, action)?;
            let (from, to) = (state_name(case.state), state_name(next));
            let now_ms = now.0;
            let exec = |tx: &mut dyn Db, sql: &str, p: &[Value]| {
                tx.execute(sql, p).map(|_| ()).map_err(|e| self.err(e))
            };
            let note: Option<String> = match action {
                Action::Acknowledge => {
                    exec(
                        tx,
                        "UPDATE alerts SET state = ?2, acknowledged_by = ?3, acknowledged_at_ms = ?4, \
                         assignee = COALESCE(assignee, ?3), updated_at_ms = ?4 WHERE id = ?1",
                        vals![id, to, actor, now_ms],
                    )?;
                    None
                }
                Action::Start => {
                    exec(
                        tx,
                        "UPDATE alerts SET state = ?2, assignee = COALESCE(assignee, ?3), \
                         acknowledged_by = COALESCE(acknowledged_by, ?3), \
                         acknowledged_at_ms = COALESCE(acknowledged_at_ms, ?4), updated_at_ms = ?4 \
                         WHERE id = ?1",
                        vals![id, to, actor, now_ms],
                    )?;
                    None
                }
                Action::Assign(who) => {
                    exec(
                        tx,
                        "UPDATE alerts SET assignee = ?2, updated_at_ms = ?3 WHERE id = ?1",
                        vals![id, who, now_ms],
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
                        tx,
                        "UPDATE alerts SET state = ?2, disposition = ?3, disposition_note = ?4, \
                         photos = ?5, resolved_by = ?6, resolved_at_ms = ?7, recheck_due_ms = ?8, \
                         updated_at_ms = ?7 WHERE id = ?1",
                        vals![id, to, disposition.as_str(), note, photos, actor, now_ms, due],
                    )?;
                    self.lift_in(tx, id, actor, now_ms)?;
                    Some(format!("{disposition}: {note}"))
                }
            };
            let changed = from != to;
            exec(
                tx,
                "INSERT INTO audit (alert_id, at_ms, actor, action, from_state, to_state, note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                vals![
                    id,
                    now_ms,
                    actor,
                    action.name(),
                    changed.then_some(from),
                    changed.then_some(to),
                    note
                ],
            )?;
            self.get_in(tx, &Scope::All, id, false)
        })
    }

    /// Open (unacknowledged) cases whose escalation level is behind what
    /// their age at `now` calls for: one level per `ack_within` of their
    /// severity, at most 2. Raises their level, audits it and returns them.
    ///
    /// Each raise is claimed in SQL: the level moves only if it is still
    /// the one read and the case still open. When several instances sweep
    /// one PostgreSQL database at once, the second waits for the first's
    /// row lock, then finds the level moved and skips the case, so each
    /// level of each case is returned (and notified) by exactly one of them.
    pub fn escalate_due(
        &self,
        now: Timestamp,
        ack: &AckWithin,
    ) -> Result<Vec<AlertCase>, StoreError> {
        self.write(|tx| {
            let due: Vec<(i64, String, i64, i64)> = tx
                .query(
                    "SELECT id, severity, opened_at_ms, escalation_level FROM alerts \
                     WHERE state = 'open' AND escalation_level < 2 ORDER BY id",
                    &[],
                )
                .and_then(|rows| {
                    rows.iter()
                        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .collect()
                })
                .map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            for (id, severity, opened, level) in due {
                let sev = parse_severity(&severity)
                    .ok_or_else(|| self.corrupt(id, "severity", &severity))?;
                let wanted = ((now.0 - opened) / ack.millis(sev).max(1)).clamp(0, 2);
                if wanted <= level {
                    continue;
                }
                let claimed = tx
                    .execute(
                        "UPDATE alerts SET escalation_level = ?2, updated_at_ms = ?3 \
                         WHERE id = ?1 AND escalation_level = ?4 AND state = 'open' \
                         AND opened_at_ms = ?5",
                        vals![id, wanted, now.0, level, opened],
                    )
                    .map_err(|e| self.err(e))?;
                if claimed == 0 {
                    continue;
                }
                tx.execute(
                    "INSERT INTO audit (alert_id, at_ms, actor, action, note) \
                     VALUES (?1, ?2, 'escalation', 'escalate', ?3)",
                    vals![
                        id,
                        now.0,
                        format!("not acknowledged in time; escalation level {wanted}")
                    ],
                )
                .map_err(|e| self.err(e))?;
                out.push(self.get_in(tx, &Scope::All, id, false)?);
            }
            Ok(out)
        })
    }

    /// Closes (verifies) resolved cases whose re-check is due at `now` and
    /// whose condition has not returned since; returns their ids. Claimed
    /// like [`Store::escalate_due`]: a case closes in one instance's sweep.
    pub fn verify_due(&self, now: Timestamp) -> Result<Vec<i64>, StoreError> {
        self.write(|tx| {
            let due: Vec<i64> = tx
                .query(
                    "SELECT id FROM alerts WHERE state = 'resolved' AND recheck_due_ms <= ?1 \
                     AND last_seen_ms <= resolved_at_ms ORDER BY id",
                    vals![now.0],
                )
                .and_then(|rows| rows.iter().map(|r| r.get(0)).collect())
                .map_err(|e| self.err(e))?;
            let mut ids = Vec::new();
            for id in due {
                let claimed = tx
                    .execute(
                        "UPDATE alerts SET state = 'closed', updated_at_ms = ?2 \
                         WHERE id = ?1 AND state = 'resolved' AND recheck_due_ms <= ?2 \
                         AND last_seen_ms <= resolved_at_ms",
                        vals![id, now.0],
                    )
                    .map_err(|e| self.err(e))?;
                if claimed == 0 {
                    continue;
                }
                tx.execute(
                    "INSERT INTO audit (alert_id, at_ms, actor, action, from_state, to_state, note) \
                     VALUES (?1, ?2, 'recheck', 'verify', 'resolved', 'closed', \
                     'the condition did not return')",
                    vals![id, now.0],
                )
                .map_err(|e| self.err(e))?;
                ids.push(id);
            }
            Ok(ids)
        })
    }
}
