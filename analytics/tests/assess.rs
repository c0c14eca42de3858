//! Utility data into the case loop: readings imported from the utilities
//! (daily electricity as use per day, monthly water registers) are
//! assessed by the utility-resolution group-rental rule, and what it finds
//! becomes a case in the flat's grid cell, once.

mod support;

use gridwatch_analytics::register::{FlatEntry, RegisterFile};
use gridwatch_analytics::store::imported::{ImportedRow, ValueKind};
use gridwatch_analytics::store::{Scope, Store, StoreError};
use std::process::Command;

/// 2026-03-01 00:00 local (UTC+8), ms.
const MAR1: i64 = 1_772_294_400_000;
const DAY: i64 = 86_400_000;

#[test]
fn a_group_rental_found_in_imported_utility_data_becomes_one_case_in_its_cell() {
    let dir = gridwatch_testkit::TempDir::new("assess");
    let d = dir.path();
    let units: Vec<String> = (1..=8).map(|u| format!("01{u:02}")).collect();
    let config = support::office_config(
        d,
        &RegisterFile {
            flats: units
                .iter()
                .map(|u| FlatEntry::new(&format!("yard-a/b1/{u}"), 2))
                .collect(),
            ..Default::default()
        },
    );
    // State Grid's daily use per meter (interval values, as a 日用电量 export
    // gives them) for March 1 – April 5, and the water company's registers
    // on March 1, April 1 and May 1. Flat 0105 houses 12 people.
    let store = Store::open_file(&d.join("alerts.db")).unwrap();
    let heavy = |u: &str| u == "0105";
    store
        .import_into::<_, StoreError>("sgcc-daily-use", "electricity", |w| {
            for day in 0..36 {
                for u in &units {
                    let flat = format!("yard-a/b1/{u}");
                    let meter = format!("E{u}");
                    let kwh = if heavy(u) {
                        14.0
                    } else {
                        5.0 + (day % 3) as f64 * 0.4
                    };
                    w.put(&ImportedRow {
                        ts_ms: MAR1 + (day + 1) * DAY,
                        meter: &meter,
                        flat: &flat,
                        value_kind: ValueKind::Interval,
                        value: kwh,
                        quality_bad: false,
                    })?;
                }
            }
            Ok(())
        })
        .unwrap();
    store
        .import_into::<_, StoreError>("water-monthly", "water", |w| {
            for (i, ts) in [MAR1, MAR1 + 31 * DAY].into_iter().enumerate() {
                for u in &units {
                    let flat = format!("yard-a/b1/{u}");
                    let meter = format!("W{u}");
                    let litres_day = if heavy(u) { 1500.0 } else { 260.0 };
                    w.put(&ImportedRow {
                        ts_ms: ts,
                        meter: &meter,
                        flat: &flat,
                        value_kind: ValueKind::Register,
                        value: 100.0 + i as f64 * 31.0 * litres_day / 1000.0,
                        quality_bad: false,
                    })?;
                }
            }
            Ok(())
        })
        .unwrap();
    drop(store);
    let assess = || {
        let out = Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
            .args(["assess", "-c"])
            .arg(&config)
            .args(["--from", "2026-03-01", "--to", "2026-04-30"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = assess();
    assert!(said.contains("1 findings, 1 new cases"), "{said}");
    let store = Store::open_file(&d.join("alerts.db")).unwrap();
    let cases = store.list(&Scope::All, &Default::default()).unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(
        (
            cases[0].rule.as_str(),
            cases[0].entity.as_str(),
            cases[0].cell.as_str()
        ),
        ("group_rental_utility", "yard-a/b1/0105", "cell-07")
    );
    drop(store);
    // Assessing the same data again opens nothing new.
    let again = assess();
    assert!(again.contains("1 findings, 0 new cases"), "{again}");
}
