//! Leak nights at the flow floor and just below, bursts against a steady
//! flow, dry and silent nights.

use super::*;

const HOUR: i64 = 3_600_000;

fn wm(hour: i64, flow_l: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(hour * HOUR),
        "gw-1",
        "wm-101",
        DeviceKind::WaterMeter,
        hour as u64,
    );
    r.site = "s01".into();
    r.building = Some("b1".into());
    r.unit = Some("101".into());
    r.values.insert("flow_l".into(), flow_l);
    r
}

/// Hourly readings (UTC = local) for `days` days; `flow(day, hour)` gives
/// the litres of the hour ending at `hour`, `None` for no reading. Returns
/// (hour of the finding, finding).
fn run(days: i64, flow: impl Fn(i64, i64) -> Option<f64>) -> Vec<(i64, Finding)> {
    // A floor of 2 L/h over 3 nights and a window of 01–05 h keep the
    // scenarios short; the defaults (3 L/h, 5 nights, 13–05 h) are the same
    // machine with other numbers.
    run_with(
        &NightWaterConfig {
            min_flow_lph: 2.0,
            nights: 3,
            night_start_h: 1,
            night_end_h: 5,
            ..NightWaterConfig::default()
        },
        days,
        flow,
    )
}

fn run_with(
    config: &NightWaterConfig,
    days: i64,
    flow: impl Fn(i64, i64) -> Option<f64>,
) -> Vec<(i64, Finding)> {
    let mut d = NightWater::new(config, LocalTime::new(0));
    let mut out = Vec::new();
    for h in 1..=days * 24 {
        if let Some(l) = flow(h / 24, h % 24) {
            out.extend(d.observe(&wm(h, l)).into_iter().map(|f| (h, f)));
        }
    }
    out
}

/// Daytime use with bursts (a shower at 07:00, cooking, washing).
fn day_use(hour: i64) -> f64 {
    match hour {
        7 | 8 => 60.0,
        12 | 19 | 20 => 25.0,
        _ => 6.0,
    }
}

#[test]
fn a_steady_flow_at_the_floor_is_a_leak_after_three_nights() {
    let found = run(5, |_, h| {
        Some(if (2..=5).contains(&h) {
            2.0
        } else {
            day_use(h)
        })
    });
    assert_eq!(found.len(), 1, "{found:?}");
    let (hour, f) = &found[0];
    // Nights 0, 1, 2 end at 05:00; the first reading after night 2 closes it.
    assert_eq!(*hour, 2 * 24 + 6);
    assert_eq!(f.rule, RULE_LEAK);
    assert_eq!(f.entity, "s01/b1/101");
    assert_eq!(f.severity, Severity::Minor);
    assert_eq!(f.evidence.values["min_night_flow_lph"], 2.0);
    assert_eq!(f.evidence.values["nights"], 3.0);
    assert_eq!(f.evidence.thresholds["min_flow_lph"], 2.0);
}

#[test]
fn just_below_the_floor_is_not_a_leak() {
    let found = run(6, |_, h| {
        Some(if (2..=5).contains(&h) {
            1.99
        } else {
            day_use(h)
        })
    });
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn night_bursts_with_dry_hours_between_are_occupancy() {
    // A crowded flat: a 40 L shower at 02:00, flushes at 03:00 and 05:00,
    // but the hour to 04:00 is dry.
    let found = run(8, |_, h| {
        Some(match h {
            2 => 40.0,
            3 | 5 => 9.0,
            4 => 0.0,
            _ => day_use(h),
        })
    });
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_dry_night_restarts_the_count_and_a_silent_night_does_not() {
    let leak = |h: i64| {
        if (2..=5).contains(&h) {
            10.0
        } else {
            day_use(h)
        }
    };
    // Leak nights 0, 1; night 2 dry; leak nights 3, 4: no alert yet.
    let dry = run(5, |d, h| Some(if d == 2 && h == 3 { 0.0 } else { leak(h) }));
    assert!(dry.is_empty(), "{dry:?}");
    let dry_then_three = run(6, |d, h| Some(if d == 2 && h == 3 { 0.0 } else { leak(h) }));
    assert_eq!(dry_then_three.len(), 1);
    assert_eq!(dry_then_three[0].0, 5 * 24 + 6);
    // Leak nights 0, 1; no readings during night 2 (a gap); leak night 3:
    // the silent night neither counts nor breaks the run.
    let silent = run(4, |d, h| (d != 2 || !(1..=6).contains(&h)).then(|| leak(h)));
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0].0, 3 * 24 + 6);
    assert_eq!(silent[0].1.evidence.values["nights"], 3.0);
}

#[test]
fn a_leak_is_alerted_once_and_again_after_a_repair() {
    let found = run(12, |d, h| {
        // Repaired for night 6 (dry), leaking again from night 7.
        Some(match ((2..=5).contains(&h), d == 6) {
            (true, true) => 0.0,
            (true, false) => 5.0,
            (false, _) => day_use(h),
        })
    });
    let hours: Vec<i64> = found.iter().map(|(h, _)| *h).collect();
    assert_eq!(hours, [2 * 24 + 6, 9 * 24 + 6]);
    assert_ne!(found[0].1.id, found[1].1.id);
}

#[test]
fn bad_config_values_are_named() {
    let bad = |f: fn(&mut NightWaterConfig)| {
        let mut c = NightWaterConfig::default();
        f(&mut c);
        format!("{:?}", c.validate().unwrap_err().path)
    };
    assert!(bad(|c| c.min_flow_lph = 0.0).contains("min_flow_lph"));
    assert!(bad(|c| c.night_end_h = 24).contains("night_end_h"));
    assert!(bad(|c| c.night_end_h = c.night_start_h).contains("night_end_h"));
    assert!(bad(|c| c.nights = 0).contains("nights"));
    assert!(bad(|c| c.min_coverage = 1.5).contains("min_coverage"));
    assert!(NightWaterConfig::default().validate().is_ok());
}

#[test]
fn a_night_shift_worker_s_water_is_not_a_leak_but_a_leak_through_the_afternoon_is() {
    // Up all night (a flush or a tap every hour, 4 L or more), asleep
    // from 09:00 to 17:00 with the flat dry: with the default window the
    // dry afternoon shows it is people.
    let shift = |_: i64, h: i64| {
        Some(if (9..17).contains(&h) {
            0.0
        } else {
            4.0 + (h % 3) as f64
        })
    };
    let found = run_with(&NightWaterConfig::default(), 12, shift);
    assert!(found.is_empty(), "{found:?}");
    // Over 01–05 h alone it would have looked like a leak.
    let night_only = NightWaterConfig {
        night_start_h: 1,
        night_end_h: 5,
        ..NightWaterConfig::default()
    };
    assert_eq!(run_with(&night_only, 12, shift).len(), 1);
    // The same flat with a 3 L/h leak under it is never dry: found.
    let leaking = |d: i64, h: i64| shift(d, h).map(|l| l + 3.0);
    let found = run_with(&NightWaterConfig::default(), 12, leaking);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1.evidence.values["min_night_flow_lph"], 3.0);
}
