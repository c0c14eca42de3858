//! An e-bike charger's signature in one flat's electricity load.
//!
//! DETECTION.md: a step of roughly 60–400 W, held as a flat plateau for hours
//! (constant current), then a monotone taper (or the lead-acid second stage),
//! mostly starting in the evening or at night, with no on/off cycling.
//!
//! The state machine works on the meter's interval mean power after a
//! moving minimum over `smooth_min` (a morphological erosion, as in load
//! disaggregation): a fridge's on-phase, a kettle, a thermostat's cycles and
//! one-interval spikes vanish from it, while a load that holds for longer —
//! a charger — passes through unchanged, and so does a falling taper, since
//! the minimum of a falling series is its newest value. The level before the
//! step is the minimum of the preceding `baseline_min`. After a step into
//! the allowed band, each smoothed reading's excess over that level is one
//! of: *plateau* (at least `plateau_ratio` of the step), *taper* (between
//! `end_ratio` and `plateau_ratio`, once the plateau is long enough), or the
//! *end* (below `end_ratio`). A session counts when the plateau lasted
//! `min_plateau_min` to `max_plateau_min` (constant current for 1–5 h; a
//! computer or heater left on all night holds for longer), the taper `min_taper_min` over at least three readings,
//! and the whole thing at most `max_session_h`.
//!
//! A second step on top of the first while it is still evening (a charger
//! plugged in after the household's own evening step) starts the session
//! afresh from the level it stepped up from, so that the plateau is the
//! charger's and not the evening's.
//!
//! The taper must be the session's *last* phase and fall monotonically: a
//! taper reading more than `taper_rise_ratio` of the step above the previous
//! one starts the taper afresh, and so does a return to the plateau for
//! `min_taper_min`. Without that, a constant load that ends in one step (a
//! computer or a heater left on all night, the commonest false positive in
//! the evaluation) borrowed its "taper" from the household going to bed in
//! the middle of it.
//!
//! The household's own evening peak is the hard confounder: it steps up in
//! the evening and comes down in stages at bedtime, which looks like a
//! plateau and a taper. What tells them apart is the night: a charger keeps
//! drawing after the household has gone to sleep. So during the quiet hours
//! (`quiet_hour_from`–`quiet_hour_to`, 00–05) the excess is measured against
//! the flat's night floor (an exponential mean over nights of the lowest
//! reading in those hours) rather than the evening level, and a session
//! counts only if it drew at least half its step above that floor for
//! `min_quiet_min` of the quiet hours (and from then on the floor stays the
//! reference). While the household sleeps, a charger's constant current is
//! also *flat*: the mean change between consecutive smoothed quiet-hour
//! plateau readings must stay below `max_roughness_ratio` of the step. A
//! dormitory whose people come and go all night is not flat; that was the
//! second large group of false positives.

use super::IndoorChargingConfig;
use gridwatch_telemetry::Timestamp;

/// Readings kept for the smoothing and the level before a step, at most.
const MAX_BASELINE_SAMPLES: usize = 64;
/// Readings a taper must span: a load switched off mid-interval leaves one
/// reading between on and off, a taper leaves several.
const MIN_TAPER_SAMPLES: u16 = 3;
/// How long a dip below the plateau may last before it has been confirmed.
const MAX_EARLY_DIP_MS: i64 = 30 * 60_000;
/// During this long after the step, the level may still grow (the first
/// interval holds only part of the charger's power).
const LEVEL_SETTLE_MS: i64 = 15 * 60_000;

/// A charging session seen in the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Session {
    /// The step.
    pub start: Timestamp,
    /// The reading that ended it.
    pub end: Timestamp,
    /// Height of the step above the level before it, W.
    pub step_w: f32,
    /// Time on the plateau, minutes.
    pub plateau_min: f32,
    /// Time tapering, minutes.
    pub taper_min: f32,
    /// Mean change between consecutive smoothed readings on the plateau
    /// during the quiet hours, W: a charger's constant current is flat
    /// while the household sleeps; people up at night are not.
    pub roughness_w: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    start: i64,
    pre_w: f32,
    step_w: f32,
    plateau_ms: i64,
    taper_ms: i64,
    dip_ms: i64,
    quiet_ms: i64,
    taper_samples: u16,
    /// Time back on the plateau since the taper began.
    resumed_ms: i64,
    /// Excess of the previous taper reading.
    last_taper_w: f32,
    /// Sum and count of |change| between quiet-hour plateau readings.
    rough_sum_w: f32,
    rough_n: u16,
    prev_w: f32,
}

impl Candidate {
    fn new(start: i64, pre_w: f32, step_w: f32) -> Self {
        Self {
            start,
            pre_w,
            step_w,
            plateau_ms: 0,
            taper_ms: 0,
            dip_ms: 0,
            quiet_ms: 0,
            taper_samples: 0,
            resumed_ms: 0,
            last_taper_w: f32::INFINITY,
            rough_sum_w: 0.0,
            rough_n: 0,
            prev_w: f32::NAN,
        }
    }

    fn restart_taper(&mut self) {
        self.taper_ms = 0;
        self.taper_samples = 0;
        self.resumed_ms = 0;
        self.last_taper_w = f32::INFINITY;
    }
}

/// One flat's signature state: a few recent readings and at most one
/// candidate session.
#[derive(Debug, Clone)]
pub struct SignatureTrack {
    recent: Vec<(i64, f32)>,
    last_ts: Option<i64>,
    candidate: Option<Candidate>,
    /// The flat's night floor, W (NaN until a night has been seen).
    floor_w: f32,
    /// Lowest reading of the current quiet period (infinite outside one).
    night_min_w: f32,
    was_quiet: bool,
}

impl Default for SignatureTrack {
    fn default() -> Self {
        Self {
            recent: Vec::new(),
            last_ts: None,
            candidate: None,
            floor_w: f32::NAN,
            night_min_w: f32::INFINITY,
            was_quiet: false,
        }
    }
}

/// Weight of the newest night in the night floor.
const FLOOR_ALPHA: f32 = 0.3;

impl SignatureTrack {
    /// Feeds one interval-mean power reading; returns a session when one
    /// ends that has the charger's shape. `night` says whether `ts` is in the
    /// hours a session may start, `quiet` whether it is in the quiet hours.
    pub fn observe(
        &mut self,
        cfg: &IndoorChargingConfig,
        ts: Timestamp,
        power_w: f64,
        night: bool,
        quiet: bool,
    ) -> Option<Session> {
        let raw = power_w as f32;
        if quiet {
            self.night_min_w = self.night_min_w.min(raw);
        } else if self.was_quiet && self.night_min_w.is_finite() {
            let m = self.night_min_w;
            self.floor_w = if self.floor_w.is_finite() {
                self.floor_w + FLOOR_ALPHA * (m - self.floor_w)
            } else {
                m
            };
            self.night_min_w = f32::INFINITY;
        }
        self.was_quiet = quiet;
        let dt = match self.last_ts {
            Some(last) if ts.0 <= last => return None,
            Some(last) => ts.0 - last,
            None => 0,
        };
        self.last_ts = Some(ts.0);
        if dt > i64::from(cfg.max_gap_min) * 60_000 {
            // No data is not a plateau, nor an end: start over.
            self.recent.clear();
            self.candidate = None;
        }
        self.remember(cfg, ts.0, raw);
        let smooth_ms = i64::from(cfg.smooth_min) * 60_000;
        let p = self
            .recent
            .iter()
            .filter(|(t, _)| ts.0 - t <= smooth_ms)
            .map(|(_, w)| *w)
            .fold(raw, f32::min);
        let mut out = None;
        if let Some(mut c) = self.candidate.take() {
            // Once the session has reached the quiet hours the night floor
            // stays its reference: switching back to the evening level at
            // 05:00 would fake a taper in a load that simply stays on.
            let reference = if (quiet || c.quiet_ms > 0) && self.floor_w.is_finite() {
                c.pre_w.min(self.floor_w)
            } else {
                c.pre_w
            };
            let excess = p - reference;
            if quiet && excess >= 0.5 * c.step_w {
                c.quiet_ms += dt;
            }
            let elapsed = ts.0 - c.start;
            let prev_w = std::mem::replace(&mut c.prev_w, f32::NAN);
            let keep = if elapsed <= LEVEL_SETTLE_MS
                && excess > c.step_w
                && excess <= cfg.max_step_w as f32
            {
                c.step_w = excess;
                c.plateau_ms += dt;
                true
            } else if elapsed > LEVEL_SETTLE_MS
                && c.quiet_ms == 0
                && excess - c.step_w >= cfg.min_step_w as f32
                && excess - c.step_w <= cfg.max_step_w as f32
            {
                // A second load stepped up on top of the first, still in the
                // evening: the session (if any) is the newer one, measured
                // from the level it stepped up from.
                let rise = excess - c.step_w;
                c = Candidate::new(ts.0 - smooth_ms, reference + c.step_w, rise);
                true
            } else if excess >= c.step_w * cfg.plateau_ratio as f32 {
                c.plateau_ms += dt;
                if quiet {
                    if prev_w.is_finite() {
                        c.rough_sum_w += (p - prev_w).abs();
                        c.rough_n = c.rough_n.saturating_add(1);
                    }
                    c.prev_w = p;
                }
                if c.taper_samples > 0 {
                    c.resumed_ms += dt;
                    if c.resumed_ms >= i64::from(cfg.min_taper_min) * 60_000 {
                        c.restart_taper();
                    }
                }
                true
            } else if excess >= c.step_w * cfg.end_ratio as f32 {
                if c.plateau_ms >= i64::from(cfg.min_plateau_min) * 60_000 {
                    if excess > c.last_taper_w + c.step_w * cfg.taper_rise_ratio as f32 {
                        c.restart_taper();
                    }
                    c.taper_ms += dt;
                    c.taper_samples = c.taper_samples.saturating_add(1);
                    c.resumed_ms = 0;
                    c.last_taper_w = excess;
                } else {
                    c.dip_ms += dt;
                }
                c.dip_ms <= MAX_EARLY_DIP_MS
            } else {
                let s = Session {
                    start: Timestamp(c.start),
                    end: ts,
                    step_w: c.step_w,
                    plateau_min: c.plateau_ms as f32 / 60_000.0,
                    taper_min: c.taper_ms as f32 / 60_000.0,
                    roughness_w: if c.rough_n > 0 {
                        c.rough_sum_w / f32::from(c.rough_n)
                    } else {
                        0.0
                    },
                };
                if c.plateau_ms >= i64::from(cfg.min_plateau_min) * 60_000
                    && c.plateau_ms <= i64::from(cfg.max_plateau_min) * 60_000
                    && c.taper_ms >= i64::from(cfg.min_taper_min) * 60_000
                    && c.quiet_ms >= i64::from(cfg.min_quiet_min) * 60_000
                    && c.taper_samples >= MIN_TAPER_SAMPLES
                    && s.roughness_w <= c.step_w * cfg.max_roughness_ratio as f32
                {
                    out = Some(s);
                }
                false
            };
            if keep && elapsed <= i64::from(cfg.max_session_h) * 3_600_000 {
                self.candidate = Some(c);
            }
        } else if night {
            let window = i64::from(cfg.baseline_min + cfg.smooth_min) * 60_000;
            let pre = self
                .recent
                .iter()
                .filter(|(t, _)| ts.0 - t <= window && ts.0 - t > smooth_ms)
                .map(|(_, w)| *w)
                .fold(f32::INFINITY, f32::min);
            let step = p - pre;
            if pre.is_finite() && step >= cfg.min_step_w as f32 && step <= cfg.max_step_w as f32 {
                // The smoothed series rises `smooth_min` after the load did.
                self.candidate = Some(Candidate::new(ts.0 - smooth_ms, pre, step));
            }
        }
        out
    }

    fn remember(&mut self, cfg: &IndoorChargingConfig, ts: i64, p: f32) {
        let window = i64::from(cfg.baseline_min + cfg.smooth_min) * 60_000;
        self.recent.retain(|(t, _)| ts - t < window);
        if self.recent.len() >= MAX_BASELINE_SAMPLES {
            self.recent.remove(0);
        }
        self.recent.push((ts, p));
    }

    /// Bytes of state, for the memory report.
    pub fn heap_bytes(&self) -> usize {
        self.recent.capacity() * std::mem::size_of::<(i64, f32)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    /// Feeds `f(minute)` every 5 minutes for `minutes`; all of it counts as night.
    fn run(f: impl Fn(i64) -> f64, minutes: i64) -> Vec<Session> {
        run_with(&IndoorChargingConfig::default(), f, minutes)
    }

    fn run_with(cfg: &IndoorChargingConfig, f: impl Fn(i64) -> f64, minutes: i64) -> Vec<Session> {
        let cfg = cfg.clone();
        let mut t = SignatureTrack::default();
        (0..=minutes / 5)
            .filter_map(|i| t.observe(&cfg, Timestamp(i * 5 * MIN), f(i * 5), true, true))
            .collect()
    }

    fn lithium(m: i64) -> f64 {
        // 80 W household, a 200 W plateau from minute 60 to 240, tapering to 0 by 300.
        let charger = match m {
            60..=239 => 200.0,
            240..=299 => 200.0 * (300 - m) as f64 / 60.0,
            _ => 0.0,
        };
        80.0 + charger
    }

    #[test]
    fn a_plateau_and_taper_is_a_session() {
        let s = run(lithium, 600);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].start, Timestamp(60 * MIN));
        assert!((s[0].step_w - 200.0).abs() < 1.0);
        // The plateau is counted from when the smoothed load rose, 20 min late.
        assert!(s[0].plateau_min >= 160.0 && s[0].taper_min >= 15.0, "{s:?}");
    }

    #[test]
    fn a_plateau_that_ends_in_one_step_is_not_a_session() {
        let s = run(|m| if (60..300).contains(&m) { 230.0 } else { 80.0 }, 600);
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn thermostat_cycling_is_not_a_session() {
        let s = run(|m| if (m / 15) % 2 == 0 { 200.0 } else { 80.0 }, 600);
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn a_step_above_the_band_is_not_a_session() {
        let s = run(|m| 80.0 + 6.0 * (lithium(m) - 80.0), 600);
        // 1200 W plateau: a heater or a fast charger, not this rule's business.
        assert!(s.is_empty(), "{s:?}");
    }

    /// Three days of a household that is busy 17–23 h, quieter until
    /// midnight and asleep 0–6 h, with `charger(minute since start)` on top,
    /// fed every 5 minutes with the default night (18–04 h) and quiet
    /// (0–5 h) hours.
    fn household(charger: impl Fn(i64) -> f64) -> Vec<Session> {
        let cfg = IndoorChargingConfig::default();
        let mut t = SignatureTrack::default();
        let mut out = Vec::new();
        for i in 0..3 * 288 {
            let m = i * 5;
            let hour = ((m % 1440) / 60) as u8;
            let home = match hour {
                17..=18 => 150.0,
                19..=22 => 300.0,
                23 => 200.0,
                _ => 20.0,
            };
            let night = !(4..18).contains(&hour);
            out.extend(t.observe(&cfg, Timestamp(m * MIN), home + charger(m), night, hour < 5));
        }
        out
    }

    #[test]
    fn the_households_evening_peak_and_bedtime_are_not_a_session() {
        let s = household(|_| 0.0);
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn a_charger_plugged_in_before_bedtime_is_followed_through_the_night() {
        // 200 W from 21:00 on the second day to 01:00, tapering to 0 by 02:00.
        let from = 1440 + 21 * 60;
        let s = household(|m| match m - from {
            0..240 => 200.0,
            x @ 240..300 => 200.0 * (300 - x) as f64 / 60.0,
            _ => 0.0,
        });
        // The household's own 19:00 step may open the session; either way
        // it is one session that lasts until the charger has tapered off.
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(s[0].start.0 <= from * MIN, "{s:?}");
        assert!(s[0].end.0 >= (from + 270) * MIN, "{s:?}");
    }

    #[test]
    fn a_plateau_longer_than_a_chargers_constant_current_phase_is_not_a_session() {
        // 6 h at 200 W then the same 1 h taper: a load that holds this long
        // is not an e-bike charger (DETECTION.md: plateau 1-5 h).
        let long = |m: i64| {
            80.0 + match m {
                60..=419 => 200.0,
                420..=479 => 200.0 * (480 - m) as f64 / 60.0,
                _ => 0.0,
            }
        };
        assert!(run(long, 900).is_empty());
        // Control: the 3 h plateau of `lithium` with the same taper is one.
        assert_eq!(run(lithium, 900).len(), 1);
    }

    #[test]
    fn a_plateau_rougher_than_max_roughness_ratio_is_not_a_session() {
        // Every 15 minutes a fresh level between 100 and 300 W: people
        // up and about all night, not a constant current. (A fixed
        // pseudo-random sequence, so the test is reproducible.)
        let draw = |m: i64| {
            let x = (m as u64).wrapping_mul(6_364_136_223_846_793_005) >> 40;
            100.0 + 200.0 * (x % 1000) as f64 / 1000.0
        };
        let rough = |m: i64| {
            80.0 + match m {
                60..=239 => draw(m / 15),
                240..=299 => 100.0 * (300 - m) as f64 / 60.0,
                _ => 0.0,
            }
        };
        let s = run(rough, 600);
        assert_eq!(s.len(), 1, "{s:?}");
        let ratio = s[0].roughness_w / s[0].step_w;
        assert!(ratio > 0.01, "{s:?}");
        // Just above the session's roughness it passes; just below, not.
        let at = |r: f32| IndoorChargingConfig {
            max_roughness_ratio: f64::from(r),
            ..IndoorChargingConfig::default()
        };
        assert_eq!(run_with(&at(ratio * 1.05), rough, 600).len(), 1);
        assert!(run_with(&at(ratio * 0.95), rough, 600).is_empty());
        // A constant current is far smoother (its only change is where
        // the step's first intervals settle).
        let flat = run(lithium, 600)[0];
        assert!(flat.roughness_w / flat.step_w < 0.01, "{flat:?}");
    }

    #[test]
    fn a_fridge_cycling_under_the_charger_does_not_break_the_session() {
        // 110 W for 14 of every 40 minutes, as in every flat.
        let fridge = |m: i64| if m % 40 < 14 { 110.0 } else { 0.0 };
        let s = run(|m| lithium(m) + fridge(m), 600);
        assert_eq!(s.len(), 1, "{s:?}");
        assert!((s[0].step_w - 200.0).abs() < 15.0, "{s:?}");
    }

    #[test]
    fn a_load_left_on_all_night_that_ends_in_one_step_is_not_a_session() {
        // 150 W from 23:00 to 04:30 on the second day (under the 5 h
        // plateau limit), through bedtime and the quiet hours, then off.
        let from = 1440 + 23 * 60;
        let s = household(|m| {
            if (0..330).contains(&(m - from)) {
                150.0
            } else {
                0.0
            }
        });
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn a_gap_in_the_data_abandons_the_session() {
        let cfg = IndoorChargingConfig::default();
        let mut t = SignatureTrack::default();
        let mut out = Vec::new();
        for i in 0..=120 {
            let m = i * 5;
            if (150..200).contains(&m) {
                continue;
            }
            out.extend(t.observe(&cfg, Timestamp(m * MIN), lithium(m), true, true));
        }
        assert!(out.is_empty(), "{out:?}");
    }
}
