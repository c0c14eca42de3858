//! Persistence and hysteresis for one "value above a limit" condition.
//!
//! A single sample over a limit is noise more often than danger, and a value
//! hovering at the limit would raise an alert on every sample. So a condition
//! must hold for a while before it is confirmed, and once confirmed it ends
//! only after the value has stayed clearly below the limit for a while. The
//! result is one confirmation per episode. Detectors own one [`Episode`] per
//! entity and condition; the state is a few numbers and a bounded list of
//! samples kept as evidence.
//!
//! Missing data is its own state, never "normal": a gap longer than
//! `max_gap_ms` throws away a half-built persistence and any progress
//! towards clearing, but does not end a confirmed episode.

use gridwatch_telemetry::alert::Sample;
use gridwatch_telemetry::Timestamp;
use std::collections::VecDeque;

/// The numbers that drive an [`Episode`], derived from a detector's config.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// The condition holds while the value is strictly above this.
    pub above: f64,
    /// How long it must hold, first to last sample, before it is confirmed.
    /// 0 confirms on the first sample above the limit.
    pub persistence_ms: i64,
    /// A confirmed episode ends only below this value…
    pub clear_below: f64,
    /// …held for this long.
    pub clear_ms: i64,
    /// A longer silence between two samples resets persistence and clearing.
    pub max_gap_ms: i64,
    /// When set, a secondary measure (e.g. the rate of rise) must have been
    /// strictly above this at some sample of the episode before it is
    /// confirmed; persistence alone is not enough.
    pub secondary_above: Option<f64>,
    /// At most this many samples are kept as evidence (the latest ones).
    pub max_samples: usize,
    /// Samples closer together than this are not all kept, so that the
    /// evidence spans minutes even when readings come every second.
    pub sample_spacing_ms: i64,
    /// Keep recent samples even when no episode is under way, so that the
    /// evidence shows what led up to it (the rise before an over-temperature).
    pub keep_context: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Phase {
    /// Below the limit (or no data yet).
    Idle,
    /// Above the limit, not yet for long enough.
    Pending,
    /// Confirmed; waiting for the value to clear.
    Active,
}

/// What one sample did to the episode.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Transition {
    /// Nothing a caller needs to act on.
    None,
    /// The condition has held long enough: raise an alert.
    Confirmed(Confirmed),
    /// A confirmed episode has ended: the value stayed low for `clear_ms`.
    Cleared {
        /// First sample of the episode.
        start: Timestamp,
        /// The sample that completed the clearing.
        end: Timestamp,
    },
}

/// The numbers of a confirmed episode, for the alert's evidence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Confirmed {
    /// First sample above the limit.
    pub start: Timestamp,
    /// The sample that confirmed it.
    pub end: Timestamp,
    /// Highest value from `start` to `end`.
    pub peak: f64,
    /// Mean value from `start` to `end`.
    pub mean: f64,
    /// Samples from `start` to `end`.
    pub count: u32,
    /// Highest secondary measure seen from `start` to `end`.
    pub secondary_max: Option<f64>,
    /// The kept samples, oldest first, ending with the confirming one.
    pub samples: Vec<Sample>,
}

/// One entity's state for one condition.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Episode {
    phase: Phase,
    last_ts: Option<Timestamp>,
    start: Timestamp,
    peak: f64,
    mean: f64,
    count: u32,
    secondary_max: Option<f64>,
    clear_since: Option<Timestamp>,
    samples: VecDeque<Sample>,
}

impl Default for Episode {
    fn default() -> Self {
        Self {
            phase: Phase::Idle,
            last_ts: None,
            start: Timestamp(0),
            peak: f64::NEG_INFINITY,
            mean: 0.0,
            count: 0,
            secondary_max: None,
            clear_since: None,
            samples: VecDeque::new(),
        }
    }
}

impl Episode {
    /// Whether a confirmed episode is under way (alerted, not yet cleared).
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// Where the episode stands, for `explain`: `None` below the limit,
    /// `Some((false, start))` above it but not yet for long enough,
    /// `Some((true, start))` confirmed and not yet cleared.
    pub fn standing(&self) -> Option<(bool, Timestamp)> {
        match self.phase {
            Phase::Idle => None,
            Phase::Pending => Some((false, self.start)),
            Phase::Active => Some((true, self.start)),
        }
    }

    /// Feeds one sample. Samples must come in increasing time order; one that
    /// does not is ignored (callers count those).
    pub fn observe(
        &mut self,
        limits: &Limits,
        ts: Timestamp,
        value: f64,
        secondary: Option<f64>,
    ) -> Transition {
        if let Some(last) = self.last_ts {
            if ts <= last {
                return Transition::None;
            }
            if ts.since(last) > limits.max_gap_ms {
                self.after_gap(limits);
            }
        }
        self.last_ts = Some(ts);
        let above = value > limits.above;
        match self.phase {
            Phase::Idle if above => {
                self.begin(ts, value, secondary);
                self.record(limits, ts, value);
                self.confirm_if_due(limits, ts, value)
            }
            Phase::Idle => {
                self.record(limits, ts, value);
                Transition::None
            }
            Phase::Pending if above => {
                self.accumulate(value, secondary);
                self.record(limits, ts, value);
                self.confirm_if_due(limits, ts, value)
            }
            Phase::Pending => {
                self.reset(limits);
                self.record(limits, ts, value);
                Transition::None
            }
            Phase::Active => {
                self.record(limits, ts, value);
                self.clear_if_due(limits, ts, value)
            }
        }
    }

    fn begin(&mut self, ts: Timestamp, value: f64, secondary: Option<f64>) {
        self.phase = Phase::Pending;
        self.start = ts;
        self.peak = value;
        self.mean = value;
        self.count = 1;
        self.secondary_max = secondary.filter(|s| s.is_finite());
    }

    fn accumulate(&mut self, value: f64, secondary: Option<f64>) {
        self.peak = self.peak.max(value);
        self.count = self.count.saturating_add(1);
        // A running mean cannot overflow the way a sum of large values can.
        self.mean += (value - self.mean) / f64::from(self.count);
        if let Some(s) = secondary.filter(|s| s.is_finite()) {
            self.secondary_max = Some(self.secondary_max.map_or(s, |m| m.max(s)));
        }
    }

    fn confirm_if_due(&mut self, limits: &Limits, ts: Timestamp, value: f64) -> Transition {
        let persisted = ts.since(self.start) >= limits.persistence_ms;
        let secondary_ok = match limits.secondary_above {
            None => true,
            Some(min) => self.secondary_max.is_some_and(|s| s > min),
        };
        if !(persisted && secondary_ok) {
            return Transition::None;
        }
        self.phase = Phase::Active;
        self.clear_since = None;
        let mut samples: Vec<Sample> = if limits.keep_context {
            self.samples.iter().cloned().collect()
        } else {
            // Nothing more is needed from this episode's samples once alerted.
            std::mem::take(&mut self.samples).into()
        };
        if samples.last().map(|s| s.ts) != Some(ts) {
            samples.push(Sample { ts, value });
            if samples.len() > limits.max_samples.max(1) {
                samples.remove(0);
            }
        }
        Transition::Confirmed(Confirmed {
            start: self.start,
            end: ts,
            peak: self.peak,
            mean: self.mean,
            count: self.count,
            secondary_max: self.secondary_max,
            samples,
        })
    }

    fn clear_if_due(&mut self, limits: &Limits, ts: Timestamp, value: f64) -> Transition {
        if value >= limits.clear_below {
            self.clear_since = None;
            return Transition::None;
        }
        let since = *self.clear_since.get_or_insert(ts);
        if ts.since(since) < limits.clear_ms {
            return Transition::None;
        }
        let start = self.start;
        self.reset(limits);
        Transition::Cleared { start, end: ts }
    }

    fn after_gap(&mut self, limits: &Limits) {
        match self.phase {
            Phase::Pending => self.reset(limits),
            Phase::Active => self.clear_since = None,
            Phase::Idle => {}
        }
    }

    fn reset(&mut self, limits: &Limits) {
        self.phase = Phase::Idle;
        self.clear_since = None;
        self.secondary_max = None;
        self.count = 0;
        if !limits.keep_context {
            self.samples = VecDeque::new();
        }
    }

    /// Keeps the sample as evidence while an episode is being built (or
    /// always, with `keep_context`), thinned to `sample_spacing_ms`.
    fn record(&mut self, limits: &Limits, ts: Timestamp, value: f64) {
        let wanted = limits.keep_context || self.phase == Phase::Pending;
        if !wanted {
            return;
        }
        if let Some(last) = self.samples.back() {
            if ts.since(last.ts) < limits.sample_spacing_ms {
                return;
            }
        }
        if self.samples.len() >= limits.max_samples.max(1) {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample { ts, value });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            above: 10.0,
            persistence_ms: 5_000,
            clear_below: 9.0,
            clear_ms: 3_000,
            max_gap_ms: 60_000,
            secondary_above: None,
            max_samples: 4,
            sample_spacing_ms: 0,
            keep_context: false,
        }
    }

    fn feed(e: &mut Episode, l: &Limits, series: &[(i64, f64)]) -> Vec<Transition> {
        series
            .iter()
            .map(|&(s, v)| e.observe(l, Timestamp(s * 1000), v, None))
            .filter(|t| *t != Transition::None)
            .collect()
    }

    #[test]
    fn evidence_keeps_only_the_latest_samples() {
        let (mut e, l) = (Episode::default(), limits());
        let t = feed(
            &mut e,
            &l,
            &[
                (0, 11.0),
                (1, 12.0),
                (2, 13.0),
                (3, 14.0),
                (4, 15.0),
                (5, 16.0),
            ],
        );
        let Transition::Confirmed(c) = &t[0] else {
            panic!("{t:?}")
        };
        assert_eq!(c.samples.len(), 4);
        assert_eq!(c.samples[3].value, 16.0);
        assert_eq!((c.peak, c.count), (16.0, 6));
        assert!((c.mean - 13.5).abs() < 1e-9);
    }

    #[test]
    fn a_value_between_clear_level_and_limit_restarts_the_clear_timer() {
        let (mut e, l) = (Episode::default(), limits());
        feed(&mut e, &l, &[(0, 11.0), (5, 11.0)]);
        assert!(e.is_active());
        // 8.5 (below 9) for 2 s, then 9.5 (not below 9), then low again for 2 s: not cleared.
        assert!(feed(
            &mut e,
            &l,
            &[(6, 8.5), (8, 8.5), (9, 9.5), (10, 8.5), (12, 8.5)]
        )
        .is_empty());
        assert!(e.is_active());
        let t = feed(&mut e, &l, &[(13, 8.5)]);
        assert!(matches!(t[..], [Transition::Cleared { .. }]), "{t:?}");
    }

    #[test]
    fn persistence_zero_confirms_on_the_first_sample() {
        let mut l = limits();
        l.persistence_ms = 0;
        let mut e = Episode::default();
        assert_eq!(feed(&mut e, &l, &[(0, 10.5)]).len(), 1);
    }

    #[test]
    fn a_secondary_measure_must_exceed_its_limit_once_in_the_episode() {
        let mut l = limits();
        l.secondary_above = Some(1.0);
        let mut e = Episode::default();
        let at = |s: i64| Timestamp(s * 1000);
        assert_eq!(e.observe(&l, at(0), 11.0, Some(2.0)), Transition::None);
        // Persistence is met at 5 s; the rise was fast at the start of the episode.
        assert!(matches!(
            e.observe(&l, at(5), 11.0, Some(0.0)),
            Transition::Confirmed(_)
        ));
    }
}
