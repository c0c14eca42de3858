//! The assessment report: how each grid cell handled each rule's cases in a
//! period. The campaign assesses cells on it — hazards found, closed within
//! the limit, overdue, how fast people acknowledged and closed, and how
//! often a rule cried wolf — so it is computed from the store's own
//! timestamps and dispositions, never typed in.
//!
//! The directory has cells and sites but no streets or towns, so the report
//! is per cell; a street or town is the sum of its cells' rows.

use super::sql::Value;
use super::{Scope, Store, StoreError};
use crate::lifecycle::{parse_severity, AlertsConfig, Disposition};
use gridwatch_telemetry::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the report covers: cases opened in `[from, to)`, judged at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    /// First instant (inclusive).
    pub from: Timestamp,
    /// Last instant (exclusive).
    pub to: Timestamp,
    /// When "overdue" is judged: a case still open past its limit at `now`.
    pub now: Timestamp,
}

/// One row: a cell and a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The grid cell.
    pub cell: String,
    /// The rule.
    pub rule: String,
    /// Cases opened in the period.
    pub found: u64,
    /// Acknowledged within the severity's `ack_within`.
    pub acknowledged_in_time: u64,
    /// Closed (a disposition given) within `close_within_s` of opening.
    pub closed_in_time: u64,
    /// Still not closed `close_within_s` after opening, at the report's `now`.
    pub overdue: u64,
    /// Median seconds from opening to acknowledgement, over acknowledged cases.
    pub median_ack_s: Option<f64>,
    /// Median seconds from opening to closing, over closed cases.
    pub median_close_s: Option<f64>,
    /// Closed as false positive.
    pub false_alarms: u64,
    /// Closed with a verdict on the rule (all dispositions but `no_access`).
    pub judged: u64,
    /// `false_alarms / judged`; `None` before any judged case.
    pub false_alarm_rate: Option<f64>,
}

/// The median of `v` (sorted here); `None` when empty.
fn median(v: &mut [i64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    let mid = if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
    };
    Some(mid / 1000.0)
}

#[derive(Default)]
struct Tally {
    found: u64,
    ack_in_time: u64,
    closed_in_time: u64,
    overdue: u64,
    ack_ms: Vec<i64>,
    close_ms: Vec<i64>,
    false_alarms: u64,
    judged: u64,
}

type Raw = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

impl Store {
    /// The report over the cases in `scope` opened in `period`, one row per
    /// cell and rule that had any, in cell then rule order. Limits come from
    /// `config`: `ack_within` per severity and `close_within_s`.
    pub fn report(
        &self,
        scope: &Scope,
        period: &ReportPeriod,
        config: &AlertsConfig,
    ) -> Result<Vec<ReportRow>, StoreError> {
        // A case re-opened within the cool-down keeps its old
        // acknowledgement and resolution but starts a new opening: only what
        // happened since that opening counts.
        let (cond, args) = scope.sql();
        let sql = format!(
            "SELECT id, cell, rule, severity, opened_at_ms, \
             CASE WHEN acknowledged_at_ms >= opened_at_ms THEN acknowledged_at_ms END, \
             CASE WHEN state IN ('resolved', 'closed') THEN resolved_at_ms END, \
             CASE WHEN state IN ('resolved', 'closed') THEN disposition END \
             FROM alerts WHERE {cond} AND opened_at_ms >= {} AND opened_at_ms < {}",
            period.from.0, period.to.0
        );
        let params: Vec<Value> = args.into_iter().map(Value::Text).collect();
        let rows: Vec<Raw> = self.read(|db| {
            db.query(&sql, &params)
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
                                r.get(6)?,
                                r.get(7)?,
                            ))
                        })
                        .collect()
                })
                .map_err(|e| self.err(e))
        })?;
        let close_ms = (config.close_within_s as i64).saturating_mul(1000);
        let mut by: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for (id, cell, rule, severity, opened, acked, resolved, disposition) in rows {
            let sev =
                parse_severity(&severity).ok_or_else(|| self.corrupt(id, "severity", &severity))?;
            let t = by.entry((cell, rule)).or_default();
            t.found += 1;
            if let Some(at) = acked {
                t.ack_ms.push(at - opened);
                if at - opened <= config.ack_within.millis(sev) {
                    t.ack_in_time += 1;
                }
            }
            match resolved {
                Some(at) => {
                    t.close_ms.push(at - opened);
                    if at - opened <= close_ms {
                        t.closed_in_time += 1;
                    }
                }
                None if period.now.0 - opened > close_ms => t.overdue += 1,
                None => {}
            }
            if let Some(d) = disposition {
                let d =
                    Disposition::parse(&d).ok_or_else(|| self.corrupt(id, "disposition", &d))?;
                match d.true_positive() {
                    Some(false) => {
                        t.false_alarms += 1;
                        t.judged += 1;
                    }
                    Some(true) => t.judged += 1,
                    None => {}
                }
            }
        }
        Ok(by
            .into_iter()
            .map(|((cell, rule), mut t)| ReportRow {
                cell,
                rule,
                found: t.found,
                acknowledged_in_time: t.ack_in_time,
                closed_in_time: t.closed_in_time,
                overdue: t.overdue,
                median_ack_s: median(&mut t.ack_ms),
                median_close_s: median(&mut t.close_ms),
                false_alarms: t.false_alarms,
                judged: t.judged,
                false_alarm_rate: (t.judged > 0).then(|| t.false_alarms as f64 / t.judged as f64),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts_in_seconds() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3000, 1000, 2000]), Some(2.0));
        assert_eq!(median(&mut [4000, 1000, 2000, 3000]), Some(2.5));
    }
}
