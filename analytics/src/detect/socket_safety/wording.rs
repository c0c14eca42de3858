//! The words of a socket-safety alert: a title for a phone notification and a
//! summary a grid staff member can act on without opening another tool, both
//! with the numbers that made the rule fire.

use super::{RULE_OVERCURRENT, RULE_OVERPOWER, VIA_CEILING};
use gridwatch_telemetry::{Evidence, Reading};

/// `(title, summary)` for a confirmed episode of `rule`.
pub(super) fn describe(rule: &str, r: &Reading, ev: &Evidence) -> (String, String) {
    let v = |k: &str| ev.values.get(k).copied().unwrap_or(f64::NAN);
    let t = |k: &str| ev.thresholds.get(k).copied().unwrap_or(f64::NAN);
    let place = place(r);
    let dur = duration(v("duration_s"));
    match rule {
        RULE_OVERCURRENT => (
            format!(
                "Overcurrent on {place}: {:.2} A for {dur} (limit {} A)",
                v("mean"),
                t("overcurrent_a")
            ),
            format!(
                "{} drew {:.2} A for {dur} (limit {} A, peak {:.2} A). A charger this strong is \
                 not a normal e-bike charger; cut the socket and inspect.",
                capitalised(&place),
                v("mean"),
                t("overcurrent_a"),
                v("peak")
            ),
        ),
        RULE_OVERPOWER => (
            format!(
                "Overpower on {place}: {:.0} W for {dur} (limit {} W)",
                v("mean"),
                t("overpower_w")
            ),
            format!(
                "{} drew {:.0} W for {dur} (limit {} W, peak {:.0} W). An e-bike charger draws \
                 60-300 W; this is a fast charger, a modified pack, a tricycle or several bikes. \
                 Cut the socket and inspect.",
                capitalised(&place),
                v("mean"),
                t("overpower_w"),
                v("peak")
            ),
        ),
        VIA_CEILING => (
            format!(
                "Over-temperature on {place}: {:.1} °C for {dur} (ceiling {} °C)",
                v("mean"),
                t("overtemp_ceiling_c")
            ),
            format!(
                "{} has been above {} °C for {dur} (mean {:.1} °C, peak {:.1} °C). It heated \
                 slowly, but a socket this hot for this long is a fire risk whatever the cause; \
                 cut the socket and inspect it before it is used again.",
                capitalised(&place),
                t("overtemp_ceiling_c"),
                v("mean"),
                v("peak")
            ),
        ),
        _ => (
            format!(
                "Over-temperature on {place}: {:.1} °C, rising {:.1} °C/min (limit {} °C)",
                v("peak"),
                v("rise_c_per_min"),
                t("overtemp_c")
            ),
            format!(
                "{} has been above {} °C for {dur} (mean {:.1} °C, peak {:.1} °C) and rose at up \
                 to {:.1} °C/min (limit {} °C/min). Heating this fast points to a loose contact \
                 or an overloaded charger; cut the socket and inspect it before it is used again.",
                capitalised(&place),
                t("overtemp_c"),
                v("mean"),
                v("peak"),
                v("rise_c_per_min"),
                t("overtemp_rise_c_per_min")
            ),
        ),
    }
}

/// "socket 3 of pile-1 at yard-a", naming the gateway when the site is unknown.
fn place(r: &Reading) -> String {
    let what = match r.socket {
        Some(s) => format!("socket {s} of {}", r.device),
        None => format!("pile {}", r.device),
    };
    if r.site.as_str().is_empty() {
        format!("{what} on gateway {}", r.gateway)
    } else {
        format!("{what} at {}", r.site)
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// "6 s", "4 min 10 s", "2 h 5 min".
pub(crate) fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "an unknown time".into();
    }
    let s = secs.round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(6.0), "6 s");
        assert_eq!(duration(250.0), "4 min 10 s");
        assert_eq!(duration(7500.0), "2 h 5 min");
    }
}
