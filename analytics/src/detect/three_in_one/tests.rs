//! Behaviour of the three-in-one detector on one flat's hourly power.

use super::*;
use crate::register::{FlatEntry, RegisterFile};

/// 2026-03-02 00:00 local (UTC+8), a Monday.
const DAY0: i64 = 1_772_380_800_000;
const HOUR: i64 = 3_600_000;

fn reading(ts: i64, kw: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-b01",
        "m-1",
        DeviceKind::ElectricityMeter,
        0,
    );
    r.site = "s01".into();
    r.building = Some("b01".into());
    r.unit = Some("0101".into());
    r.values.insert("power_w".into(), kw * 1000.0);
    r
}

fn register(business: bool) -> Register {
    Register::from_file(RegisterFile {
        flats: vec![FlatEntry {
            flat: "s01/b01/0101".into(),
            occupants: 2,
            area_m2: 70.0,
            business,
            ..Default::default()
        }],
        tags: Vec::new(),
        meters: Vec::new(),
    })
}

/// Hourly readings for `days` days: `weekday_kw` 09–18 on weekdays,
/// `weekend_kw` 09–18 at weekends, `evening_kw` 19–24, 0.2 kW otherwise.
fn run(
    days: i64,
    weekday_kw: f64,
    weekend_kw: f64,
    evening_kw: f64,
    business: bool,
) -> (ThreeInOne, Vec<Finding>) {
    let mut d = ThreeInOne::new(&ThreeInOneConfig::default(), LocalTime::new(480));
    let reg = register(business);
    let mut out = Vec::new();
    for day in 0..days {
        let weekend = day % 7 >= 5;
        for h in 0..24 {
            let kw = match h {
                9..=17 if weekend => weekend_kw,
                9..=17 => weekday_kw,
                19..=23 => evening_kw,
                _ => 0.2,
            };
            out.extend(d.observe(&reading(DAY0 + day * 24 * HOUR + h * HOUR, kw), &reg));
        }
    }
    (d, out)
}

#[test]
fn weekday_machine_loads_with_night_living_alert_once_with_numbers() {
    let (d, out) = run(28, 2.5, 0.5, 0.6, false);
    assert_eq!(out.len(), 1, "{out:?}");
    let f = &out[0];
    assert_eq!(f.rule, RULE_THREE_IN_ONE);
    assert_eq!(f.severity, Severity::Major);
    assert_eq!(f.entity, "s01/b01/0101");
    let v = &f.evidence.values;
    assert!((v["weekday_daytime_kw"] - 2.5).abs() < 1e-6);
    assert!((v["weekend_daytime_kw"] - 0.5).abs() < 1e-6);
    assert!((v["weekday_evening_kw"] - 0.6).abs() < 1e-6);
    assert_eq!(v["days_persisted"], 5.0);
    // First suspect when the window holds five weekdays and a weekend (day 6,
    // Sunday), alerted on the fifth suspect day running: the end of day 10.
    let local = LocalTime::new(480);
    assert_eq!(f.ts, local.day_end(local.day(Timestamp(DAY0)) + 10));
    assert_eq!(d.stats().findings, 1);
}

#[test]
fn daytime_load_at_the_threshold_alerts_and_just_below_does_not() {
    // 0.5 kW by day: a few sewing machines; the ratios still hold
    // (evening and weekend 0.2 kW).
    assert_eq!(run(21, 0.5, 0.2, 0.2, false).1.len(), 1);
    assert!(run(21, 0.45, 0.2, 0.2, false).1.is_empty());
}

#[test]
fn the_same_load_at_weekends_is_not_a_working_week() {
    // 2.5 kW by day every day: a weekday/weekend ratio of 1.
    assert!(run(28, 2.5, 2.5, 0.6, false).1.is_empty());
    // Weekend at exactly 1/1.8 of the weekday level still counts as a rhythm.
    assert_eq!(run(28, 1.8, 1.0, 0.6, false).1.len(), 1);
    assert!(run(28, 1.8, 1.01, 0.6, false).1.is_empty());
}

#[test]
fn a_dark_workshop_and_a_registered_business_are_not_flagged() {
    // Nobody home in the evening (a fridge and standby, ~65 W): a
    // workshop, not a dwelling; one person's evening (~0.12 kW) is.
    assert!(run(28, 2.5, 0.5, 0.07, false).1.is_empty());
    assert_eq!(run(28, 2.5, 0.5, 0.12, false).1.len(), 1);
    // A business the register knows about.
    let (d, out) = run(28, 2.5, 0.5, 0.6, true);
    assert!(out.is_empty());
    assert_eq!(d.stats().suspect_days, 0);
}

#[test]
fn evening_as_busy_as_the_day_is_a_household_not_machines() {
    // Daytime only 1.9× the evening (needs 2×).
    assert!(run(28, 1.9, 0.5, 1.0, false).1.is_empty());
}

#[test]
fn config_errors_name_the_field() {
    assert!(ThreeInOneConfig::default().validate().is_ok());
    let bad = [
        ThreeInOneConfig {
            min_daytime_kw: 0.0,
            ..Default::default()
        },
        ThreeInOneConfig {
            persistence_days: 30,
            ..Default::default()
        },
        ThreeInOneConfig {
            day_end_hour: 8,
            ..Default::default()
        },
    ];
    let keys: Vec<String> = bad
        .iter()
        .map(|c| c.validate().unwrap_err().path.to_string())
        .collect();
    assert_eq!(keys, ["min_daytime_kw", "persistence_days", "day_end_hour"]);
}
