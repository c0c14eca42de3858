//! `explain` names the condition that ended each planted session.

use super::*;
use crate::detect::indoor_charging::trace::SessionShape;
use gridwatch_telemetry::Reading;

const MIN: i64 = 60_000;
/// 2026-03-02 00:00 local (UTC+8).
const DAY0: i64 = 1_772_380_800_000;

fn reading(ts: i64, unit: &str, power_w: f64) -> String {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-b01",
        format!("em-{unit}").as_str(),
        DeviceKind::ElectricityMeter,
        0,
    );
    r.site = "s01".into();
    r.building = Some("b01".into());
    r.unit = Some(unit.into());
    r.values.insert("power_w".into(), power_w);
    serde_json::to_string(&Record::Reading(r)).unwrap()
}

/// Five days of 5-minute readings of a 90 W flat 0301 with three planted
/// 200 W loads, each from `start` (minutes since DAY0) holding `hold`
/// minutes and tapering linearly over `taper`; flat 0302 holds 500 W.
fn recording(plants: &[(i64, i64, i64)]) -> String {
    let mut out = String::new();
    for i in 0..5 * 288 {
        let m = i * 5;
        let charger: f64 = plants
            .iter()
            .map(|&(start, hold, taper)| {
                let x = m - start;
                if (0..hold).contains(&x) {
                    200.0
                } else if (hold..hold + taper).contains(&x) {
                    200.0 * (hold + taper - x) as f64 / taper as f64
                } else {
                    0.0
                }
            })
            .sum();
        out += &reading(DAY0 + m * MIN, "0301", 90.0 + charger);
        out.push('\n');
        out += &reading(DAY0 + m * MIN, "0302", 500.0);
        out.push('\n');
    }
    out
}

fn run(text: &str, target: Target) -> Explanation {
    explain(
        &AnalyticsConfig::default(),
        &Register::default(),
        text.as_bytes(),
        &target,
    )
    .unwrap()
}

fn ends(e: &Explanation) -> Vec<(SessionShape, Option<Verdict>)> {
    e.steps
        .iter()
        .filter_map(|s| match s.event {
            TraceEvent::Ended {
                session: Some(shape),
                verdict,
                ..
            } => Some((shape, verdict)),
            _ => None,
        })
        .collect()
}

#[test]
fn each_planted_session_ends_with_the_condition_that_decided_it() {
    let day = 1440;
    let text = recording(&[
        // A charger: 3 h plateau from 22:00, 40 min tail.
        (day + 22 * 60, 180, 40),
        // A load switched off in one step.
        (2 * day + 22 * 60, 180, 0),
        // A load that holds 10 h, far longer than a constant-current phase.
        (3 * day + 19 * 60, 600, 40),
    ]);
    let e = run(&text, Target::Flat("s01/b01/0301".into()));
    assert_eq!(e.flat.as_deref(), Some("s01/b01/0301"));
    assert_eq!(e.readings, 5 * 288);
    let ends = ends(&e);
    let verdict_at = |start: i64| {
        ends.iter()
            .find(|(s, _)| (s.start.0 - (DAY0 + start * MIN)).abs() <= 30 * MIN)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no session near minute {start}: {ends:?}"))
    };
    assert_eq!(verdict_at(day + 22 * 60), Some(Verdict::Counted));
    assert!(
        matches!(
            verdict_at(2 * day + 22 * 60),
            Some(Verdict::FusionOnlySharp {
                readings: 0..=1,
                ..
            })
        ),
        "{ends:?}"
    );
    assert!(
        matches!(
            verdict_at(3 * day + 19 * 60),
            Some(Verdict::PlateauLong { plateau_min }) if plateau_min > 500.0
        ),
        "{ends:?}"
    );
    // The text names each, in local time.
    let text = e.describe();
    assert!(
        text.contains("2026-03-03 22:00  candidate started +200 W"),
        "{text}"
    );
    assert!(text.contains("COUNTED"), "{text}");
    assert!(
        text.contains("ending sharply (tail 0 min over 0 readings"),
        "{text}"
    );
    assert!(text.contains("over max_plateau_min"), "{text}");
}

#[test]
fn a_meter_is_explained_as_its_flat_and_the_other_flat_is_not_mixed_in() {
    let text = recording(&[(1440 + 22 * 60, 180, 40)]);
    let by_meter = run(&text, Target::Meter("em-0301".into()));
    let by_flat = run(&text, Target::Flat("s01/b01/0301".into()));
    assert_eq!(by_meter.flat.as_deref(), Some("s01/b01/0301"));
    assert_eq!(by_meter.steps.len(), by_flat.steps.len());
    assert!(!by_flat.steps.is_empty());
    // An unknown meter explains nothing and says so.
    let none = run(&text, Target::Meter("em-9999".into()));
    assert!(none.flat.is_none() && none.steps.is_empty());
    assert!(none.describe().contains("no electricity readings"));
}

#[test]
fn local_minutes_follow_the_offset_and_the_calendar() {
    assert_eq!(local_minute(Timestamp(DAY0), 480), "2026-03-02 00:00");
    assert_eq!(local_minute(Timestamp(DAY0 - MIN), 480), "2026-03-01 23:59");
    assert_eq!(local_minute(Timestamp(0), 0), "1970-01-01 00:00");
    assert_eq!(
        local_minute(Timestamp(951_782_400_000), 0),
        "2000-02-29 00:00"
    );
}
