//! Listing cases: the light summary a list page or a phone needs, without
//! the evidence samples and the frozen snapshot (those come with one case,
//! `Store::get`). A list of 100 cases is then a few tens of kilobytes, not
//! hundreds, and costs no JSON parsing per row.

use super::{Scope, Store, StoreError};
use crate::alerts::lifecycle::{parse_severity, parse_state, Disposition};
use gridwatch_telemetry::{AlertState, Severity, Timestamp};
use rusqlite::params_from_iter;
use serde::{Deserialize, Serialize};

/// Filters for [`Store::list`]; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertFilter {
    /// Only this state (`open`, `acknowledged`, …), or `active` for the first three.
    pub state: Option<String>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Only this cell.
    pub cell: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A case as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    /// Store id.
    pub id: i64,
    /// The rule that fired.
    pub rule: String,
    /// The entity.
    pub entity: String,
    /// The site.
    pub site: String,
    /// The grid cell.
    pub cell: String,
    /// How urgent.
    pub severity: Severity,
    /// Handling state.
    pub state: AlertState,
    /// The latest title.
    pub title: String,
    /// First alert of the case.
    pub first_seen: Timestamp,
    /// Latest alert folded into it.
    pub last_seen: Timestamp,
    /// Alerts folded into it.
    pub count: i64,
    /// Highest peak.
    pub peak: Option<f64>,
    /// Who has it.
    pub assignee: Option<String>,
    /// 0 until escalated.
    pub escalation_level: i64,
    /// Times re-opened within the cool-down.
    pub reopened: i64,
    /// The earlier case this one recurs.
    pub recurrence_of: Option<i64>,
    /// How it was closed.
    pub disposition: Option<Disposition>,
    /// The root-cause case that inhibits this one, if any.
    pub inhibited_by: Option<i64>,
}

const COLUMNS: &str = "id, rule, entity, site, cell, severity, state, title, first_seen_ms, \
    last_seen_ms, count, peak, assignee, escalation_level, reopened, recurrence_of, disposition, \
    inhibited_by";

type Raw = (AlertSummary, String, String, Option<String>);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        AlertSummary {
            id: r.get(0)?,
            rule: r.get(1)?,
            entity: r.get(2)?,
            site: r.get(3)?,
            cell: r.get(4)?,
            severity: Severity::Minor,
            state: AlertState::Open,
            title: r.get(7)?,
            first_seen: Timestamp(r.get(8)?),
            last_seen: Timestamp(r.get(9)?),
            count: r.get(10)?,
            peak: r.get(11)?,
            assignee: r.get(12)?,
            escalation_level: r.get(13)?,
            reopened: r.get(14)?,
            recurrence_of: r.get(15)?,
            disposition: None,
            inhibited_by: r.get(17)?,
        },
        r.get(5)?,
        r.get(6)?,
        r.get(16)?,
    ))
}

impl Store {
    /// Cases in `scope` matching `filter`, most recently seen first.
    pub fn list(
        &self,
        scope: &Scope,
        filter: &AlertFilter,
    ) -> Result<Vec<AlertSummary>, StoreError> {
        let (mut cond, mut args) = scope.sql();
        let mut add = |sql: &str, v: &Option<String>| {
            if let Some(v) = v {
                cond.push_str(&format!(" AND {sql} = ?"));
                args.push(v.clone());
            }
        };
        if filter.state.as_deref() != Some("active") {
            add("state", &filter.state);
        }
        add("severity", &filter.severity);
        add("rule", &filter.rule);
        add("site", &filter.site);
        add("cell", &filter.cell);
        if filter.state.as_deref() == Some("active") {
            cond.push_str(" AND state IN ('open', 'acknowledged', 'in_progress')");
        }
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let sql = format!(
            "SELECT {COLUMNS} FROM alerts WHERE {cond} ORDER BY last_seen_ms DESC, id DESC LIMIT {limit}"
        );
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), raw)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(mut a, severity, state, disposition)| {
                a.severity = parse_severity(&severity)
                    .ok_or_else(|| self.corrupt(a.id, "severity", &severity))?;
                a.state = parse_state(&state).ok_or_else(|| self.corrupt(a.id, "state", &state))?;
                if let Some(d) = disposition {
                    a.disposition = Some(
                        Disposition::parse(&d)
                            .ok_or_else(|| self.corrupt(a.id, "disposition", &d))?,
                    );
                }
                Ok(a)
            })
            .collect()
    }
}
