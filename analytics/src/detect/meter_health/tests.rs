//! Silences, stuck and reversed registers, at their limits and just below.

use super::*;

const MIN: i64 = 60_000;

fn em(gateway: &str, n: u32, t_min: i64, energy: f64, power: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(t_min * MIN),
        gateway,
        format!("em-{n}").as_str(),
        DeviceKind::ElectricityMeter,
        0,
    );
    r.site = "s01".into();
    r.values.insert("energy_kwh".into(), energy);
    r.values.insert("power_w".into(), power);
    r
}

/// Five meters on gw-1 and one on gw-2 every 5 min for `minutes`; `alive(n,
/// t)` says whether meter n of gw-1 reports at minute t. Returns (rule,
/// entity, minute) of every finding.
fn run(minutes: i64, alive: impl Fn(u32, i64) -> bool) -> Vec<(&'static str, String, i64)> {
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let mut out = Vec::new();
    for i in 0..=minutes / 5 {
        let t = i * 5;
        let e = t as f64 / 600.0;
        let mut batch = vec![em("gw-2", 9, t, e, 100.0)];
        batch.extend(
            (1..=5)
                .filter(|&n| alive(n, t))
                .map(|n| em("gw-1", n, t, e, 100.0)),
        );
        for r in batch {
            out.extend(
                d.observe(&r)
                    .into_iter()
                    .map(|f| (f.rule, f.entity, f.ts.0 / MIN)),
            );
        }
    }
    out
}

#[test]
fn a_silent_meter_is_no_data_after_180_min_not_before() {
    let found = run(600, |n, t| n != 1 || t < 100);
    assert_eq!(found, vec![(RULE_NO_DATA, "s01/gw-1/em-1".to_owned(), 280)]);
    // Silent for 175 min, then back: never in the no-data state.
    let found = run(600, |n, t| n != 1 || !(100..270).contains(&t));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_whole_building_silent_is_one_alert_not_one_per_meter() {
    let found = run(600, |_, t| t < 100);
    assert_eq!(
        found,
        vec![(RULE_BUILDING_NO_DATA, "s01/gw-1".to_owned(), 280)]
    );
}

#[test]
fn silence_alerts_name_the_site_and_gateway_their_meter_key_holds() {
    // A track keeps no copy of its site and gateway, only where they end
    // in its key: sites and gateways of different lengths must still be
    // told apart and named whole.
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let mut found = Vec::new();
    for i in 0..=120 {
        let t = i * 5;
        let mut batch = Vec::new();
        for (site, gateway, n) in [("s01", "gw-a", 1), ("s01", "gw-a", 2), ("north-7", "g", 1)] {
            // Gateway gw-a goes dark at minute 100; north-7's meter 1 at 50
            // while another meter on its gateway keeps reporting.
            let dark = if site == "s01" { t >= 100 } else { t >= 50 };
            if !dark {
                let mut r = em(gateway, n, t, t as f64 / 600.0, 100.0);
                r.site = site.into();
                batch.push(r);
            }
        }
        let mut r = em("g", 2, t, t as f64 / 600.0, 100.0);
        r.site = "north-7".into();
        batch.push(r);
        for r in batch {
            found.extend(
                d.observe(&r)
                    .into_iter()
                    .map(|f| (f.rule, f.site, f.entity)),
            );
        }
    }
    found.sort();
    assert_eq!(
        found,
        vec![
            (
                RULE_BUILDING_NO_DATA,
                "s01".to_owned(),
                "s01/gw-a".to_owned()
            ),
            (
                RULE_NO_DATA,
                "north-7".to_owned(),
                "north-7/g/em-1".to_owned()
            ),
        ]
    );
}

#[test]
fn a_meter_back_from_silence_can_fall_silent_again() {
    let found = run(1200, |n, t| n != 1 || t < 100 || (400..500).contains(&t));
    let minutes: Vec<i64> = found.iter().map(|f| f.2).collect();
    assert_eq!(minutes, vec![280, 680], "{found:?}");
}

#[test]
fn a_register_unchanged_for_24_h_is_stuck() {
    for (hours, expected) in [(24, 1), (23, 0)] {
        let mut d = MeterHealth::new(&MeterHealthConfig::default());
        let mut n = 0;
        for i in 0..=hours * 12 {
            n += d
                .observe(&em("gw-1", 1, i * 5, 12.5, 80.0))
                .iter()
                .filter(|f| f.rule == RULE_STUCK)
                .count();
        }
        assert_eq!(n, expected, "{hours} h unchanged");
    }
}

#[test]
fn a_register_going_down_is_reversed() {
    for (drop, expected) in [(0.0011, 1), (0.001, 0)] {
        let mut d = MeterHealth::new(&MeterHealthConfig::default());
        d.observe(&em("gw-1", 1, 0, 100.0, 80.0));
        let f = d.observe(&em("gw-1", 1, 5, 100.0 - drop, 80.0));
        assert_eq!(
            f.iter().filter(|f| f.rule == RULE_REVERSED).count(),
            expected,
            "drop {drop}"
        );
    }
    // A negative interval value is reversed too, and alerts once per cooldown.
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let n: usize = (0..10)
        .map(|i| {
            d.observe(&em("gw-1", 1, i * 5, 100.0 + i as f64, -50.0))
                .len()
        })
        .sum();
    assert_eq!(n, 1);
}

#[test]
fn a_gas_register_resting_for_a_day_is_not_stuck_by_default() {
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let mut n = 0;
    for i in 0..=30 {
        let mut r = Reading::new(
            Timestamp(i * 60 * MIN),
            "gw-1",
            "gm-1",
            DeviceKind::GasMeter,
            0,
        );
        r.values.insert("volume_m3".into(), 3.2);
        r.values.insert("use_m3".into(), 0.0);
        n += d.observe(&r).len();
    }
    assert_eq!(n, 0);
}

#[test]
fn meters_that_fall_silent_at_different_moments_in_one_outage_are_one_building_alert() {
    // Meters 4-5 (hourly meters) last reported at minute 60, meters 1-3 at
    // 95: at 250 the first two are past the limit and the other three have
    // been silent for more than half of it.
    let found = run(600, |n, t| if n <= 3 { t < 100 } else { t < 65 });
    assert_eq!(
        found,
        vec![(RULE_BUILDING_NO_DATA, "s01/gw-1".to_owned(), 250)]
    );
}

#[test]
fn a_meter_reporting_exactly_at_the_limit_is_not_silent_even_when_the_sweep_comes_first() {
    // Meter 1 of gw-1 is silent from minute 100 to 280 (its last reading at
    // 100, the next at 280): the sweep at 280 runs on gw-2's reading, before
    // meter 1's, and must not call it silent. One more interval and it is.
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let mut found = Vec::new();
    for t in (0..=600).step_by(10) {
        let mut batch = vec![em("gw-2", 9, t, t as f64, 100.0)];
        if !(101..280).contains(&t) {
            batch.push(em("gw-1", 1, t, t as f64, 100.0));
        }
        for r in batch {
            found.extend(d.observe(&r).into_iter().map(|f| f.rule));
        }
    }
    assert!(found.is_empty(), "{found:?}");
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let mut found = Vec::new();
    for t in (0..=600).step_by(10) {
        let mut batch = vec![em("gw-2", 9, t, t as f64, 100.0)];
        if !(101..290).contains(&t) {
            batch.push(em("gw-1", 1, t, t as f64, 100.0));
        }
        for r in batch {
            found.extend(d.observe(&r).into_iter().map(|f| (f.rule, f.ts.0 / MIN)));
        }
    }
    assert_eq!(found, vec![(RULE_NO_DATA, 290)]);
}

#[test]
fn a_register_at_rest_while_the_meter_measures_no_use_is_a_vacant_flat_not_stuck() {
    // Water meter of a flat away: volume unchanged, flow 0, for 3 days.
    let water = |h: i64, volume: f64, flow: Option<f64>| {
        let mut r = Reading::new(
            Timestamp(h * 60 * MIN),
            "gw-1",
            "wm-1",
            DeviceKind::WaterMeter,
            0,
        );
        r.values.insert("volume_m3".into(), volume);
        if let Some(f) = flow {
            r.values.insert("flow_l".into(), f);
        }
        r
    };
    let stuck = |d: &mut MeterHealth, r: &Reading| {
        d.observe(r).iter().filter(|f| f.rule == RULE_STUCK).count()
    };
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    // The last use moves the register; its flow belongs to that move.
    assert_eq!(stuck(&mut d, &water(0, 1.0, Some(0.0))), 0);
    assert_eq!(stuck(&mut d, &water(1, 1.012, Some(12.0))), 0);
    let vacant: usize = (2..=72)
        .map(|h| stuck(&mut d, &water(h, 1.012, Some(0.0))))
        .sum();
    assert_eq!(vacant, 0);
    // Then 5 L flow through a register that does not move: stuck, at once.
    assert_eq!(stuck(&mut d, &water(73, 1.012, Some(5.0))), 1);
    // A meter without interval values is judged on its register alone.
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let n: usize = (0..=24).map(|h| stuck(&mut d, &water(h, 2.0, None))).sum();
    assert_eq!(n, 1);
}

#[test]
fn a_duplicated_reading_is_not_use_so_an_empty_flat_is_not_stuck() {
    // The reading that moved the register, delivered twice (same seq and
    // time), then a vacant flat: the duplicate's flow must not count as
    // use the register should have shown.
    let water = |h: i64, seq: u64, volume: f64, flow: f64| {
        let mut r = Reading::new(
            Timestamp(h * 60 * MIN),
            "gw-1",
            "wm-1",
            DeviceKind::WaterMeter,
            seq,
        );
        r.values.insert("volume_m3".into(), volume);
        r.values.insert("flow_l".into(), flow);
        r
    };
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    let mut stuck = 0;
    let mut feed = |r: Reading| {
        stuck += d
            .observe(&r)
            .iter()
            .filter(|f| f.rule == RULE_STUCK)
            .count();
    };
    feed(water(0, 0, 1.0, 0.0));
    feed(water(1, 1, 1.012, 12.0));
    feed(water(1, 1, 1.012, 12.0)); // the duplicate
    for h in 2..=72 {
        feed(water(h, h as u64, 1.012, 0.0));
    }
    assert_eq!(stuck, 0);
}
