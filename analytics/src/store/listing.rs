//! Listing cases: the light summary a list page or a phone needs, without
//! the evidence samples and the frozen snapshot (those come with one case,
//! `Store::get`). A list of 100 cases is then a few tens of kilobytes, not
//! hundreds, and costs no JSON parsing per row.

use super::sql::{DbError, Row, Value};
use super::{Scope, Store, StoreError};
use crate::lifecycle::{parse_severity, parse_state, Disposition};
use gridwatch_telemetry::{AlertState, Severity, Timestamp};
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

fn raw(r: &Row) -> Result<Raw, DbError> {
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

/// The list query for `scope` and `filter`, and its parameters.
fn list_sql(scope: &Scope, filter: &AlertFilter) -> (String, Vec<String>) {
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
    (sql, args)
}

impl Store {
    /// Cases in `scope` matching `filter`, most recently seen first.
    pub fn list(
        &self,
        scope: &Scope,
        filter: &AlertFilter,
    ) -> Result<Vec<AlertSummary>, StoreError> {
        let (sql, args) = list_sql(scope, filter);
        // On SQLite every write is an INSERT, UPDATE or DELETE on this one
        // connection, so an unchanged count means an unchanged answer. On
        // PostgreSQL other instances write unseen: no cache.
        let version = self.changes();
        let key = (sql, args);
        if let Some(v) = version {
            if let Some(hit) = self.lists_lock().get(&key, v) {
                return Ok(hit);
            }
        }
        let (sql, args) = &key;
        let params: Vec<Value> = args.iter().cloned().map(Value::Text).collect();
        let rows = self.read(|db| {
            db.query(sql, &params)
                .and_then(|rows| rows.iter().map(raw).collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.err(e))
        })?;
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
            .collect::<Result<Vec<_>, StoreError>>()
            .inspect(|list| {
                if let Some(v) = version {
                    self.lists_lock().put(key, v, list.clone())
                }
            })
    }

    fn lists_lock(&self) -> std::sync::MutexGuard<'_, ListCache> {
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Recent list answers, valid while the store is unchanged. Dashboard users
/// poll the same few lists; after the first, each costs a lookup instead of
/// a query and a sort (docs/BENCHMARKS.md, "Analytics API under load").
#[derive(Debug, Default)]
pub(crate) struct ListCache {
    version: u64,
    answers: std::collections::HashMap<(String, Vec<String>), Vec<AlertSummary>>,
}

/// Distinct lists kept at most; beyond, the cache starts over.
const LIST_CACHE_ENTRIES: usize = 256;

impl ListCache {
    fn get(&mut self, key: &(String, Vec<String>), version: u64) -> Option<Vec<AlertSummary>> {
        if version != self.version {
            self.answers.clear();
            self.version = version;
            return None;
        }
        self.answers.get(key).cloned()
    }

    fn put(&mut self, key: (String, Vec<String>), version: u64, list: Vec<AlertSummary>) {
        if version != self.version || self.answers.len() >= LIST_CACHE_ENTRIES {
            self.answers.clear();
            self.version = version;
        }
        self.answers.insert(key, list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(entity: &str, ts: i64) -> gridwatch_telemetry::Alert {
        gridwatch_telemetry::Alert {
            schema: 1,
            id: format!("r:{entity}:{ts}"),
            rule: "r".into(),
            entity: entity.into(),
            cell: "c7".into(),
            site: "yard-a".into(),
            severity: Severity::Critical,
            state: AlertState::Open,
            ts: Timestamp(ts),
            title: entity.into(),
            summary: String::new(),
            evidence: Default::default(),
        }
    }

    /// A cached list is never served after any change to the store.
    #[test]
    fn a_repeated_list_sees_every_change() {
        use crate::lifecycle::{Action, AlertsConfig};
        let store = Store::open_in_memory().unwrap();
        let config = AlertsConfig::default();
        let scope = Scope::Cells(vec!["c7".into()]);
        let active = AlertFilter {
            state: Some("active".into()),
            ..AlertFilter::default()
        };
        let a = store.record(&alert("e1", 1000), &config).unwrap();
        assert_eq!(store.list(&scope, &active).unwrap().len(), 1);
        assert_eq!(store.list(&scope, &active).unwrap().len(), 1, "cached");
        store.record(&alert("e2", 2000), &config).unwrap();
        let two = store.list(&scope, &active).unwrap();
        assert_eq!(two.len(), 2, "a new case shows at once");
        assert_eq!(two[1].state, AlertState::Open);
        store
            .act(
                &scope,
                a.id,
                "wang",
                &Action::Acknowledge,
                Timestamp(3000),
                1,
            )
            .unwrap();
        let after = store.list(&scope, &active).unwrap();
        assert_eq!(
            after[1].state,
            AlertState::Acknowledged,
            "an action shows at once"
        );
        store.record(&alert("e2", 4000), &config).unwrap();
        assert_eq!(
            store.list(&scope, &active).unwrap()[0].count,
            2,
            "a fold shows"
        );
    }

    /// Lists must be answered from an index alone: the rows also hold the
    /// evidence JSON, and reading them made every list ~5x slower.
    #[test]
    fn lists_read_a_covering_index_not_the_rows() {
        let store = Store::open_in_memory().unwrap();
        let super::super::Engine::Sqlite(conn) = &*store.engine else {
            unreachable!("an in-memory store is SQLite")
        };
        let conn = super::super::lock(conn);
        for scope in [
            Scope::Cells(vec!["c7".into(), "c8".into()]),
            Scope::Sites(vec!["yard-a".into()]),
        ] {
            for state in [Some("active"), Some("open"), None] {
                let filter = AlertFilter {
                    state: state.map(str::to_owned),
                    limit: Some(20),
                    ..AlertFilter::default()
                };
                let (sql, args) = list_sql(&scope, &filter);
                let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                        r.get::<_, String>(3)
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert!(
                    plan.iter().any(|p| p.contains("COVERING INDEX")),
                    "{scope:?} {state:?}: {plan:?}"
                );
            }
        }
    }
}
