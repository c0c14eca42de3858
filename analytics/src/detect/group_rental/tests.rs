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
                ..Default::default()
            })
            .collect(),
        tags: Vec::new(),
        meters: Vec::new(),
    })
}

/// `days` days of hourly readings for 10 flats of 2 registered occupants;
/// `scale(unit, day)` multiplies a flat's use (1 = an ordinary couple), and
/// `absent(unit, day)` drops the flat's readings that day.
fn run(
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> f64,
    absent: impl Fn(usize, i64) -> bool,
) -> Vec<Finding> {
    run_with(&GroupRentalConfig::default(), days, reg, scale, absent)
}

fn run_with(
    cfg: &GroupRentalConfig,
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> f64,
    absent: impl Fn(usize, i64) -> bool,
) -> Vec<Finding> {
    run_split(cfg, days, reg, |u, d| [scale(u, d); 2], absent)
}

/// Like [`run_with`], with separate scales for electricity by day
/// (09–18) and for everything else (electricity at other hours, water, gas).
fn run_split(
    cfg: &GroupRentalConfig,
    days: i64,
    reg: &Register,
    scale: impl Fn(usize, i64) -> [f64; 2],
    absent: impl Fn(usize, i64) -> bool,
) -> Vec<Finding> {
    let mut d = GroupRental::new(cfg, LocalTime::new(480));
    let mut out = Vec::new();
    for day in 0..days {
        for h in 0..24 {
            let ts = DAY0 + day * 24 * HOUR + h * HOUR;
            for u in 0..10 {
                if absent(u, day) {
                    continue;
                }
                // Slight differences between ordinary flats, so MAD is not 0.
                let spread = 1.0 + 0.3 * (u as f64 - 4.5) / 4.5;
                let [by_day, k] = scale(u, day).map(|s| s * spread);
                let night = if h < 5 { 60.0 } else { 250.0 };
                let ke = if (9..18).contains(&h) { by_day } else { k };
                out.extend(d.observe(
                    &reading(DeviceKind::ElectricityMeter, u, ts, "power_w", night * ke),
                    reg,
                ));
                out.extend(d.observe(
                    &reading(DeviceKind::WaterMeter, u, ts, "flow_l", 12.0 * k),
                    reg,
                ));
                // Gas for cooking, at meals (none at night: that is heating).
                let gas = if [7, 12, 18, 19].contains(&h) {
                    0.12
                } else {
                    0.0
                };
                out.extend(d.observe(
                    &reading(DeviceKind::GasMeter, u, ts, "use_m3", gas * k),
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
fn a_flat_used_by_many_more_people_is_alerted_after_persistence_with_factors() {
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
    assert!(f.evidence.values["factor_water_l_per_occupant_robust_z"] > 3.5);
    assert!(f.evidence.values["water_l_per_occupant"] > 500.0);
    assert!(f.title.contains("robust_z"), "{}", f.title);
}

#[test]
fn a_flat_only_moderately_above_its_peers_stays_below_the_score() {
    // Three times an ordinary couple: robust outliers on every feature, but
    // not by far (an unregistered partner and a child, not a dormitory).
    let scale = |u: usize, _| if u == 3 { 3.0 } else { 1.0 };
    let f = run(30, &register(&[]), scale, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
    let no_score = GroupRentalConfig {
        min_score: 0.0,
        ..GroupRentalConfig::default()
    };
    let f = run_with(&no_score, 30, &register(&[]), scale, |_, _| false);
    assert_eq!(f.len(), 1, "without min_score it is alerted: {f:?}");
}

#[test]
fn electricity_alone_is_machines_not_a_crowd() {
    // Eight times the daytime electricity of its peers (a workshop at
    // home), with a couple's nights, water and gas: far out, but nothing
    // counts people.
    let cfg = GroupRentalConfig::default();
    let machines = |u: usize, day: i64| {
        if u == 3 && day >= 16 {
            [8.0, 1.0]
        } else {
            [1.0, 1.0]
        }
    };
    let f = run_split(&cfg, 40, &register(&[]), machines, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
    // The same flat is alerted when the people rule is off, and a crowd
    // (water and gas up too) is alerted with it on.
    let off = GroupRentalConfig {
        min_people_factors: 0,
        min_people_estimate: 0.0,
        ..cfg.clone()
    };
    assert_eq!(
        run_split(&off, 40, &register(&[]), machines, |_, _| false).len(),
        1
    );
    let crowd = |u: usize, day: i64| {
        if u == 3 && day >= 16 {
            [5.0, 5.0]
        } else {
            [1.0, 1.0]
        }
    };
    assert_eq!(
        run_split(&cfg, 40, &register(&[]), crowd, |_, _| false).len(),
        1
    );
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
    let c = GroupRentalConfig {
        persistence_days: 20,
        ..GroupRentalConfig::default()
    };
    assert_eq!(
        c.validate().unwrap_err().path.to_string(),
        "persistence_days"
    );
    // The peers' way: a ratio of 1 would call every flat at the median out,
    // and a negative floor is a typo.
    for (c, key) in [
        (
            GroupRentalConfig {
                peer_water_ratio: 1.0,
                ..GroupRentalConfig::default()
            },
            "peer_water_ratio",
        ),
        (
            GroupRentalConfig {
                peer_min_people: -1.0,
                ..GroupRentalConfig::default()
            },
            "peer_min_people",
        ),
        (
            GroupRentalConfig {
                peer_window_days: 0,
                ..GroupRentalConfig::default()
            },
            "peer_window_days",
        ),
    ] {
        assert_eq!(c.validate().unwrap_err().path.to_string(), key);
    }
    assert!(GroupRentalConfig::default().validate().is_ok());
}

/// One day of hourly readings into a [`DayUse`]: `power(h)` W, `water(h)`
/// L and `gas(h)` m³ in hour `h` (00:00–05:00 is night).
fn one_day(
    power: impl Fn(i64) -> f64,
    water: impl Fn(i64) -> f64,
    gas: impl Fn(i64) -> f64,
) -> DayUse {
    let mut d = DayUse::new(0);
    for h in 0..24 {
        let ts = DAY0 + h * HOUR;
        let night = h < 5;
        for (kind, name, v) in [
            (DeviceKind::ElectricityMeter, "power_w", power(h)),
            (DeviceKind::WaterMeter, "flow_l", water(h)),
            (DeviceKind::GasMeter, "use_m3", gas(h)),
        ] {
            d.add(&reading(kind, 0, ts, name, v), 60, night);
        }
    }
    d
}

#[test]
fn gas_that_flows_at_night_is_heating_not_cooking() {
    // Floor heating at 0.2 m³/h around the clock and 0.3 m³ of cooking at noon.
    let d = one_day(
        |_| 100.0,
        |_| 10.0,
        |h| 0.2 + if h == 12 { 0.3 } else { 0.0 },
    );
    let f = d.features(1.0, 0.8).expect("a full day");
    assert!((f[2] - 0.3).abs() < 1e-3, "{f:?}");
}

#[test]
fn a_load_on_around_the_clock_is_not_people_up_at_night() {
    // A 300 W miner: a high night floor, but no activity above it.
    let miner = one_day(|_| 300.0, |_| 10.0, |_| 0.0);
    assert_eq!(miner.features(2.0, 0.8).expect("a full day")[3], 0.0);
    // People up at night: the night's mean stands above its lowest hour.
    let awake = one_day(
        |h| if h % 2 == 0 { 100.0 } else { 400.0 },
        |_| 10.0,
        |_| 0.0,
    );
    assert!(awake.features(2.0, 0.8).expect("a full day")[3] > 50.0);
}

#[test]
fn a_day_without_water_is_an_empty_flat_not_a_measurement() {
    // Away for the Spring Festival: a fridge and standby, no water.
    let away = one_day(|_| 60.0, |_| 0.0, |_| 0.0);
    assert_eq!(away.features(2.0, 0.8), None);
}

#[test]
fn four_people_in_a_flat_registered_for_one_are_not_a_group_rental() {
    // Flat 3 is registered for one and uses 2.4 times an ordinary couple:
    // four or five adults sharing, far above its peers per registered
    // occupant, but its water says fewer than min_people_estimate people.
    let mut file = RegisterFile {
        flats: (0..10)
            .map(|u| FlatEntry {
                flat: format!("s01/b01/{u:02}01"),
                occupants: if u == 3 { 1 } else { 2 },
                area_m2: 70.0,
                business: false,
                ..Default::default()
            })
            .collect(),
        tags: Vec::new(),
        meters: Vec::new(),
    };
    let scale = |u: usize, _| if u == 3 { 2.4 } else { 1.0 };
    let reg = Register::from_file(file.clone());
    let f = run(40, &reg, scale, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
    // Without the estimate it would be alerted.
    let off = GroupRentalConfig {
        min_people_estimate: 0.0,
        ..GroupRentalConfig::default()
    };
    let f = run_with(&off, 40, &reg, scale, |_, _| false);
    assert!(!f.is_empty(), "{f:?}");
    // A dormitory of ten or more registered for one is.
    file.flats[3].occupants = 1;
    let reg = Register::from_file(file);
    let f = run(
        40,
        &reg,
        |u, _| if u == 3 { 5.5 } else { 1.0 },
        |_, _| false,
    );
    assert!(!f.is_empty(), "{f:?}");
    assert!(
        f[0].evidence.values["people_estimate"] > 8.0,
        "{:?}",
        f[0].evidence.values
    );
}

#[test]
fn each_day_is_judged_by_the_register_of_that_day() {
    // Flat 0301 holds five couples' use from day 10. The register of day 0
    // says 2 people; from day 12 (2026-03-14) the flat is re-registered
    // for 10, which explains that use: judged per occupant of that day's
    // entry, the flat is ordinary from then on and raises nothing.
    let mut file = RegisterFile {
        flats: (0..10)
            .map(|u| FlatEntry {
                flat: format!("s01/b01/{u:02}01"),
                occupants: 2,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    file.flats.push(FlatEntry {
        flat: "s01/b01/0301".into(),
        occupants: 10,
        since: Some("2026-03-14".into()),
        ..Default::default()
    });
    let busy = |u, day| if u == 3 && day >= 10 { 5.0 } else { 1.0 };
    let f = run(30, &Register::from_file(file.clone()), busy, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
    // Re-registered only from day 25 (2026-03-27): the alert comes before,
    // and says which register entry it was judged on.
    file.flats.last_mut().unwrap().since = Some("2026-03-27".into());
    let f = run(30, &Register::from_file(file), busy, |_, _| false);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].summary
            .contains("registered for 2, register entry undated"),
        "{}",
        f[0].summary
    );
}

/// The peers' way alone (the factor way switched off by an unreachable
/// score): a flat whose month of water speaks for eight people at the
/// building's median, four times its peers per registered occupant, is
/// alerted once half a window of days has settled; a flat of five sharing
/// adults is not; with `peer_min_people = 0` nothing is.
#[test]
fn the_peers_way_alerts_on_water_for_many_people_without_norms_or_z_scores() {
    let peers_only = GroupRentalConfig {
        min_score: 1e9,
        ..GroupRentalConfig::default()
    };
    let crowd = |u: usize, _d: i64| if u == 5 { 4.0 } else { 1.0 };
    let f = run_with(&peers_only, 40, &register(&[]), crowd, |_, _| false);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].entity, "s01/b01/0501");
    let people = f[0].evidence.values["factor_water_people_vs_building"];
    assert!((7.0..9.5).contains(&people), "{people}");
    // Not before half a window (14 days) of full days, plus persistence.
    let first_day = (f[0].ts.0 - DAY0) / (24 * HOUR);
    assert!(first_day >= 14 + 6, "alerted on day {first_day}");

    let sharers = |u: usize, _d: i64| if u == 5 { 2.4 } else { 1.0 };
    let f = run_with(&peers_only, 40, &register(&[]), sharers, |_, _| false);
    assert!(
        f.is_empty(),
        "five people by water are not a group rental: {f:?}"
    );

    let off = GroupRentalConfig {
        peer_min_people: 0.0,
        ..peers_only
    };
    let f = run_with(&off, 40, &register(&[]), crowd, |_, _| false);
    assert!(f.is_empty(), "{f:?}");
}
