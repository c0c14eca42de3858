//! Several evaluations of one scenario (one per seed) in one table: the
//! spread over seeds is what tells a detector's quality from one lucky or
//! unlucky district, so figures are reported as mean (min–max), never from
//! one seed alone.

use super::{Evaluation, RuleScore};
use serde::{Deserialize, Serialize};

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
    /// Precision over seeds.
    pub precision: Spread,
    /// Recall over seeds.
    pub recall: Spread,
    /// F1 over seeds.
    pub f1: Spread,
    /// Median time to detect over the seeds that detected anything, hours.
    pub median_ttd_h: Option<Spread>,
    /// Longest time to detect in any seed, hours.
    pub max_ttd_h: Option<f64>,
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
            let spread = |f: fn(&RuleScore) -> f64| {
                Spread::of(scores.iter().map(|s| f(s))).expect("the first evaluation has the rule")
            };
            RuleSummary {
                rule: r.rule.clone(),
                unit: r.unit.clone(),
                per_seed: scores
                    .iter()
                    .map(|s| (s.true_positives, s.alerted, s.detected, s.cases))
                    .collect(),
                precision: spread(|s| s.precision),
                recall: spread(|s| s.recall),
                f1: spread(|s| s.f1),
                median_ttd_h: Spread::of(scores.iter().filter_map(|s| s.median_ttd_h)),
                max_ttd_h: scores.iter().filter_map(|s| s.max_ttd_h).reduce(f64::max),
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
            "Scenario {}, seeds {}.\n\n| rule | unit | precision mean (min–max) | recall mean (min–max) | F1 mean (min–max) | median TTD h, mean (min–max) | max TTD h |\n|---|---|---|---|---|---|---|\n",
            self.scenario,
            seeds.join(", ")
        );
        for r in &self.rules {
            out += &format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                r.rule,
                r.unit,
                r.precision.show(2),
                r.recall.show(2),
                r.f1.show(2),
                r.median_ttd_h.map_or("–".to_owned(), |s| s.show(1)),
                r.max_ttd_h.map_or("–".to_owned(), |h| format!("{h:.2}")),
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{evaluate, truth::GroundTruth};
    use super::*;

    fn eval(seed: u64, precision: f64, ttd: Option<f64>) -> Evaluation {
        let mut e = evaluate(&GroundTruth::default(), &[]);
        e.seed = seed;
        e.scenario = "default".into();
        e.rules[0].precision = precision;
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
        assert!((r.precision.mean - 0.9).abs() < 1e-12);
        assert_eq!((r.precision.min, r.precision.max), (0.8, 1.0));
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

    #[test]
    fn two_scenarios_or_none_are_refused() {
        let mut other = eval(2, 1.0, None);
        other.scenario = "small".into();
        let e = summarize(&[eval(1, 1.0, None), other]).unwrap_err();
        assert!(e.contains("small"), "{e}");
        assert!(summarize(&[]).is_err());
    }
}
