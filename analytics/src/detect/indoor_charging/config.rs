//! The `[detect.indoor_charging]` section: its settings, their defaults and
//! their checks (split from the detector, whose module it outgrew).

use crate::toml_file::{positive, FieldError};
use serde::{Deserialize, Serialize};

/// The `[detect.indoor_charging]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndoorChargingConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// Sighting locations that are indoors.
    pub indoor_locations: Vec<String>,
    /// Smallest step that can be a charger, W.
    pub min_step_w: f64,
    /// Largest step that can be a compliant e-bike charger, W.
    pub max_step_w: f64,
    /// Minutes before a step over which the level before it is taken.
    pub baseline_min: u32,
    /// Minutes of the moving minimum the load is smoothed with: longer than
    /// a fridge's or a thermostat's on-phase, shorter than a charger's taper.
    pub smooth_min: u32,
    /// A reading at least this share of the step above the level is on the plateau.
    pub plateau_ratio: f64,
    /// Below this share of the step the session has ended.
    pub end_ratio: f64,
    /// Shortest plateau, minutes.
    pub min_plateau_min: u32,
    /// Shortest plateau of a session that counts only with the flat's tag
    /// beside it (`indoor_charging_fused`), minutes: a fast charger
    /// (300–450 W) or a top-up holds its constant current for 30–60 min,
    /// too short to tell from a household's own loads by shape alone, but
    /// not when the flat's e-bike was seen indoors or just came home.
    pub fused_min_plateau_min: u32,
    /// Longest plateau, minutes: a charger's constant-current phase lasts
    /// 1–5 h (docs/detection.md); a load that holds longer is something else.
    pub max_plateau_min: u32,
    /// Shortest taper, minutes (over at least two readings).
    pub min_taper_min: u32,
    /// Longest taper, minutes: a lithium constant-voltage tail lasts up to
    /// about two hours, a lead-acid second or absorption stage up to three;
    /// a load that steps down and holds all night is something else.
    pub max_taper_min: u32,
    /// A taper reading this share of the step above the one before breaks
    /// the taper: a charger's power falls monotonically.
    pub taper_rise_ratio: f64,
    /// Largest mean change between consecutive smoothed quiet-hour plateau
    /// readings, as a share of the step: a constant current is flat.
    pub max_roughness_ratio: f64,
    /// Largest mean change between consecutive smoothed plateau readings
    /// for a session that did not draw through the quiet hours (plugged in
    /// at midday or in the early evening), as a share of the step.
    pub max_day_roughness_ratio: f64,
    /// Whether a session that ended before drawing `min_quiet_min` in the
    /// quiet hours may count (it must then be flat by
    /// `max_day_roughness_ratio`).
    pub count_day_sessions: bool,
    /// Longest session, hours; longer is a constant load, not a charger.
    pub max_session_h: u32,
    /// Local hours in which a session may start: from…
    pub start_hour_from: u8,
    /// …to (exclusive, may wrap past midnight).
    pub start_hour_to: u8,
    /// Local quiet hours (the household asleep): from…
    pub quiet_hour_from: u8,
    /// …to (exclusive, may wrap past midnight).
    pub quiet_hour_to: u8,
    /// Minutes of the quiet hours a session must draw through.
    pub min_quiet_min: u32,
    /// A longer silence between readings abandons a session.
    pub max_gap_min: u32,
    /// Sessions needed for the signature rule in a flat whose e-bike is
    /// known (a tag registered to it seen anywhere, the gate included, in
    /// the last `bike_known_days`)…
    pub min_sessions: u32,
    /// …and in a flat with no known e-bike: most households that show a
    /// charger-like load own no e-bike (heating, blankets, water heaters),
    /// so without one the load must recur more often to be a habit.
    pub min_sessions_no_bike: u32,
    /// Sessions count together for the signature rule only when their
    /// steps lie within this factor of the newest one's (larger over
    /// smaller): a charger draws the same power night after night, while
    /// the evening loads of a household that happen to take its shape
    /// (heaters, blankets, a rider's family who charge elsewhere) step by
    /// whatever was switched on. 0 (the default) counts every session
    /// whatever its step: with 1.5, false alerts on case-free districts
    /// fell by two thirds, but so did the signature's recall on a held-out
    /// one, because a busy household moves the measured step as much as a
    /// charger does (docs/detection-evaluation.md). A city that would
    /// rather miss some chargers than visit flats for nothing may set it.
    pub same_charger_ratio: f64,
    /// Days a sighting of the flat's tag keeps its e-bike known.
    pub bike_known_days: u32,
    /// …within this many days.
    pub session_window_days: u32,
    /// A sighting this long before a session started, or during it, fuses.
    pub fusion_window_h: u32,
    /// A sighting of the flat's tag outside (the gate, the entrance: any
    /// location not in `indoor_locations`) at most this long before a
    /// session started is the rider coming home and plugging in; 0 turns
    /// this way to `indoor_charging_fused` off. Riders who carry the
    /// battery up are read only at the gate. A session that ended sharply
    /// counts only as an arrival read indoors within this window.
    pub arrival_window_min: u32,
    /// Sessions that followed an arrival, within `session_window_days`,
    /// for `indoor_charging_fused`: one could be a household switching
    /// things on as the rider walks in; a habit is not.
    pub min_arrival_sessions: u32,
    /// At most one alert per rule and flat in this many days.
    pub cooldown_days: u32,
}

impl Default for IndoorChargingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            indoor_locations: vec!["lift_lobby".into(), "lift_car".into(), "stairwell".into()],
            min_step_w: 60.0,
            max_step_w: 450.0,
            baseline_min: 30,
            smooth_min: 20,
            plateau_ratio: 0.75,
            end_ratio: 0.25,
            min_plateau_min: 60,
            fused_min_plateau_min: 30,
            max_plateau_min: 360,
            min_taper_min: 10,
            max_taper_min: 200,
            taper_rise_ratio: 0.15,
            max_roughness_ratio: 0.1,
            max_day_roughness_ratio: 0.05,
            count_day_sessions: true,
            max_session_h: 12,
            start_hour_from: 13,
            start_hour_to: 4,
            quiet_hour_from: 0,
            quiet_hour_to: 5,
            min_quiet_min: 30,
            max_gap_min: 20,
            min_sessions: 3,
            min_sessions_no_bike: 5,
            same_charger_ratio: 0.0,
            bike_known_days: 30,
            session_window_days: 7,
            fusion_window_h: 3,
            arrival_window_min: 30,
            min_arrival_sessions: 2,
            cooldown_days: 7,
        }
    }
}

impl IndoorChargingConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("min_step_w", self.min_step_w)?;
        positive("max_step_w", self.max_step_w)?;
        if self.max_step_w <= self.min_step_w {
            return Err(FieldError::new(
                "max_step_w",
                format!(
                    "is {}; it must be above min_step_w ({})",
                    self.max_step_w, self.min_step_w
                ),
            ));
        }
        if !(self.end_ratio > 0.0
            && self.end_ratio < self.plateau_ratio
            && self.plateau_ratio < 1.0)
        {
            return Err(FieldError::new(
                "plateau_ratio",
                format!(
                    "is {} with end_ratio {}; it needs 0 < end_ratio < plateau_ratio < 1",
                    self.plateau_ratio, self.end_ratio
                ),
            ));
        }
        if self.fused_min_plateau_min == 0 || self.fused_min_plateau_min > self.min_plateau_min {
            return Err(FieldError::new(
                "fused_min_plateau_min",
                format!(
                    "is {}; it must be 1 to min_plateau_min ({})",
                    self.fused_min_plateau_min, self.min_plateau_min
                ),
            ));
        }
        if !(self.same_charger_ratio == 0.0
            || (self.same_charger_ratio >= 1.0 && self.same_charger_ratio.is_finite()))
        {
            return Err(FieldError::new(
                "same_charger_ratio",
                format!(
                    "is {}; it must be 0 (off) or a factor of at least 1",
                    self.same_charger_ratio
                ),
            ));
        }
        if self.max_plateau_min < self.min_plateau_min {
            return Err(FieldError::new(
                "max_plateau_min",
                format!(
                    "is {}; it must be at least min_plateau_min ({})",
                    self.max_plateau_min, self.min_plateau_min
                ),
            ));
        }
        if self.max_taper_min < self.min_taper_min {
            return Err(FieldError::new(
                "max_taper_min",
                format!(
                    "is {}; it must be at least min_taper_min ({})",
                    self.max_taper_min, self.min_taper_min
                ),
            ));
        }
        if !(self.taper_rise_ratio >= 0.0 && self.taper_rise_ratio < 1.0) {
            return Err(FieldError::new(
                "taper_rise_ratio",
                format!(
                    "is {}; it must be at least 0 and below 1",
                    self.taper_rise_ratio
                ),
            ));
        }
        if !(self.max_roughness_ratio > 0.0 && self.max_roughness_ratio.is_finite()) {
            return Err(FieldError::new(
                "max_roughness_ratio",
                format!("is {}; it must be above 0", self.max_roughness_ratio),
            ));
        }
        if !(self.max_day_roughness_ratio > 0.0 && self.max_day_roughness_ratio.is_finite()) {
            return Err(FieldError::new(
                "max_day_roughness_ratio",
                format!("is {}; it must be above 0", self.max_day_roughness_ratio),
            ));
        }
        if self.smooth_min > 120 {
            return Err(FieldError::new(
                "smooth_min",
                format!(
                    "is {}; at most 120 minutes, or the smoothing swallows the taper",
                    self.smooth_min
                ),
            ));
        }
        for (key, h) in [
            ("start_hour_from", self.start_hour_from),
            ("start_hour_to", self.start_hour_to),
            ("quiet_hour_from", self.quiet_hour_from),
            ("quiet_hour_to", self.quiet_hour_to),
        ] {
            if h > 23 {
                return Err(FieldError::new(key, format!("is {h}; an hour is 0 to 23")));
            }
        }
        for (key, v) in [
            ("baseline_min", self.baseline_min),
            ("max_session_h", self.max_session_h),
            ("max_gap_min", self.max_gap_min),
            ("min_sessions", self.min_sessions),
            ("min_sessions_no_bike", self.min_sessions_no_bike),
            ("bike_known_days", self.bike_known_days),
            ("session_window_days", self.session_window_days),
            ("min_arrival_sessions", self.min_arrival_sessions),
        ] {
            if v == 0 {
                return Err(FieldError::new(key, "is 0; it must be at least 1"));
            }
        }
        Ok(())
    }
}
