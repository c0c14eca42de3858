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
    /// A socket above its current limit for the persistence time, and the
    /// pile did not cut it (one episode).
    pub const PILE_OVERCURRENT: &str = "pile_overcurrent";
    /// A socket above its power limit for the persistence time, uncut.
    pub const PILE_OVERPOWER: &str = "pile_overpower";
    /// A socket above 65 °C for a minute while heating fast, or above 75 °C
    /// for a minute, uncut.
    pub const PILE_OVERTEMPERATURE: &str = "pile_overtemperature";
    /// Earth leakage at or above the trip current, untripped.
    pub const PILE_RESIDUAL_CURRENT: &str = "pile_residual_current";
    /// A session drawing more than an e-bike charger may.
    pub const PILE_NONSTANDARD_CHARGER: &str = "pile_nonstandard_charger";
    /// Still charging 8 h into a session.
    pub const PILE_NOT_FULL: &str = "pile_not_full";
    /// A session live past its 12 h cap.
    pub const PILE_SESSION_OVER_CAP: &str = "pile_session_over_cap";
    /// A session live past the 24 h forced stop.
    pub const PILE_FORCED_STOP_MISSED: &str = "pile_forced_stop_missed";
    /// Full (under 45 W for 45 min) and the relay still on.
    pub const PILE_LIVE_AFTER_FULL: &str = "pile_live_after_full";
    /// Relay on with nothing drawing for 5 min (abandoned).
    pub const PILE_IDLE_LIVE: &str = "pile_idle_live";
    /// Power rising again after the taper began.
    pub const PILE_TAPER_REVERSAL: &str = "pile_taper_reversal";
    /// Current still above the bulk limit 6 h into a session.
    pub const PILE_BULK_STUCK: &str = "pile_bulk_stuck";
    /// A whole pile above its cut limit for the persistence time.
    pub const PILE_OVERLOAD: &str = "pile_overload";
    /// A session that began while its pile drew more than its new-session limit.
    pub const PILE_SESSION_OVER_LIMIT: &str = "pile_session_over_limit";
    /// A session whose energy passed 1.3 × the median of the previous
    /// sessions (at least 3) of the tag that started it.
    pub const PILE_ABNORMAL_SESSION_ENERGY: &str = "pile_abnormal_session_energy";
}

/// One planted case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What ([`kind`]).
    pub kind: String,
    /// The flat, `site/building/unit`; for a meter or pile episode, the
    /// entity its rule alerts on (a meter `site/gateway/device`, a building's
    /// `site/gateway`, a socket `site/gateway/device#socket`, or
    /// `site/gateway/device` for a whole pile).
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
