//! Behaviour of the socket-safety detector, one behaviour per test.

use super::*;

const T0: i64 = 1_764_000_000_000;

fn reading(at_s: f64, values: &[(&str, f64)]) -> Reading {
    let mut r = Reading::new(
        Timestamp(T0 + (at_s * 1000.0) as i64),
        "gw-1",
        "pile-1",
        DeviceKind::ChargingSocket,
        at_s as u64,
    );
    r.site = "yard-a".into();
    r.socket = Some(3);
    for (k, v) in values {
        r.values.insert((*k).to_owned(), *v);
    }
    r
}

/// Feeds `name = f(t)` every `step_s` seconds for t in [from_s, to_s].
fn feed(
    d: &mut SocketSafety,
    name: &str,
    from_s: f64,
    to_s: f64,
    step_s: f64,
    f: impl Fn(f64) -> f64,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut t = from_s;
    while t <= to_s + 1e-9 {
        out.extend(d.observe(&reading(t, &[(name, f(t))])));
        t += step_s;
    }
    out
}

fn detector() -> SocketSafety {
    SocketSafety::new(&SocketSafetyConfig::default())
}

#[test]
fn overcurrent_trips_after_persistence() {
    let mut d = detector();
    assert!(feed(&mut d, "current_a", 0.0, 4.0, 1.0, |_| 7.0).is_empty());
    let f = feed(&mut d, "current_a", 5.0, 5.0, 1.0, |_| 7.1);
    assert_eq!(f.len(), 1);
    let f = &f[0];
    assert_eq!(f.rule, RULE_OVERCURRENT);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.entity, "yard-a/gw-1/pile-1#3");
    assert_eq!(
        f.id,
        format!("socket_overcurrent:yard-a/gw-1/pile-1#3:{T0}")
    );
    assert_eq!(f.ts, Timestamp(T0 + 5000));
    let ev = &f.evidence;
    assert_eq!(ev.series.as_deref(), Some("current_a"));
    assert_eq!(ev.values["peak"], 7.1);
    assert!((ev.values["mean"] - 7.0167).abs() < 1e-3);
    assert_eq!(ev.values["duration_s"], 5.0);
    assert_eq!(ev.thresholds["overcurrent_a"], 5.5);
    assert_eq!(ev.thresholds["persistence_s"], 5.0);
    assert_eq!(
        (ev.window_start, ev.window_end),
        (Timestamp(T0), Timestamp(T0 + 5000))
    );
    assert_eq!(ev.samples.len(), 6);
    assert!(
        f.title.contains("7.02 A") && f.title.contains("5.5 A"),
        "{}",
        f.title
    );
    assert!(
        f.summary.starts_with(
            "Socket 3 of pile-1 at yard-a drew 7.02 A for 5 s (limit 5.5 A, peak 7.10 A)."
        ),
        "{}",
        f.summary
    );
}

#[test]
fn overcurrent_at_the_limit_does_not_fire() {
    let mut d = detector();
    assert!(feed(&mut d, "current_a", 0.0, 120.0, 1.0, |_| 5.5).is_empty());
}

#[test]
fn overcurrent_one_sample_short_of_persistence_does_not_fire() {
    let mut d = detector();
    let mut f = feed(&mut d, "current_a", 0.0, 4.0, 1.0, |_| 7.0);
    f.extend(feed(&mut d, "current_a", 5.0, 60.0, 1.0, |_| 2.5));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn two_samples_spanning_the_persistence_are_enough() {
    let mut d = detector();
    let f = feed(&mut d, "current_a", 0.0, 10.0, 10.0, |_| 7.0);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].evidence.values["duration_s"], 10.0);
}

#[test]
fn a_single_sample_above_the_limit_does_not_fire() {
    let mut d = detector();
    let mut f = feed(&mut d, "current_a", 0.0, 0.0, 1.0, |_| 9.0);
    f.extend(feed(&mut d, "current_a", 10.0, 60.0, 10.0, |_| 2.0));
    assert!(f.is_empty());
}

#[test]
fn overcurrent_fires_once_per_episode() {
    let mut d = detector();
    let f = feed(&mut d, "current_a", 0.0, 600.0, 1.0, |t| {
        7.0 + (t * 0.7).sin()
    });
    assert_eq!(f.len(), 1);
}

#[test]
fn clears_only_below_the_clear_level_for_the_clear_time_then_fires_again() {
    let mut d = detector();
    assert_eq!(feed(&mut d, "current_a", 0.0, 10.0, 1.0, |_| 7.0).len(), 1);
    // Below the limit but above 5.5 × 0.9 = 4.95 A: still the same episode.
    assert!(feed(&mut d, "current_a", 11.0, 100.0, 1.0, |_| 5.2).is_empty());
    assert!(feed(&mut d, "current_a", 101.0, 110.0, 1.0, |_| 7.0).is_empty());
    // Low for 29 s: not yet cleared, so the return is the same episode.
    assert!(feed(&mut d, "current_a", 111.0, 140.0, 1.0, |_| 2.0).is_empty());
    assert!(feed(&mut d, "current_a", 141.0, 150.0, 1.0, |_| 7.0).is_empty());
    // Low for 30 s: cleared; a new episode fires again with its own id.
    assert!(feed(&mut d, "current_a", 151.0, 181.0, 1.0, |_| 2.0).is_empty());
    let f = feed(&mut d, "current_a", 182.0, 190.0, 1.0, |_| 7.0);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].id,
        format!("socket_overcurrent:yard-a/gw-1/pile-1#3:{}", T0 + 182_000)
    );
}

#[test]
fn a_data_gap_resets_persistence() {
    let mut d = detector();
    assert!(feed(&mut d, "current_a", 0.0, 3.0, 1.0, |_| 7.0).is_empty());
    // 67 s without data (> max_gap_s = 60): the first 4 s do not count.
    assert!(feed(&mut d, "current_a", 70.0, 74.0, 1.0, |_| 7.0).is_empty());
    let f = feed(&mut d, "current_a", 75.0, 75.0, 1.0, |_| 7.0);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].evidence.window_start, Timestamp(T0 + 70_000));
}

#[test]
fn a_data_gap_does_not_count_as_clear_time() {
    let mut d = detector();
    assert_eq!(feed(&mut d, "current_a", 0.0, 5.0, 1.0, |_| 7.0).len(), 1);
    // Low for 20 s, 5 minutes of silence, low for 20 s: never 30 s of data below.
    assert!(feed(&mut d, "current_a", 6.0, 26.0, 1.0, |_| 1.0).is_empty());
    assert!(feed(&mut d, "current_a", 326.0, 346.0, 1.0, |_| 1.0).is_empty());
    assert!(feed(&mut d, "current_a", 347.0, 360.0, 1.0, |_| 7.0).is_empty());
}

#[test]
fn a_reading_without_the_value_leaves_its_episode_alone() {
    let mut d = detector();
    assert!(feed(&mut d, "current_a", 0.0, 2.0, 1.0, |_| 7.0).is_empty());
    assert!(d.observe(&reading(3.0, &[("state", 2.0)])).is_empty());
    assert_eq!(feed(&mut d, "current_a", 4.0, 5.0, 1.0, |_| 7.0).len(), 1);
}

#[test]
fn overpower_trips_after_persistence_and_not_at_the_limit() {
    let mut d = detector();
    assert!(feed(&mut d, "power_w", 0.0, 60.0, 2.0, |_| 1200.0).is_empty());
    assert!(feed(&mut d, "power_w", 62.0, 66.0, 2.0, |_| 1450.0).is_empty());
    let f = feed(&mut d, "power_w", 68.0, 68.0, 2.0, |_| 1510.0);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, RULE_OVERPOWER);
    assert_eq!(f[0].evidence.thresholds["overpower_w"], 1200.0);
    assert!(
        f[0].summary.contains("1200 W") && f[0].summary.contains("peak 1510 W"),
        "{}",
        f[0].summary
    );
}

#[test]
fn overcurrent_and_overpower_are_separate_episodes() {
    let mut d = detector();
    let mut all = Vec::new();
    for t in 0..=10 {
        all.extend(d.observe(&reading(
            t as f64,
            &[("current_a", 7.0), ("power_w", 1540.0)],
        )));
    }
    let rules: Vec<&str> = all.iter().map(|f| f.rule).collect();
    assert_eq!(rules, [RULE_OVERCURRENT, RULE_OVERPOWER]);
}

#[test]
fn duplicates_and_out_of_order_readings_are_ignored_and_counted() {
    let mut d = detector();
    assert!(feed(&mut d, "current_a", 0.0, 4.0, 1.0, |_| 7.0).is_empty());
    // A replayed reading from second 2 and a duplicate of second 4 change nothing.
    assert!(d.observe(&reading(2.0, &[("current_a", 1.0)])).is_empty());
    assert!(d.observe(&reading(4.0, &[("current_a", 7.0)])).is_empty());
    assert_eq!(d.stats().out_of_order, 2);
    assert_eq!(feed(&mut d, "current_a", 5.0, 5.0, 1.0, |_| 7.0).len(), 1);
}

#[test]
fn sockets_are_tracked_separately() {
    let mut d = detector();
    let mut f = Vec::new();
    for t in 0..=5 {
        let mut a = reading(t as f64, &[("current_a", 7.0)]);
        a.socket = Some(1);
        let mut b = reading(t as f64, &[("current_a", if t == 3 { 1.0 } else { 7.0 })]);
        b.socket = Some(2);
        f.extend(d.observe(&a));
        f.extend(d.observe(&b));
    }
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].entity, "yard-a/gw-1/pile-1#1");
}

#[test]
fn temperature_creeping_slowly_above_the_limit_does_not_fire() {
    let mut d = detector();
    // 0.5 °C/min from 55 °C to 75 °C over 40 minutes, a reading every 5 s.
    let f = feed(&mut d, "temperature_c", 0.0, 2400.0, 5.0, |t| {
        55.0 + 0.5 * t / 60.0
    });
    assert!(f.is_empty(), "{f:?}");
}

/// 0.5 °C/min from 55 °C up to `top`, then held there for an hour.
fn creep_to(d: &mut SocketSafety, top: f64) -> Vec<Finding> {
    feed(d, "temperature_c", 0.0, 6000.0, 5.0, |t| {
        (55.0 + 0.5 * t / 60.0).min(top)
    })
}

#[test]
fn temperature_creeping_to_the_ceiling_and_staying_there_does_not_fire() {
    let mut d = detector();
    assert!(creep_to(&mut d, 75.0).is_empty());
}

#[test]
fn temperature_creeping_just_below_the_ceiling_does_not_fire() {
    let mut d = detector();
    assert!(creep_to(&mut d, 74.9).is_empty());
}

#[test]
fn temperature_creeping_just_above_the_ceiling_fires_once_after_persistence() {
    let mut d = detector();
    let f = creep_to(&mut d, 75.1);
    assert_eq!(f.len(), 1, "{f:?}");
    let f = &f[0];
    assert_eq!(f.rule, RULE_OVERTEMPERATURE);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.evidence.thresholds["overtemp_ceiling_c"], 75.0);
    // 0.5 °C/min from 55 °C passes 75 °C at 2400 s; 75.1 is held from 2412 s,
    // so the first sample above is at 2405 s and persistence ends 60 s later.
    assert_eq!(f.evidence.window_start, Timestamp(T0 + 2_405_000));
    assert_eq!(f.ts, Timestamp(T0 + 2_465_000));
    assert!(f.title.contains("ceiling 75 °C"), "{}", f.title);
}

#[test]
fn temperature_above_the_ceiling_one_sample_short_of_persistence_does_not_fire() {
    let mut d = detector();
    let mut f = feed(&mut d, "temperature_c", 0.0, 2400.0, 5.0, |t| {
        55.0 + 0.5 * t / 60.0
    });
    f.extend(feed(&mut d, "temperature_c", 2405.0, 2460.0, 5.0, |_| 75.1));
    f.extend(feed(&mut d, "temperature_c", 2465.0, 3000.0, 5.0, |_| 74.0));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn a_fast_rise_past_the_ceiling_fires_once() {
    let mut d = detector();
    let mut f = feed(&mut d, "temperature_c", 0.0, 300.0, 5.0, |_| 40.0);
    f.extend(feed(&mut d, "temperature_c", 305.0, 1800.0, 5.0, |_| 80.0));
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].evidence.values["rise_c_per_min"] > 1.0);
}

#[test]
fn a_ceiling_below_the_limit_is_refused() {
    let cfg = SocketSafetyConfig {
        overtemp_ceiling_c: 60.0,
        ..SocketSafetyConfig::default()
    };
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.path.to_string(), "overtemp_ceiling_c");
}

#[test]
fn temperature_rising_fast_fires_after_persistence() {
    let mut d = detector();
    // 2 °C/min from 50 °C: crosses 65 °C at 450 s, then 60 s more.
    let mut f = feed(&mut d, "temperature_c", 0.0, 505.0, 5.0, |t| {
        50.0 + 2.0 * t / 60.0
    });
    assert!(f.is_empty(), "{f:?}");
    f = feed(&mut d, "temperature_c", 510.0, 515.0, 5.0, |t| {
        50.0 + 2.0 * t / 60.0
    });
    assert_eq!(f.len(), 1, "{f:?}");
    let f = &f[0];
    assert_eq!(f.rule, RULE_OVERTEMPERATURE);
    assert_eq!(f.severity, Severity::Critical);
    let rise = f.evidence.values["rise_c_per_min"];
    assert!((rise - 2.0).abs() < 0.05, "{rise}");
    assert_eq!(f.evidence.thresholds["overtemp_c"], 65.0);
    assert_eq!(f.evidence.thresholds["overtemp_rise_c_per_min"], 1.0);
    assert_eq!(f.evidence.window_start, Timestamp(T0 + 455_000));
    // The evidence shows the rise that led here, not only the minute above 65 °C.
    let first = &f.evidence.samples[0];
    assert!(first.value < 60.0, "{:?}", first);
    assert!(f.evidence.samples.len() <= 60);
    assert!(
        f.summary.contains("above 65 °C for 1 min") || f.summary.contains("above 65 °C for 60 s"),
        "{}",
        f.summary
    );
}

#[test]
fn temperature_above_the_limit_one_sample_short_of_persistence_does_not_fire() {
    let mut d = detector();
    let mut f = feed(&mut d, "temperature_c", 0.0, 450.0, 5.0, |t| {
        50.0 + 2.0 * t / 60.0
    });
    // Above 65 °C from 455 s to 510 s (55 s), then back down.
    f.extend(feed(&mut d, "temperature_c", 455.0, 510.0, 5.0, |_| 66.0));
    f.extend(feed(&mut d, "temperature_c", 515.0, 900.0, 5.0, |_| 60.0));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn temperature_rising_fast_to_just_below_the_limit_does_not_fire() {
    let mut d = detector();
    let f = feed(&mut d, "temperature_c", 0.0, 1200.0, 5.0, |t| {
        (40.0 + 3.0 * t / 60.0).min(64.9)
    });
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn temperature_that_jumped_and_stays_high_fires_once() {
    let mut d = detector();
    let mut f = feed(&mut d, "temperature_c", 0.0, 300.0, 5.0, |_| 40.0);
    f.extend(feed(&mut d, "temperature_c", 305.0, 1800.0, 5.0, |_| 72.0));
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].evidence.values["rise_c_per_min"] > 1.0);
}

#[test]
fn temperature_clears_with_hysteresis_and_fires_again() {
    let mut d = detector();
    let mut f = feed(&mut d, "temperature_c", 0.0, 300.0, 5.0, |_| 40.0);
    f.extend(feed(&mut d, "temperature_c", 305.0, 600.0, 5.0, |_| 72.0));
    assert_eq!(f.len(), 1);
    // 60 °C is below 65 but not below 65 × 0.9 = 58.5: not cleared.
    f.extend(feed(&mut d, "temperature_c", 605.0, 900.0, 5.0, |_| 60.0));
    f.extend(feed(&mut d, "temperature_c", 905.0, 1000.0, 5.0, |_| 72.0));
    assert_eq!(f.len(), 1);
    f.extend(feed(&mut d, "temperature_c", 1005.0, 1300.0, 5.0, |_| 40.0));
    f.extend(feed(&mut d, "temperature_c", 1305.0, 1500.0, 5.0, |_| 72.0));
    assert_eq!(f.len(), 2, "{f:?}");
    assert_ne!(f[0].id, f[1].id);
}

#[test]
fn evidence_is_bounded() {
    let cfg = SocketSafetyConfig {
        persistence_s: 600,
        ..SocketSafetyConfig::default()
    };
    let mut d = SocketSafety::new(&cfg);
    let f = feed(&mut d, "current_a", 0.0, 600.0, 1.0, |_| 7.0);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].evidence.samples.len(), 60);
    assert_eq!(f[0].evidence.samples[59].ts, Timestamp(T0 + 600_000));
    assert_eq!(f[0].evidence.values["sample_count"], 601.0);
}

#[test]
fn the_number_of_sockets_tracked_is_bounded() {
    let cfg = SocketSafetyConfig {
        max_sockets: 10,
        ..SocketSafetyConfig::default()
    };
    let mut d = SocketSafety::new(&cfg);
    for i in 0..100u16 {
        let mut r = reading(f64::from(i), &[("current_a", 1.0)]);
        r.socket = Some(i);
        d.observe(&r);
    }
    assert!(d.tracked_sockets() <= 10);
    assert!(d.stats().evicted >= 90);
}

#[test]
fn other_device_kinds_are_ignored() {
    let mut d = detector();
    for t in 0..20 {
        let mut r = reading(f64::from(t), &[("current_a", 50.0)]);
        r.kind = DeviceKind::ElectricityMeter;
        assert!(d.observe(&r).is_empty());
    }
    assert_eq!(d.tracked_sockets(), 0);
}

#[test]
fn default_config_is_valid_and_bad_values_are_named() {
    assert!(SocketSafetyConfig::default().validate().is_ok());
    let bad = SocketSafetyConfig {
        overpower_w: -1.0,
        ..SocketSafetyConfig::default()
    };
    assert_eq!(bad.validate().unwrap_err().path.to_string(), "overpower_w");
}
