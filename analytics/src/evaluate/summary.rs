//! Several evaluations of one scenario (one per seed) in one table: the
//! spread over seeds is what tells a detector's quality from one lucky or
//! unlucky district, so figures are reported as mean (min–max), never from
//! one seed alone. A figure undefined on a seed (precision of a rule that
//! did not fire there, recall without cases) is left out of its mean, and
//! the seeds where it was undefined are counted and shown.

use super::{Evaluation, RuleScore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Mean, smallest and largest of one figure over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        Some(Self {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    fn show(&self, digits: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.mean,
            self.min,
            self.max,
            d = digits
        )
    }
}

/// One rule over all seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// The rule.
    pub rule: String,
    /// `flat` or `episode` (see [`super::unit`]).
    pub unit: String,
    /// Per seed, in the order given: (true positives, alerted, cases found, cases).
    pub per_seed: Vec<(u32, u32, u32, u32)>,
    /// Precision per seed (`None` where the rule raised nothing).
    pub precision_per_seed: Vec<Option<f64>>,
    /// Recall per seed (`None` where there were no cases).
    pub recall_per_seed: Vec<Option<f64>>,
    /// False alerts per 100 flats per month, per seed.
    pub false_alerts_per_100_flats_month_per_seed: Vec<Option<f64>>,
    /// Precision over the seeds where it is defined.
    pub precision: Option<Spread>,
    /// Seeds where precision was undefined (nothing alerted).
    pub precision_undefined: u32,
    /// Recall over the seeds where it is defined.
    pub recall: Option<Spread>,
    /// Seeds where recall was undefined (no cases).
    pub recall_undefined: u32,
    /// F1 over the seeds where it is defined.
    pub f1: Option<Spread>,
    /// False alerts per 100 flats per month over seeds.
    pub false_alerts_per_100_flats_month: Option<Spread>,
    /// Median time to detect over the seeds that detected anything, hours.
    pub median_ttd_h: Option<Spread>,
    /// 90th percentile time to detect over those seeds, hours.
    pub p90_ttd_h: Option<Spread>,
    /// Longest time to detect in any seed, hours.
    pub max_ttd_h: Option<f64>,
    /// Misses by case trait, summed over seeds.
    pub misses_by_trait: BTreeMap<String, u32>,
    /// Every case by case trait, summed over seeds (recall per trait).
    #[serde(default)]
    pub cases_by_trait: BTreeMap<String, u32>,
    /// Misses of a flat rule by the traits of their flat, summed over seeds.
    #[serde(default)]
    pub misses_by_flat_trait: BTreeMap<String, u32>,
    /// False positives by flat trait, summed over seeds.
    pub false_positives_by_trait: BTreeMap<String, u32>,
}

fn show(s: Option<Spread>, undefined: u32, seeds: usize, digits: usize) -> String {
    match s {
        None => "—".to_owned(),
        Some(s) if undefined > 0 => format!(
            "{} ({undefined} of {seeds} seeds undefined)",
            s.show(digits)
        ),
        Some(s) => s.show(digits),
    }
}

fn add(into: &mut BTreeMap<String, u32>, from: &BTreeMap<String, u32>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// The summary of a scenario over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// The seeds, in the order given.
    pub seeds: Vec<u64>,
    /// One entry per rule of the first evaluation.
    pub rules: Vec<RuleSummary>,
}

/// Summarises evaluations of one scenario; refuses a mix of scenarios (their
/// figures do not average) or an empty list.
pub fn summarize(evals: &[Evaluation]) -> Result<Summary, String> {
    let first = evals.first().ok_or("no evaluations to summarise")?;
    if let Some(e) = evals.iter().find(|e| e.scenario != first.scenario) {
        return Err(format!(
            "evaluations of two scenarios ({} and {}, seed {}) do not average",
            first.scenario, e.scenario, e.seed
        ));
    }
    let rules = first
        .rules
        .iter()
        .map(|r| {
            let scores: Vec<&RuleScore> = evals
                .iter()
                .filter_map(|e| e.rules.iter().find(|x| x.rule == r.rule))
                .collect();
            let defined = |f: fn(&RuleScore) -> Option<f64>| {
                let v: Vec<Option<f64>> = scores.iter().map(|s| f(s)).collect();
                let undefined = v.iter().filter(|x| x.is_none()).count() as u32;
                (Spread::of(v.iter().flatten().copied()), undefined, v)
            };
            let (precision, precision_undefined, precision_per_seed) = defined(|s| s.precision);
            let (recall, recall_undefined, recall_per_seed) = defined(|s| s.recall);
            let (fa, _, fa_per_seed) = defined(|s| s.false_alerts_per_100_flats_month);
            let mut misses_by_trait = BTreeMap::new();
            let mut cases_by_trait = BTreeMap::new();
            let mut misses_by_flat_trait = BTreeMap::new();
            let mut false_positives_by_trait = BTreeMap::new();
            for s in &scores {
                add(&mut misses_by_trait, &s.misses_by_trait);
                add(&mut cases_by_trait, &s.cases_by_trait);
                add(&mut misses_by_flat_trait, &s.misses_by_flat_trait);
                add(&mut false_positives_by_trait, &s.false_positives_by_trait);
            }
            RuleSummary {
                rule: r.rule.clone(),
                unit: r.unit.clone(),
                per_seed: scores
                    .iter()
                    .map(|s| (s.true_positives, s.alerted, s.detected, s.cases))
                    .collect(),
                precision_per_seed,
                recall_per_seed,
                false_alerts_per_100_flats_month_per_seed: fa_per_seed,
                precision,
                precision_undefined,
                recall,
                recall_undefined,
                f1: Spread::of(scores.iter().filter_map(|s| s.f1)),
                false_alerts_per_100_flats_month: fa,
                median_ttd_h: Spread::of(scores.iter().filter_map(|s| s.median_ttd_h)),
                p90_ttd_h: Spread::of(scores.iter().filter_map(|s| s.p90_ttd_h)),
                max_ttd_h: scores.iter().filter_map(|s| s.max_ttd_h).reduce(f64::max),
                misses_by_trait,
                cases_by_trait,
                misses_by_flat_trait,
                false_positives_by_trait,
            }
        })
        .collect();
    Ok(Summary {
        scenario: first.scenario.clone(),
        seeds: evals.iter().map(|e| e.seed).collect(),
        rules,
    })
}

impl Summary {
    /// Two Markdown tables, as docs/detection-evaluation.md shows them: the
    /// spread per rule, then true positives / alerted / found / cases per seed.
    pub fn markdown(&self) -> String {
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let mut out = format!(
            "Scenario {}, seeds {}. Undefined figures (no alerts: no precision; no cases: no recall) are left out of the means and counted; — = undefined on every seed.\n\n| rule | unit | precision mean (min–max) | recall mean (min–max) | F1 mean (min–max) | TTD h median, mean (min–max) | TTD h p90, mean (min–max) | max TTD h | false alerts /100 flats/month |\n|---|---|---|---|---|---|---|---|---|\n",
            self.scenario,
            seeds.join(", ")
        );
        let n = self.seeds.len();
        for r in &self.rules {
            out += &format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.rule,
                r.unit,
                show(r.precision, r.precision_undefined, n, 2),
                show(r.recall, r.recall_undefined, n, 2),
                show(r.f1, 0, n, 2),
                show(r.median_ttd_h, 0, n, 1),
                show(r.p90_ttd_h, 0, n, 1),
                r.max_ttd_h.map_or("—".to_owned(), |h| format!("{h:.2}")),
                show(r.false_alerts_per_100_flats_month, 0, n, 2),
            );
        }
        out += &format!(
            "\nTP / alerted / found / cases per seed (per flat: flats; per episode: alerts, then episodes):\n\n| rule | {} |\n|---|{}\n",
            seeds
                .iter()
                .map(|s| format!("seed {s}"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(seeds.len())
        );
        for r in &self.rules {
            let cells: Vec<String> = r
                .per_seed
                .iter()
                .map(|(tp, alerted, found, cases)| format!("{tp} / {alerted} / {found} / {cases}"))
                .collect();
            out += &format!("| `{}` | {} |\n", r.rule, cells.join(" | "));
        }
        let mut lines = String::new();
        for r in &self.rules {
            if !r.misses_by_trait.is_empty() {
                lines += &format!(
                    "- misses of `{}` by case trait: {}\n",
                    r.rule,
                    super::report::of_cases(&r.misses_by_trait, &r.cases_by_trait)
                );
            }
            if !r.misses_by_flat_trait.is_empty() {
                lines += &format!(
                    "- misses of `{}` by flat trait: {}\n",
                    r.rule,
                    super::report::traits(&r.misses_by_flat_trait)
                );
            }
            if !r.false_positives_by_trait.is_empty() {
                lines += &format!(
                    "- false positives of `{}` by flat trait: {}\n",
                    r.rule,
                    super::report::traits(&r.false_positives_by_trait)
                );
            }
        }
        if !lines.is_empty() {
            out += "\nOver all seeds:\n\n";
            out += &lines;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{evaluate, truth::GroundTruth};
    use super::*;

    fn eval(seed: u64, precision: impl Into<Option<f64>>, ttd: Option<f64>) -> Evaluation {
        let mut e = evaluate(&GroundTruth::default(), &[]);
        e.seed = seed;
        e.scenario = "default".into();
        e.rules[0].precision = precision.into();
        e.rules[0].median_ttd_h = ttd;
        e.rules[0].max_ttd_h = ttd.map(|t| t * 2.0);
        e
    }

    #[test]
    fn figures_are_averaged_with_their_range() {
        let s = summarize(&[
            eval(1, 0.8, Some(10.0)),
            eval(2, 1.0, None),
            eval(3, 0.9, Some(20.0)),
        ])
        .unwrap();
        let r = &s.rules[0];
        let p = r.precision.unwrap();
        assert!((p.mean - 0.9).abs() < 1e-12);
        assert_eq!((p.min, p.max), (0.8, 1.0));
        // Time to detect over the seeds that detected something.
        assert_eq!(r.median_ttd_h.map(|m| m.mean), Some(15.0));
        assert_eq!(r.max_ttd_h, Some(40.0));
        assert_eq!(s.seeds, [1, 2, 3]);
        let md = s.markdown();
        assert!(
            md.contains("| `group_rental` | flat | 0.90 (0.80–1.00) |"),
            "{md}"
        );
        assert!(md.contains("seed 3"), "{md}");
    }

    /// Misses and cases by trait add up over seeds, and the Markdown gives
    /// recall per trait as misses of cases.
    #[test]
    fn misses_by_trait_add_up_with_their_cases() {
        let with = |seed, missed: u32, all: u32| {
            let mut e = eval(seed, 1.0, None);
            e.rules[0].misses_by_trait = BTreeMap::from([("size=big".to_owned(), missed)]);
            e.rules[0].cases_by_trait = BTreeMap::from([("size=big".to_owned(), all)]);
            e.rules[0].misses_by_flat_trait = BTreeMap::from([("heating_ac".to_owned(), missed)]);
            e
        };
        let s = summarize(&[with(1, 1, 4), with(2, 2, 3)]).unwrap();
        let md = s.markdown();
        assert!(
            md.contains("- misses of `group_rental` by case trait: size=big 3 of 7"),
            "{md}"
        );
        assert!(
            md.contains("- misses of `group_rental` by flat trait: heating_ac 3"),
            "{md}"
        );
    }

    /// A seed where the rule raised nothing has no precision: it must not
    /// count as 1 in the mean (0.73 and nothing is not 0.87), and the table
    /// says on how many seeds it was undefined.
    #[test]
    fn undefined_precision_is_left_out_and_counted() {
        let s = summarize(&[
            eval(1, 0.73, None),
            eval(2, None, None),
            eval(3, 0.73, None),
        ])
        .unwrap();
        let r = &s.rules[0];
        assert_eq!(r.precision.map(|p| p.mean), Some(0.73));
        assert_eq!(r.precision_undefined, 1);
        assert_eq!(r.precision_per_seed, [Some(0.73), None, Some(0.73)]);
        // No cases anywhere: recall is undefined on every seed, shown as —.
        assert_eq!((r.recall, r.recall_undefined), (None, 3));
        let md = s.markdown();
        assert!(
            md.contains(
                "| `group_rental` | flat | 0.73 (0.73–0.73) (1 of 3 seeds undefined) | — |"
            ),
            "{md}"
        );
        let all_silent = summarize(&[eval(1, None, None)]).unwrap();
        assert!(all_silent
            .markdown()
            .contains("| `group_rental` | flat | — | — |"));
    }

    #[test]
    fn two_scenarios_or_none_are_refused() {
        let mut other = eval(2, 1.0, None);
        other.scenario = "small".into();
        let e = summarize(&[eval(1, 1.0, None), other]).unwrap_err();
        assert!(e.contains("small"), "{e}");
        assert!(summarize(&[]).is_err());
    }
}
