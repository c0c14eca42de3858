//! Evaluation: the alerts of a replay against a district's ground truth.
//!
//! Per detector (rule), at the level of flats: an alerted flat is a true
//! positive when the truth has a case of the kind that rule looks for on
//! that flat and the first alert came no earlier than the case began; an
//! alerted flat without such a case (or alerted before it began) is a false
//! positive; a case whose flat was never alerted is a miss. Time to detect is
//! the first alert's event time minus the case's start. The table maps each
//! rule to the case kinds it should find ([`RULE_KINDS`]).
//!
//! Faults and gaps come and go many times on one entity, so rules that find
//! them are scored per *episode* ([`EPISODE_RULES`]): a case (with an end) is
//! detected when an alert of its rule on its entity falls between its start
//! and its end plus the rule's grace; an alert inside no such window is a
//! false positive. Precision is then over alerts, recall over episodes, and
//! time to detect is measured from the instant the rule was due (the case's
//! start), so its maximum says whether every episode was caught in time.

pub mod summary;
pub mod truth;

use gridwatch_telemetry::Alert;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use truth::{kind, GroundTruth};

/// Which planted kinds each evaluated rule is meant to find. A lift
/// sighting is a hazard whether or not the battery is then charged
/// (DETECTION.md), so `indoor_sighting` is scored against both bikes taken
/// indoors and indoor charging.
pub const RULE_KINDS: &[(&str, &[&str])] = &[
    ("group_rental", &[kind::GROUP_RENTAL]),
    ("indoor_charging_signature", &[kind::INDOOR_CHARGING]),
    (
        "indoor_sighting",
        &[kind::INDOOR_CHARGING, kind::BIKE_INDOORS],
    ),
    ("indoor_charging_fused", &[kind::INDOOR_CHARGING]),
    ("night_water_leak", &[kind::LEAK]),
    ("three_in_one", &[kind::THREE_IN_ONE]),
];

/// Rules scored per episode: (rule, case kind, grace in ms after the
/// episode's end during which an alert still counts — a silence is only
/// known to be one once the next reading is overdue).
pub const EPISODE_RULES: &[(&str, &str, i64)] = &[
    // A silence is judged at sweeps (10 min of event time by default), and
    // the sweep that sees a meter back comes before its reading is applied.
    ("meter_no_data", kind::METER_GAP, 10 * MINUTE_MS),
    ("building_no_data", kind::BUILDING_OUTAGE, 10 * MINUTE_MS),
    // Both fire on a reading: at most one interval (an hour) late.
    ("meter_stuck", kind::METER_STUCK, 60 * MINUTE_MS),
    ("meter_reversed", kind::METER_REVERSED, 60 * MINUTE_MS),
    ("socket_overcurrent", kind::PILE_OVERCURRENT, PILE_GRACE_MS),
    ("socket_overpower", kind::PILE_OVERPOWER, PILE_GRACE_MS),
    (
        "socket_overtemperature",
        kind::PILE_OVERTEMPERATURE,
        PILE_GRACE_MS,
    ),
    (
        "socket_residual_current",
        kind::PILE_RESIDUAL_CURRENT,
        PILE_GRACE_MS,
    ),
    (
        "socket_nonstandard_charger",
        kind::PILE_NONSTANDARD_CHARGER,
        PILE_GRACE_MS,
    ),
    ("socket_not_full_after", kind::PILE_NOT_FULL, PILE_GRACE_MS),
    (
        "socket_session_over_cap",
        kind::PILE_SESSION_OVER_CAP,
        PILE_GRACE_MS,
    ),
    (
        "socket_forced_stop_missed",
        kind::PILE_FORCED_STOP_MISSED,
        PILE_GRACE_MS,
    ),
    (
        "socket_live_after_full",
        kind::PILE_LIVE_AFTER_FULL,
        PILE_GRACE_MS,
    ),
    ("socket_idle_live", kind::PILE_IDLE_LIVE, PILE_GRACE_MS),
    (
        "socket_taper_reversal",
        kind::PILE_TAPER_REVERSAL,
        PILE_GRACE_MS,
    ),
    ("socket_bulk_stuck", kind::PILE_BULK_STUCK, PILE_GRACE_MS),
    ("pile_overload", kind::PILE_OVERLOAD, PILE_GRACE_MS),
    (
        "pile_session_over_limit",
        kind::PILE_SESSION_OVER_LIMIT,
        PILE_GRACE_MS,
    ),
    (
        "socket_abnormal_session_energy",
        kind::PILE_ABNORMAL_SESSION_ENERGY,
        PILE_GRACE_MS,
    ),
];

/// Grace for pile faults: one sample period of a live socket (60 s). A
/// condition's end is only seen at the next sample; a session-start fault
/// (over the pile limit) is an instant whose alert comes with that sample.
pub const PILE_GRACE_MS: i64 = 60_000;

const MINUTE_MS: i64 = 60_000;

/// How a rule is scored.
pub mod unit {
    /// One case per flat, found once (precision over flats).
    pub const FLAT: &str = "flat";
    /// Many episodes per entity, each to be found (precision over alerts).
    pub const EPISODE: &str = "episode";
}

/// One rule's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleScore {
    /// The rule.
    pub rule: String,
    /// The case kind it is scored against.
    pub kind: String,
    /// [`unit::FLAT`] or [`unit::EPISODE`]: what `alerted`, `true_positives`
    /// and `false_positives` count (flats, or alerts).
    #[serde(default = "flat_unit")]
    pub unit: String,
    /// Planted cases of that kind.
    pub cases: u32,
    /// Cases found (per flat: equal to `true_positives`).
    #[serde(default)]
    pub detected: u32,
    /// Flats alerted (per episode: alerts).
    pub alerted: u32,
    /// Alerted flats with a case that had begun (per episode: alerts inside
    /// an episode's window).
    pub true_positives: u32,
    /// Alerted flats without one (per episode: alerts outside every window).
    pub false_positives: u32,
    /// TP / alerted (1 when nothing was alerted).
    pub precision: f64,
    /// Detected / cases (1 when there were no cases).
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
    /// Median of (first alert − case start) over detected cases, hours.
    pub median_ttd_h: Option<f64>,
    /// The longest of those, hours: for a pile fault, whether every episode
    /// was caught within one sample period of its rule being due.
    #[serde(default)]
    pub max_ttd_h: Option<f64>,
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
    /// One entry per rule of [`RULE_KINDS`], then of [`EPISODE_RULES`].
    pub rules: Vec<RuleScore>,
}

fn flat_unit() -> String {
    unit::FLAT.to_owned()
}

fn score(
    rule: &str,
    kind: &str,
    unit: &str,
    (cases, detected, alerted, tp): (usize, u32, u32, u32),
    ttd: &[f64],
    by_trait: BTreeMap<String, u32>,
) -> RuleScore {
    let precision = if alerted == 0 {
        1.0
    } else {
        f64::from(tp) / f64::from(alerted)
    };
    let recall = if cases == 0 {
        1.0
    } else {
        f64::from(detected) / cases as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    RuleScore {
        rule: rule.to_owned(),
        kind: kind.to_owned(),
        unit: unit.to_owned(),
        cases: cases as u32,
        detected,
        alerted,
        true_positives: tp,
        false_positives: alerted - tp,
        precision,
        recall,
        f1,
        median_ttd_h: (!ttd.is_empty()).then(|| crate::stats::median(ttd)),
        max_ttd_h: ttd.iter().copied().reduce(f64::max),
        false_positives_by_trait: by_trait,
    }
}

fn count_traits(truth: &GroundTruth, entity: &str, by_trait: &mut BTreeMap<String, u32>) {
    match truth.traits.get(entity) {
        Some(traits) if !traits.is_empty() => {
            for t in traits {
                *by_trait.entry(t.clone()).or_default() += 1;
            }
        }
        _ => *by_trait.entry("none".to_owned()).or_default() += 1,
    }
}

/// Scores one episode rule: every alert against the windows of its entity.
fn score_episodes(
    truth: &GroundTruth,
    alerts: &[Alert],
    rule: &str,
    k: &str,
    grace_ms: i64,
) -> RuleScore {
    let mut windows: HashMap<&str, Vec<(i64, i64, usize)>> = HashMap::new();
    let mut n = 0usize;
    for c in truth.cases.iter().filter(|c| c.kind == k) {
        let end = c.end_ms.unwrap_or(truth.end_ms).saturating_add(grace_ms);
        windows
            .entry(c.entity.as_str())
            .or_default()
            .push((c.start_ms, end, n));
        n += 1;
    }
    let mut first: Vec<Option<i64>> = vec![None; n];
    let starts: Vec<i64> = truth
        .cases
        .iter()
        .filter(|c| c.kind == k)
        .map(|c| c.start_ms)
        .collect();
    let (mut alerted, mut tp) = (0u32, 0u32);
    let mut by_trait: BTreeMap<String, u32> = BTreeMap::new();
    for a in alerts.iter().filter(|a| a.rule == rule) {
        alerted += 1;
        let hit = windows.get(a.entity.as_str()).and_then(|w| {
            w.iter()
                .filter(|&&(s, e, _)| (s..=e).contains(&a.ts.0))
                .map(|&(_, _, i)| i)
                .next()
        });
        match hit {
            Some(i) => {
                tp += 1;
                let f = first[i].get_or_insert(a.ts.0);
                *f = (*f).min(a.ts.0);
            }
            None => count_traits(truth, a.entity.as_str(), &mut by_trait),
        }
    }
    let ttd: Vec<f64> = first
        .iter()
        .zip(&starts)
        .filter_map(|(f, s)| f.map(|f| (f - s) as f64 / 3_600_000.0))
        .collect();
    let detected = ttd.len() as u32;
    score(
        rule,
        k,
        unit::EPISODE,
        (n, detected, alerted, tp),
        &ttd,
        by_trait,
    )
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
    let mut rules: Vec<RuleScore> = RULE_KINDS
        .iter()
        .map(|&(rule, kinds)| {
            let k = kinds.join("+");
            // A flat with cases of two of the kinds counts once, from the earlier.
            let mut cases: BTreeMap<&str, i64> = BTreeMap::new();
            for c in truth
                .cases
                .iter()
                .filter(|c| kinds.contains(&c.kind.as_str()))
            {
                let s = cases.entry(c.entity.as_str()).or_insert(c.start_ms);
                *s = (*s).min(c.start_ms);
            }
            let mut tp = 0u32;
            let mut alerted = 0u32;
            let mut ttd: Vec<f64> = Vec::new();
            let mut by_trait: BTreeMap<String, u32> = BTreeMap::new();
            for (&(r, entity), &at) in &first {
                if r != rule {
                    continue;
                }
                alerted += 1;
                match cases.get(entity) {
                    Some(&start) if at >= start => {
                        tp += 1;
                        ttd.push((at - start) as f64 / 3_600_000.0);
                    }
                    early => {
                        if early.is_some() {
                            *by_trait.entry(format!("{k} (too early)")).or_default() += 1;
                        }
                        count_traits(truth, entity, &mut by_trait);
                    }
                }
            }
            score(
                rule,
                &k,
                unit::FLAT,
                (cases.len(), tp, alerted, tp),
                &ttd,
                by_trait,
            )
        })
        .collect();
    rules.extend(
        EPISODE_RULES
            .iter()
            .map(|&(rule, k, grace)| score_episodes(truth, alerts, rule, k, grace)),
    );
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
            "scenario {} seed {}: {} flats, {} days (per flat: tp/fp count flats; per episode: alerts)\n{:<31} {:<7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>9} {:>6} {:>5} {:>9} {:>9}\n",
            self.scenario, self.seed, self.flats, self.days, "rule", "unit", "cases", "found", "alerted", "tp", "fp", "precision", "recall", "f1", "ttd_h_med", "ttd_h_max"
        );
        let hours = |h: Option<f64>| h.map_or("-".to_owned(), |h| format!("{h:.2}"));
        for r in &self.rules {
            out += &format!(
                "{:<31} {:<7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>9.3} {:>6.3} {:>5.3} {:>9} {:>9}\n",
                r.rule,
                r.unit,
                r.cases,
                r.detected,
                r.alerted,
                r.true_positives,
                r.false_positives,
                r.precision,
                r.recall,
                r.f1,
                hours(r.median_ttd_h),
                hours(r.max_ttd_h),
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

    fn case(kind: &str, entity: &str, start_ms: i64, end_ms: Option<i64>) -> Case {
        Case {
            kind: kind.into(),
            entity: entity.into(),
            start_ms,
            end_ms,
            note: String::new(),
        }
    }

    /// The tables name rules by string: a detector's rule renamed without
    /// them would silently score nothing.
    #[test]
    fn every_scored_rule_is_one_a_detector_raises() {
        use crate::detect::*;
        let mut raised: Vec<&str> = socket_session::RULES.to_vec();
        raised.extend([
            socket_safety::RULE_OVERCURRENT,
            socket_safety::RULE_OVERPOWER,
            socket_safety::RULE_OVERTEMPERATURE,
            meter_health::RULE_NO_DATA,
            meter_health::RULE_BUILDING_NO_DATA,
            meter_health::RULE_STUCK,
            meter_health::RULE_REVERSED,
            indoor_charging::RULE_SIGHTING,
            indoor_charging::RULE_SIGNATURE,
            indoor_charging::RULE_FUSED,
            group_rental::RULE_GROUP_RENTAL,
            three_in_one::RULE_THREE_IN_ONE,
            night_water::RULE_LEAK,
        ]);
        let scored = RULE_KINDS
            .iter()
            .map(|r| r.0)
            .chain(EPISODE_RULES.iter().map(|r| r.0));
        for rule in scored {
            assert!(
                raised.contains(&rule),
                "{rule} is scored but no detector raises it"
            );
        }
    }

    #[test]
    fn precision_recall_and_time_to_detect_per_rule() {
        let case = |e: &str, start| case(kind::GROUP_RENTAL, e, start, None);
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

    #[test]
    fn a_lift_sighting_is_scored_against_bikes_indoors_and_indoor_charging() {
        let case = |k: &str, e: &str, start| case(k, e, start, None);
        let truth = GroundTruth {
            cases: vec![
                case(kind::BIKE_INDOORS, "a", 10),
                case(kind::INDOOR_CHARGING, "b", 10),
                // Both on one flat: one case, from the earlier start.
                case(kind::INDOOR_CHARGING, "c", 50),
                case(kind::BIKE_INDOORS, "c", 20),
            ],
            ..GroundTruth::default()
        };
        let alerts = vec![
            alert("indoor_sighting", "a", 10),
            alert("indoor_sighting", "c", 30),
            alert("indoor_sighting", "z", 30),
            alert("indoor_charging_signature", "a", 10),
        ];
        let e = evaluate(&truth, &alerts);
        let s = e
            .rules
            .iter()
            .find(|r| r.rule == "indoor_sighting")
            .unwrap();
        assert_eq!(s.kind, "indoor_charging+bike_indoors");
        assert_eq!(
            (s.cases, s.alerted, s.true_positives, s.false_positives),
            (3, 3, 2, 1)
        );
        // The signature rule looks for charging only: "a" is a false positive.
        let g = e
            .rules
            .iter()
            .find(|r| r.rule == "indoor_charging_signature")
            .unwrap();
        assert_eq!((g.cases, g.true_positives, g.false_positives), (2, 0, 1));
    }

    #[test]
    fn episodes_are_found_inside_their_window_and_alerts_outside_are_false() {
        let h = 3_600_000;
        let ep = |e: &str, start: i64, end: i64| case("meter_gap", e, start, Some(end));
        let truth = GroundTruth {
            end_ms: 100 * h,
            cases: vec![
                ep("m1", 10 * h, 12 * h),
                ep("m1", 50 * h, 51 * h),
                ep("m2", 5 * h, 6 * h),
            ],
            ..GroundTruth::default()
        };
        let alerts = vec![
            // First episode of m1, twice: found once, 30 min after it was due.
            alert("meter_no_data", "m1", 10 * h + h / 2),
            alert("meter_no_data", "m1", 11 * h),
            // Within the grace after m1's second episode ended.
            alert("meter_no_data", "m1", 51 * h + h / 4),
            // Outside every window: a false positive, as is the other entity.
            alert("meter_no_data", "m1", 30 * h),
            alert("meter_no_data", "m3", 5 * h),
            // Another rule is not counted.
            alert("meter_stuck", "m2", 5 * h),
        ];
        let s = score_episodes(&truth, &alerts, "meter_no_data", "meter_gap", h / 2);
        assert_eq!(s.unit, unit::EPISODE);
        assert_eq!(
            (
                s.cases,
                s.detected,
                s.alerted,
                s.true_positives,
                s.false_positives
            ),
            (3, 2, 5, 3, 2)
        );
        assert_eq!(s.precision, 0.6);
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.median_ttd_h, Some(0.875));
        assert_eq!(s.max_ttd_h, Some(1.25));
        assert_eq!(
            s.false_positives_by_trait,
            BTreeMap::from([("none".to_owned(), 2)])
        );
    }
}
