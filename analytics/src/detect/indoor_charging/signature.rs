//! An e-bike charger's signature in one flat's electricity load.
//!
//! docs/detection.md: a step of roughly 60–400 W, held as a flat plateau for hours
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
//! computer or heater left on all night holds for longer), the taper `min_taper_min` over at least two readings,
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
//! also *flat*: twice the mean rise between consecutive smoothed quiet-hour
//! plateau readings must stay below `max_roughness_ratio` of the step (only
//! rises: a lead-acid absorption stage declines steadily, people go up as
//! often as down). A
//! dormitory whose people come and go all night is not flat; that was the
//! second large group of false positives.
//!
//! An air-conditioner's sleep mode comes down a staircase: the fan level
//! the moving minimum keeps steps down every hour or two and holds each
//! step. A charger's tail falls smoothly, or holds one lower stage (a
//! two-step lead-acid charger). So a taper that held more than one level
//! for a while is refused ([`Verdict::TaperStepped`]), counted over the
//! whole session so that a household waking on top of the staircase does
//! not start the count afresh.

use super::recent::Recent;
use super::session::Candidate;
pub use super::session::Session;
use super::trace::{EndCause, NoTrace, SessionShape, TraceEvent, TraceSink, Verdict};
use super::IndoorChargingConfig;
use gridwatch_telemetry::Timestamp;

/// Readings kept for the smoothing and the level before a step, at most.
const MAX_BASELINE_SAMPLES: usize = 64;
/// How long a dip below the plateau may last before it has been confirmed.
const MAX_EARLY_DIP_MS: i64 = 30 * 60_000;
/// During this long after the step, the level may still grow (the first
/// interval holds only part of the charger's power).
const LEVEL_SETTLE_MS: i64 = 15 * 60_000;

fn ended(cause: EndCause, session: Option<SessionShape>, verdict: Option<Verdict>) -> TraceEvent {
    TraceEvent::Ended {
        cause,
        session,
        verdict,
    }
}

/// One flat's signature state: a few recent readings, at most one
/// candidate session and the one it re-anchored from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SignatureTrack {
    recent: Recent,
    last_ts: Option<i64>,
    candidate: Option<Box<Candidate>>,
    /// The candidate a later step re-anchored from, and when: restored
    /// if the upper load goes away without being a charger itself.
    under: Option<(Box<Candidate>, i64)>,
    /// The flat's night floor, W (NaN until a night has been seen).
    floor_w: f32,
    /// Lowest reading of the current quiet period (infinite outside one).
    night_min_w: f32,
    was_quiet: bool,
}

impl Default for SignatureTrack {
    fn default() -> Self {
        Self {
            recent: Recent::default(),
            last_ts: None,
            candidate: None,
            under: None,
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
        self.observe_traced(cfg, ts, power_w, night, quiet, &mut NoTrace)
    }

    /// [`Self::observe`], telling `trace` every decision.
    pub fn observe_traced<T: TraceSink>(
        &mut self,
        cfg: &IndoorChargingConfig,
        ts: Timestamp,
        power_w: f64,
        night: bool,
        quiet: bool,
        trace: &mut T,
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
            self.under = None;
            if self.candidate.take().is_some() {
                let gap_min = dt as f32 / 60_000.0;
                let cause = EndCause::Gap { gap_min };
                trace.event(ts, ended(cause, None, None));
            }
        }
        self.remember(cfg, ts.0, raw);
        let smooth_ms = i64::from(cfg.smooth_min) * 60_000;
        let p = self
            .recent
            .iter()
            .filter(|(t, _)| ts.0 - t <= smooth_ms)
            .map(|(_, w)| w)
            .fold(raw, f32::min);
        if let Some(c) = self.candidate.take() {
            return self.follow(cfg, c, ts, p, dt, quiet, trace);
        }
        if night {
            let window = i64::from(cfg.baseline_min + cfg.smooth_min) * 60_000;
            let pre = self
                .recent
                .iter()
                .filter(|(t, _)| ts.0 - t <= window && ts.0 - t > smooth_ms)
                .map(|(_, w)| w)
                .fold(f32::INFINITY, f32::min);
            let step = p - pre;
            if pre.is_finite() && step >= cfg.min_step_w as f32 && step <= cfg.max_step_w as f32 {
                // The smoothed series rises `smooth_min` after the load did.
                let start = ts.0 - smooth_ms;
                self.candidate = Some(Box::new(Candidate::new(start, pre, step)));
                trace.event(
                    Timestamp(start),
                    TraceEvent::Started {
                        pre_w: pre,
                        step_w: step,
                    },
                );
            }
        }
        None
    }

    /// One smoothed reading `p` for the open candidate `c`.
    #[allow(clippy::too_many_arguments)]
    fn follow<T: TraceSink>(
        &mut self,
        cfg: &IndoorChargingConfig,
        mut c: Box<Candidate>,
        ts: Timestamp,
        p: f32,
        dt: i64,
        quiet: bool,
        trace: &mut T,
    ) -> Option<Session> {
        let smooth_ms = i64::from(cfg.smooth_min) * 60_000;
        // Once the session has reached the quiet hours the flat's own night
        // floor is its reference (and stays so: switching back to the
        // evening level at 05:00 would fake a taper in a load that simply
        // stays on). In the evening the floor would let the household's own
        // evening load pass for a plateau.
        let reference = if (quiet || c.quiet_ms > 0) && self.floor_w.is_finite() {
            c.pre_w.min(self.floor_w)
        } else {
            c.pre_w
        };
        let excess = p - reference;
        let over_pre = p - c.pre_w;
        if quiet && excess >= 0.5 * c.step_w {
            c.quiet_ms += dt;
        }
        let elapsed = ts.0 - c.start;
        // The smoothed series shows a partial first interval for
        // `smooth_min` after the step; the level settles after that.
        let settled = elapsed > smooth_ms + LEVEL_SETTLE_MS;
        if !settled && over_pre > cfg.max_step_w as f32 {
            // The first smoothed reading held only part of a bigger load.
            let cause = EndCause::TooBig { rise_w: over_pre };
            return self.end(cfg, *c, ts, p, cause, false, trace);
        }
        let keep = if !settled && over_pre > c.step_w && over_pre <= cfg.max_step_w as f32 {
            c.step_w = over_pre;
            c.plateau_ms += dt;
            true
        } else if settled
            && c.quiet_ms == 0
            && over_pre - c.step_w >= cfg.min_step_w as f32
            && over_pre - c.step_w <= cfg.max_step_w as f32
        {
            // A second load stepped up on top of the first, still in the
            // evening: follow the newer one, measured from the level it
            // stepped up from, and keep the older one underneath.
            let rise = over_pre - c.step_w;
            let pre = c.pre_w + c.step_w;
            self.under = Some((c, ts.0));
            c = Box::new(Candidate::new(ts.0 - smooth_ms, pre, rise));
            trace.event(
                ts,
                TraceEvent::Reanchored {
                    pre_w: pre,
                    step_w: rise,
                },
            );
            true
        } else if excess >= c.step_w * cfg.plateau_ratio as f32 {
            c.plateau_ms += dt;
            if settled && c.prev_w.is_finite() {
                // A constant current does not rise; people do.
                let rise = (p - c.prev_w).max(0.0);
                c.rise_sum_w += rise;
                c.rise_n = c.rise_n.saturating_add(1);
                if quiet {
                    c.rough_sum_w += rise;
                    c.rough_n = c.rough_n.saturating_add(1);
                }
            }
            c.prev_w = p;
            if c.taper_samples > 0 {
                c.resumed_ms += dt;
                if c.resumed_ms >= i64::from(cfg.min_taper_min).max(10) * 60_000 {
                    c.restart_taper();
                    trace.event(ts, TraceEvent::TaperRestarted { excess_w: excess });
                }
            }
            true
        } else if excess >= c.step_w * cfg.end_ratio as f32 {
            c.prev_w = f32::NAN;
            // Under the plateau before the plateau is long enough for the
            // signature: a dip, unless the load stays down (a fast
            // charger's taper, which only fusion takes, is short).
            if c.plateau_ms < i64::from(cfg.min_plateau_min) * 60_000 {
                c.dip_ms += dt;
            }
            // The taper may begin after the shortest plateau any rule
            // takes (a fast charger's, with a sighting beside it).
            if c.plateau_ms >= i64::from(cfg.fused_min_plateau_min) * 60_000 {
                if c.taper_samples == 0 {
                    trace.event(ts, TraceEvent::TaperBegan { excess_w: excess });
                } else if excess > c.last_taper_w + c.step_w * cfg.taper_rise_ratio as f32 {
                    c.restart_taper();
                    trace.event(ts, TraceEvent::TaperRestarted { excess_w: excess });
                }
                c.taper_ms += dt;
                // A staircase is judged on the signature's plateau only: a
                // dip held early on is the household, not the tail.
                if c.plateau_ms >= i64::from(cfg.min_plateau_min) * 60_000 {
                    c.track_hold(excess, dt);
                }
                c.taper_samples = c.taper_samples.saturating_add(1);
                c.resumed_ms = 0;
                c.last_taper_w = excess;
            }
            if c.dip_ms > MAX_EARLY_DIP_MS {
                let dip_min = c.dip_ms as f32 / 60_000.0;
                self.end(cfg, *c, ts, p, EndCause::EarlyDip { dip_min }, false, trace);
                false
            } else {
                true
            }
        } else {
            return self.end(
                cfg,
                *c,
                ts,
                p,
                EndCause::BelowEnd { excess_w: excess },
                true,
                trace,
            );
        };
        if !keep {
            return None;
        }
        if elapsed <= i64::from(cfg.max_session_h) * 3_600_000 {
            self.candidate = Some(c);
        } else {
            self.under = None;
            trace.event(ts, ended(EndCause::TooLong, None, None));
        }
        None
    }

    /// Ends `c`: judges it when it ended by falling to the end level
    /// (`judge`), and if it was not a charger restores the candidate it
    /// re-anchored from, when that one still draws.
    #[allow(clippy::too_many_arguments)]
    fn end<T: TraceSink>(
        &mut self,
        cfg: &IndoorChargingConfig,
        c: Candidate,
        ts: Timestamp,
        p: f32,
        cause: EndCause,
        judge: bool,
        trace: &mut T,
    ) -> Option<Session> {
        let mut s = c.session(ts, cfg);
        let verdict = judge.then(|| c.verdict(cfg, &s));
        trace.event(ts, ended(cause, Some(c.shape()), verdict));
        if matches!(verdict, Some(Verdict::Counted | Verdict::FusionOnly { .. })) {
            self.under = None;
            return Some(s);
        }
        // A sharp end may as well have been a load switched off on top of
        // the candidate it re-anchored from: that one is followed on, as
        // for any load that was not a charger, and the session goes to
        // fusion alone.
        let sharp = matches!(verdict, Some(Verdict::FusionOnlySharp { .. }));
        if sharp {
            s.fusion_only = true;
            s.sharp = true;
        }
        if let Some((mut u, since)) = self.under.take() {
            let reference = if self.floor_w.is_finite() {
                u.pre_w.min(self.floor_w)
            } else {
                u.pre_w
            };
            if p - reference >= u.step_w * cfg.plateau_ratio as f32 {
                u.plateau_ms += ts.0 - since;
                u.quiet_ms += c.quiet_ms;
                trace.event(ts, TraceEvent::Restored { step_w: u.step_w });
                self.candidate = Some(u);
            }
        }
        sharp.then_some(s)
    }

    fn remember(&mut self, cfg: &IndoorChargingConfig, ts: i64, p: f32) {
        let window = i64::from(cfg.baseline_min + cfg.smooth_min) * 60_000;
        self.recent.retain(|t| ts - t < window);
        if self.recent.len() >= MAX_BASELINE_SAMPLES {
            self.recent.drop_oldest();
        }
        self.recent.push(ts, p);
    }

    /// Bytes of state, for the memory report.
    pub fn heap_bytes(&self) -> usize {
        let candidates = usize::from(self.candidate.is_some()) + usize::from(self.under.is_some());
        self.recent.heap_bytes() + candidates * std::mem::size_of::<Candidate>()
    }
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
