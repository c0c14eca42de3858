//! The `[detect.socket_session]` section: the thresholds of every charging
//! session rule, checked once when the config is read.

use crate::toml_file::{positive, FieldError};
use serde::{Deserialize, Serialize};

/// The `[detect.socket_session]` section. Defaults are docs/detection.md's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketSessionConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// Residual current at which the socket must trip, mA.
    pub residual_trip_ma: f64,
    /// Above this a charger is not a compliant e-bike charger, W.
    pub nonstandard_w: f64,
    /// How long power must stay above `nonstandard_w`, s.
    pub nonstandard_persistence_s: u64,
    /// Below this the battery counts as full, W.
    pub full_below_w: f64,
    /// …held this long, minutes; a compliant pile then cuts power.
    pub full_hold_min: u64,
    /// Still charging after this many hours: major.
    pub not_full_after_h: u64,
    /// Session cap, hours: the pile should have ended the session.
    pub session_cap_h: u64,
    /// Forced stop, hours: past this a live session is critical.
    pub forced_stop_h: u64,
    /// Below this the socket has nothing plugged in (or a dead charger), W…
    pub idle_below_w: f64,
    /// …held this long, minutes.
    pub idle_hold_min: u64,
    /// The taper has begun once power falls below this share of the session's peak.
    pub taper_start_ratio: f64,
    /// Consecutive rising samples after the taper began that make a reversal.
    pub taper_rises: u32,
    /// Lead-acid stuck in bulk: current above this…
    pub bulk_stuck_a: f64,
    /// …after this many hours of session.
    pub bulk_stuck_after_h: u64,
    /// Whole pile: cut above this, W.
    pub pile_cut_w: f64,
    /// Whole pile: no new session above this, W.
    pub pile_new_session_w: f64,
    /// How long the pile's power must stay above `pile_cut_w`, s.
    pub pile_persistence_s: u64,
    /// A longer silence between readings restarts every hold, s.
    pub max_gap_s: u64,
    /// Abnormal session energy: a session above this multiple of its tag's
    /// median session energy.
    pub energy_ratio: f64,
    /// …once the tag has at least this many previous sessions (fewer say
    /// nothing about what is usual).
    pub energy_min_sessions: u32,
    /// Past session energies kept per tag (the median is over these).
    pub energy_history: u32,
    /// Tags whose history is kept; past this new tags are not judged (a
    /// warning says so once), so memory stays bounded.
    pub energy_max_tags: usize,
}

impl Default for SocketSessionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            residual_trip_ma: 30.0,
            nonstandard_w: 600.0,
            nonstandard_persistence_s: 5,
            full_below_w: 45.0,
            full_hold_min: 45,
            not_full_after_h: 8,
            session_cap_h: 12,
            forced_stop_h: 24,
            idle_below_w: 2.5,
            idle_hold_min: 5,
            taper_start_ratio: 0.8,
            taper_rises: 3,
            bulk_stuck_a: 0.55,
            bulk_stuck_after_h: 6,
            pile_cut_w: 8700.0,
            pile_new_session_w: 7800.0,
            pile_persistence_s: 5,
            max_gap_s: 600,
            energy_ratio: 1.3,
            energy_min_sessions: 3,
            energy_history: 10,
            energy_max_tags: 100_000,
        }
    }
}

impl SocketSessionConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (key, v) in [
            ("residual_trip_ma", self.residual_trip_ma),
            ("nonstandard_w", self.nonstandard_w),
            ("full_below_w", self.full_below_w),
            ("idle_below_w", self.idle_below_w),
            ("bulk_stuck_a", self.bulk_stuck_a),
            ("pile_cut_w", self.pile_cut_w),
            ("pile_new_session_w", self.pile_new_session_w),
        ] {
            positive(key, v)?;
        }
        if !(self.taper_start_ratio > 0.0 && self.taper_start_ratio < 1.0) {
            return Err(FieldError::new(
                "taper_start_ratio",
                format!(
                    "is {}; it must be above 0 and below 1",
                    self.taper_start_ratio
                ),
            ));
        }
        if self.taper_rises == 0 {
            return Err(FieldError::new(
                "taper_rises",
                "is 0; it must be at least 1",
            ));
        }
        if !(self.not_full_after_h <= self.session_cap_h
            && self.session_cap_h <= self.forced_stop_h)
        {
            return Err(FieldError::new(
                "session_cap_h",
                format!(
                    "is {}; it needs not_full_after_h ({}) <= session_cap_h <= forced_stop_h ({})",
                    self.session_cap_h, self.not_full_after_h, self.forced_stop_h
                ),
            ));
        }
        if !(self.energy_ratio.is_finite() && self.energy_ratio > 1.0) {
            return Err(FieldError::new(
                "energy_ratio",
                format!(
                    "is {}; it must be above 1 (a multiple of the usual energy)",
                    self.energy_ratio
                ),
            ));
        }
        if !(1..=64).contains(&self.energy_history) {
            return Err(FieldError::new(
                "energy_history",
                format!("is {}; it must be 1 to 64 sessions", self.energy_history),
            ));
        }
        if self.energy_min_sessions == 0 || self.energy_min_sessions > self.energy_history {
            return Err(FieldError::new(
                "energy_min_sessions",
                format!(
                    "is {}; it must be at least 1 and at most energy_history ({})",
                    self.energy_min_sessions, self.energy_history
                ),
            ));
        }
        if self.energy_max_tags == 0 {
            return Err(FieldError::new(
                "energy_max_tags",
                "is 0; no tag's history could be kept",
            ));
        }
        if self.max_gap_s == 0 {
            return Err(FieldError::new(
                "max_gap_s",
                "is 0; every pair of readings would count as a gap",
            ));
        }
        Ok(())
    }
}
