//! An evaluation for people: a terminal table and Markdown. A figure that
//! does not exist (precision of a rule that never fired, recall without
//! cases) is shown as "—", never as 1.

use super::{Evaluation, RuleScore};
use std::collections::BTreeMap;

/// A ratio with three decimals, or "—" when undefined.
pub fn ratio(x: Option<f64>) -> String {
    x.map_or("—".to_owned(), |x| format!("{x:.3}"))
}

/// Hours with two decimals, or "—".
pub fn hours(h: Option<f64>) -> String {
    h.map_or("—".to_owned(), |h| format!("{h:.2}"))
}

/// `trait missed of cases`, for misses beside every case's traits.
pub(crate) fn of_cases(misses: &BTreeMap<String, u32>, cases: &BTreeMap<String, u32>) -> String {
    misses
        .iter()
        .map(|(t, n)| match cases.get(t) {
            Some(all) => format!("{t} {n} of {all}"),
            None => format!("{t} {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `trait count, …`, in the traits' order.
pub(crate) fn traits(by: &BTreeMap<String, u32>) -> String {
    by.iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rate(r: &RuleScore) -> String {
    r.false_alerts_per_100_flats_month
        .map_or("—".to_owned(), |x| format!("{x:.2}"))
}

impl Evaluation {
    /// The table for a terminal.
    pub fn table(&self) -> String {
        let mut out = format!(
            "scenario {} seed {}: {} flats, {} days (per flat: tp/fp count flats; per episode: alerts; — = undefined)\n{:<31} {:<7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>9} {:>6} {:>5} {:>9} {:>9} {:>9} {:>10}\n",
            self.scenario, self.seed, self.flats, self.days, "rule", "unit", "cases", "found", "alerted", "tp", "fp", "precision", "recall", "f1", "ttd_h_med", "ttd_h_p90", "ttd_h_max", "fa/100fl/mo"
        );
        for r in &self.rules {
            out += &format!(
                "{:<31} {:<7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>9} {:>6} {:>5} {:>9} {:>9} {:>9} {:>10}\n",
                r.rule,
                r.unit,
                r.cases,
                r.detected,
                r.alerted,
                r.true_positives,
                r.false_positives,
                ratio(r.precision),
                ratio(r.recall),
                ratio(r.f1),
                hours(r.median_ttd_h),
                hours(r.p90_ttd_h),
                hours(r.max_ttd_h),
                rate(r),
            );
        }
        out += &self.breakdowns("");
        out
    }

    /// The false positives, misses and unseen short episodes of each rule
    /// that has any, one line each (`prefix` before each line).
    fn breakdowns(&self, prefix: &str) -> String {
        let mut out = String::new();
        for r in &self.rules {
            if r.false_positives > 0 {
                out += &format!(
                    "{prefix}false positives of {} by flat trait: {}\n",
                    r.rule,
                    traits(&r.false_positives_by_trait)
                );
            }
            if !r.misses_by_trait.is_empty() {
                out += &format!(
                    "{prefix}misses of {} by case trait: {}\n",
                    r.rule,
                    of_cases(&r.misses_by_trait, &r.cases_by_trait)
                );
            }
            if !r.misses_by_flat_trait.is_empty() {
                out += &format!(
                    "{prefix}misses of {} by flat trait: {}\n",
                    r.rule,
                    traits(&r.misses_by_flat_trait)
                );
            }
            if r.below_sweep > 0 {
                out += &format!(
                    "{prefix}{} episode(s) of {} shorter than the sweep period, not found and not counted\n",
                    r.below_sweep, r.rule
                );
            }
        }
        out
    }

    /// The evaluation as Markdown: one table, then the breakdowns.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Scenario {}, seed {}: {} flats, {} days. — = undefined (no alerts: no precision; no cases: no recall).\n\n| rule | unit | cases | found | alerted | TP | FP | precision | recall | F1 | TTD h median | p90 | max | false alerts /100 flats/month |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            self.scenario, self.seed, self.flats, self.days
        );
        for r in &self.rules {
            out += &format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.rule,
                r.unit,
                r.cases,
                r.detected,
                r.alerted,
                r.true_positives,
                r.false_positives,
                ratio(r.precision),
                ratio(r.recall),
                ratio(r.f1),
                hours(r.median_ttd_h),
                hours(r.p90_ttd_h),
                hours(r.max_ttd_h),
                rate(r),
            );
        }
        let b = self.breakdowns("- ");
        if !b.is_empty() {
            out += "\n";
            out += &b;
        }
        out
    }
}
