//! Alert cases: one row per (rule, entity) while active, folding repeats,
//! re-opening within the cool-down. What happens to a case afterwards
//! (people's actions, escalation, re-check) is in `case_actions.rs`.

use super::sql::{vals, Backend, Db, DbError, Row};
use super::{Store, StoreError};
use crate::lifecycle::{
    is_active, parse_severity, parse_state, AlertsConfig, Disposition, InhibitScope,
};
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// An alert case as stored: the detector's alert plus its handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertCase {
    /// Store id; what the API and dashboard use.
    pub id: i64,
    /// The rule that fired.
    pub rule: String,
    /// The entity (`site/gateway/device#socket`).
    pub entity: String,
    /// The site.
    pub site: String,
    /// The grid cell whose staff handle it.
    pub cell: String,
    /// How urgent.
    pub severity: Severity,
    /// Handling state.
    pub state: AlertState,
    /// The latest title.
    pub title: String,
    /// The latest summary.
    pub summary: String,
    /// Event time of the first alert of the case.
    pub first_seen: Timestamp,
    /// Event time of the latest alert folded into it.
    pub last_seen: Timestamp,
    /// When it was (re-)opened: the escalation clock starts here.
    pub opened_at: Timestamp,
    /// Alerts folded into this case.
    pub count: i64,
    /// Highest `peak` across them.
    pub peak: Option<f64>,
    /// The latest evidence.
    pub evidence: Evidence,
    /// The alert that opened the case, frozen.
    pub snapshot: Alert,
    /// Who has it.
    pub assignee: Option<String>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When.
    pub acknowledged_at: Option<Timestamp>,
    /// 0 until escalated; 1 = backups told, 2 = admins told.
    pub escalation_level: i64,
    /// Times the condition returned within the cool-down and re-opened it.
    pub reopened: i64,
    /// The earlier case this one is a recurrence of (return after the cool-down).
    pub recurrence_of: Option<i64>,
    /// How it was closed.
    pub disposition: Option<Disposition>,
    /// The closing note.
    pub disposition_note: Option<String>,
    /// Photo references given at closing.
    pub photos: Vec<String>,
    /// Who closed it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<Timestamp>,
    /// When the automatic re-check closes it if nothing returned.
    pub recheck_due: Option<Timestamp>,
    /// The active root-cause case that inhibits this one (`[[alerts.inhibit]]`):
    /// shown, but nobody is notified of it.
    pub inhibited_by: Option<i64>,
}

/// One line of a case's trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who: a user name, or `pipeline`, `escalation`, `recheck`.
    pub actor: String,
    /// What: `raise`, `fold`, `reopen`, `acknowledge`, `comment`, …
    pub action: String,
    /// State before.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: Option<String>,
    /// Comment, closing note, assignee or silence.
    pub note: Option<String>,
}

/// What [`Store::record`] did with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedKind {
    /// A new case.
    Raised,
    /// A new case for a condition that returned after the cool-down.
    Recurrence {
        /// The earlier case.
        of: i64,
    },
    /// Folded into the active case.
    Folded,
    /// The resolved case came back within the cool-down and is open again.
    Reopened,
    /// The same alert again (a re-delivery or replay); nothing changed.
    Duplicate,
}

/// The outcome of recording an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The case.
    pub id: i64,
    /// What happened.
    pub kind: RecordedKind,
    /// The silence that covers it, if any: notify nobody.
    pub silenced_by: Option<i64>,
    /// The root-cause case that inhibits it, if any: notify nobody.
    pub inhibited_by: Option<i64>,
}

impl Recorded {
    /// Whether people should hear about it (a new or re-opened case, not silenced).
    pub fn notify(&self) -> bool {
        self.silenced_by.is_none()
            && self.inhibited_by.is_none()
            && matches!(
                self.kind,
                RecordedKind::Raised | RecordedKind::Recurrence { .. } | RecordedKind::Reopened
            )
    }
}

pub(super) const COLUMNS: &str = "id, rule, entity, site, cell, severity, state, title, summary, \
    first_seen_ms, last_seen_ms, opened_at_ms, count, peak, evidence, snapshot, assignee, \
    acknowledged_by, acknowledged_at_ms, escalation_level, reopened, recurrence_of, \
    disposition, disposition_note, photos, resolved_by, resolved_at_ms, recheck_due_ms, inhibited_by";

/// A row's raw text columns, checked after the query.
pub(super) struct RawCase {
    case: AlertCase,
    severity: String,
    state: String,
    evidence: String,
    snapshot: String,
    disposition: Option<String>,
    photos: Option<String>,
}

pub(super) fn raw(r: &Row) -> Result<RawCase, DbError> {
    let ts = |i: usize| -> Result<Timestamp, DbError> { r.get::<i64>(i).map(Timestamp) };
    let opt_ts = |i: usize| -> Result<Option<Timestamp>, DbError> {
        Ok(r.get::<Option<i64>>(i)?.map(Timestamp))
    };
    Ok(RawCase {
        case: AlertCase {
            id: r.get(0)?,
            rule: r.get(1)?,
            entity: r.get(2)?,
            site: r.get(3)?,
            cell: r.get(4)?,
            severity: Severity::Minor,
            state: AlertState::Open,
            title: r.get(7)?,
            summary: r.get(8)?,
            first_seen: ts(9)?,
            last_seen: ts(10)?,
            opened_at: ts(11)?,
            count: r.get(12)?,
            peak: r.get(13)?,
            evidence: Evidence::default(),
            snapshot: placeholder_alert(),
            assignee: r.get(16)?,
            acknowledged_by: r.get(17)?,
            acknowledged_at: opt_ts(18)?,
            escalation_level: r.get(19)?,
            reopened: r.get(20)?,
            recurrence_of: r.get(21)?,
            disposition: None,
            disposition_note: r.get(23)?,
            photos: Vec::new(),
            resolved_by: r.get(25)?,
            resolved_at: opt_ts(26)?,
            recheck_due: opt_ts(27)?,
            inhibited_by: r.get(28)?,
        },
        severity: r.get(5)?,
        state: r.get(6)?,
        evidence: r.get(14)?,
        snapshot: r.get(15)?,
        disposition: r.get(22)?,
        photos: r.get(24)?,
    })
}

fn placeholder_alert() -> Alert {
    Alert {
        schema: gridwatch_telemetry::SCHEMA_VERSION,
        id: String::new(),
        rule: String::new(),
        entity: String::new(),
        cell: String::new(),
        site: String::new(),
        severity: Severity::Minor,
        state: AlertState::Open,
        ts: Timestamp(0),
        title: String::new(),
        summary: String::new(),
        evidence: Evidence::default(),
    }
}

fn peak_of(alert: &Alert) -> Option<f64> {
    alert.evidence.values.get("peak").copied()
}

impl Store {
    pub(super) fn finish(&self, raw: RawCase) -> Result<AlertCase, StoreError> {
        let mut c = raw.case;
        let id = c.id;
        c.severity = parse_severity(&raw.severity)
            .ok_or_else(|| self.corrupt(id, "severity", &raw.severity))?;
        c.state = parse_state(&raw.state).ok_or_else(|| self.corrupt(id, "state", &raw.state))?;
        c.evidence = serde_json::from_str(&raw.evidence)
            .map_err(|_| self.corrupt(id, "evidence", &raw.evidence))?;
        c.snapshot = serde_json::from_str(&raw.snapshot)
            .map_err(|_| self.corrupt(id, "snapshot", &raw.snapshot))?;
        if let Some(d) = raw.disposition {
            c.disposition =
                Some(Disposition::parse(&d).ok_or_else(|| self.corrupt(id, "disposition", &d))?);
        }
        if let Some(p) = raw.photos {
            c.photos = serde_json::from_str(&p).map_err(|_| self.corrupt(id, "photos", &p))?;
        }
        Ok(c)
    }

    /// Records an alert from the pipeline, in its event time: folds it into
    /// the active case of its (rule, entity), re-opens a case resolved within
    /// the cool-down, or opens a new case (a recurrence when an earlier one
    /// exists). Every change is audited.
    ///
    /// Recording is idempotent: an alert whose id was recorded before (a
    /// re-delivery, a replay from a checkpoint, another worker that saw the
    /// same readings) changes nothing and comes back as
    /// [`RecordedKind::Duplicate`] with its case, so it notifies nobody
    /// twice. On PostgreSQL the records of one (rule, entity) are taken one
    /// at a time across processes (a transaction-scoped advisory lock), so
    /// two workers never open two cases for one condition.
    pub fn record(&self, alert: &Alert, config: &AlertsConfig) -> Result<Recorded, StoreError> {
        self.write(|db| {
            let mut out = self.record_in(db, alert, config)?;
            out.inhibited_by = self.inhibit_in(db, &out, alert, config)?;
            Ok(out)
        })
    }

    /// The active case of a `[[alerts.inhibit]]` source rule that covers
    /// `alert`, if any; sets (or clears) the case's mark and audits a change.
    fn inhibit_in(
        &self,
        tx: &mut dyn Db,
        rec: &Recorded,
        alert: &Alert,
        config: &AlertsConfig,
    ) -> Result<Option<i64>, StoreError> {
        let before: Option<i64> = tx
            .query_one(
                "SELECT inhibited_by FROM alerts WHERE id = ?1",
                vals![rec.id],
            )
            .and_then(|r| r.get(0))
            .map_err(|e| self.err(e))?;
        if rec.kind == RecordedKind::Duplicate {
            return Ok(before);
        }
        let mut by: Option<(i64, &str)> = None;
        for rule in config.inhibit.iter().filter(|r| r.targets(&alert.rule)) {
            let (cond, key) = match rule.equal {
                InhibitScope::Entity => ("entity = ?3", alert.entity.as_str()),
                InhibitScope::Device => (
                    "(entity = ?3 OR substr(entity, 1, length(?3) + 1) = ?3 || '#')",
                    alert.entity.split('#').next().unwrap_or(&alert.entity),
                ),
                InhibitScope::Site => ("site = ?3", alert.site.as_str()),
            };
            let found: Option<i64> = tx
                .query_opt(
                    &format!(
                        "SELECT id FROM alerts WHERE rule = ?1 AND id != ?2 AND {cond} \
                         AND state IN ('open', 'acknowledged', 'in_progress') ORDER BY id LIMIT 1"
                    ),
                    vals![rule.source_rule, rec.id, key],
                )
                .and_then(|r| r.map(|r| r.get(0)).transpose())
                .map_err(|e| self.err(e))?;
            if let Some(id) = found {
                by = Some((id, rule.source_rule.as_str()));
                break;
            }
        }
        let after = by.map(|(id, _)| id);
        if after != before {
            tx.execute(
                "UPDATE alerts SET inhibited_by = ?2 WHERE id = ?1",
                vals![rec.id, after],
            )
            .map_err(|e| self.err(e))?;
            let (action, note) = match by {
                Some((id, rule)) => (
                    "inhibit",
                    format!(
                        "inhibited by case {id} ({rule}): nobody is notified while it is active"
                    ),
                ),
                None => (
                    "uninhibit",
                    "no root-cause case covers it any more".to_owned(),
                ),
            };
            tx.execute(
                "INSERT INTO audit (alert_id, at_ms, actor, action, note) VALUES (?1, ?2, 'pipeline', ?3, ?4)",
                vals![rec.id, alert.ts.0, action, note],
            )
            .map_err(|e| self.err(e))?;
        }
        Ok(after)
    }

    /// Lifts the inhibition of every case that `source` inhibited (it was
    /// resolved), auditing each under `actor`.
    pub(super) fn lift_in(
        &self,
        tx: &mut dyn Db,
        source: i64,
        actor: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let note = format!("case {source}, which inhibited it, was resolved");
        tx.execute(
            "INSERT INTO audit (alert_id, at_ms, actor, action, note) \
             SELECT id, ?2, ?3, 'uninhibit', ?4 FROM alerts WHERE inhibited_by = ?1",
            vals![source, now_ms, actor, note],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE alerts SET inhibited_by = NULL, updated_at_ms = ?2 WHERE inhibited_by = ?1",
            vals![source, now_ms],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn record_in(
        &self,
        tx: &mut dyn Db,
        alert: &Alert,
        config: &AlertsConfig,
    ) -> Result<Recorded, StoreError> {
        let now = alert.ts.0;
        if tx.backend() == Backend::Postgres {
            // One record of this (rule, entity) at a time, across every
            // process on the database, until this transaction ends.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(?1, 0))",
                vals![format!("{}\n{}", alert.rule, alert.entity)],
            )
            .map_err(|e| self.err(e))?;
        }
        let silenced_by = super::silences::matching(tx, alert, now).map_err(|e| self.err(e))?;
        let seen: Option<i64> = tx
            .query_opt(
                "SELECT case_id FROM episodes WHERE alert_id = ?1",
                vals![alert.id],
            )
            .and_then(|r| r.map(|r| r.get(0)).transpose())
            .map_err(|e| self.err(e))?;
        if let Some(id) = seen {
            return Ok(Recorded {
                id,
                kind: RecordedKind::Duplicate,
                silenced_by,
                inhibited_by: None,
            });
        }
        let out = self.apply(tx, alert, config, silenced_by)?;
        tx.execute(
            "INSERT INTO episodes (alert_id, case_id, at_ms) VALUES (?1, ?2, ?3)",
            vals![alert.id, out.id, now],
        )
        .map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Folds, re-opens or opens the case of a new alert.
    fn apply(
        &self,
        tx: &mut dyn Db,
        alert: &Alert,
        config: &AlertsConfig,
        silenced_by: Option<i64>,
    ) -> Result<Recorded, StoreError> {
        let now = alert.ts.0;
        let evidence = serde_json::to_string(&alert.evidence).unwrap_or_else(|_| "{}".into());
        let latest: Option<(i64, String, Option<i64>)> = tx
            .query_opt(
                "SELECT id, state, resolved_at_ms FROM alerts \
                 WHERE rule = ?1 AND entity = ?2 ORDER BY id DESC LIMIT 1",
                vals![alert.rule, alert.entity],
            )
            .and_then(|r| r.map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).transpose())
            .map_err(|e| self.err(e))?;
        let audit = |tx: &mut dyn Db,
                     id: i64,
                     action: &str,
                     from: Option<&str>,
                     to: Option<&str>,
                     note: Option<&str>| {
            tx.execute(
                "INSERT INTO audit (alert_id, at_ms, actor, action, from_state, to_state, note) \
                 VALUES (?1, ?2, 'pipeline', ?3, ?4, ?5, ?6)",
                vals![id, now, action, from, to, note],
            )
            .map_err(|e| self.err(e))
        };
        let silence_note = silenced_by.map(|s| format!("silenced by silence {s}"));
        let recorded = |id, kind| Recorded {
            id,
            kind,
            silenced_by,
            inhibited_by: None,
        };
        if let Some((id, state_text, resolved_at)) = latest {
            let state =
                parse_state(&state_text).ok_or_else(|| self.corrupt(id, "state", &state_text))?;
            let fold = "UPDATE alerts SET \
                 last_seen_ms = CASE WHEN last_seen_ms > ?2 THEN last_seen_ms ELSE ?2 END, \
                 count = count + 1, \
                 peak = CASE WHEN CAST(?3 AS DOUBLE PRECISION) IS NULL THEN peak \
                     WHEN peak IS NULL OR CAST(?3 AS DOUBLE PRECISION) > peak \
                     THEN CAST(?3 AS DOUBLE PRECISION) ELSE peak END, \
                 evidence = ?4, title = ?5, summary = ?6, last_episode = ?7, updated_at_ms = ?2";
            let fold_params = vals![
                id,
                now,
                peak_of(alert),
                evidence,
                alert.title,
                alert.summary,
                alert.id
            ];
            if is_active(state) {
                tx.execute(&format!("{fold} WHERE id = ?1"), fold_params)
                    .map_err(|e| self.err(e))?;
                audit(tx, id, "fold", None, None, silence_note.as_deref())?;
                return Ok(recorded(id, RecordedKind::Folded));
            }
            let within_cooldown =
                resolved_at.is_some_and(|t| now - t <= config.cooldown_ms(&alert.rule));
            if within_cooldown {
                tx.execute(
                    &format!(
                        "{fold}, state = 'open', opened_at_ms = ?2, reopened = reopened + 1, \
                         escalation_level = 0, recheck_due_ms = NULL WHERE id = ?1"
                    ),
                    fold_params,
                )
                .map_err(|e| self.err(e))?;
                let note = match &silence_note {
                    Some(s) => format!("the condition returned within the cool-down; {s}"),
                    None => "the condition returned within the cool-down".into(),
                };
                audit(
                    tx,
                    id,
                    "reopen",
                    Some(&state_text),
                    Some("open"),
                    Some(&note),
                )?;
                return Ok(recorded(id, RecordedKind::Reopened));
            }
            let new = self.insert(tx, alert, &evidence, Some(id))?;
            audit(
                tx,
                new,
                "raise",
                None,
                Some("open"),
                Some(&format!("recurrence of alert {id}")),
            )?;
            return Ok(recorded(new, RecordedKind::Recurrence { of: id }));
        }
        let new = self.insert(tx, alert, &evidence, None)?;
        audit(
            tx,
            new,
            "raise",
            None,
            Some("open"),
            silence_note.as_deref(),
        )?;
        Ok(recorded(new, RecordedKind::Raised))
    }

    fn insert(
        &self,
        tx: &mut dyn Db,
        alert: &Alert,
        evidence: &str,
        recurrence_of: Option<i64>,
    ) -> Result<i64, StoreError> {
        let snapshot = serde_json::to_string(alert).unwrap_or_else(|_| "{}".into());
        tx.query_one(
            "INSERT INTO alerts (rule, entity, site, cell, severity, state, title, summary, \
             first_seen_ms, last_seen_ms, opened_at_ms, count, peak, evidence, snapshot, \
             last_episode, recurrence_of, updated_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6, ?7, ?8, ?8, ?8, 1, ?9, ?10, ?11, ?12, ?13, ?8) \
             RETURNING id",
            vals![
                alert.rule,
                alert.entity,
                alert.site,
                alert.cell,
                alert.severity.as_str(),
                alert.title,
                alert.summary,
                alert.ts.0,
                peak_of(alert),
                evidence,
                snapshot,
                alert.id,
                recurrence_of
            ],
        )
        .and_then(|r| r.get(0))
        .map_err(|e| self.err(e))
    }
}
