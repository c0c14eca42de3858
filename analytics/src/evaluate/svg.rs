//! One SVG chart per rule, written by hand (no plotting dependency): rows of
//! horizontal bars in labelled groups, each group scaled to its own largest
//! value, with the figure written beside each bar. A figure that does not
//! exist is a row with no bar and "—", so an empty chart cannot pass for a
//! good one.

use super::report::{hours, ratio};
use super::summary::RuleSummary;
use super::RuleScore;
use std::fmt::Write as _;

/// One bar: its label, its length (`None`: undefined, no bar) and the text
/// written after it.
pub struct Bar {
    /// What the bar measures.
    pub label: String,
    /// Its value, for the length.
    pub value: Option<f64>,
    /// The figure as shown.
    pub text: String,
}

/// A titled group of bars sharing one scale.
pub struct Group {
    /// The group's heading.
    pub title: String,
    /// Its bars.
    pub bars: Vec<Bar>,
}

const ROW: usize = 18;
const LABEL_W: usize = 260;
const BAR_W: usize = 300;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Draws `groups` under `title` and `subtitle`.
pub fn chart(title: &str, subtitle: &str, groups: &[Group]) -> String {
    let rows: usize = groups.iter().map(|g| g.bars.len().max(1) + 1).sum();
    let height = 50 + rows * ROW + 10;
    let width = LABEL_W + BAR_W + 120;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{}</text>\n<text x=\"8\" y=\"36\" fill=\"#444\">{}</text>\n",
        escape(title),
        escape(subtitle)
    );
    let mut y = 50;
    for g in groups {
        y += ROW;
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"{}\" font-weight=\"bold\">{}</text>",
            y - 4,
            escape(&g.title)
        );
        if g.bars.is_empty() {
            y += ROW;
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{}\" fill=\"#888\">none</text>",
                LABEL_W,
                y - 4
            );
            continue;
        }
        let max = g
            .bars
            .iter()
            .filter_map(|b| b.value)
            .fold(0.0_f64, f64::max);
        for b in &g.bars {
            y += ROW;
            let _ = writeln!(
                out,
                "<text x=\"16\" y=\"{}\">{}</text>",
                y - 4,
                escape(&b.label)
            );
            let len = match b.value {
                Some(v) if max > 0.0 => (v / max * BAR_W as f64).max(1.0),
                _ => 0.0,
            };
            if len > 0.0 {
                let _ = writeln!(
                    out,
                    "<rect x=\"{LABEL_W}\" y=\"{}\" width=\"{len:.1}\" height=\"{}\" fill=\"#4a7bb7\"/>",
                    y - ROW + 3,
                    ROW - 6
                );
            }
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{}\">{}</text>",
                LABEL_W as f64 + len + 6.0,
                y - 4,
                escape(&b.text)
            );
        }
    }
    out += "</svg>\n";
    out
}

fn bar(label: impl Into<String>, value: Option<f64>, text: String) -> Bar {
    Bar {
        label: label.into(),
        value,
        text,
    }
}

fn counts(by: &std::collections::BTreeMap<String, u32>) -> Vec<Bar> {
    by.iter()
        .map(|(t, n)| bar(t.clone(), Some(f64::from(*n)), n.to_string()))
        .collect()
}

/// The chart of one rule of one evaluation: precision and recall, time to
/// detect (median, p90, max), misses by case trait, false positives by flat
/// trait.
pub fn rule_chart(r: &RuleScore, scenario: &str, seed: u64) -> String {
    let subtitle = format!(
        "scenario {scenario} seed {seed}: {} cases, {} found, {} alerted, {} false alerts",
        r.cases, r.detected, r.alerted, r.false_alerts
    );
    let groups = [
        Group {
            title: "precision, recall".into(),
            bars: vec![
                bar("precision", r.precision, ratio(r.precision)),
                bar("recall", r.recall, ratio(r.recall)),
            ],
        },
        Group {
            title: "time to detect, hours".into(),
            bars: vec![
                bar("median", r.median_ttd_h, hours(r.median_ttd_h)),
                bar("p90", r.p90_ttd_h, hours(r.p90_ttd_h)),
                bar("max", r.max_ttd_h, hours(r.max_ttd_h)),
            ],
        },
        Group {
            title: "misses by case trait".into(),
            bars: counts(&r.misses_by_trait),
        },
        Group {
            title: "false positives by flat trait".into(),
            bars: counts(&r.false_positives_by_trait),
        },
    ];
    chart(&r.rule, &subtitle, &groups)
}

/// The chart of one rule over seeds: precision and recall per seed (a seed
/// where one is undefined shows "—"), false alerts per 100 flats per month.
pub fn summary_chart(r: &RuleSummary, scenario: &str, seeds: &[u64]) -> String {
    let per = |f: fn(&RuleSummary, usize) -> Option<f64>, digits: usize| {
        seeds
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let v = f(r, i);
                bar(
                    format!("seed {s}"),
                    v,
                    v.map_or("—".into(), |v| format!("{v:.digits$}")),
                )
            })
            .collect::<Vec<_>>()
    };
    let groups = [
        Group {
            title: "precision per seed".into(),
            bars: per(|r, i| r.precision_per_seed.get(i).copied().flatten(), 3),
        },
        Group {
            title: "recall per seed".into(),
            bars: per(|r, i| r.recall_per_seed.get(i).copied().flatten(), 3),
        },
        Group {
            title: "false alerts per 100 flats per month".into(),
            bars: per(
                |r, i| {
                    r.false_alerts_per_100_flats_month_per_seed
                        .get(i)
                        .copied()
                        .flatten()
                },
                2,
            ),
        },
    ];
    chart(
        &r.rule,
        &format!("scenario {scenario}, {} seeds", seeds.len()),
        &groups,
    )
}

/// Writes one `<rule>.svg` per chart into `dir` (created if missing).
pub fn write_all(
    dir: &std::path::Path,
    charts: impl IntoIterator<Item = (String, String)>,
) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut n = 0;
    for (rule, svg) in charts {
        std::fs::write(dir.join(format!("{rule}.svg")), svg)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_their_group_and_undefined_has_no_bar() {
        let svg = chart(
            "r <1>",
            "s",
            &[Group {
                title: "g".into(),
                bars: vec![
                    bar("a", Some(2.0), "2".into()),
                    bar("b", Some(1.0), "1".into()),
                    bar("c", None, "—".into()),
                ],
            }],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("r &lt;1&gt;"), "{svg}");
        assert!(svg.contains("width=\"300.0\""), "{svg}");
        assert!(svg.contains("width=\"150.0\""), "{svg}");
        assert_eq!(svg.matches("<rect x=").count(), 2, "{svg}");
        assert!(svg.contains(">—<"), "{svg}");
    }
}
