//! Group rental from what utilities export: daily electricity and monthly
//! water registers only.

use super::*;
use crate::register::{FlatEntry, RegisterFile};

/// 2026-03-01 00:00 local (UTC+8), ms.
const MAR1: i64 = 1_772_294_400_000;
const DAY: i64 = 86_400_000;

fn reading(ts: i64, unit: &str, kind: DeviceKind, name: &str, v: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-b01",
        format!("m-{unit}-{name}").as_str(),
        kind,
        0,
    );
    r.site = "s01".into();
    r.building = Some("b01".into());
    r.unit = Some(unit.into());
    r.values.insert(name.into(), v);
    // Interval values a gateway sends too: the detector must not use them.
    r.values.insert("power_w".into(), 1e6);
    r
}

/// 10 flats of 2 registered people over March and April, hourly readings:
/// 5 kWh and 250 L a day, except flat 0105 (12 people living there: 14 kWh,
/// 1500 L) and flat 0106 (a registered business using as much).
fn stream() -> Vec<Reading> {
    let units: Vec<String> = (1..=10).map(|u| format!("01{u:02}")).collect();
    let mut out = Vec::new();
    for h in 0..(62 * 24) {
        let ts = MAR1 + h * 3_600_000 - 8 * 3_600_000;
        for u in &units {
            let (kwh, litres) = if u == "0105" || u == "0106" {
                (14.0, 1500.0)
            } else {
                (5.0, 250.0)
            };
            let days = h as f64 / 24.0;
            out.push(reading(
                ts,
                u,
                DeviceKind::ElectricityMeter,
                "energy_kwh",
                (kwh * days * 100.0).round() / 100.0,
            ));
            out.push(reading(
                ts,
                u,
                DeviceKind::WaterMeter,
                "volume_m3",
                (litres * days).round() / 1000.0,
            ));
        }
    }
    out
}

fn register() -> Register {
    Register::from_file(RegisterFile {
        flats: (1..=10)
            .map(|u| FlatEntry {
                business: u == 6,
                ..FlatEntry::new(&format!("s01/b01/01{u:02}"), 2)
            })
            .collect(),
        ..Default::default()
    })
}

fn run(readings: &[Reading], register: &Register) -> (Vec<Finding>, UtilityGroupRentalStats) {
    let mut d = UtilityGroupRental::new(&UtilityGroupRentalConfig::default(), LocalTime::new(480));
    let f = readings
        .iter()
        .flat_map(|r| d.observe(r, register))
        .collect();
    (f, d.stats())
}

#[test]
fn the_flat_using_far_more_per_registered_person_is_found_from_registers_alone() {
    let (found, stats) = run(&stream(), &register());
    let flats: Vec<&str> = found.iter().map(|f| f.entity.as_str()).collect();
    assert_eq!(flats, vec!["s01/b01/0105"], "{found:?}");
    // March is judged two days into April; April never closes in this run.
    assert_eq!(stats.flat_months, 10);
    let f = &found[0];
    assert_eq!(f.ts.0 / DAY, (MAR1 + 33 * DAY - 8 * 3_600_000) / DAY);
    let w = f.evidence.values["water_l_day_per_registered"];
    assert!((w - 750.0).abs() < 30.0, "{w}");
    assert!(
        f.summary.contains("register of 2026-03-31"),
        "{}",
        f.summary
    );
}

#[test]
fn a_re_registration_is_judged_by_the_register_of_that_month() {
    // 0105 re-registered for 12 from March 15: by the end of March its use
    // per registered person is ordinary.
    let mut file = RegisterFile {
        flats: (1..=10)
            .map(|u| FlatEntry {
                business: u == 6,
                ..FlatEntry::new(&format!("s01/b01/01{u:02}"), 2)
            })
            .collect(),
        ..Default::default()
    };
    file.flats.push(FlatEntry {
        since: Some("2026-03-15".into()),
        ..FlatEntry::new("s01/b01/0105", 12)
    });
    let (found, _) = run(&stream(), &Register::from_file(file));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn too_few_peers_or_a_short_month_judge_nothing() {
    let few: Vec<Reading> = stream()
        .into_iter()
        .filter(|r| matches!(r.unit.as_deref(), Some("0101" | "0102" | "0105")))
        .collect();
    let (found, stats) = run(&few, &register());
    assert!(found.is_empty());
    assert_eq!(stats.skipped_months, 1);
    // Data from March 20 on: March has too few days.
    let late: Vec<Reading> = stream()
        .into_iter()
        .filter(|r| r.ts.0 >= MAR1 + 19 * DAY)
        .collect();
    let (found, stats) = run(&late, &register());
    assert!(found.is_empty());
    assert_eq!(stats.flat_months, 0);
}
