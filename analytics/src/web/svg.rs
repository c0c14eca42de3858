//! A small SVG plotting surface for the dashboard's charts: a frame with
//! labelled axes, lines, a shaded band, bars, and dashed limit and marker
//! lines. Drawn on the server, so a chart needs no script and prints.
//!
//! Sized for a phone: the view box is 400 units wide and scales to the
//! screen (`width:100%`), so on a 390 px phone one unit is about one pixel
//! and the 14-unit labels read at about 13 px.

use super::page::escape;
use std::fmt::Write;

/// View box width.
pub const W: f64 = 400.0;
/// View box height.
pub const H: f64 = 230.0;
const PAD_L: f64 = 50.0;
const PAD_R: f64 = 8.0;
const PAD_T: f64 = 22.0;
const PAD_B: f64 = 42.0;
/// Label size in view-box units (≈ px on a phone).
pub const FONT: f64 = 14.0;

/// Colours with at least 4.5:1 on white, so lines and labels read outdoors.
pub const BLUE: &str = "#0a4fa8";
/// Limits and alert markers.
pub const RED: &str = "#b3001b";
/// The building's band and median.
pub const GREY: &str = "#555555";

/// Values `lo..hi` padded a little so that lines do not touch the frame;
/// `None` when there is no finite value.
pub fn span(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    if hi - lo < 1e-9 {
        return Some((lo - 1.0, hi + 1.0));
    }
    let pad = (hi - lo) * 0.06;
    Some((
        if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        },
        hi + pad,
    ))
}

/// An axis label for `v` on an axis spanning `span`: as many decimals as
/// it takes for the three labels to differ (`0.95`, `1`, `1.05`, not `1`
/// three times), trailing zeros dropped.
pub fn tick(v: f64, span: f64) -> String {
    let decimals = match span.abs() {
        s if s >= 20.0 => 0,
        s if s >= 2.0 => 1,
        s if s >= 0.2 => 2,
        _ => 3,
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" {
        "0".to_owned()
    } else {
        s
    }
}

/// One chart being drawn: x and y in data units, mapped onto the frame.
pub struct Plot {
    x: (f64, f64),
    y: (f64, f64),
    out: String,
}

impl Plot {
    /// A frame for x in `x` and y in `y`, with three y labels in `unit`;
    /// `label` is what a screen reader says.
    pub fn new(label: &str, x: (f64, f64), y: (f64, f64), unit: &str) -> Self {
        let x = if x.1 - x.0 <= 0.0 {
            (x.0, x.0 + 1.0)
        } else {
            x
        };
        let mut p = Plot {
            x,
            y,
            out: format!(
                "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"{FONT}\">",
                escape(label)
            ),
        };
        let _ = write!(
            p.out,
            "<rect x=\"{PAD_L}\" y=\"{PAD_T}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#bbb\"/>",
            W - PAD_L - PAD_R,
            H - PAD_T - PAD_B
        );
        for v in [y.0, (y.0 + y.1) / 2.0, y.1] {
            let _ = write!(
                p.out,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1a1a1a\">{}</text>",
                PAD_L - 4.0,
                p.py(v) + 5.0,
                tick(v, y.1 - y.0)
            );
        }
        let _ = write!(
            p.out,
            "<text x=\"4\" y=\"{}\" fill=\"#1a1a1a\">{}</text>",
            FONT,
            escape(unit)
        );
        p
    }

    /// Where x lands in the view box.
    pub fn px(&self, x: f64) -> f64 {
        PAD_L + (x - self.x.0) / (self.x.1 - self.x.0) * (W - PAD_L - PAD_R)
    }

    /// Where y lands in the view box.
    pub fn py(&self, y: f64) -> f64 {
        let span = (self.y.1 - self.y.0).max(1e-9);
        PAD_T + (self.y.1 - y) / span * (H - PAD_T - PAD_B)
    }

    /// Labels under the x axis: `left` at its start, `right` at its end.
    pub fn x_labels(&mut self, left: &str, right: &str) {
        let y = H - PAD_B + FONT + 4.0;
        let _ = write!(
            self.out,
            "<text x=\"{PAD_L}\" y=\"{y}\" fill=\"#1a1a1a\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#1a1a1a\">{}</text>",
            escape(left),
            W - PAD_R,
            y + FONT + 2.0,
            escape(right)
        );
    }

    /// A line through `points` (data units), in `colour`.
    pub fn line(&mut self, points: &[(f64, f64)], colour: &str) {
        let pts: Vec<String> = points
            .iter()
            .filter(|(_, y)| y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", self.px(*x), self.py(*y)))
            .collect();
        if pts.len() == 1 {
            let _ = write!(
                self.out,
                "<circle class=\"series\" cx=\"{}\" r=\"3\" fill=\"{colour}\" cy=\"{}\"/>",
                pts[0].split(',').next().unwrap_or("0"),
                pts[0].split(',').nth(1).unwrap_or("0")
            );
            return;
        }
        let _ = write!(
            self.out,
            "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
    }

    /// A shaded band between `lower` and `upper` at the same xs.
    pub fn band(&mut self, xs: &[f64], lower: &[f64], upper: &[f64]) {
        if xs.len() < 2 {
            return;
        }
        let mut pts: Vec<String> = xs
            .iter()
            .zip(upper)
            .map(|(x, y)| format!("{:.1},{:.1}", self.px(*x), self.py(*y)))
            .collect();
        pts.extend(
            xs.iter()
                .zip(lower)
                .rev()
                .map(|(x, y)| format!("{:.1},{:.1}", self.px(*x), self.py(*y))),
        );
        let _ = write!(
            self.out,
            "<polygon class=\"band\" fill=\"#d0d4d8\" stroke=\"none\" points=\"{}\"/>",
            pts.join(" ")
        );
    }

    /// One bar per `(x, y)`, `width` data units wide, from the axis's low end.
    pub fn bars(&mut self, bars: &[(f64, f64)], width: f64, colour: &str) {
        let base = self.py(self.y.0);
        for (x, y) in bars {
            let (left, right) = (self.px(x - width / 2.0), self.px(x + width / 2.0));
            let top = self.py(*y);
            let _ = write!(
                self.out,
                "<rect class=\"bar\" x=\"{left:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>",
                (right - left).max(1.0),
                (base - top).max(0.0)
            );
        }
    }

    /// A dashed horizontal line at `y` with `label` above its right end.
    pub fn limit(&mut self, y: f64, label: &str) {
        let py = self.py(y);
        let _ = write!(
            self.out,
            "<line class=\"limit\" x1=\"{PAD_L}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"{RED}\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" fill=\"{RED}\" text-anchor=\"end\">{}</text>",
            W - PAD_R,
            W - PAD_R - 2.0,
            (py - 4.0).max(FONT),
            escape(label)
        );
    }

    /// A vertical marker at `x` with `label` at its top.
    pub fn marker(&mut self, x: f64, label: &str) {
        let px = self.px(x);
        let anchor = if px > W / 2.0 { "end" } else { "start" };
        let _ = write!(
            self.out,
            "<line class=\"marker\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{PAD_T}\" y2=\"{}\" stroke=\"{RED}\" stroke-width=\"1.5\"/>\
             <text x=\"{px:.1}\" y=\"{}\" fill=\"{RED}\" text-anchor=\"{anchor}\">{}</text>",
            H - PAD_B,
            FONT + 2.0,
            escape(label)
        );
    }

    /// The finished SVG element.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_differ_on_a_narrow_axis() {
        let labels: Vec<String> = [0.95, 1.0, 1.05].iter().map(|v| tick(*v, 0.1)).collect();
        assert_eq!(labels, ["0.95", "1", "1.05"]);
        assert_eq!(tick(1530.4, 1600.0), "1530");
        assert_eq!(tick(5.26, 5.5), "5.3");
        assert_eq!(tick(-0.0001, 1.0), "0");
    }

    #[test]
    fn data_maps_into_the_frame() {
        let p = Plot::new("t", (0.0, 10.0), (0.0, 100.0), "W");
        assert_eq!(p.px(0.0), PAD_L);
        assert_eq!(p.px(10.0), W - PAD_R);
        assert_eq!(p.py(100.0), PAD_T);
        assert_eq!(p.py(0.0), H - PAD_B);
    }

    #[test]
    fn spans_pad_and_survive_flat_or_empty_data() {
        assert_eq!(span([5.0, 5.0]), Some((4.0, 6.0)));
        assert_eq!(span([f64::NAN]), None);
        let (lo, hi) = span([0.0, 100.0]).unwrap();
        assert_eq!(lo, 0.0, "use does not go below zero");
        assert!(hi > 100.0);
    }

    #[test]
    fn labels_are_escaped_and_elements_drawn() {
        let mut p = Plot::new("<x>", (0.0, 2.0), (0.0, 2.0), "A");
        p.line(&[(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN)], BLUE);
        p.limit(1.5, "限值 1.5 A");
        p.marker(1.0, "告警");
        p.bars(&[(1.0, 1.0)], 0.8, BLUE);
        let s = p.finish();
        assert!(s.contains("aria-label=\"&lt;x&gt;\""));
        assert_eq!(s.matches("<polyline").count(), 1);
        assert!(
            s.contains("限值 1.5 A")
                && s.contains("class=\"marker\"")
                && s.contains("class=\"bar\"")
        );
        assert!(s.ends_with("</svg>"));
    }
}
