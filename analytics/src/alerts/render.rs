//! An alert as a few lines for a person at a terminal: what, where, when, the
//! numbers against their limits, and what to do. The demo and the CLI print
//! alerts with [`render_alert`]; tools read the JSON instead.

use gridwatch_telemetry::{Alert, Severity};
use std::fmt::Write;

/// Width the summary is wrapped to.
const WIDTH: usize = 78;
/// Width of the label column.
const LABEL: usize = 10;
/// The order in which measured values read best; others follow alphabetically.
const READING_ORDER: [&str; 6] = [
    "peak",
    "mean",
    "last",
    "duration_s",
    "rise_c_per_min",
    "sample_count",
];

/// Renders an alert as plain text, one fact per line, without colour codes
/// (it must survive `journalctl`, e-mail and a copy into a ticket).
///
/// ```
/// # use gridwatch_telemetry::*;
/// # let alert = Alert { schema: 1, id: "socket_overcurrent:yard-a/gw-1/pile-1#3:0".into(),
/// #   rule: "socket_overcurrent".into(), entity: "yard-a/gw-1/pile-1#3".into(), cell: "cell-07".into(),
/// #   site: "yard-a".into(), severity: Severity::Critical, state: AlertState::Open, ts: Timestamp(6000),
/// #   title: "Overcurrent on socket 3 of pile-1 at yard-a".into(), summary: "It drew 7 A.".into(),
/// #   evidence: Evidence::default() };
/// let text = gridwatch_analytics::render_alert(&alert);
/// assert!(text.starts_with("CRITICAL  Overcurrent on socket 3"));
/// assert!(text.contains("cell-07"));
/// ```
pub fn render_alert(alert: &Alert) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {}",
        alert.severity.as_str().to_uppercase(),
        alert.title
    );
    line(&mut out, "where", &place(&alert.entity));
    line(&mut out, "cell", &alert.cell);
    let ev = &alert.evidence;
    line(&mut out, "when", &alert.ts.to_rfc3339());
    if ev.window_start < alert.ts {
        line(
            &mut out,
            "since",
            &format!(
                "{} (when the condition began)",
                ev.window_start.to_rfc3339()
            ),
        );
    }
    line(&mut out, "what", &alert.summary);
    let series = ev.series.as_deref().unwrap_or("");
    let mut keys: Vec<&String> = ev.values.keys().collect();
    keys.sort_by_key(|k| {
        (
            READING_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(READING_ORDER.len()),
            *k,
        )
    });
    let observed: Vec<String> = keys
        .into_iter()
        .map(|k| quantity(k, ev.values[k], series))
        .collect();
    if !observed.is_empty() {
        line(&mut out, "measured", &observed.join(", "));
    }
    let limits: Vec<String> = ev
        .thresholds
        .iter()
        .map(|(k, v)| format!("{k} = {}", as_typed(*v, unit_of_key(k))))
        .collect();
    if !limits.is_empty() {
        line(&mut out, "limits", &limits.join(", "));
    }
    line(&mut out, "do", response(alert.severity));
    line(&mut out, "id", &alert.id);
    out
}

/// A labelled line, wrapped to [`WIDTH`] with continuation lines indented
/// under the text.
fn line(out: &mut String, label: &str, text: &str) {
    for (i, part) in wrap(text, WIDTH - LABEL - 2).iter().enumerate() {
        let label = if i == 0 {
            format!("{label}:")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {label:<LABEL$}{part}");
    }
}

/// "yard-a, gateway gw-1, pile-1 socket 3" from `site/gateway/device#socket`.
fn place(entity: &str) -> String {
    let (path, socket) = match entity.rsplit_once('#') {
        Some((p, s)) => (p, Some(s)),
        None => (entity, None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    let mut s = match parts.as_slice() {
        [site, gateway, device] if !site.is_empty() => {
            format!("site {site}, gateway {gateway}, {device}")
        }
        [_, gateway, device] => format!("gateway {gateway}, {device}"),
        _ => path.to_owned(),
    };
    if let Some(n) = socket {
        let _ = write!(s, " socket {n}");
    }
    s
}

/// What the severity asks of the person (docs/detection.md, "Alert handling").
fn response(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => {
            "acknowledge within minutes; cut power where the hardware allows, then inspect on site"
        }
        Severity::Major => "handle today",
        Severity::Minor => "add to the inspection backlog",
    }
}

/// One observed value in words: `peak 7.10 A`, `duration 5 s`, `6 samples`.
fn quantity(key: &str, v: f64, series: &str) -> String {
    match key {
        "sample_count" => format!("{v:.0} samples"),
        "peak" | "mean" | "last" => format!("{key} {}", with_unit(v, unit_of_key(series))),
        _ => {
            let unit = unit_of_key(key);
            let name = key
                .strip_suffix(&format!("_{}", unit.suffix))
                .filter(|_| !unit.suffix.is_empty())
                .unwrap_or(key)
                .replace('_', " ");
            format!("{name} {}", with_unit(v, unit))
        }
    }
}

#[derive(Clone, Copy)]
struct Unit {
    suffix: &'static str,
    symbol: &'static str,
    decimals: usize,
}

/// The unit a name carries in its suffix (house style: `current_a`, `power_w`).
fn unit_of_key(key: &str) -> Unit {
    const UNITS: [Unit; 8] = [
        Unit {
            suffix: "c_per_min",
            symbol: "°C/min",
            decimals: 1,
        },
        Unit {
            suffix: "a",
            symbol: "A",
            decimals: 2,
        },
        Unit {
            suffix: "w",
            symbol: "W",
            decimals: 0,
        },
        Unit {
            suffix: "wh",
            symbol: "Wh",
            decimals: 0,
        },
        Unit {
            suffix: "v",
            symbol: "V",
            decimals: 1,
        },
        Unit {
            suffix: "c",
            symbol: "°C",
            decimals: 1,
        },
        Unit {
            suffix: "s",
            symbol: "s",
            decimals: 0,
        },
        Unit {
            suffix: "ma",
            symbol: "mA",
            decimals: 0,
        },
    ];
    UNITS
        .into_iter()
        .find(|u| key.ends_with(&format!("_{}", u.suffix)))
        .unwrap_or(Unit {
            suffix: "",
            symbol: "",
            decimals: 2,
        })
}

/// A measured value, to the precision that matters for its unit.
fn with_unit(v: f64, unit: Unit) -> String {
    join_unit(format!("{v:.*}", unit.decimals), unit)
}

/// A configured value, shown as it was typed (`5.5 A`, `1200 W`).
fn as_typed(v: f64, unit: Unit) -> String {
    join_unit(format!("{v}"), unit)
}

fn join_unit(number: String, unit: Unit) -> String {
    if unit.symbol.is_empty() {
        number
    } else {
        format!("{number} {}", unit.symbol)
    }
}

/// Greedy word wrap that keeps a number and its unit together ("5.5 A",
/// "1 °C/min"); a word longer than the width gets a line of its own.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(prev) if prev.ends_with(|c: char| c.is_ascii_digit()) && is_unit(word) => {
                prev.push(' ');
                prev.push_str(word);
            }
            _ => words.push(word.to_owned()),
        }
    }
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in words {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Whether a word is a unit symbol, possibly followed by punctuation.
fn is_unit(word: &str) -> bool {
    let bare = word.trim_end_matches([',', '.', ')', ';', ':']);
    matches!(
        bare,
        "A" | "W" | "Wh" | "V" | "s" | "min" | "h" | "mA" | "°C" | "°C/min" | "samples"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::{AlertState, Evidence, Timestamp};
    use std::collections::BTreeMap;

    fn alert() -> Alert {
        Alert {
            schema: 1,
            id: "socket_overcurrent:yard-a/gw-1/pile-1#3:1764000000000".into(),
            rule: "socket_overcurrent".into(),
            entity: "yard-a/gw-1/pile-1#3".into(),
            cell: "cell-07".into(),
            site: "yard-a".into(),
            severity: Severity::Critical,
            state: AlertState::Open,
            ts: Timestamp(1_764_000_006_000),
            title: "Overcurrent on socket 3 of pile-1 at yard-a: 7.02 A for 6 s (limit 5.5 A)".into(),
            summary: "Socket 3 of pile-1 at yard-a drew 7.02 A for 6 s (limit 5.5 A, peak 7.10 A). \
                      A charger this strong is not a normal e-bike charger; cut the socket and inspect."
                .into(),
            evidence: Evidence {
                values: BTreeMap::from([
                    ("peak".into(), 7.1),
                    ("mean".into(), 7.0167),
                    ("duration_s".into(), 6.0),
                    ("sample_count".into(), 7.0),
                ]),
                thresholds: BTreeMap::from([("overcurrent_a".into(), 5.5), ("persistence_s".into(), 5.0)]),
                window_start: Timestamp(1_764_000_000_000),
                window_end: Timestamp(1_764_000_006_000),
                samples: Vec::new(),
                series: Some("current_a".into()),
            },
        }
    }

    #[test]
    fn shows_severity_place_time_numbers_and_action() {
        let text = render_alert(&alert());
        println!("{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CRITICAL  Overcurrent on socket 3 of pile-1"));
        assert!(
            text.contains("where:    site yard-a, gateway gw-1, pile-1 socket 3\n"),
            "{text}"
        );
        assert!(text.contains("cell:     cell-07\n"), "{text}");
        assert!(
            text.contains("when:     2025-11-24T16:00:06.000Z\n"),
            "{text}"
        );
        assert!(
            text.contains("since:    2025-11-24T16:00:00.000Z"),
            "{text}"
        );
        assert!(text.contains("peak 7.10 A, mean 7.02 A"), "{text}");
        assert!(
            text.contains("duration 6 s") && text.contains("7 samples"),
            "{text}"
        );
        assert!(
            text.contains("overcurrent_a = 5.5 A, persistence_s = 5 s"),
            "{text}"
        );
        assert!(text.contains("cut power"));
        assert!(
            lines[1..].iter().all(|l| l.chars().count() <= WIDTH),
            "{text}"
        );
    }

    #[test]
    fn wrapping_keeps_numbers_with_their_units() {
        let lines = wrap("rose at up to 3.0 °C/min (limit 1 °C/min). More", 20);
        assert!(lines.iter().any(|l| l.contains("1 °C/min).")), "{lines:?}");
    }

    #[test]
    fn temperature_units_are_named() {
        assert_eq!(quantity("rise_c_per_min", 2.04, ""), "rise 2.0 °C/min");
        assert_eq!(quantity("peak", 70.44, "temperature_c"), "peak 70.4 °C");
        assert_eq!(as_typed(1200.0, unit_of_key("overpower_w")), "1200 W");
    }
}
