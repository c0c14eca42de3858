//! Evaluation: the alerts of a replay against a district's ground truth.
//!
//! Per detector (rule), at the level of flats: an alerted flat is a true
//! positive when the truth has a case of the kind that rule looks for on
//! that flat and the first alert came no earlier than the case began; an
//! alerted flat without such a case (or alerted before it began) is a false
//! positive; a case whose flat was never alerted is a miss. Time to detect is
//! the first alert's event time minus the case's start. The table maps each
//! rule to the case kinds it should find ([`RULE_KINDS`]).

pub mod truth;

use gridwatch_telemetry::Alert;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use truth::{kind, GroundTruth};

/// Which planted kind each evaluated rule is meant to find.
pub const RULE_KINDS: &[(&str, &str)] = &[
    ("group_rental", kind::GROUP_RENTAL),
    ("indoor_charging_signature", kind::INDOOR_CHARGING),
    ("indoor_sighting", kind::INDOOR_CHARGING),
    ("indoor_charging_fused", kind::INDOOR_CHARGING),
    ("night_water_leak", kind::LEAK),
    ("three_in_one", kind::THREE_IN_ONE),
];

/// One rule's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    /// The rule.
    pub rule: String,
    /// The case kind it is scored against.
    pub kind: String,
    /// Planted cases of that kind.
    pub cases: u32,
    /// Flats alerted.
    pub alerted: u32,
    /// Alerted flats with a case that had begun.
    pub true_positives: u32,
    /// Alerted flats without one.
    pub false_positives: u32,
    /// TP / alerted (1 when nothing was alerted).
    pub precision: f64,
    /// TP / cases (1 when there were no cases).
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Median of (first alert − case start) over true positives, hours.
    pub median_ttd_h: Option<f64>,
    /// False positives by the traits of their flat (the truth's `traits`;
    /// `none` for a flat with none, `<kind> (too early)` for an alert before
    /// its case began). A flat with two traits counts under both: this says
    /// which behaviours a rule mistakes for its case.
    #[serde(default)]
    pub false_positives_by_trait: BTreeMap<String, u32>,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Flats.
    pub flats: u32,
    /// Days.
    pub days: u32,
    /// One entry per rule of [`RULE_KINDS`].
    pub rules: Vec<RuleScore>,
}

/// Scores `alerts` against `truth`.
pub fn evaluate(truth: &GroundTruth, alerts: &[Alert]) -> Evaluation {
    let mut first: HashMap<(&str, &str), i64> = HashMap::new();
    for a in alerts {
        let e = first
            .entry((a.rule.as_str(), a.entity.as_str()))
            .or_insert(a.ts.0);
        *e = (*e).min(a.ts.0);
    }
    let rules = RULE_KINDS
        .iter()
        .map(|&(rule, k)| {
            let cases: BTreeMap<&str, i64> = truth
                .cases
                .iter()
                .filter(|c| c.kind == k)
                .map(|c| (c.entity.as_str(), c.start_ms))
                .collect();
            let mut tp = 0u32;
            let mut fp = 0u32;
            let mut ttd: Vec<f64> = Vec::new();
            let mut by_trait: BTreeMap<String, u32> = BTreeMap::new();
            for (&(r, entity), &at) in &first {
                if r != rule {
                    continue;
                }
                match cases.get(entity) {
                    Some(&start) if at >= start => {
                        tp += 1;
                        ttd.push((at - start) as f64 / 3_600_000.0);
                    }
                    early => {
                        fp += 1;
                        if early.is_some() {
                            *by_trait.entry(format!("{k} (too early)")).or_default() += 1;
                        }
                        match truth.traits.get(entity) {
                            Some(traits) if !traits.is_empty() => {
                                for t in traits {
                                    *by_trait.entry(t.clone()).or_default() += 1;
                                }
                            }
                            _ => *by_trait.entry("none".to_owned()).or_default() += 1,
                        }
                    }
                }
            }
            let alerted = tp + fp;
            let precision = if alerted == 0 {
                1.0
            } else {
                f64::from(tp) / f64::from(alerted)
            };
            let recall = if cases.is_empty() {
                1.0
            } else {
                f64::from(tp) / cases.len() as f64
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            RuleScore {
                rule: rule.to_owned(),
                kind: k.to_owned(),
                cases: cases.len() as u32,
                alerted,
                true_positives: tp,
                false_positives: fp,
                precision,
                recall,
                f1,
                median_ttd_h: (!ttd.is_empty()).then(|| crate::stats::median(&ttd)),
                false_positives_by_trait: by_trait,
            }
        })
        .collect();
    Evaluation {
        scenario: truth.scenario.clone(),
        seed: truth.seed,
        flats: truth.flats,
        days: truth.days,
        rules,
    }
}

impl Evaluation {
    /// The table for a terminal.
    pub fn table(&self) -> String {
        let mut out = format!(
            "scenario {} seed {}: {} flats, {} days\n{:<27} {:>5} {:>7} {:>4} {:>4} {:>9} {:>6} {:>5} {:>9}\n",
            self.scenario, self.seed, self.flats, self.days, "rule", "cases", "alerted", "tp", "fp", "precision", "recall", "f1", "ttd_h_med"
        );
        for r in &self.rules {
            out += &format!(
                "{:<27} {:>5} {:>7} {:>4} {:>4} {:>9.3} {:>6.3} {:>5.3} {:>9}\n",
                r.rule,
                r.cases,
                r.alerted,
                r.true_positives,
                r.false_positives,
                r.precision,
                r.recall,
                r.f1,
                r.median_ttd_h.map_or("-".to_owned(), |h| format!("{h:.1}"))
            );
        }
        for r in self.rules.iter().filter(|r| r.false_positives > 0) {
            let traits: Vec<String> = r
                .false_positives_by_trait
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            out += &format!(
                "false positives of {} by flat trait: {}\n",
                r.rule,
                traits.join(", ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::{AlertState, Evidence, Severity, Timestamp};
    use truth::Case;

    fn alert(rule: &str, entity: &str, ts: i64) -> Alert {
        Alert {
            schema: 1,
            id: format!("{rule}:{entity}:{ts}"),
            rule: rule.into(),
            entity: entity.into(),
            cell: "c".into(),
            site: "s".into(),
            severity: Severity::Minor,
            state: AlertState::Open,
            ts: Timestamp(ts),
            title: String::new(),
            summary: String::new(),
            evidence: Evidence::default(),
        }
    }

    #[test]
    fn precision_recall_and_time_to_detect_per_rule() {
        let case = |e: &str, start| Case {
            kind: kind::GROUP_RENTAL.into(),
            entity: e.into(),
            start_ms: start,
            note: String::new(),
        };
        let truth = GroundTruth {
            cases: vec![
                case("a", 0),
                case("b", 0),
                case("c", 100 * 3_600_000),
                case("d", 0),
            ],
            traits: BTreeMap::from([("x".to_owned(), vec!["night_plateau".to_owned()])]),
            ..GroundTruth::default()
        };
        let alerts = vec![
            alert("group_rental", "a", 10 * 3_600_000),
            alert("group_rental", "a", 50 * 3_600_000),
            alert("group_rental", "b", 30 * 3_600_000),
            // Before its case began: a false positive.
            alert("group_rental", "c", 50 * 3_600_000),
            alert("group_rental", "x", 0),
        ];
        let e = evaluate(&truth, &alerts);
        let g = &e.rules[0];
        assert_eq!(
            (g.cases, g.alerted, g.true_positives, g.false_positives),
            (4, 4, 2, 2)
        );
        assert_eq!(g.precision, 0.5);
        assert_eq!(g.recall, 0.5);
        assert_eq!(g.f1, 0.5);
        assert_eq!(g.median_ttd_h, Some(20.0));
        // Which flats the false positives were: "c" too early (no traits), "x" a night plateau.
        assert_eq!(
            g.false_positives_by_trait,
            BTreeMap::from([
                ("group_rental (too early)".to_owned(), 1),
                ("none".to_owned(), 1),
                ("night_plateau".to_owned(), 1),
            ])
        );
        assert!(e
            .table()
            .contains("false positives of group_rental by flat trait"));
        // A rule with no cases and no alerts scores 1/1, with no time to detect.
        let s = e
            .rules
            .iter()
            .find(|r| r.rule == "indoor_charging_fused")
            .unwrap();
        assert_eq!((s.precision, s.recall, s.median_ttd_h), (1.0, 1.0, None));
        assert!(e.table().contains("group_rental"));
    }
}
