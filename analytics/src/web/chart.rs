//! The evidence samples of an alert as an inline SVG line chart: no
//! JavaScript, readable on a phone, printable.

use gridwatch_telemetry::alert::Sample;
use std::fmt::Write;

const W: f64 = 600.0;
const H: f64 = 220.0;
const PAD_L: f64 = 60.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 30.0;

/// An SVG chart of `samples` with an optional dashed `limit` line, its start
/// labelled in the zone `offset_min` minutes east of UTC; `None` when there
/// are no samples to draw.
pub fn svg(
    samples: &[Sample],
    series: &str,
    limit: Option<(&str, f64)>,
    offset_min: i32,
) -> Option<String> {
    let first = samples.first()?;
    let last = samples.last()?;
    let mut lo = samples
        .iter()
        .map(|s| s.value)
        .fold(f64::INFINITY, f64::min);
    let mut hi = samples
        .iter()
        .map(|s| s.value)
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some((_, l)) = limit {
        lo = lo.min(l);
        hi = hi.max(l);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    if hi - lo < 1e-9 {
        hi += 1.0;
        lo -= 1.0;
    }
    let span_t = (last.ts.0 - first.ts.0).max(1) as f64;
    let x = |t: i64| PAD_L + (t - first.ts.0) as f64 / span_t * (W - PAD_L - PAD_R);
    let y = |v: f64| PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{} over {} s\" xmlns=\"http://www.w3.org/2000/svg\">",
        super::page::escape(series),
        (span_t / 1000.0).round()
    );
    let _ = write!(
        out,
        "<rect x=\"{PAD_L}\" y=\"{PAD_T}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
        W - PAD_L - PAD_R,
        H - PAD_T - PAD_B
    );
    for v in [lo, (lo + hi) / 2.0, hi] {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"16\" text-anchor=\"end\">{}</text>",
            PAD_L - 4.0,
            y(v) + 4.0,
            trim(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{PAD_L}\" y=\"{}\" font-size=\"16\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"16\" text-anchor=\"end\">+{} s</text>",
        H - 8.0,
        crate::i18n::local_time::format(first.ts, offset_min),
        W - PAD_R,
        H - 8.0,
        ((last.ts.0 - first.ts.0) as f64 / 1000.0).round()
    );
    if let Some((name, l)) = limit {
        let _ = write!(
            out,
            "<line x1=\"{PAD_L}\" x2=\"{}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"#c00\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"16\" fill=\"#c00\" text-anchor=\"end\">{} = {}</text>",
            W - PAD_R,
            W - PAD_R - 4.0,
            y(l) - 4.0,
            super::page::escape(name),
            trim(l),
            ly = y(l)
        );
    }
    let points: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.ts.0), y(s.value)))
        .collect();
    let _ = write!(
        out,
        "<polyline fill=\"none\" stroke=\"#0a58ca\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    out.push_str("</svg>");
    Some(out)
}

fn trim(v: f64) -> String {
    super::page::number(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::Timestamp;

    #[test]
    fn draws_one_point_per_sample_and_the_limit() {
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                ts: Timestamp(i * 1000),
                value: 6.0 + i as f64 * 0.2,
            })
            .collect();
        let s = svg(&samples, "current_a", Some(("overcurrent_a", 5.5)), 480).unwrap();
        assert!(s.starts_with("<svg"));
        let points = s
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 5);
        assert!(s.contains("overcurrent_a = 5.5"));
        assert!(
            s.contains("1970-01-01 08:00 (UTC+8)"),
            "the start in local time"
        );
    }

    #[test]
    fn no_samples_no_chart() {
        assert!(svg(&[], "x", None, 480).is_none());
    }
}
