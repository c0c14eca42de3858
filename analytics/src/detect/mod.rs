//! Detectors: small per-entity state machines fed readings in event-time
//! order, each returning [`Finding`]s with the numbers that justify them.
//!
//! Detectors are sans-IO: they never read the wall clock, touch the network
//! or know where an alert will go. That is what lets a replay of a recorded
//! stream, or a simulated district running 1000× faster than real time, give
//! exactly the alerts the live run gives — and lets every edge case be a
//! plain unit test. Routing to a grid cell happens afterwards
//! ([`crate::alerts`]).

pub mod entity_table;
pub mod episode;
pub mod group_rental;
pub mod indoor_charging;
pub mod local_time;
pub mod meter_health;
pub mod night_water;
pub mod pile_offline;
pub mod socket_safety;
pub mod socket_session;
pub mod three_in_one;
pub mod utility_group_rental;

use crate::toml_file::FieldError;
use gridwatch_telemetry::{Evidence, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// The `[detect]` section: one sub-section per detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Local time's offset from UTC in minutes (480 for China), for the
    /// detectors that think in nights and days.
    pub utc_offset_min: i32,
    /// Charging-pile socket protections (overcurrent, overpower, over-temperature).
    pub socket_safety: socket_safety::SocketSafetyConfig,
    /// Charging-pile session rules (full, too long, idle, taper reversal, …).
    pub socket_session: socket_session::SocketSessionConfig,
    /// E-bikes and batteries indoors: sightings, load signature, both.
    pub indoor_charging: indoor_charging::IndoorChargingConfig,
    /// Flats used far beyond their registered occupancy.
    pub group_rental: group_rental::GroupRentalConfig,
    /// Meters silent, stuck or running backwards.
    pub meter_health: meter_health::MeterHealthConfig,
    /// Water flowing all night: a leak, not people.
    pub night_water: night_water::NightWaterConfig,
    /// Charging piles their gateway reports offline (a root cause).
    pub pile_offline: pile_offline::PileOfflineConfig,
    /// Dwellings that are also workshops or stores (weekday daytime machines).
    pub three_in_one: three_in_one::ThreeInOneConfig,
    /// Group rental from what utilities export (daily electricity, monthly
    /// water registers).
    pub group_rental_utility: utility_group_rental::UtilityGroupRentalConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            utc_offset_min: 480,
            socket_safety: Default::default(),
            socket_session: Default::default(),
            indoor_charging: Default::default(),
            group_rental: Default::default(),
            meter_health: Default::default(),
            night_water: Default::default(),
            pile_offline: Default::default(),
            three_in_one: Default::default(),
            group_rental_utility: Default::default(),
        }
    }
}

impl DetectConfig {
    /// Checks every detector's section.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(-720..=840).contains(&self.utc_offset_min) {
            return Err(FieldError::new(
                "utc_offset_min",
                format!(
                    "is {}; it must be between -720 and 840",
                    self.utc_offset_min
                ),
            ));
        }
        self.socket_safety
            .validate()
            .map_err(|e| e.within(&["socket_safety"]))?;
        self.socket_session
            .validate()
            .map_err(|e| e.within(&["socket_session"]))?;
        self.indoor_charging
            .validate()
            .map_err(|e| e.within(&["indoor_charging"]))?;
        self.meter_health
            .validate()
            .map_err(|e| e.within(&["meter_health"]))?;
        self.night_water
            .validate()
            .map_err(|e| e.within(&["night_water"]))?;
        self.group_rental_utility
            .validate()
            .map_err(|e| e.within(&["group_rental_utility"]))?;
        self.pile_offline
            .validate()
            .map_err(|e| e.within(&["pile_offline"]))?;
        self.three_in_one
            .validate()
            .map_err(|e| e.within(&["three_in_one"]))?;
        self.group_rental
            .validate()
            .map_err(|e| e.within(&["group_rental"]))
    }

    /// Local time as configured.
    pub fn local_time(&self) -> local_time::LocalTime {
        local_time::LocalTime::new(self.utc_offset_min)
    }
}

/// A confirmed hazard on one entity, before it is routed to a grid cell and
/// becomes an [`gridwatch_telemetry::Alert`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// Stable per (rule, entity, episode): `{rule}:{entity}:{episode start ms}`,
    /// so a re-delivered or replayed alert folds into the one already open.
    pub id: String,
    /// The rule that fired (`socket_overcurrent`, …).
    pub rule: &'static str,
    /// The entity (`site/gateway/device#socket`).
    pub entity: String,
    /// The site, for routing.
    pub site: String,
    /// How urgent.
    pub severity: Severity,
    /// Event time at which the condition was confirmed.
    pub ts: Timestamp,
    /// One line for a phone notification.
    pub title: String,
    /// A few sentences with the numbers and what to do.
    pub summary: String,
    /// The numbers.
    pub evidence: Evidence,
}

/// Evidence made of named numbers over a window, without a sample series:
/// what the rules that judge a whole session or a meter's register attach.
pub(crate) fn evidence_of(
    values: &[(&str, f64)],
    thresholds: &[(&str, f64)],
    from: Timestamp,
    to: Timestamp,
) -> Evidence {
    let map = |xs: &[(&str, f64)]| -> std::collections::BTreeMap<String, f64> {
        xs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    Evidence {
        values: map(values),
        thresholds: map(thresholds),
        window_start: from,
        window_end: to,
        samples: Vec::new(),
        series: None,
    }
}
