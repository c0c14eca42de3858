//! Ground truth: what a simulated district planted, where and from when.
//!
//! Written by `gridwatch-sim district` next to its recording, read by
//! `gridwatch-analytics evaluate`.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashSet};

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

    /// Kinds whose entity is a flat `site/building/unit`.
    pub const FLAT_KINDS: &[&str] = &[
        GROUP_RENTAL,
        INDOOR_CHARGING,
        BIKE_INDOORS,
        LEAK,
        THREE_IN_ONE,
    ];

    /// Every kind a truth file may name: a closed set, so that a misspelt
    /// kind is an error rather than a rule scored on nothing.
    pub const ALL: &[&str] = &[
        GROUP_RENTAL,
        INDOOR_CHARGING,
        BIKE_INDOORS,
        LEAK,
        THREE_IN_ONE,
        METER_GAP,
        BUILDING_OUTAGE,
        METER_STUCK,
        METER_REVERSED,
        PILE_OVERCURRENT,
        PILE_OVERPOWER,
        PILE_OVERTEMPERATURE,
        PILE_RESIDUAL_CURRENT,
        PILE_NONSTANDARD_CHARGER,
        PILE_NOT_FULL,
        PILE_SESSION_OVER_CAP,
        PILE_FORCED_STOP_MISSED,
        PILE_LIVE_AFTER_FULL,
        PILE_IDLE_LIVE,
        PILE_TAPER_REVERSAL,
        PILE_BULK_STUCK,
        PILE_OVERLOAD,
        PILE_SESSION_OVER_LIMIT,
        PILE_ABNORMAL_SESSION_ENERGY,
    ];
}

/// serde: a case kind must be one of [`kind::ALL`]; serde_json adds the
/// line and column of the offending value to the message.
fn known_kind<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let k = String::deserialize(d)?;
    if kind::ALL.contains(&k.as_str()) {
        Ok(k)
    } else {
        Err(serde::de::Error::custom(format!(
            "unknown case kind {k:?}; known kinds: {}",
            kind::ALL.join(", ")
        )))
    }
}

/// One planted case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What ([`kind`]; one of [`kind::ALL`], checked when read).
    #[serde(deserialize_with = "known_kind")]
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
    /// What else is known about the case, as a free map (for an indoor
    /// charger: `charger`, `start_hour`, `household`, …). Not scored: the
    /// evaluation breaks misses down by each `key=value`, which is what
    /// tells which cases a rule cannot see.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub traits: BTreeMap<String, String>,
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

impl GroundTruth {
    /// Checks that every case names something that exists: a flat case a
    /// flat of the register (when `flats` is given), a meter, pile or socket
    /// episode a device seen in the recording (`site/gateway/device`, a
    /// socket with its `#n`), a building outage a gateway seen. A case on
    /// nothing would silently become a miss. The error lists the first few
    /// by case index.
    pub fn check_entities(
        &self,
        flats: Option<&dyn Fn(&str) -> bool>,
        devices: &HashSet<String>,
    ) -> Result<(), String> {
        let gateways: HashSet<&str> = devices
            .iter()
            .filter_map(|d| d.rsplit_once('/').map(|(g, _)| g))
            .collect();
        let mut bad = Vec::new();
        for (i, c) in self.cases.iter().enumerate() {
            let known = if kind::FLAT_KINDS.contains(&c.kind.as_str()) {
                flats.is_none_or(|f| f(&c.entity))
            } else if c.kind == kind::BUILDING_OUTAGE {
                gateways.contains(c.entity.as_str())
            } else {
                let device = c.entity.split_once('#').map_or(c.entity.as_str(), |d| d.0);
                devices.contains(device)
            };
            if !known {
                bad.push(format!("case {i} ({} on {:?})", c.kind, c.entity));
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        let n = bad.len();
        bad.truncate(5);
        Err(format!(
            "{n} case(s) name no flat of the register or device of the recording: {}{}",
            bad.join(", "),
            if n > 5 { ", …" } else { "" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_kind_is_an_error_with_its_line() {
        let text = "{\"scenario\":\"x\",\"seed\":1,\"flats\":1,\"days\":1,\"start_ms\":0,\"end_ms\":1,\n\"cases\":[\n{\"kind\":\"group-rental\",\"entity\":\"s/b/1\",\"start_ms\":0}]}";
        let err = serde_json::from_str::<GroundTruth>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"group-rental\""), "{err}");
        assert!(err.contains("group_rental"), "names the valid kinds: {err}");
        assert!(err.contains("line 3"), "{err}");
        let ok = text.replace("group-rental", "group_rental");
        let t: GroundTruth = serde_json::from_str(&ok).unwrap();
        assert_eq!(t.cases[0].kind, kind::GROUP_RENTAL);
    }

    #[test]
    fn cases_on_nothing_are_named_by_index() {
        let case = |k: &str, e: &str| Case {
            kind: k.into(),
            entity: e.into(),
            start_ms: 0,
            end_ms: None,
            note: String::new(),
            traits: BTreeMap::new(),
        };
        let t = GroundTruth {
            cases: vec![
                case(kind::GROUP_RENTAL, "s/b/101"),
                case(kind::METER_STUCK, "s/gw/em-1"),
                case(kind::PILE_OVERCURRENT, "s/gw/pile-1#3"),
                case(kind::BUILDING_OUTAGE, "s/gw"),
                case(kind::LEAK, "s/b/999"),
                case(kind::METER_GAP, "s/gw/em-9"),
            ],
            ..GroundTruth::default()
        };
        let devices: HashSet<String> = ["s/gw/em-1".to_owned(), "s/gw/pile-1".to_owned()].into();
        let flats = |f: &str| f == "s/b/101";
        let err = t.check_entities(Some(&flats), &devices).unwrap_err();
        assert!(err.starts_with("2 case(s)"), "{err}");
        assert!(err.contains("case 4 (leak on \"s/b/999\")"), "{err}");
        assert!(err.contains("case 5 (meter_gap"), "{err}");
        let good = GroundTruth {
            cases: t.cases[..4].to_vec(),
            ..GroundTruth::default()
        };
        assert_eq!(good.check_entities(Some(&flats), &devices), Ok(()));
    }
}
