//! Behaviour of the indoor-charging rules.

use super::*;
use crate::register::{RegisterFile, TagEntry};

const MIN: i64 = 60_000;
/// 2026-03-02 00:00 local (UTC+8).
const DAY0: i64 = 1_772_380_800_000;

fn reading(ts: i64, power_w: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-b01",
        "em-0301",
        DeviceKind::ElectricityMeter,
        0,
    );
    r.site = "s01".into();
    r.building = Some("b01".into());
    r.unit = Some("0301".into());
    r.values.insert("power_w".into(), power_w);
    r
}

fn sighting(ts: i64, identity: &str) -> Event {
    Event {
        schema: 1,
        ts: Timestamp(ts),
        gateway: "gw-b01".into(),
        site: "s01".into(),
        device: "reader-lift".into(),
        seq: 0,
        kind: EventKind::Sighting {
            location: "lift_lobby".into(),
            identity: identity.into(),
            direction: None,
        },
    }
}

fn register() -> Register {
    Register::from_file(RegisterFile {
        flats: Vec::new(),
        tags: vec![TagEntry {
            identity: "tag-1".into(),
            flat: "s01/b01/0301".into(),
        }],
        meters: Vec::new(),
    })
}

/// 5-minute readings of a 90 W household over `days`; on each day of
/// `charge`, a 200 W session from 22:00 local (plateau 3 h, taper 1 h, so
/// it runs past midnight into the next day).
fn run_days(d: &mut IndoorCharging, days: std::ops::Range<i64>, charge: &[i64]) -> Vec<Finding> {
    run_charger(d, days, charge, slow)
}

/// The usual charger: 200 W for 3 h, then a one-hour taper.
fn slow(x: i64) -> f64 {
    match x {
        0..180 => 200.0,
        x @ 180..240 => 200.0 * (240 - x) as f64 / 60.0,
        _ => 0.0,
    }
}

/// As [`run_days`], with the charger's draw `x` minutes after 22:00 given.
fn run_charger(
    d: &mut IndoorCharging,
    days: std::ops::Range<i64>,
    charge: &[i64],
    draw: impl Fn(i64) -> f64,
) -> Vec<Finding> {
    run_traced(d, days, charge, draw, &mut NoTrace)
}

/// As [`run_charger`], telling `trace` what the detector decided.
fn run_traced<T: TraceSink>(
    d: &mut IndoorCharging,
    days: std::ops::Range<i64>,
    charge: &[i64],
    draw: impl Fn(i64) -> f64,
    trace: &mut T,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for i in days.start * 288..days.end * 288 {
        let m = i * 5;
        let charger: f64 = charge.iter().map(|c| draw(m - (c * 1440 + 22 * 60))).sum();
        out.extend(d.observe_traced(&reading(DAY0 + m * MIN, 90.0 + charger), trace));
    }
    out
}

/// A fast charger: 400 W for an hour, then a 20-minute tail (the plateau
/// as followed is 45 min: under `min_plateau_min`).
fn fast(x: i64) -> f64 {
    match x {
        0..60 => 400.0,
        x @ 60..80 => 400.0 * (80 - x) as f64 / 20.0,
        _ => 0.0,
    }
}

fn detector() -> IndoorCharging {
    IndoorCharging::new(&IndoorChargingConfig::default(), LocalTime::new(480))
}

/// The flat's tag seen at the compound gate at `ts`: its e-bike is known.
fn at_gate(d: &mut IndoorCharging, ts: i64) -> Vec<Finding> {
    let mut gate = sighting(ts, "tag-1");
    if let EventKind::Sighting { location, .. } = &mut gate.kind {
        *location = "gate".into();
    }
    d.observe_event(&gate, &register())
}

#[test]
fn two_sessions_raise_nothing_three_in_a_week_raise_the_signature_rule() {
    let mut d = detector();
    // A gate sighting raises nothing itself; it makes the flat's e-bike known.
    assert!(at_gate(&mut d, DAY0 - 3 * 86_400_000).is_empty());
    let mut f = run_days(&mut d, 0..4, &[0, 2]);
    assert!(f.is_empty(), "{f:?}");
    f.extend(run_days(&mut d, 4..6, &[4]));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, RULE_SIGNATURE);
    assert_eq!(f[0].entity, "s01/b01/0301");
    assert_eq!(f[0].severity, Severity::Major);
    assert!((f[0].evidence.values["step_w"] - 200.0).abs() < 1.0);
    assert_eq!(f[0].evidence.values["start_local_hour"], 22.0);
    assert_eq!(
        f[0].evidence.values["bike_seen_ms"],
        (DAY0 - 3 * 86_400_000) as f64
    );
}

#[test]
fn a_flat_with_no_known_e_bike_needs_five_sessions_in_the_week() {
    // No tag of the flat ever seen: three sessions are not enough, five are.
    let mut d = detector();
    let f = run_days(&mut d, 0..6, &[0, 2, 4]);
    assert!(f.is_empty(), "{f:?}");
    let f = run_days(&mut d, 6..9, &[6, 7]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, RULE_SIGNATURE);
    assert!(!f[0].evidence.values.contains_key("bike_seen_ms"));
    assert!(f[0].summary.contains("No tag registered to the flat"));
    // A tag seen longer ago than `bike_known_days` no longer counts.
    let mut d = detector();
    let days = i64::from(IndoorChargingConfig::default().bike_known_days);
    at_gate(&mut d, DAY0 - (days + 1) * 86_400_000);
    let f = run_days(&mut d, 0..6, &[0, 2, 4]);
    assert!(f.is_empty(), "{f:?}");
    // Nor does one seen after the session (the bike was not known then).
    let mut d = detector();
    at_gate(&mut d, DAY0 + 6 * 86_400_000);
    let f = run_days(&mut d, 0..6, &[0, 2, 4]);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn sessions_further_apart_than_the_window_do_not_add_up() {
    let mut d = detector();
    at_gate(&mut d, DAY0);
    let mut f = run_days(&mut d, 0..9, &[0, 2]);
    f.extend(run_days(&mut d, 9..11, &[9]));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_sighting_before_a_session_fuses_into_a_critical_alert() {
    let mut d = detector();
    let reg = register();
    let mut f = d.observe_event(&sighting(DAY0 + (21 * 60 + 40) * MIN, "tag-1"), &reg);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, RULE_SIGHTING);
    assert_eq!(f[0].entity, "s01/b01/0301");
    f.extend(run_days(&mut d, 0..2, &[0]));
    let fused: Vec<_> = f.iter().filter(|f| f.rule == RULE_FUSED).collect();
    assert_eq!(fused.len(), 1, "{f:?}");
    assert_eq!(fused[0].severity, Severity::Critical);
}

#[test]
fn a_sighting_long_before_the_session_does_not_fuse() {
    let mut d = detector();
    let reg = register();
    let mut f = d.observe_event(&sighting(DAY0 + 12 * 60 * MIN, "tag-1"), &reg);
    f.extend(run_days(&mut d, 0..2, &[0]));
    assert!(f.iter().all(|f| f.rule != RULE_FUSED), "{f:?}");
}

#[test]
fn sightings_outside_or_of_unknown_tags_are_handled() {
    let mut d = detector();
    let reg = register();
    let mut gate = sighting(DAY0, "tag-1");
    if let EventKind::Sighting { location, .. } = &mut gate.kind {
        *location = "gate".into();
    }
    assert!(d.observe_event(&gate, &reg).is_empty());
    let f = d.observe_event(&sighting(DAY0, "tag-x"), &reg);
    assert_eq!(f[0].entity, "s01/gw-b01/reader-lift");
    // The cool-down holds back a second alert for the same flat that day.
    assert!(d
        .observe_event(&sighting(DAY0 + MIN, "tag-x"), &reg)
        .is_empty());
}

#[test]
fn bad_config_values_are_named() {
    let c = IndoorChargingConfig {
        max_step_w: 50.0,
        ..IndoorChargingConfig::default()
    };
    assert_eq!(c.validate().unwrap_err().path.to_string(), "max_step_w");
    let c = IndoorChargingConfig {
        fused_min_plateau_min: 90,
        ..IndoorChargingConfig::default()
    };
    assert_eq!(
        c.validate().unwrap_err().path.to_string(),
        "fused_min_plateau_min"
    );
    for bad in [0.5, f64::NAN, f64::INFINITY] {
        let c = IndoorChargingConfig {
            same_charger_ratio: bad,
            ..IndoorChargingConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().path.to_string(),
            "same_charger_ratio",
            "{bad}"
        );
    }
    assert!(IndoorChargingConfig::default().validate().is_ok());
}

/// A load of twice the usual charger's power, in the same shape.
fn double(x: i64) -> f64 {
    2.0 * slow(x)
}

#[test]
fn sessions_count_together_only_when_their_steps_are_one_charger_s() {
    for ratio in [1.5, 0.0] {
        let mut d = IndoorCharging::new(
            &IndoorChargingConfig {
                same_charger_ratio: ratio,
                ..IndoorChargingConfig::default()
            },
            LocalTime::new(480),
        );
        at_gate(&mut d, DAY0 - 86_400_000);
        let mut trace = Vec::new();
        let mut f = run_traced(&mut d, 0..2, &[0], slow, &mut trace);
        f.extend(run_traced(&mut d, 2..4, &[2], double, &mut trace));
        let third = run_traced(&mut d, 4..6, &[4], slow, &mut trace);
        if ratio == 0.0 {
            // Every session counts: three in the week.
            assert_eq!(third.len(), 1, "{third:?}");
            continue;
        }
        // 200 W, 400 W, 200 W: the 400 W load is something else.
        assert!(f.is_empty() && third.is_empty(), "{f:?} {third:?}");
        let fourth = run_traced(&mut d, 6..8, &[6], slow, &mut trace);
        assert_eq!(fourth.len(), 1, "{fourth:?}");
        let v = &fourth[0].evidence.values;
        // The evidence lists the three sessions of the one charger.
        assert_eq!(v["sessions_in_window"], 3.0);
        assert!(!v.contains_key("session_3_step_w"));
        for i in 0..3 {
            assert!(
                (v[&format!("session_{i}_step_w")] - 200.0).abs() < 5.0,
                "{v:?}"
            );
        }
        let in_window: Vec<_> = trace
            .iter()
            .filter_map(|(_, e)| match e {
                TraceEvent::InWindow {
                    sessions, alike, ..
                } => Some((*sessions, *alike)),
                _ => None,
            })
            .collect();
        assert_eq!(in_window, [(1, 1), (2, 1), (3, 2), (4, 3)]);
    }
}

#[test]
fn an_e_bike_read_at_the_gate_just_before_two_sessions_fuses() {
    let mut d = detector();
    // The rider comes through the gate at 21:50 and plugs in at 22:00.
    assert!(at_gate(&mut d, DAY0 + (21 * 60 + 50) * MIN).is_empty());
    let f = run_days(&mut d, 0..2, &[0]);
    assert!(
        f.is_empty(),
        "one session after an arrival is not a habit: {f:?}"
    );
    at_gate(&mut d, DAY0 + 2 * 86_400_000 + (21 * 60 + 45) * MIN);
    let f = run_days(&mut d, 2..4, &[2]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, RULE_FUSED);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].evidence.values["arrival_sessions"], 2.0);
    assert_eq!(
        f[0].evidence.values["arrived_at_ms"],
        (DAY0 + 2 * 86_400_000 + (21 * 60 + 45) * MIN) as f64
    );
    assert!(f[0].summary.contains("read outside"), "{}", f[0].summary);
}

#[test]
fn gate_reads_hours_before_a_session_or_after_its_start_do_not_fuse() {
    let mut d = detector();
    for day in [0, 2, 4] {
        // Home at 18:00, a charger-like load from 22:00: not an arrival.
        at_gate(&mut d, DAY0 + day * 86_400_000 + 18 * 60 * MIN);
        // Out again after the load began.
        at_gate(&mut d, DAY0 + day * 86_400_000 + (22 * 60 + 40) * MIN);
    }
    let f = run_days(&mut d, 0..6, &[0, 2, 4]);
    // The signature rule fires (a known bike, three sessions), not fusion.
    assert!(f.iter().all(|f| f.rule != RULE_FUSED), "{f:?}");
    assert_eq!(f.iter().filter(|f| f.rule == RULE_SIGNATURE).count(), 1);
    // Off by configuration: the same arrivals fuse nothing.
    let cfg = IndoorChargingConfig {
        arrival_window_min: 0,
        ..IndoorChargingConfig::default()
    };
    let mut d = IndoorCharging::new(&cfg, LocalTime::new(480));
    for day in [0, 2] {
        at_gate(&mut d, DAY0 + day * 86_400_000 + (21 * 60 + 50) * MIN);
    }
    let f = run_days(&mut d, 0..4, &[0, 2]);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_fast_charger_counts_only_with_the_flat_s_tag_beside_it() {
    // Five nights of a one-hour fast charge: too short for the signature.
    let mut d = detector();
    at_gate(&mut d, DAY0 - 86_400_000);
    let f = run_charger(&mut d, 0..6, &[0, 1, 2, 3, 4], fast);
    assert!(f.is_empty(), "{f:?}");
    // The same charge with the tag seen in the lift lobby before it fuses.
    let mut d = detector();
    let mut f = d.observe_event(&sighting(DAY0 + (21 * 60 + 40) * MIN, "tag-1"), &register());
    f.extend(run_charger(&mut d, 0..2, &[0], fast));
    let fused: Vec<_> = f.iter().filter(|f| f.rule == RULE_FUSED).collect();
    assert_eq!(fused.len(), 1, "{f:?}");
    assert!(fused[0].evidence.values["plateau_min"] < 60.0);
    // Shorter than `fused_min_plateau_min` is nothing, even with the tag.
    let cfg = IndoorChargingConfig {
        fused_min_plateau_min: 60,
        ..IndoorChargingConfig::default()
    };
    let mut d = IndoorCharging::new(&cfg, LocalTime::new(480));
    let mut f = d.observe_event(&sighting(DAY0 + (21 * 60 + 40) * MIN, "tag-1"), &register());
    f.extend(run_charger(&mut d, 0..2, &[0], fast));
    assert!(f.iter().all(|f| f.rule != RULE_FUSED), "{f:?}");
}

#[test]
fn explain_is_told_which_sessions_followed_an_arrival() {
    let mut d = detector();
    let mut trace: Vec<(Timestamp, TraceEvent)> = Vec::new();
    for day in [0, 2] {
        at_gate(&mut d, DAY0 + day * 86_400_000 + (21 * 60 + 50) * MIN);
    }
    run_traced(&mut d, 0..4, &[0, 2], slow, &mut trace);
    let arrivals: Vec<_> = trace
        .iter()
        .filter_map(|(_, e)| match e {
            TraceEvent::AfterArrival {
                arrived_min_before,
                indoors: false,
                sessions,
                needed,
            } => Some((*arrived_min_before, *sessions, *needed)),
            _ => None,
        })
        .collect();
    assert_eq!(arrivals.len(), 2, "{trace:?}");
    assert_eq!((arrivals[1].1, arrivals[1].2), (2, 2));
    // The sighting was 10 min before the step; the start is known to
    // within one reading.
    assert!((arrivals[0].0 - 10.0).abs() <= 5.0, "{arrivals:?}");
    assert!(trace
        .iter()
        .any(|(_, e)| matches!(e, TraceEvent::Alert { rule } if *rule == RULE_FUSED)));
}

/// A lithium charger whose constant-voltage tail is too short to follow:
/// 250 W for 3 h from 22:00, then off between two readings.
fn sharp(x: i64) -> f64 {
    if (0..182).contains(&x) {
        250.0
    } else {
        0.0
    }
}

#[test]
fn sharp_ends_fuse_only_with_the_tag_read_indoors_just_before_twice() {
    let reg = register();
    // Read in the lift lobby 10 min before plugging in, on two nights.
    let mut d = detector();
    let mut trace = Vec::new();
    let mut f = Vec::new();
    let mut fused = Vec::new();
    for day in [0, 2] {
        let up = DAY0 + (day * 1440 + 21 * 60 + 50) * MIN;
        f.extend(d.observe_event(&sighting(up, "tag-1"), &reg));
        fused = run_traced(&mut d, day..day + 2, &[day], sharp, &mut trace);
        if day == 0 {
            // One night: a bike kept in the lobby is read most evenings.
            assert!(fused.is_empty(), "{fused:?}");
        }
    }
    assert_eq!(fused.len(), 1, "{fused:?}");
    assert_eq!(fused[0].rule, RULE_FUSED);
    assert!(fused[0].evidence.values["taper_min"] < 10.0, "{fused:?}");
    assert!(
        fused[0].summary.contains("was read indoors at"),
        "{fused:?}"
    );
    assert!(trace.iter().any(|(_, e)| matches!(
        e,
        TraceEvent::Ended {
            verdict: Some(trace::Verdict::FusionOnlySharp { .. }),
            ..
        }
    )));
    assert!(trace.iter().any(|(_, e)| matches!(
        e,
        TraceEvent::AfterArrival {
            indoors: true,
            sessions: 2,
            ..
        }
    )));

    // Read two hours before (a tapering charger would fuse on one night;
    // this does not on two), or on the way down the next morning: nothing.
    let mut d = detector();
    let mut f = Vec::new();
    for day in [0, 2] {
        f.extend(d.observe_event(
            &sighting(DAY0 + (day * 1440 + 20 * 60) * MIN, "tag-1"),
            &reg,
        ));
        f.extend(run_charger(&mut d, day..day + 2, &[day], sharp));
        f.extend(d.observe_event(
            &sighting(DAY0 + (day * 1440 + 26 * 60) * MIN, "tag-1"),
            &reg,
        ));
    }
    assert!(f.iter().all(|f| f.rule != RULE_FUSED), "{f:?}");

    // Read at the gate just before two such sessions: a household's own
    // loads are switched off as sharply, so gate arrivals do not count them.
    let mut d = detector();
    let mut f = Vec::new();
    for day in [0, 2] {
        f.extend(at_gate(&mut d, DAY0 + (day * 1440 + 21 * 60 + 50) * MIN));
        f.extend(run_charger(&mut d, day..day + 2, &[day], sharp));
    }
    assert!(f.is_empty(), "{f:?}");

    // Nor does the signature alone, however often (the e-bike is known).
    let mut d = detector();
    at_gate(&mut d, DAY0 - 86_400_000);
    let f = run_charger(&mut d, 0..7, &[0, 1, 2, 3, 4, 5], sharp);
    assert!(f.is_empty(), "{f:?}");
}
