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
//!
//! Rules that judge silence at sweeps (`meter_no_data`, `building_no_data`:
//! every 10 minutes of event time by default) cannot see an episode that
//! ends before the next sweep. Their sweep period is part of the scoring
//! window ([`EPISODE_RULES`]): an episode shorter than it that was found
//! counts as found; one that was not is not a miss but is counted apart
//! (`below_sweep`), so the table says how many such episodes there were.
//!
//! Nothing flatters: a rule that raised nothing has no precision (`None`,
//! shown as "—"), a rule without cases no recall; neither is 1.

pub mod report;
pub mod summary;
pub mod svg;
pub mod truth;

use gridwatch_telemetry::Alert;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use truth::{kind, GroundTruth};

/// Which planted kinds each evaluated rule is meant to find. A lift
/// sighting is a hazard whether or not the battery is then charged
/// (docs/detection.md), so `indoor_sighting` is scored against both bikes taken
/// indoors and indoor charging.
pub const RULE_KINDS: &[(&str, &[&str])] = &[
    ("group_rental", &[kind::GROUP_RENTAL]),
    ("group_rental_utility", &[kind::GROUP_RENTAL]),
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
    // A silence is judged at sweeps ([`SWEEP_MS`]), and the sweep that sees
    // a meter back comes before its reading is applied: the grace is one
    // sweep period.
    ("meter_no_data", kind::METER_GAP, SWEEP_MS),
    ("building_no_data", kind::BUILDING_OUTAGE, SWEEP_MS),
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

/// The no-data sweep period (analytics' default, 10 min of event time).
pub const SWEEP_MS: i64 = 10 * MINUTE_MS;

/// Rules judged at sweeps rather than on a reading: an episode of theirs
/// shorter than [`SWEEP_MS`] may end between two sweeps, unseen.
pub const SWEPT_RULES: &[&str] = &["meter_no_data", "building_no_data"];

/// Days in the month of "false alerts per 100 flats per month".
pub const MONTH_DAYS: f64 = 30.0;

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
    /// TP / alerted; `None` when nothing was alerted (a rule that never
    /// fired has no precision, and is not averaged as if it had 1).
    pub precision: Option<f64>,
    /// Detected / cases; `None` when there were no cases to find.
    pub recall: Option<f64>,
    /// Harmonic mean of the two, when both exist.
    pub f1: Option<f64>,
    /// Episodes shorter than the sweep period that were not found: not
    /// counted as cases or misses (the rule could not see them), but shown.
    #[serde(default)]
    pub below_sweep: u32,
    /// Alerts outside every case (per flat: every alert on a flat without
    /// its case, or before it began).
    #[serde(default)]
    pub false_alerts: u32,
    /// `false_alerts` per 100 flats per 30 days: the rate grid staff live
    /// with. `None` when the district has no flats or days.
    #[serde(default)]
    pub false_alerts_per_100_flats_month: Option<f64>,
    /// Median of (first alert − case start) over detected cases, hours.
    pub median_ttd_h: Option<f64>,
    /// 90th percentile (nearest rank) of the same, hours.
    #[serde(default)]
    pub p90_ttd_h: Option<f64>,
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
    /// Missed cases by the case's own traits (`key=value` from the truth's
    /// per-case `traits`; `none` for a case without any): which cases a rule
    /// cannot see (charger type, start hour, household size, …).
    #[serde(default)]
    pub misses_by_trait: BTreeMap<String, u32>,
    /// Every scored case by its own traits, as `misses_by_trait` counts the
    /// missed ones: with both, recall per trait (leaks of 2 L/h and more,
    /// lead-acid chargers, …) instead of a bare count of misses.
    #[serde(default)]
    pub cases_by_trait: BTreeMap<String, u32>,
    /// Missed cases of a flat rule by the traits of their flat (what else
    /// ran there: air-conditioning, a register-only meter, …), as false
    /// positives are counted.
    #[serde(default)]
    pub misses_by_flat_trait: BTreeMap<String, u32>,
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

/// What one rule counted, before the ratios.
#[derive(Default)]
struct Counts {
    cases: usize,
    detected: u32,
    alerted: u32,
    tp: u32,
    below_sweep: u32,
    false_alerts: u32,
    ttd_h: Vec<f64>,
    fp_by_trait: BTreeMap<String, u32>,
    misses_by_trait: BTreeMap<String, u32>,
    cases_by_trait: BTreeMap<String, u32>,
    misses_by_flat_trait: BTreeMap<String, u32>,
}

/// The nearest-rank quantile `q` of `xs` (sorted here), `None` when empty.
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

fn score(truth: &GroundTruth, rule: &str, kind: &str, unit: &str, c: Counts) -> RuleScore {
    let precision = (c.alerted > 0).then(|| f64::from(c.tp) / f64::from(c.alerted));
    let recall = (c.cases > 0).then(|| f64::from(c.detected) / c.cases as f64);
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    let flat_months = f64::from(truth.flats) / 100.0 * f64::from(truth.days) / MONTH_DAYS;
    RuleScore {
        rule: rule.to_owned(),
        kind: kind.to_owned(),
        unit: unit.to_owned(),
        cases: c.cases as u32,
        detected: c.detected,
        alerted: c.alerted,
        true_positives: c.tp,
        false_positives: c.alerted - c.tp,
        precision,
        recall,
        f1,
        below_sweep: c.below_sweep,
        false_alerts: c.false_alerts,
        false_alerts_per_100_flats_month: (flat_months > 0.0)
            .then(|| f64::from(c.false_alerts) / flat_months),
        median_ttd_h: (!c.ttd_h.is_empty()).then(|| crate::stats::median(&c.ttd_h)),
        p90_ttd_h: quantile(&c.ttd_h, 0.9),
        max_ttd_h: c.ttd_h.iter().copied().reduce(f64::max),
        false_positives_by_trait: c.fp_by_trait,
        misses_by_trait: c.misses_by_trait,
        cases_by_trait: c.cases_by_trait,
        misses_by_flat_trait: c.misses_by_flat_trait,
    }
}

fn count_case_traits(case: &truth::Case, by_trait: &mut BTreeMap<String, u32>) {
    if case.traits.is_empty() {
        *by_trait.entry("none".to_owned()).or_default() += 1;
    }
    for (k, v) in &case.traits {
        *by_trait.entry(format!("{k}={v}")).or_default() += 1;
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
    let cases: Vec<&truth::Case> = truth.cases.iter().filter(|c| c.kind == k).collect();
    let mut windows: HashMap<&str, Vec<(i64, i64, usize)>> = HashMap::new();
    for (i, c) in cases.iter().enumerate() {
        let end = c.end_ms.unwrap_or(truth.end_ms).saturating_add(grace_ms);
        windows
            .entry(c.entity.as_str())
            .or_default()
            .push((c.start_ms, end, i));
    }
    let mut first: Vec<Option<i64>> = vec![None; cases.len()];
    let mut n = Counts::default();
    for a in alerts.iter().filter(|a| a.rule == rule) {
        n.alerted += 1;
        let hit = windows.get(a.entity.as_str()).and_then(|w| {
            w.iter()
                .filter(|&&(s, e, _)| (s..=e).contains(&a.ts.0))
                .map(|&(_, _, i)| i)
                .next()
        });
        match hit {
            Some(i) => {
                n.tp += 1;
                let f = first[i].get_or_insert(a.ts.0);
                *f = (*f).min(a.ts.0);
            }
            None => {
                n.false_alerts += 1;
                count_traits(truth, a.entity.as_str(), &mut n.fp_by_trait);
            }
        }
    }
    let swept = SWEPT_RULES.contains(&rule);
    for (c, f) in cases.iter().zip(&first) {
        match f {
            Some(f) => {
                n.cases += 1;
                count_case_traits(c, &mut n.cases_by_trait);
                n.detected += 1;
                n.ttd_h.push((f - c.start_ms) as f64 / 3_600_000.0);
            }
            None if swept && c.end_ms.is_some_and(|e| e - c.start_ms < SWEEP_MS) => {
                n.below_sweep += 1;
            }
            None => {
                n.cases += 1;
                count_case_traits(c, &mut n.cases_by_trait);
                count_case_traits(c, &mut n.misses_by_trait);
            }
        }
    }
    score(truth, rule, k, unit::EPISODE, n)
}

/// Scores `alerts` against `truth`.
pub fn evaluate(truth: &GroundTruth, alerts: &[Alert]) -> Evaluation {
    // Per (rule, flat): the first alert and how many there were.
    let mut first: HashMap<(&str, &str), (i64, u32)> = HashMap::new();
    for a in alerts {
        let e = first
            .entry((a.rule.as_str(), a.entity.as_str()))
            .or_insert((a.ts.0, 0));
        e.0 = e.0.min(a.ts.0);
        e.1 += 1;
    }
    let mut rules: Vec<RuleScore> = RULE_KINDS
        .iter()
        .map(|&(rule, kinds)| {
            let k = kinds.join("+");
            // A flat with cases of two of the kinds counts once, from the earlier.
            let mut cases: BTreeMap<&str, &truth::Case> = BTreeMap::new();
            for c in truth
                .cases
                .iter()
                .filter(|c| kinds.contains(&c.kind.as_str()))
            {
                let s = cases.entry(c.entity.as_str()).or_insert(c);
                if c.start_ms < s.start_ms {
                    *s = c;
                }
            }
            let mut n = Counts {
                cases: cases.len(),
                ..Counts::default()
            };
            let mut found: std::collections::HashSet<&str> = Default::default();
            for (&(r, entity), &(at, count)) in &first {
                if r != rule {
                    continue;
                }
                n.alerted += 1;
                match cases.get(entity) {
                    Some(c) if at >= c.start_ms => {
                        n.tp += 1;
                        found.insert(entity);
                        n.ttd_h.push((at - c.start_ms) as f64 / 3_600_000.0);
                    }
                    early => {
                        n.false_alerts += count;
                        if early.is_some() {
                            *n.fp_by_trait.entry(format!("{k} (too early)")).or_default() += 1;
                        }
                        count_traits(truth, entity, &mut n.fp_by_trait);
                    }
                }
            }
            n.detected = n.tp;
            for (entity, c) in &cases {
                count_case_traits(c, &mut n.cases_by_trait);
                if !found.contains(entity) {
                    count_case_traits(c, &mut n.misses_by_trait);
                    count_traits(truth, entity, &mut n.misses_by_flat_trait);
                }
            }
            score(truth, rule, &k, unit::FLAT, n)
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

#[cfg(test)]
mod tests;
