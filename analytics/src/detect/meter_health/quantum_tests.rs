//! Readings delivered twice and registers that show use only in whole
//! steps: neither is evidence of a stuck register.

use super::*;

const MIN: i64 = 60_000;

/// A meter reading of `kind` at minute `t`, numbered `seq`.
fn meter(kind: DeviceKind, t: i64, seq: u64, register: f64, interval: f64) -> Reading {
    let (register_key, interval_key, _) = fields(kind).expect("a meter kind");
    let mut r = Reading::new(Timestamp(t * MIN), "gw-1", "m-1", kind, seq);
    r.site = "s01".into();
    r.values.insert(register_key.into(), register);
    r.values.insert(interval_key.into(), interval);
    r
}

fn stuck_alerts(config: &MeterHealthConfig, readings: &[Reading]) -> usize {
    let mut d = MeterHealth::new(config);
    readings
        .iter()
        .flat_map(|r| d.observe(r))
        .filter(|f| f.rule == RULE_STUCK)
        .count()
}

#[test]
fn a_seq_delivered_again_with_a_later_stamp_is_not_use() {
    // An empty flat's water meter, hourly. Its last use (12 L) moved the
    // register; that reading comes again three hours later with the same
    // seq (a re-sent record, re-stamped on the way). Counted as use, the
    // register "should" have moved and a healthy meter is stuck a day on.
    let wm = |h: i64, seq: u64, volume: f64, flow: f64| {
        meter(DeviceKind::WaterMeter, h * 60, seq, volume, flow)
    };
    // Seqs rise with position; the extra reading at hour 4 carries `extra`.
    let series = |extra: Option<u64>| {
        let mut v = vec![(0, 1.0, 0.0), (1, 1.012, 12.0)];
        for h in 2..=72 {
            v.push((h, 1.012, 0.0));
            if h == 4 {
                v.push((4, 1.012, 12.0));
            }
        }
        v.iter()
            .enumerate()
            .map(|(i, &(h, volume, flow))| {
                let seq = match extra {
                    Some(s) if h == 4 && flow > 0.0 => s,
                    _ => i as u64 + 1,
                };
                wm(h, seq, volume, flow)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        stuck_alerts(&MeterHealthConfig::default(), &series(Some(2))),
        0
    );
    // The same 12 L under a seq of its own is use the register did not
    // show: stuck.
    assert_eq!(
        stuck_alerts(&MeterHealthConfig::default(), &series(None)),
        1
    );
}

#[test]
fn standby_below_one_register_step_is_not_a_stuck_register() {
    // 0.1 W of standby for two days on a 0.01 kWh register, every 5 min:
    // 4.8 Wh in all, half a step. The register rightly stays.
    let em = |i: i64, register: f64, w: f64| {
        meter(
            DeviceKind::ElectricityMeter,
            i * 5,
            i as u64 + 1,
            register,
            w,
        )
    };
    let mut readings = vec![em(0, 1_234.56, 0.0), em(1, 1_234.57, 120.0)];
    readings.extend((2..=576).map(|i| em(i, 1_234.57, 0.1)));
    assert_eq!(stuck_alerts(&MeterHealthConfig::default(), &readings), 0);
    // 30 W through the same register that does not move (0.72 kWh a
    // day, 72 steps): stuck.
    let mut readings = vec![em(0, 1_234.56, 0.0), em(1, 1_234.57, 120.0)];
    readings.extend((2..=576).map(|i| em(i, 1_234.57, 30.0)));
    assert_eq!(stuck_alerts(&MeterHealthConfig::default(), &readings), 1);
}

#[test]
fn a_gas_register_of_a_flat_that_cooks_little_is_not_stuck() {
    // Gas judged for sticking; a 0.01 m³ register; a kettle a day
    // (0.003 m³). Two days, 0.006 m³: less than a step, the register stays.
    let config = MeterHealthConfig {
        stuck_kinds: vec![DeviceKind::GasMeter],
        ..MeterHealthConfig::default()
    };
    let gm = |h: i64, register: f64, used: f64| {
        meter(DeviceKind::GasMeter, h * 60, h as u64 + 1, register, used)
    };
    let day = |h: i64| if h % 24 == 18 { 0.003 } else { 0.0 };
    let mut readings = vec![gm(0, 52.31, 0.0), gm(1, 52.32, 0.01)];
    readings.extend((2..=49).map(|h| gm(h, 52.32, day(h))));
    assert_eq!(stuck_alerts(&config, &readings), 0);
    // Cooking every evening (0.4 m³) and the register never moves: stuck.
    let mut readings = vec![gm(0, 52.31, 0.0), gm(1, 52.32, 0.01)];
    readings.extend((2..=49).map(|h| gm(h, 52.32, day(h) * 130.0)));
    assert_eq!(stuck_alerts(&config, &readings), 1);
}

#[test]
fn a_register_shows_the_step_of_its_longest_decimals() {
    assert_eq!(decimals(1_234.57), 2);
    assert_eq!(decimals(1_234.5), 1);
    assert_eq!(decimals(1_234.0), 0);
    assert_eq!(decimals(0.012), 3);
    assert_eq!(decimals(1.0 / 3.0), MAX_DECIMALS);
}
