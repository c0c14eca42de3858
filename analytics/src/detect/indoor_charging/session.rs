//! One charging session while the signature track follows it (a
//! candidate), and what an ended one is judged to be.
//!
//! Split from `signature.rs`, which decides when a candidate starts, how each
//! reading moves it and when it ends; here is what a candidate remembers and
//! the verdict on its shape (the conditions are in that module's doc).

use super::trace::{SessionShape, Verdict};
use super::IndoorChargingConfig;
use gridwatch_telemetry::Timestamp;

/// Readings a taper must span: a load switched off mid-interval leaves one
/// reading between on and off, a taper leaves several (a lithium charger's
/// sharp constant-voltage tail of 10–20 minutes two to four at 5 minutes).
const MIN_TAPER_SAMPLES: u16 = 2;
/// Settled plateau readings a session outside the quiet hours needs before
/// its flatness means anything.
const MIN_DAY_PLATEAU_READINGS: u16 = 6;
/// A taper level held within this share of the step is one level.
const TAPER_HOLD_BAND: f32 = 0.08;
/// A level held this long in the taper is a stage, not a passing reading.
const TAPER_HOLD_MS: i64 = 40 * 60_000;
/// Stages a charger's taper may hold: a two-step lead-acid charger holds
/// its second stage; a staircase of several is an air-conditioner's sleep
/// mode stepping down every hour or two.
const MAX_TAPER_HOLDS: u8 = 1;

/// A charging session seen in the load.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// It counts only with the flat's tag beside it, for
    /// `indoor_charging_fused`, never for the signature alone: its plateau
    /// was shorter than `min_plateau_min` (but at least
    /// `fused_min_plateau_min`), or it ended sharply. (Named `short` in
    /// checkpoints written before sharp ends counted.)
    #[serde(default, alias = "short")]
    pub fusion_only: bool,
    /// It ended sharply (see `fusion_only`): it counts only as an arrival read
    /// indoors (the tag just before it, two such sessions in the window),
    /// never by a gate read or a sighting hours away, since a household's
    /// own evening loads are switched off as sharply.
    #[serde(default)]
    pub sharp: bool,
}

/// A session being followed: its step, its time on the plateau, in the
/// taper and in the quiet hours, and what its plateau and taper did, which
/// is all the verdict needs (it is saved in checkpoints, so it stays small).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct Candidate {
    pub(super) start: i64,
    pub(super) pre_w: f32,
    pub(super) step_w: f32,
    pub(super) plateau_ms: i64,
    pub(super) taper_ms: i64,
    pub(super) dip_ms: i64,
    pub(super) quiet_ms: i64,
    pub(super) taper_samples: u16,
    /// Time back on the plateau since the taper began.
    pub(super) resumed_ms: i64,
    /// Excess of the previous taper reading.
    pub(super) last_taper_w: f32,
    /// Sum and count of rises between quiet-hour plateau readings.
    pub(super) rough_sum_w: f32,
    pub(super) rough_n: u16,
    /// Sum and count of rises between all settled plateau readings.
    pub(super) rise_sum_w: f32,
    pub(super) rise_n: u16,
    pub(super) prev_w: f32,
    /// Excess at the start of the taper's current level, W, and how long
    /// the taper has held within `TAPER_HOLD_BAND` of it (defaults let a
    /// checkpoint written before these fields existed load).
    #[serde(default = "nan")]
    pub(super) hold_ref_w: f32,
    #[serde(default)]
    pub(super) hold_ms: i64,
    /// Levels the taper held for at least `TAPER_HOLD_MS`.
    #[serde(default)]
    pub(super) holds: u8,
}

fn nan() -> f32 {
    f32::NAN
}

impl Candidate {
    pub(super) fn new(start: i64, pre_w: f32, step_w: f32) -> Self {
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
            rise_sum_w: 0.0,
            rise_n: 0,
            prev_w: f32::NAN,
            hold_ref_w: f32::NAN,
            hold_ms: 0,
            holds: 0,
        }
    }

    /// Follows the taper's level: a charger's taper falls smoothly or holds
    /// one lower stage (a two-step lead-acid charger); an air-conditioner's
    /// sleep mode comes down a staircase, holding each step for over an hour.
    pub(super) fn track_hold(&mut self, excess: f32, dt: i64) {
        if self.hold_ref_w.is_finite()
            && (excess - self.hold_ref_w).abs() <= TAPER_HOLD_BAND * self.step_w
        {
            let before = self.hold_ms;
            self.hold_ms += dt;
            if before < TAPER_HOLD_MS && self.hold_ms >= TAPER_HOLD_MS {
                self.holds = self.holds.saturating_add(1);
            }
        } else {
            self.hold_ref_w = excess;
            self.hold_ms = 0;
        }
    }

    pub(super) fn restart_taper(&mut self) {
        self.taper_ms = 0;
        self.taper_samples = 0;
        self.resumed_ms = 0;
        self.last_taper_w = f32::INFINITY;
        self.hold_ref_w = f32::NAN;
        self.hold_ms = 0;
    }

    /// Mean rise between plateau readings, W: over the quiet hours when
    /// the session drew through them (the household asleep), else over
    /// the whole settled plateau.
    pub(super) fn roughness_w(&self, cfg: &IndoorChargingConfig) -> f32 {
        let (sum, n) = if self.reached_quiet(cfg) {
            (self.rough_sum_w, self.rough_n)
        } else {
            (self.rise_sum_w, self.rise_n)
        };
        // Only rises count (twice their mean, the mean change of a series
        // that goes up as often as down), so that a slow decline, a
        // lead-acid absorption stage falling 4–17 % per reading, does not
        // read as rough.
        if n > 0 {
            2.0 * sum / f32::from(n)
        } else {
            0.0
        }
    }

    pub(super) fn reached_quiet(&self, cfg: &IndoorChargingConfig) -> bool {
        self.quiet_ms >= i64::from(cfg.min_quiet_min) * 60_000
    }

    pub(super) fn session(&self, end: Timestamp, cfg: &IndoorChargingConfig) -> Session {
        Session {
            start: Timestamp(self.start),
            end,
            step_w: self.step_w,
            plateau_min: self.plateau_ms as f32 / 60_000.0,
            taper_min: self.taper_ms as f32 / 60_000.0,
            roughness_w: self.roughness_w(cfg),
            fusion_only: self.plateau_ms < i64::from(cfg.min_plateau_min) * 60_000,
            sharp: false,
        }
    }

    pub(super) fn shape(&self) -> SessionShape {
        SessionShape {
            start: Timestamp(self.start),
            step_w: self.step_w,
            plateau_min: self.plateau_ms as f32 / 60_000.0,
            taper_min: self.taper_ms as f32 / 60_000.0,
            quiet_min: self.quiet_ms as f32 / 60_000.0,
        }
    }

    /// Whether the ended session is a charger's, else the first condition
    /// that failed.
    pub(super) fn verdict(&self, cfg: &IndoorChargingConfig, s: &Session) -> Verdict {
        const MIN: i64 = 60_000;
        if self.plateau_ms < i64::from(cfg.fused_min_plateau_min) * MIN {
            return Verdict::PlateauShort {
                plateau_min: s.plateau_min,
            };
        }
        if self.plateau_ms > i64::from(cfg.max_plateau_min) * MIN {
            return Verdict::PlateauLong {
                plateau_min: s.plateau_min,
            };
        }
        // A sharp end is judged on the rest of the shape: with the flat's
        // tag read indoors just before it, a flat plateau that stopped is
        // enough for the fused rule.
        let sharp = self.taper_ms < i64::from(cfg.min_taper_min) * MIN
            || self.taper_samples < MIN_TAPER_SAMPLES;
        if self.taper_ms > i64::from(cfg.max_taper_min) * MIN {
            return Verdict::TaperLong {
                taper_min: s.taper_min,
            };
        }
        if self.holds > MAX_TAPER_HOLDS {
            return Verdict::TaperStepped { holds: self.holds };
        }
        let quiet = self.reached_quiet(cfg);
        if !quiet && !cfg.count_day_sessions {
            return Verdict::NotAtNight {
                quiet_min: self.quiet_ms as f32 / 60_000.0,
            };
        }
        // Outside the quiet hours the household is about: the plateau must
        // be flat over enough readings to tell a constant current.
        let limit_w = if quiet {
            self.step_w * cfg.max_roughness_ratio as f32
        } else {
            self.step_w * cfg.max_day_roughness_ratio as f32
        };
        if s.roughness_w > limit_w || (!quiet && self.rise_n < MIN_DAY_PLATEAU_READINGS) {
            return Verdict::Rough {
                roughness_w: s.roughness_w,
                limit_w,
            };
        }
        if sharp {
            return Verdict::FusionOnlySharp {
                taper_min: s.taper_min,
                readings: self.taper_samples,
            };
        }
        if self.plateau_ms < i64::from(cfg.min_plateau_min) * MIN {
            return Verdict::FusionOnly {
                plateau_min: s.plateau_min,
            };
        }
        Verdict::Counted
    }
}
