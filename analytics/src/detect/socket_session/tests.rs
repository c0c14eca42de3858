//! Every rule at its threshold and just below it.

use super::*;

const S: i64 = 1000;
const H: f64 = 3600.0;

/// A socket reading at `t` seconds: relay on, `session_s` = t + `session0`.
fn sock(t: i64, session0: f64, values: &[(&str, f64)]) -> Reading {
    let mut r = Reading::new(
        Timestamp(t * S),
        "gw-y",
        "pile-1",
        DeviceKind::ChargingSocket,
        0,
    );
    r.site = "yard".into();
    r.socket = Some(1);
    r.values.insert("relay_on".into(), 1.0);
    r.values.insert("session_s".into(), session0 + t as f64);
    r.values.insert("power_w".into(), 150.0);
    r.values.insert("current_a".into(), 0.7);
    r.values.insert("residual_ma".into(), 0.0);
    for (k, v) in values {
        r.values.insert((*k).into(), *v);
    }
    r
}

fn pile(t: i64, total_w: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(t * S),
        "gw-y",
        "pile-1",
        DeviceKind::ChargingPile,
        0,
    );
    r.site = "yard".into();
    r.values.insert("total_power_w".into(), total_w);
    r
}

/// Feeds readings every `step` seconds from 0 to `until` built by `f(t)`;
/// returns (rule, t in seconds) of every finding.
fn run(step: i64, until: i64, f: impl Fn(i64) -> Reading) -> Vec<(&'static str, i64)> {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    (0..=until / step)
        .flat_map(|i| d.observe(&f(i * step)))
        .map(|x| (x.rule, x.ts.0 / S))
        .collect()
}

fn only(rule: &str, found: &[(&'static str, i64)]) -> Vec<i64> {
    found
        .iter()
        .filter(|(r, _)| *r == rule)
        .map(|(_, t)| *t)
        .collect()
}

#[test]
fn residual_current_trips_at_30_ma_on_the_first_sample() {
    let at = run(10, 100, |t| {
        sock(t, 0.0, &[("residual_ma", if t >= 50 { 30.0 } else { 0.0 })])
    });
    assert_eq!(only("socket_residual_current", &at), vec![50]);
    let below = run(10, 100, |t| sock(t, 0.0, &[("residual_ma", 29.9)]));
    assert!(only("socket_residual_current", &below).is_empty());
}

#[test]
fn a_nonstandard_charger_is_flagged_after_5_s_above_600_w() {
    let at = run(1, 30, |t| {
        sock(t, 0.0, &[("power_w", if t >= 10 { 600.1 } else { 150.0 })])
    });
    assert_eq!(only("socket_nonstandard_charger", &at), vec![15]);
    let below = run(1, 30, |t| sock(t, 0.0, &[("power_w", 600.0)]));
    assert!(only("socket_nonstandard_charger", &below).is_empty());
    // Above for 4 s only: not yet persistent.
    let short = run(1, 30, |t| {
        sock(
            t,
            0.0,
            &[("power_w", if (10..15).contains(&t) { 700.0 } else { 150.0 })],
        )
    });
    assert!(only("socket_nonstandard_charger", &short).is_empty());
}

#[test]
fn not_full_after_8_h_while_still_charging() {
    let start = 8.0 * H - 120.0;
    let at = run(60, 600, |t| sock(t, start, &[]));
    assert_eq!(only("socket_not_full_after", &at), vec![120]);
    // Drawing less than the "full" power at 8 h: not this rule.
    let full = run(60, 600, |t| sock(t, start, &[("power_w", 44.9)]));
    assert!(only("socket_not_full_after", &full).is_empty());
    let before = run(60, 600, |t| sock(t, 8.0 * H - 601.0, &[]));
    assert!(only("socket_not_full_after", &before).is_empty());
}

#[test]
fn session_cap_and_forced_stop_fire_once_at_their_hour() {
    let cap = run(60, 600, |t| sock(t, 12.0 * H - 60.0, &[]));
    assert_eq!(only("socket_session_over_cap", &cap), vec![60]);
    assert!(only("socket_forced_stop_missed", &cap).is_empty());
    let forced = run(60, 600, |t| sock(t, 24.0 * H - 60.0, &[]));
    assert_eq!(only("socket_forced_stop_missed", &forced), vec![60]);
    let just_below = run(60, 600, |t| sock(t, 12.0 * H - 601.0, &[]));
    assert!(only("socket_session_over_cap", &just_below).is_empty());
    // Relay off: the session is over, nothing is live.
    let off = run(60, 600, |t| sock(t, 24.0 * H, &[("relay_on", 0.0)]));
    assert!(only("socket_forced_stop_missed", &off).is_empty());
}

#[test]
fn power_not_cut_45_min_after_full() {
    let at = run(60, 3600, |t| {
        sock(t, 0.0, &[("power_w", if t >= 600 { 44.9 } else { 150.0 })])
    });
    assert_eq!(only("socket_live_after_full", &at), vec![600 + 45 * 60]);
    let below = run(60, 3600 * 2, |t| {
        sock(t, 0.0, &[("power_w", if t >= 600 { 45.0 } else { 150.0 })])
    });
    assert!(only("socket_live_after_full", &below).is_empty());
}

#[test]
fn a_live_socket_with_nothing_drawing_for_5_min() {
    let at = run(60, 900, |t| {
        sock(t, 0.0, &[("power_w", if t >= 60 { 2.4 } else { 150.0 })])
    });
    assert_eq!(only("socket_idle_live", &at), vec![360]);
    let below = run(60, 900, |t| {
        sock(t, 0.0, &[("power_w", if t >= 60 { 2.5 } else { 150.0 })])
    });
    assert!(only("socket_idle_live", &below).is_empty());
}

#[test]
fn power_rising_on_3_samples_after_the_taper_began() {
    // 200 W, then the taper to 150 W (below 80 % of the peak), then rises.
    let series = |rises: &'static [f64]| {
        move |t: i64| {
            let i = (t / 60) as usize;
            let w = match i {
                0..=9 => 200.0,
                10 => 150.0,
                _ => *rises.get(i - 11).unwrap_or(&100.0),
            };
            sock(t, 0.0, &[("power_w", w)])
        }
    };
    let at = run(60, 1200, series(&[151.0, 152.0, 153.0]));
    assert_eq!(only("socket_taper_reversal", &at), vec![13 * 60]);
    let two = run(
        60,
        1200,
        series(&[151.0, 152.0, 151.0, 152.0, 153.0, 154.0]),
    );
    assert_eq!(
        only("socket_taper_reversal", &two),
        vec![16 * 60],
        "two rises then a fall restart the count"
    );
    let flat = run(60, 1200, series(&[151.0, 152.0, 152.0]));
    assert!(only("socket_taper_reversal", &flat).is_empty());
}

#[test]
fn lead_acid_stuck_in_bulk_after_6_h() {
    let at = run(60, 300, |t| sock(t, 6.0 * H - 60.0, &[("current_a", 0.56)]));
    assert_eq!(only("socket_bulk_stuck", &at), vec![60]);
    let below = run(60, 300, |t| sock(t, 6.0 * H, &[("current_a", 0.55)]));
    assert!(only("socket_bulk_stuck", &below).is_empty());
}

#[test]
fn pile_over_its_cut_limit_for_5_s() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    let fired: Vec<i64> = (0..20)
        .flat_map(|t| d.observe(&pile(t, if t >= 3 { 8700.1 } else { 8000.0 })))
        .map(|f| f.ts.0 / S)
        .collect();
    assert_eq!(fired, vec![8]);
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    assert!((0..20).all(|t| d.observe(&pile(t, 8700.0)).is_empty()));
}

#[test]
fn a_session_started_while_the_pile_is_over_its_new_session_limit() {
    for (total, expected) in [(7800.1, 1), (7800.0, 0)] {
        let mut d = SocketSession::new(&SocketSessionConfig::default());
        d.observe(&pile(0, total));
        let f = d.observe(&sock(1, -1.0, &[]));
        let n = f
            .iter()
            .filter(|f| f.rule == "pile_session_over_limit")
            .count();
        assert_eq!(n, expected, "pile at {total} W");
    }
}

#[test]
fn an_unplug_resetting_session_s_with_the_relay_off_is_no_new_session() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    d.observe(&pile(0, 9000.0));
    // A session started before the pile was over its limit…
    let mut first = sock(1, 0.0, &[]);
    first.values.insert("relay_on".into(), 0.0);
    d.observe(&first);
    let live = d.observe(&sock(2, 0.0, &[]));
    assert_eq!(only("pile_session_over_limit", &rules(&live)), vec![2]);
    // …ends: relay off, then the plug comes out and session_s goes back to 0.
    let mut off = sock(3, 0.0, &[("power_w", 0.0)]);
    off.values.insert("relay_on".into(), 0.0);
    assert!(d.observe(&off).is_empty());
    let mut unplugged = sock(4, -4.0, &[("power_w", 0.0)]);
    unplugged.values.insert("relay_on".into(), 0.0);
    assert!(d.observe(&unplugged).is_empty());
    assert_eq!(d.stats().sessions, 1);
    // The next plug-in with the relay on is a session again.
    let again = d.observe(&sock(5, -5.0, &[]));
    assert_eq!(only("pile_session_over_limit", &rules(&again)), vec![5]);
}

fn rules(f: &[Finding]) -> Vec<(&'static str, i64)> {
    f.iter().map(|x| (x.rule, x.ts.0 / S)).collect()
}

#[test]
fn a_rule_fires_once_per_session_and_again_in_the_next() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    let mut fired = Vec::new();
    for t in 0..10 {
        fired.extend(d.observe(&sock(t * 10, 0.0, &[("residual_ma", 40.0)])));
    }
    // A new session: session_s starts again from 0.
    for t in 10..20 {
        fired.extend(d.observe(&sock(t * 10, -100.0, &[("residual_ma", 40.0)])));
    }
    let ids: Vec<&str> = fired.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(fired.len(), 2, "{ids:?}");
    assert_ne!(fired[0].id, fired[1].id);
    assert_eq!(fired[0].severity, Severity::Critical);
    assert_eq!(fired[0].evidence.values["residual_ma"], 40.0);
}

#[test]
fn a_gap_in_the_data_restarts_the_hold() {
    // 2.4 W for 4 min, 11 min without data, 2.4 W for 4 min: never 5 min held.
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    let ts = [0, 60, 120, 180, 240, 900, 960, 1020, 1080, 1140];
    let n: usize = ts
        .iter()
        .map(|&t| d.observe(&sock(t, 0.0, &[("power_w", 2.4)])).len())
        .sum();
    assert_eq!(n, 0);
}

// ---- Abnormal session energy ----------------------------------------------

const ENERGY_RULE: &str = "socket_abnormal_session_energy";

fn started(d: &mut SocketSession, t: i64, socket: u16, tag: Option<&str>) {
    d.observe_event(&Event {
        schema: 1,
        ts: Timestamp(t * S),
        gateway: "gw-y".into(),
        site: "yard".into(),
        device: "pile-1".into(),
        seq: 0,
        kind: EventKind::SessionStarted {
            socket,
            identity: tag.map(Into::into),
        },
    });
}

/// One session on `socket` from `t0` s: the start event, one reading per
/// minute with the session energy in `wh`, then the unplug (register reset).
/// Returns the energy findings as (seconds into the session, evidence).
fn session(
    d: &mut SocketSession,
    t0: i64,
    socket: u16,
    tag: Option<&str>,
    wh: &[f64],
) -> Vec<(i64, Finding)> {
    started(d, t0, socket, tag);
    let mut out = Vec::new();
    for (i, e) in wh.iter().enumerate() {
        let t = t0 + 60 * i as i64;
        let mut r = sock(t, -(t0 as f64), &[("energy_wh", *e)]);
        r.socket = Some(socket);
        for f in d.observe(&r) {
            if f.rule == ENERGY_RULE {
                out.push((t - t0, f));
            }
        }
    }
    let t = t0 + 60 * wh.len() as i64;
    let mut r = sock(t, -(t0 as f64), &[("energy_wh", 0.0), ("relay_on", 0.0)]);
    r.socket = Some(socket);
    out.extend(
        d.observe(&r)
            .into_iter()
            .filter(|f| f.rule == ENERGY_RULE)
            .map(|f| (t - t0, f)),
    );
    out
}

/// A session rising in 10 Wh steps to `top`.
fn ramp(top: f64) -> Vec<f64> {
    (1..=(top / 10.0) as usize)
        .map(|i| i as f64 * 10.0)
        .collect()
}

const DAY: i64 = 86_400;

#[test]
fn abnormal_energy_fires_at_the_first_reading_past_1_3_times_the_tags_median() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    for (k, top) in [90.0, 100.0, 110.0].into_iter().enumerate() {
        assert!(session(&mut d, k as i64 * DAY, 1, Some("tag-a"), &ramp(top)).is_empty());
    }
    // Median 100 Wh: 130 is not above 1.3 ×, 140 is (the 14th reading).
    let found = session(&mut d, 3 * DAY, 1, Some("tag-a"), &ramp(250.0));
    assert_eq!(found.len(), 1, "once per session");
    let (at, f) = &found[0];
    assert_eq!(*at, 13 * 60);
    assert_eq!(f.severity, Severity::Major);
    assert_eq!(f.entity, "yard/gw-y/pile-1#1");
    let v = &f.evidence.values;
    assert_eq!(v["session_energy_wh"], 140.0);
    assert_eq!(v["median_wh"], 100.0);
    assert!((v["ratio"] - 1.4).abs() < 1e-9);
    assert_eq!(v["sessions"], 3.0);
}

#[test]
fn abnormal_energy_stays_quiet_at_1_29_times_the_median() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    for k in 0..3 {
        session(&mut d, k * DAY, 1, Some("tag-a"), &[50.0, 100.0]);
    }
    let quiet = session(&mut d, 3 * DAY, 1, Some("tag-a"), &[60.0, 120.0, 129.0]);
    assert!(quiet.is_empty());
    // The same energy exactly at 1.3 × is not above it either.
    let quiet = session(&mut d, 4 * DAY, 1, Some("tag-a"), &[60.0, 130.0]);
    assert!(quiet.is_empty());
}

#[test]
fn abnormal_energy_needs_min_sessions_before_it_judges() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    session(&mut d, 0, 1, Some("tag-a"), &[100.0]);
    session(&mut d, DAY, 1, Some("tag-a"), &[100.0]);
    // Two previous sessions: 400 Wh says nothing yet.
    assert!(session(&mut d, 2 * DAY, 1, Some("tag-a"), &[400.0]).is_empty());
    // Now three (100, 100, 400; median 100).
    let found = session(&mut d, 3 * DAY, 1, Some("tag-a"), &[131.0]);
    assert_eq!(found.len(), 1);
}

#[test]
fn abnormal_energy_fires_once_per_session_and_again_in_the_next() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    for k in 0..3 {
        session(&mut d, k * DAY, 2, Some("tag-a"), &[100.0]);
    }
    let first = session(&mut d, 3 * DAY, 2, Some("tag-a"), &[200.0, 300.0, 400.0]);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, 0);
    // Median of (100, 100, 100, 400) = 100: 300 is abnormal again.
    let second = session(&mut d, 4 * DAY, 2, Some("tag-a"), &[300.0]);
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].1.id, second[0].1.id);
}

#[test]
fn abnormal_energy_judges_each_tag_against_its_own_history() {
    let mut d = SocketSession::new(&SocketSessionConfig::default());
    for k in 0..3 {
        session(&mut d, k * DAY, 1, Some("tag-small"), &[100.0]);
        session(&mut d, k * DAY, 2, Some("tag-big"), &[1000.0]);
    }
    // 300 Wh is usual for neither; only the small tag's history makes it abnormal.
    assert!(session(&mut d, 3 * DAY, 1, Some("tag-big"), &[300.0]).is_empty());
    assert_eq!(
        session(&mut d, 4 * DAY, 2, Some("tag-small"), &[300.0]).len(),
        1
    );
    // A tag never seen, or a session nobody identified: not judged.
    assert!(session(&mut d, 5 * DAY, 1, Some("tag-new"), &[5000.0]).is_empty());
    assert!(session(&mut d, 6 * DAY, 1, None, &[5000.0]).is_empty());
    assert_eq!(d.identities(), 3);
    assert_eq!(d.stats().identified_sessions, 9);
}

#[test]
fn abnormal_energy_history_is_bounded_in_tags() {
    let config = SocketSessionConfig {
        energy_max_tags: 2,
        ..SocketSessionConfig::default()
    };
    let mut d = SocketSession::new(&config);
    for (k, tag) in ["a", "b", "c", "d"].into_iter().enumerate() {
        session(&mut d, k as i64 * DAY, 1, Some(tag), &[100.0]);
    }
    assert_eq!(d.identities(), 2);
}

#[test]
fn bad_energy_config_is_named() {
    let bad = |f: &dyn Fn(&mut SocketSessionConfig)| {
        let mut c = SocketSessionConfig::default();
        f(&mut c);
        c.validate().unwrap_err().path.to_string()
    };
    assert!(bad(&|c| c.energy_ratio = 1.0).contains("energy_ratio"));
    assert!(bad(&|c| c.energy_ratio = f64::NAN).contains("energy_ratio"));
    assert!(bad(&|c| c.energy_min_sessions = 0).contains("energy_min_sessions"));
    assert!(bad(&|c| c.energy_min_sessions = 11).contains("energy_min_sessions"));
    assert!(bad(&|c| c.energy_history = 0).contains("energy_history"));
    assert!(bad(&|c| c.energy_max_tags = 0).contains("energy_max_tags"));
    assert!(SocketSessionConfig::default().validate().is_ok());
}
