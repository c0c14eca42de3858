//! Statistics shared by detectors, over small bounded state.

use gridwatch_telemetry::Timestamp;
use std::collections::VecDeque;

/// How many buckets a [`RiseMeter`] window is cut into.
const RISE_BUCKETS: i64 = 10;

/// The rate at which a value has been rising over the last few minutes, in
/// units per minute — for temperature, °C/min.
///
/// Samples are averaged into buckets of a tenth of the window, and the rate is
/// the least-squares slope through the bucket means. Averaging and fitting a
/// line make the rate robust to sensor noise of a degree or so, which a
/// difference of two raw samples is not (0.5 °C of noise between samples one
/// second apart reads as 30 °C/min). State is at most eleven buckets, however
/// fast readings arrive.
///
/// No rate is given until the samples span at least half the window, and a
/// gap longer than `max_gap_ms` starts over: a slope drawn across a hole in
/// the data would be invented.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RiseMeter {
    window_ms: i64,
    bucket_ms: i64,
    max_gap_ms: i64,
    last_ts: Option<Timestamp>,
    buckets: VecDeque<Bucket>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Bucket {
    /// First sample's time.
    start: i64,
    /// Samples averaged.
    n: u32,
    /// Mean sample time, ms after `start`.
    mean_dt: f64,
    /// Mean value.
    mean_v: f64,
}

impl RiseMeter {
    /// A meter over the last `window_ms`.
    pub fn new(window_ms: i64, max_gap_ms: i64) -> Self {
        let window_ms = window_ms.max(RISE_BUCKETS);
        Self {
            window_ms,
            bucket_ms: window_ms / RISE_BUCKETS,
            max_gap_ms,
            last_ts: None,
            buckets: VecDeque::new(),
        }
    }

    /// Adds a sample; samples not later than the previous one are ignored.
    pub fn push(&mut self, ts: Timestamp, value: f64) {
        if !value.is_finite() {
            return;
        }
        if let Some(last) = self.last_ts {
            if ts <= last {
                return;
            }
            if ts.since(last) > self.max_gap_ms {
                self.buckets.clear();
            }
        }
        self.last_ts = Some(ts);
        match self.buckets.back_mut() {
            Some(b) if ts.0 < b.start + self.bucket_ms => {
                b.n = b.n.saturating_add(1);
                let n = f64::from(b.n);
                b.mean_dt += ((ts.0 - b.start) as f64 - b.mean_dt) / n;
                b.mean_v += (value - b.mean_v) / n;
            }
            _ => self.buckets.push_back(Bucket {
                start: ts.0,
                n: 1,
                mean_dt: 0.0,
                mean_v: value,
            }),
        }
        while self
            .buckets
            .front()
            .is_some_and(|b| b.start + self.bucket_ms <= ts.0 - self.window_ms)
        {
            self.buckets.pop_front();
        }
    }

    /// The current rate of rise per minute (negative when falling), or `None`
    /// while there is too little history to say.
    pub fn rate_per_min(&self) -> Option<f64> {
        let first = self.buckets.front()?;
        if self.buckets.len() < 3 {
            return None;
        }
        let points: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|b| {
                (
                    ((b.start - first.start) as f64 + b.mean_dt) / 60_000.0,
                    b.mean_v,
                )
            })
            .collect();
        let span_min = points.last()?.0 - points[0].0;
        if span_min * 60_000.0 < (self.window_ms / 2) as f64 {
            return None;
        }
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let slope = sxy / sxx;
        (sxx > 0.0 && slope.is_finite()).then_some(slope)
    }
}

/// The median of `xs` (NaN for none). Sorts a copy.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Modified z-scores (Iglewicz and Hoaglin): 0.6745·(x − median)/MAD, one per
/// value. When the MAD is 0 (more than half the values equal), 1.2533 × the
/// mean absolute deviation stands in; when that is 0 too, every score is 0.
/// docs/detection.md: a value is a robust outlier above 3.5.
pub fn robust_z(xs: &[f64]) -> Vec<f64> {
    let med = median(xs);
    let dev: Vec<f64> = xs.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&dev);
    if mad > 0.0 {
        return xs.iter().map(|x| 0.6745 * (x - med) / mad).collect();
    }
    let meanad = dev.iter().sum::<f64>() / dev.len().max(1) as f64;
    if meanad > 0.0 {
        xs.iter().map(|x| (x - med) / (1.2533 * meanad)).collect()
    } else {
        vec![0.0; xs.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_z_matches_the_formula_and_survives_a_zero_mad() {
        let z = robust_z(&[1.0, 2.0, 3.0, 4.0, 100.0]);
        // median 3, MAD 1: 0.6745 · 97 / 1.
        assert!((z[4] - 65.4265).abs() < 1e-9, "{z:?}");
        assert!((z[0] + 1.349).abs() < 1e-9);
        let z = robust_z(&[5.0, 5.0, 5.0, 5.0, 10.0]);
        // MAD 0: mean absolute deviation 1, scale 1.2533.
        assert!((z[4] - 5.0 / 1.2533).abs() < 1e-9, "{z:?}");
        assert_eq!(robust_z(&[2.0, 2.0, 2.0]), vec![0.0; 3]);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    fn meter_fed(step_s: i64, until_s: i64, f: impl Fn(f64) -> f64) -> RiseMeter {
        let mut m = RiseMeter::new(300_000, 60_000);
        let mut t = 0;
        while t <= until_s {
            m.push(Timestamp(t * 1000), f(t as f64));
            t += step_s;
        }
        m
    }

    #[test]
    fn a_steady_rise_reads_as_its_slope() {
        let m = meter_fed(1, 600, |t| 40.0 + 2.0 * t / 60.0);
        let r = m.rate_per_min().unwrap();
        assert!((r - 2.0).abs() < 0.01, "{r}");
    }

    #[test]
    fn noise_does_not_read_as_a_rise() {
        // ±1 °C alternating noise on a flat 66 °C, one sample per second.
        let m = meter_fed(1, 600, |t| {
            66.0 + if (t as i64) % 2 == 0 { 1.0 } else { -1.0 }
        });
        let r = m.rate_per_min().unwrap();
        assert!(r.abs() < 0.1, "{r}");
    }

    #[test]
    fn no_rate_until_half_the_window_is_covered() {
        assert!(meter_fed(10, 120, |t| t).rate_per_min().is_none());
        assert!(meter_fed(10, 200, |t| t).rate_per_min().is_some());
    }

    #[test]
    fn a_gap_starts_over() {
        let mut m = meter_fed(10, 600, |t| t / 60.0);
        assert!(m.rate_per_min().is_some());
        m.push(Timestamp(700_000), 50.0);
        assert!(m.rate_per_min().is_none());
    }

    #[test]
    fn state_stays_bounded() {
        let m = meter_fed(1, 10_000, |t| t);
        assert!(m.buckets.len() <= (RISE_BUCKETS + 1) as usize);
    }
}
