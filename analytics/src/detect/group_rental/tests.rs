//! Behaviour of the group-rental detector on a small building.

use super::*;
use crate::register::{FlatEntry, RegisterFile};

/// 2026-03-02 00:00 local (UTC+8).
const DAY0: i64 = 1_772_380_800_000;
const HOUR: i64 = 3_600_000;

fn reading(kind: DeviceKind, unit: usize, ts: i64, name: &str, v: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-b01",
        format!("m-{unit}").as_str(),
        kind,
        0,
    );
    r.site = "s01".into();
    r.building = Some("b01".into());
    r.unit = Some(format!("{unit:02}01"));
    r.values.insert(name.into(), v);
    r
}

fn register(business: &[usize]) -> Register {
    Register::from_file(RegisterFile {
        flats: (0..10)
            .map(|u| FlatEntry {
                flat: format!("s01/b01/{u:02}01"),
                occupants: 2,
                area_m2: 70.0,
                business: business.contains(&u),
            })
            .collect(),
        tags: Vec::new(),
        meters: Vec::new(),
    })
}

/// `days` days of hourly readings for 10 flats of 2 registered occupants;
/// `scale(unit, day)` multiplies a flat's use (1 = an ordinary couple), and
/// `skip(unit, day)` drops the flat's readings that day.
fn run(
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> f64,
    skip: impl Fn(usize, i64) -> bool,
) -> Vec<Finding> {
    run_with(&GroupRentalConfig::default(), days, reg, scale, skip)
}

fn run_with(
    cfg: &GroupRentalConfig,
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> f64,
    skip: impl Fn(usize, i64) -> bool,
) -> Vec<Finding> {
    run_split(cfg, days, reg, |u, d| [scale(u, d); 3], skip)
}

/// Litres an ordinary couple draws in the hour ending at `h`: showers,
/// flushes and cooking in bursts, dry at night (288 L a day).
fn couple_water(h: i64) -> f64 {
    match h {
        7 | 8 | 12 | 18..=22 => 36.0,
        _ => 0.0,
    }
}

/// Like [`run_with`], with separate scales for electricity by day
/// (09–18), for electricity at other hours and gas (what machines and
/// heating drive), and for water (what people drive).
fn run_split(
    cfg: &GroupRentalConfig,
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> [f64; 3],
    skip: impl Fn(usize, i64) -> bool,
) -> Vec<Finding> {
    run_extra(cfg, days, reg, scale, skip, |_, _| 0.0)
}

/// Like [`run_split`], with `extra_l(unit, day)` litres flowing every hour
/// on top (a leak).
fn run_extra(
    cfg: &GroupRentalConfig,
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> [f64; 3],
    skip: impl Fn(usize, i64) -> bool,
    extra_l: impl Fn(usize, i64) -> f64,
) -> Vec<Finding> {
    let mut d = GroupRental::new(cfg, LocalTime::new(480));
    let mut out = Vec::new();
    for day in 0..days {
        for h in 0..24 {
            let ts = DAY0 + day * 24 * HOUR + h * HOUR;
            for u in 0..10 {
                if skip(u, day) {
                    continue;
                }
                // Slight differences between ordinary flats.
                let spread = 1.0 + 0.3 * (u as f64 - 4.5) / 4.5;
                let [by_day, k, w] = scale(u, day).map(|s| s * spread);
                let night = if h < 5 { 60.0 } else { 250.0 };
                let ke = if (9..18).contains(&h) { by_day } else { k };
                out.extend(d.observe(
                    &reading(DeviceKind::ElectricityMeter, u, ts, "power_w", night * ke),
                    reg,
                ));
                let litres = couple_water(h + 1) * w + extra_l(u, day);
                out.extend(d.observe(
                    &reading(DeviceKind::WaterMeter, u, ts, "flow_l", litres),
                    reg,
                ));
                out.extend(d.observe(
                    &reading(DeviceKind::GasMeter, u, ts, "use_m3", 0.02 * k),
                    reg,
                ));
            }
        }
    }
    out
}

#[test]
fn ordinary_flats_raise_nothing() {
    let f = run(30, &register(&[]), |_, _| 1.0, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_flat_used_by_many_more_people_is_alerted_after_persistence() {
    let f = run(
        30,
        &register(&[]),
        |u, day| if u == 3 && day >= 10 { 5.0 } else { 1.0 },
        |_, _| false,
    );
    assert_eq!(f.len(), 1, "{f:?}");
    let f = &f[0];
    assert_eq!(f.rule, RULE_GROUP_RENTAL);
    assert_eq!(f.entity, "s01/b01/0301");
    assert_eq!(f.severity, Severity::Minor);
    // Suspect from about day 11 (smoothing), alerted after 7 suspect days.
    let day = (f.ts.0 - DAY0) / (24 * HOUR);
    assert!((16..=21).contains(&day), "alerted on day {day}");
    // Five couples' water in a flat registered for two: about 8 people
    // (the flat's spread is 0.93, the building's median person a little
    // above an average couple's half).
    let people = f.evidence.values["estimated_people"];
    assert!((7.0..10.0).contains(&people), "{people}");
    assert!(f.evidence.values["water_l_per_occupant"] > 500.0);
    assert!(f.title.contains("people"), "{}", f.title);
}

#[test]
fn a_shared_flat_is_not_a_dormitory() {
    // Two couples' water in a flat registered for two: four people, two
    // more than registered (a shared flat), not a group rental.
    let scale = |u: usize, _| if u == 3 { 2.0 } else { 1.0 };
    let f = run(30, &register(&[]), scale, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
    let lower = GroupRentalConfig {
        min_people: 2.8,
        min_extra_people: 0.8,
        ..GroupRentalConfig::default()
    };
    let f = run_with(&lower, 30, &register(&[]), scale, |_, _| false);
    assert_eq!(f.len(), 1, "with a lower bar it is alerted: {f:?}");
}

#[test]
fn miners_and_gas_heating_are_machines_not_a_crowd() {
    // Eight times its peers' electricity day and night (a crypto miner, a
    // night base load around the clock) and eight times their gas (floor
    // heating), with a couple's water: nothing counts people.
    let cfg = GroupRentalConfig::default();
    let machines = |u: usize, day: i64| {
        if u == 3 && day >= 16 {
            [8.0, 8.0, 1.0]
        } else {
            [1.0, 1.0, 1.0]
        }
    };
    let f = run_split(&cfg, 40, &register(&[]), machines, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
    // A crowd (water up too) is alerted.
    let crowd = |u: usize, day: i64| {
        if u == 3 && day >= 16 {
            [5.0, 5.0, 5.0]
        } else {
            [1.0, 1.0, 1.0]
        }
    };
    assert_eq!(
        run_split(&cfg, 40, &register(&[]), crowd, |_, _| false).len(),
        1
    );
}

#[test]
fn a_leak_is_not_people() {
    // 25 L/h around the clock (600 L a day, two more couples' worth) on a
    // couple's flat: the floor flow is taken off before people are counted.
    let f = run_extra(
        &GroupRentalConfig::default(),
        30,
        &register(&[]),
        |_, _| [1.0; 3],
        |_, _| false,
        |u, day| if u == 3 && day >= 5 { 25.0 } else { 0.0 },
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_building_emptied_for_the_spring_festival_does_not_raise_the_others() {
    // Five of ten flats leave for two weeks (a fridge, no water); the five
    // that stay, one of them two couples on the register of one couple,
    // are judged against lived-in flats only.
    let away = |u: usize, day: i64| u < 5 && (10..24).contains(&day);
    let cfg = GroupRentalConfig {
        min_peers: 4,
        ..GroupRentalConfig::default()
    };
    let f = run_with(
        &cfg,
        40,
        &register(&[]),
        |u, day| {
            if away(u, day) {
                0.0
            } else if u == 8 {
                2.0
            } else {
                1.0
            }
        },
        |_, _| false,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_registered_business_is_suppressed() {
    let f = run(
        30,
        &register(&[3]),
        |u, _| if u == 3 { 5.0 } else { 1.0 },
        |_, _| false,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_two_day_spike_does_not_persist() {
    let f = run(
        30,
        &register(&[]),
        |u, day| {
            if u == 3 && (10..12).contains(&day) {
                5.0
            } else {
                1.0
            }
        },
        |_, _| false,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn days_when_most_of_the_building_is_silent_say_nothing() {
    // A heavy flat whose building is silent most days: too few full days.
    let f = run(
        30,
        &register(&[]),
        |u, _| if u == 3 { 5.0 } else { 1.0 },
        |u, day| u != 3 && day % 3 != 0,
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn bad_config_values_are_named() {
    let bad = |f: fn(&mut GroupRentalConfig)| {
        let mut c = GroupRentalConfig::default();
        f(&mut c);
        c.validate().unwrap_err().path.to_string()
    };
    assert_eq!(bad(|c| c.persistence_days = 20), "persistence_days");
    assert_eq!(bad(|c| c.min_people = 0.0), "min_people");
    assert_eq!(bad(|c| c.min_extra_people = -1.0), "min_extra_people");
    assert_eq!(bad(|c| c.occupied_min_l = 0.0), "occupied_min_l");
    assert!(GroupRentalConfig::default().validate().is_ok());
}
