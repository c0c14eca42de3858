//! Ground truth: what a simulated district planted, where and from when.
//!
//! Written by `gridwatch-sim district` next to its recording, read by
//! `gridwatch-analytics evaluate`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of case was planted.
pub mod kind {
    /// A flat used by far more people than registered.
    pub const GROUP_RENTAL: &str = "group_rental";
    /// A flat whose owner charges an e-bike battery indoors.
    pub const INDOOR_CHARGING: &str = "indoor_charging";
    /// An e-bike seen indoors without being charged there.
    pub const BIKE_INDOORS: &str = "bike_indoors";
    /// A continuous water leak.
    pub const LEAK: &str = "leak";
    /// A lived-in flat with unregistered weekday daytime machines.
    pub const THREE_IN_ONE: &str = "three_in_one";
    /// A meter silent for longer than `meter_no_data` allows (an episode,
    /// from the instant the rule is due to the meter's next reading).
    pub const METER_GAP: &str = "meter_gap";
    /// A building's meters dark together (an episode, entity
    /// `site/gateway`: one root cause, one `building_no_data` alert).
    pub const BUILDING_OUTAGE: &str = "building_outage";
    /// A register that stopped moving while its flat went on using (an
    /// episode, entity the meter `site/gateway/device`).
    pub const METER_STUCK: &str = "meter_stuck";
    /// A meter wired backwards: register counting down, negative interval
    /// values (an episode, entity the meter).
    pub const METER_REVERSED: &str = "meter_reversed";
}

/// One planted case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What ([`kind`]).
    pub kind: String,
    /// The flat, `site/building/unit`; for a meter episode the entity its
    /// alert carries (the meter `site/gateway/device`, or for an outage the
    /// building's `site/gateway`).
    pub entity: String,
    /// When it began (for an indoor charger, its first session), ms UTC.
    /// For an episode, the instant from which its rule is due: the condition
    /// has persisted as long as the rule's definition requires.
    pub start_ms: i64,
    /// For an episode (a pile fault, a meter gap), when it ended, ms UTC;
    /// `None` for a flat's lasting case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
    /// A few words for a person reading the file.
    #[serde(default)]
    pub note: String,
}

/// The ground-truth file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundTruth {
    /// The scenario's name.
    pub scenario: String,
    /// The seed it was generated with.
    pub seed: u64,
    /// Flats in the district.
    pub flats: u32,
    /// Simulated days.
    pub days: u32,
    /// First and last instant simulated, ms UTC.
    pub start_ms: i64,
    /// End of the simulation, ms UTC.
    pub end_ms: i64,
    /// Every planted case.
    pub cases: Vec<Case>,
    /// What else each flat does that is not a case (a computer on at night,
    /// a thermostat blanket, more people than registered, …), by flat. Not
    /// scored: it lets the evaluation say which behaviours a rule's false
    /// positives share, which is what tells a detector's weakness from noise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub traits: BTreeMap<String, Vec<String>>,
}
