//! Shapes the signature track must and must not take for a charger.
use super::*;

const MIN: i64 = 60_000;

/// Feeds `f(minute)` every 5 minutes for `minutes`; all of it counts as night.
fn run(f: impl Fn(i64) -> f64, minutes: i64) -> Vec<Session> {
    run_with(&IndoorChargingConfig::default(), f, minutes)
}

fn run_with(cfg: &IndoorChargingConfig, f: impl Fn(i64) -> f64, minutes: i64) -> Vec<Session> {
    let cfg = cfg.clone();
    let mut t = SignatureTrack::default();
    (0..=minutes / 5)
        .filter_map(|i| t.observe(&cfg, Timestamp(i * 5 * MIN), f(i * 5), true, true))
        .collect()
}

fn lithium(m: i64) -> f64 {
    // 80 W household, a 200 W plateau from minute 60 to 240, tapering to 0 by 300.
    let charger = match m {
        60..=239 => 200.0,
        240..=299 => 200.0 * (300 - m) as f64 / 60.0,
        _ => 0.0,
    };
    80.0 + charger
}

#[test]
fn a_plateau_and_taper_is_a_session() {
    let s = run(lithium, 600);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].start, Timestamp(60 * MIN));
    assert!((s[0].step_w - 200.0).abs() < 1.0);
    // The plateau is counted from when the smoothed load rose, 20 min late.
    assert!(s[0].plateau_min >= 160.0 && s[0].taper_min >= 15.0, "{s:?}");
}

/// Whether every session is one the signature alone never counts (a
/// sharp end or a short plateau: only a sighting makes it a charger).
fn fusion_only(s: &[Session]) -> bool {
    s.iter().all(|s| s.fusion_only)
}

#[test]
fn a_session_saved_before_sharp_ends_counted_reads_back_as_fusion_only() {
    // Checkpoints written before the field was renamed call it `short`.
    let old = r#"{"start":0,"end":3600000,"step_w":300.0,"plateau_min":45.0,
        "taper_min":12.0,"roughness_w":1.0,"short":true}"#;
    let s: Session = serde_json::from_str(old).expect("an old session");
    assert!(s.fusion_only && !s.sharp, "{s:?}");
    let new = serde_json::to_string(&s).expect("serialises");
    assert!(new.contains("\"fusion_only\":true"), "{new}");
}

#[test]
fn a_plateau_that_ends_in_one_step_is_not_a_signature_session() {
    let s = run(|m| if (60..300).contains(&m) { 230.0 } else { 80.0 }, 600);
    // Switched off, not tapering: a session for fusion alone.
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].sharp && s[0].fusion_only, "{s:?}");
    assert!((s[0].step_w - 150.0).abs() < 1.0, "{s:?}");
}

#[test]
fn thermostat_cycling_is_not_a_session() {
    let s = run(|m| if (m / 15) % 2 == 0 { 200.0 } else { 80.0 }, 600);
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn a_step_above_the_band_is_not_a_session() {
    let s = run(|m| 80.0 + 6.0 * (lithium(m) - 80.0), 600);
    // 1200 W plateau: a heater or a fast charger, not this rule's business.
    assert!(s.is_empty(), "{s:?}");
}

/// Three days of a household that is busy 17–23 h, quieter until
/// midnight and asleep 0–6 h, with `charger(minute since start)` on top,
/// fed every 5 minutes with the default night (18–04 h) and quiet
/// (0–5 h) hours.
fn household(charger: impl Fn(i64) -> f64) -> Vec<Session> {
    // This household has no noise at all, so that a session outside the
    // quiet hours cannot be told from its evening staircase: only the
    // quiet-hour mechanism is tested here.
    let cfg = IndoorChargingConfig {
        count_day_sessions: false,
        ..IndoorChargingConfig::default()
    };
    let mut t = SignatureTrack::default();
    let mut out = Vec::new();
    for i in 0..3 * 288 {
        let m = i * 5;
        let hour = ((m % 1440) / 60) as u8;
        let home = match hour {
            17..=18 => 150.0,
            19..=22 => 300.0,
            23 => 200.0,
            _ => 20.0,
        };
        let night = !(4..18).contains(&hour);
        out.extend(t.observe(&cfg, Timestamp(m * MIN), home + charger(m), night, hour < 5));
    }
    out
}

#[test]
fn the_households_evening_peak_and_bedtime_are_not_a_session() {
    let s = household(|_| 0.0);
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn a_charger_plugged_in_before_bedtime_is_followed_through_the_night() {
    // 200 W from 21:00 on the second day to 01:00, tapering to 0 by 02:00.
    let from = 1440 + 21 * 60;
    let s = household(|m| match m - from {
        0..240 => 200.0,
        x @ 240..300 => 200.0 * (300 - x) as f64 / 60.0,
        _ => 0.0,
    });
    // The household's own 19:00 step may open the session; either way
    // it is one session that lasts until the charger has tapered off.
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].start.0 <= from * MIN, "{s:?}");
    assert!(s[0].end.0 >= (from + 270) * MIN, "{s:?}");
}

#[test]
fn a_plateau_longer_than_a_chargers_constant_current_phase_is_not_a_session() {
    // 7 h at 200 W then the same 1 h taper: a load that holds this long
    // is not an e-bike charger (docs/detection.md: plateau 1-5 h, up to 6
    // with a lead-acid absorption stage).
    let long = |m: i64| {
        80.0 + match m {
            60..=479 => 200.0,
            480..=539 => 200.0 * (540 - m) as f64 / 60.0,
            _ => 0.0,
        }
    };
    assert!(run(long, 900).is_empty());
    // Control: the 3 h plateau of `lithium` with the same taper is one.
    assert_eq!(run(lithium, 900).len(), 1);
}

#[test]
fn a_plateau_rougher_than_max_roughness_ratio_is_not_a_session() {
    // Every 15 minutes a fresh level between 100 and 300 W: people
    // up and about all night, not a constant current. (A fixed
    // pseudo-random sequence, so the test is reproducible.)
    let draw = |m: i64| {
        let x = (m as u64).wrapping_mul(6_364_136_223_846_793_005) >> 40;
        100.0 + 200.0 * (x % 1000) as f64 / 1000.0
    };
    let rough = |m: i64| {
        80.0 + match m {
            60..=239 => draw(m / 15),
            240..=299 => 100.0 * (300 - m) as f64 / 60.0,
            _ => 0.0,
        }
    };
    let s = run(rough, 600);
    assert_eq!(s.len(), 1, "{s:?}");
    let ratio = s[0].roughness_w / s[0].step_w;
    assert!(ratio > 0.01, "{s:?}");
    // Just above the session's roughness it passes; just below, not.
    let at = |r: f32| IndoorChargingConfig {
        max_roughness_ratio: f64::from(r),
        ..IndoorChargingConfig::default()
    };
    assert_eq!(run_with(&at(ratio * 1.05), rough, 600).len(), 1);
    assert!(run_with(&at(ratio * 0.95), rough, 600).is_empty());
    // A constant current is far smoother (its only change is where
    // the step's first intervals settle).
    let flat = run(lithium, 600)[0];
    assert!(flat.roughness_w / flat.step_w < 0.01, "{flat:?}");
}

#[test]
fn a_fridge_cycling_under_the_charger_does_not_break_the_session() {
    // 110 W for 14 of every 40 minutes, as in every flat.
    let fridge = |m: i64| if m % 40 < 14 { 110.0 } else { 0.0 };
    let s = run(|m| lithium(m) + fridge(m), 600);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!((s[0].step_w - 200.0).abs() < 15.0, "{s:?}");
}

#[test]
fn a_load_left_on_all_night_that_ends_in_one_step_is_not_a_session() {
    // 150 W from 23:00 to 04:30 on the second day (under the 5 h
    // plateau limit), through bedtime and the quiet hours, then off.
    let from = 1440 + 23 * 60;
    let s = household(|m| {
        if (0..330).contains(&(m - from)) {
            150.0
        } else {
            0.0
        }
    });
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn a_gap_in_the_data_abandons_the_session() {
    let cfg = IndoorChargingConfig::default();
    let mut t = SignatureTrack::default();
    let mut out = Vec::new();
    for i in 0..=120 {
        let m = i * 5;
        if (150..200).contains(&m) {
            continue;
        }
        out.extend(t.observe(&cfg, Timestamp(m * MIN), lithium(m), true, true));
    }
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn a_heater_whose_first_interval_was_partial_is_dropped_when_it_settles_above_the_band() {
    // A 900 W heater switched on 2 min before an interval ended: that
    // interval reads 80 + 900 * 2/5 W (in the band), the next ones 980 W,
    // and the moving minimum shows the partial one for 20 minutes;
    // then its sleep mode steps it down each hour to a low hold: a
    // staircase that would otherwise pass for a plateau and a taper.
    let heater = |m: i64| match m {
        ..=59 => 0.0,
        60..=64 => 900.0 * 0.4,
        65..=119 => 900.0,
        120..=179 => 400.0,
        180..=239 => 250.0,
        240..=299 => 190.0,
        300..=359 => 120.0,
        _ => 0.0,
    };
    let s = run(|m| 80.0 + heater(m), 600);
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn a_lead_acid_absorption_that_decays_through_the_night_is_a_session() {
    // 120 W bulk for 4 h 40 min, then an absorption falling 9 % per
    // 5 minutes (steady, not rough), then an 8 W float.
    let charger = |m: i64| match m {
        60..=339 => 120.0,
        340..=459 => 0.9 * 120.0 * (-((m - 340) as f64) / 55.0).exp(),
        460..=599 => 8.0,
        _ => 0.0,
    };
    let s = run(|m| 60.0 + charger(m), 720);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].plateau_min > 250.0, "{s:?}");
}

#[test]
fn a_sharp_lithium_tail_of_fifteen_minutes_is_a_session_and_a_switch_off_is_not() {
    // 250 W constant current for 2 h, then a constant-voltage tail from
    // 250 to 0 W in 15 minutes: two readings between plateau and end.
    let tail = |m: i64| match m {
        60..=179 => 250.0,
        180..=194 => 250.0 * (195 - m) as f64 / 15.0,
        _ => 0.0,
    };
    let s = run(|m| 70.0 + tail(m), 400);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(!s[0].fusion_only && !s[0].sharp, "{s:?}");
    // The same load switched off between two readings leaves one reading
    // between on and off, not a tail: only fusion may take it.
    let off = |m: i64| if (60..=182).contains(&m) { 250.0 } else { 0.0 };
    let s = run(|m| 70.0 + off(m), 400);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].sharp && fusion_only(&s), "{s:?}");
}

#[test]
fn a_step_down_that_holds_for_hours_is_not_a_taper() {
    // 200 W for 2 h, then 130 W held for 5 h (under the plateau, above
    // the end): an air-conditioner's sleep mode, not a charger's tail.
    let load = |m: i64| match m {
        60..=179 => 200.0,
        180..=479 => 130.0,
        _ => 0.0,
    };
    let s = run(|m| 70.0 + load(m), 700);
    assert!(s.is_empty(), "{s:?}");
}

/// An air-conditioner's sleep mode as its fan level shows under the
/// compressor's cycling: on at 300 W, then down 20 % of that every 90
/// minutes, and off in the morning.
fn sleep_mode(m: i64) -> f64 {
    if !(60..540).contains(&m) {
        return 0.0;
    }
    let stage = ((m - 60) / 90) as f64;
    300.0 * (1.0 - 0.2 * stage).max(0.35)
}

#[test]
fn a_staircase_down_through_the_night_is_not_a_taper() {
    // Long enough a taper that only the staircase can refuse it.
    let cfg = IndoorChargingConfig {
        max_taper_min: 600,
        ..IndoorChargingConfig::default()
    };
    let mut t = SignatureTrack::default();
    let mut trace = Vec::new();
    for i in 0..=800 / 5 {
        let m = i * 5;
        let ts = Timestamp(m * MIN);
        let s = t.observe_traced(&cfg, ts, 60.0 + sleep_mode(m), true, true, &mut trace);
        assert!(s.is_none(), "{s:?}");
    }
    let refused = trace.iter().any(|(_, e)| {
        matches!(
            e,
            TraceEvent::Ended {
                verdict: Some(Verdict::TaperStepped { holds }),
                ..
            } if *holds >= 2
        )
    });
    assert!(refused, "{trace:?}");
}

#[test]
fn a_two_step_lead_acid_charger_holding_one_lower_stage_is_a_session() {
    // 130 W bulk for 4 h, a second stage at 55 % for 2 h, then off with a
    // 20-minute fall: one held level in the taper is a charger's.
    let charger = |m: i64| match m {
        60..=299 => 130.0,
        300..=419 => 0.55 * 130.0,
        420..=439 => 0.55 * 130.0 * (440 - m) as f64 / 20.0,
        _ => 0.0,
    };
    let s = run(|m| 60.0 + charger(m), 700);
    assert_eq!(s.len(), 1, "{s:?}");
}
