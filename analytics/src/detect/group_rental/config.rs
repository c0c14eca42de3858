//! The `[detect.group_rental]` section: its fields, defaults and checks.

use crate::toml_file::{positive, FieldError};
use serde::{Deserialize, Serialize};

/// The `[detect.group_rental]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupRentalConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// Occupants assumed for a flat missing from the register.
    pub default_occupants: u8,
    /// Days over which daily features are smoothed.
    pub smoothing_days: u32,
    /// Flats with data needed in a building for a peer comparison.
    pub min_peers: usize,
    /// Robust z above which a feature is a factor.
    pub z_threshold: f64,
    /// Regional norm, litres of water per person per day.
    pub norm_water_l: f64,
    /// Regional norm, kWh per person per day.
    pub norm_electricity_kwh: f64,
    /// Use above this multiple of the norm per registered occupant is a factor.
    pub norm_ratio: f64,
    /// Days of a flat's own history that set its CUSUM baseline.
    pub baseline_days: u32,
    /// CUSUM slack, in baseline standard deviations.
    pub cusum_k: f64,
    /// CUSUM decision level, in baseline standard deviations.
    pub cusum_h: f64,
    /// Factors needed for a suspect day.
    pub min_factors: u32,
    /// Of those, factors that count people rather than machines (water,
    /// gas, night activity) needed: a flat whose excess is electricity
    /// alone, by day, is a workshop (three-in-one) or a business, not a
    /// crowd. 0 turns this off.
    pub min_people_factors: u32,
    /// Score (sum of the factors' values, each capped at 20) needed for a
    /// suspect day: how far out, not only in how many ways.
    pub min_score: f64,
    /// Suspect days needed (out of the last `persistence_days + 3`).
    pub persistence_days: u32,
    /// Share of a day that must have data for it to count.
    pub min_coverage: f64,
    /// At most one alert per flat in this many days.
    pub cooldown_days: u32,
    /// Fewest people the flat's water says live there: its water over the
    /// building's median water per registered occupant (the building's own
    /// measure of a person, so no national norm is assumed). Three or four
    /// adults sharing a flat registered for one are far above their peers
    /// per registered occupant, but they are not a dormitory. 0 turns it off.
    pub min_people_estimate: f64,
    /// Days over which the peers' way (below) averages water and
    /// electricity: a month, as the utilities' own screening judges, but
    /// judged every day instead of at the month's end.
    pub peer_window_days: u32,
    /// The peers' way to a suspect day, with no national norm and no
    /// z-score: the flat's water (averaged over `peer_window_days`) speaks
    /// for at least this many people at the building's median per
    /// registered occupant, and per registered occupant it is
    /// `peer_water_ratio` × the building's median with electricity
    /// `peer_electricity_ratio` × (or water alone `peer_water_alone_ratio`
    /// ×), and at least `peer_min_water_l` litres a day. It is the judgement
    /// of `group_rental_utility` on finer data, so a district whose
    /// households use far less (or more) water than any norm assumed is
    /// judged by its own buildings. 0 turns the way off.
    pub peer_min_people: f64,
    /// See `peer_min_people`.
    pub peer_water_ratio: f64,
    /// See `peer_min_people`.
    pub peer_electricity_ratio: f64,
    /// See `peer_min_people`.
    pub peer_water_alone_ratio: f64,
    /// See `peer_min_people` (litres a day per registered occupant).
    pub peer_min_water_l: f64,
}

impl Default for GroupRentalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_occupants: 2,
            smoothing_days: 7,
            min_peers: 8,
            z_threshold: 3.5,
            norm_water_l: 220.0,
            norm_electricity_kwh: 4.0,
            norm_ratio: 1.5,
            baseline_days: 14,
            cusum_k: 0.5,
            cusum_h: 5.0,
            min_factors: 2,
            min_people_factors: 1,
            min_score: 30.0,
            persistence_days: 7,
            min_coverage: 0.8,
            cooldown_days: 30,
            min_people_estimate: 4.5,
            peer_window_days: 28,
            peer_min_people: 6.0,
            peer_water_ratio: 2.0,
            peer_electricity_ratio: 1.5,
            peer_water_alone_ratio: 3.0,
            peer_min_water_l: 150.0,
        }
    }
}

impl GroupRentalConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("z_threshold", self.z_threshold)?;
        positive("norm_water_l", self.norm_water_l)?;
        positive("norm_electricity_kwh", self.norm_electricity_kwh)?;
        positive("norm_ratio", self.norm_ratio)?;
        positive("cusum_h", self.cusum_h)?;
        if !(self.min_score.is_finite() && self.min_score >= 0.0) {
            return Err(FieldError::new("min_score", "must be 0 or more"));
        }
        if !(self.min_people_estimate.is_finite() && self.min_people_estimate >= 0.0) {
            return Err(FieldError::new("min_people_estimate", "must be 0 or more"));
        }
        if !(self.cusum_k.is_finite() && self.cusum_k >= 0.0) {
            return Err(FieldError::new("cusum_k", "must be 0 or more"));
        }
        if !(self.min_coverage > 0.0 && self.min_coverage <= 1.0) {
            return Err(FieldError::new(
                "min_coverage",
                format!("is {}; it must be above 0 and at most 1", self.min_coverage),
            ));
        }
        if !(1..=13).contains(&self.persistence_days) {
            return Err(FieldError::new(
                "persistence_days",
                format!("is {}; it must be 1 to 13", self.persistence_days),
            ));
        }
        if self.min_peers < 3 {
            return Err(FieldError::new(
                "min_peers",
                format!(
                    "is {}; a median of fewer than 3 flats says nothing",
                    self.min_peers
                ),
            ));
        }
        for (key, v) in [
            ("peer_water_ratio", self.peer_water_ratio),
            ("peer_electricity_ratio", self.peer_electricity_ratio),
            ("peer_water_alone_ratio", self.peer_water_alone_ratio),
        ] {
            if !(v.is_finite() && v > 1.0) {
                return Err(FieldError::new(key, format!("is {v}; it must be above 1")));
            }
        }
        for (key, v) in [
            ("peer_min_people", self.peer_min_people),
            ("peer_min_water_l", self.peer_min_water_l),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(FieldError::new(key, "must be 0 or more"));
            }
        }
        for (key, v) in [
            ("peer_window_days", self.peer_window_days),
            ("smoothing_days", self.smoothing_days),
            ("baseline_days", self.baseline_days),
            ("min_factors", self.min_factors),
        ] {
            if v == 0 {
                return Err(FieldError::new(key, "is 0; it must be at least 1"));
            }
        }
        if self.min_people_factors > 4 {
            return Err(FieldError::new(
                "min_people_factors",
                format!(
                    "is {}; only 4 factors count people (water z, water vs norm, gas z, night activity z)",
                    self.min_people_factors
                ),
            ));
        }
        Ok(())
    }
}
