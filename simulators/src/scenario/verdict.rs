//! Expected alerts against seen ones: the verdict and its readable diff.

use super::file::{OtherAlerts, Scenario};

/// An alert as the runner saw it cross the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenAlert {
    /// The rule that fired.
    pub rule: String,
    /// `site/gateway/device#socket`.
    pub entity: String,
    /// The alert's time (that of the reading which confirmed it) in
    /// simulated seconds from the scenario's start.
    pub at_s: f64,
    /// The alert's plain title, to make a surprise understandable.
    pub title: String,
}

/// Whether the scenario passed, and one line per expectation and per
/// alert nobody expected.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// True when every expectation was met and no unexpected alert fails it.
    pub passed: bool,
    /// `  ok …` met, `- …` missing or late, `+ …` unexpected.
    pub lines: Vec<String>,
}

/// Compares the expectations of `scenario` with `seen` (each alert once).
/// An alert that matches an expectation's rule and entity is expected even
/// when it comes outside the window (the expectation then fails as late or
/// early), so one mistake is reported once.
pub fn judge(scenario: &Scenario, seen: &[SeenAlert]) -> Verdict {
    let mut lines = Vec::new();
    let mut passed = true;
    let mut expected = vec![false; seen.len()];
    for e in &scenario.expect {
        let entity = scenario.entity(&e.device, e.socket);
        let window = format!("expected {:.0}–{:.0} s", e.after_s, e.deadline_s());
        let matching: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i].rule == e.rule && seen[i].entity == entity)
            .collect();
        for &i in &matching {
            expected[i] = true;
        }
        let in_window = matching
            .iter()
            .find(|&&i| (e.after_s..=e.deadline_s()).contains(&seen[i].at_s));
        match (in_window, matching.first()) {
            (Some(&i), _) => lines.push(format!(
                "  ok {} on {entity}: {window}, seen at {:.1} s",
                e.rule, seen[i].at_s
            )),
            (None, Some(&i)) => {
                passed = false;
                lines.push(format!(
                    "- {} on {entity}: {window}, seen only at {:.1} s",
                    e.rule, seen[i].at_s
                ));
            }
            (None, None) => {
                passed = false;
                lines.push(format!("- {} on {entity}: {window}, not seen", e.rule));
            }
        }
    }
    let ignore = scenario.other_alerts == OtherAlerts::Ignore;
    for (a, _) in seen.iter().zip(&expected).filter(|(_, e)| !**e) {
        lines.push(format!(
            "+ {} on {} at {:.1} s: not expected{} ({})",
            a.rule,
            a.entity,
            a.at_s,
            if ignore {
                ", ignored (other_alerts = \"ignore\")"
            } else {
                ""
            },
            a.title
        ));
        passed &= ignore;
    }
    Verdict { passed, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(other: &str) -> Scenario {
        Scenario::parse(&format!(
            r#"
name = "t"
other_alerts = "{other}"
[[simulators]]
id = "p1"
kind = "pile"
[[expect]]
rule = "socket_overcurrent"
device = "p1"
socket = 2
after_s = 30
within_s = 30
[[expect]]
rule = "socket_overpower"
device = "p1"
socket = 2
within_s = 60
"#
        ))
        .unwrap()
    }

    fn alert(rule: &str, socket: u16, at_s: f64) -> SeenAlert {
        SeenAlert {
            rule: rule.into(),
            entity: format!("yard-a/gw-a/p1#{socket}"),
            at_s,
            title: "t".into(),
        }
    }

    #[test]
    fn met_expectations_and_nothing_else_pass() {
        let v = judge(
            &scenario("fail"),
            &[
                alert("socket_overcurrent", 2, 40.0),
                alert("socket_overpower", 2, 41.0),
            ],
        );
        assert!(v.passed, "{:?}", v.lines);
        assert_eq!(
            v.lines[0],
            "  ok socket_overcurrent on yard-a/gw-a/p1#2: expected 30–60 s, seen at 40.0 s"
        );
    }

    #[test]
    fn missing_late_and_unexpected_alerts_each_get_a_line() {
        let v = judge(
            &scenario("fail"),
            &[
                alert("socket_overcurrent", 2, 75.0),
                alert("socket_residual_current", 3, 12.0),
            ],
        );
        assert!(!v.passed);
        assert_eq!(
            v.lines,
            [
                "- socket_overcurrent on yard-a/gw-a/p1#2: expected 30–60 s, seen only at 75.0 s",
                "- socket_overpower on yard-a/gw-a/p1#2: expected 0–60 s, not seen",
                "+ socket_residual_current on yard-a/gw-a/p1#3 at 12.0 s: not expected (t)",
            ]
        );
    }

    #[test]
    fn ignored_surprises_are_listed_but_do_not_fail() {
        let v = judge(
            &scenario("ignore"),
            &[
                alert("socket_overcurrent", 2, 31.0),
                alert("socket_overpower", 2, 31.0),
                alert("socket_idle_live", 1, 5.0),
            ],
        );
        assert!(v.passed, "{:?}", v.lines);
        assert!(v.lines[2].contains("ignored"), "{:?}", v.lines);
    }
}
