//! Registers that wrap past their largest reading and meters replaced
//! under the same device id: use and new baselines, not reversals. Each
//! at the boundary and just past it.

use super::*;

const HOUR: i64 = 3_600_000;

/// A water meter reading of `volume_m3` at hour `h`, from meter `serial`.
fn wm(h: i64, volume_m3: f64, serial: Option<&str>) -> Reading {
    let mut r = Reading::new(
        Timestamp(h * HOUR),
        "gw-1",
        "wm-1",
        DeviceKind::WaterMeter,
        0,
    );
    r.site = "s01".into();
    r.seq = h as u64;
    r.meter_serial = serial.map(str::to_owned);
    r.values.insert("volume_m3".into(), volume_m3);
    r
}

/// Reversed alerts over `readings` of one meter.
fn reversals(readings: &[Reading]) -> usize {
    let mut d = MeterHealth::new(&MeterHealthConfig::default());
    readings
        .iter()
        .flat_map(|r| d.observe(r))
        .filter(|f| f.rule == RULE_REVERSED)
        .count()
}

#[test]
fn a_wrap_exactly_at_the_maximum_is_use() {
    let a = Some("00000000000001");
    assert_eq!(reversals(&[wm(0, 99_999.999, a), wm(1, 0.0, a)]), 0);
    assert_eq!(reversals(&[wm(0, 99_999.5, None), wm(1, 0.25, None)]), 0);
    // An eight-digit register (999999.99) wraps the same way.
    assert_eq!(reversals(&[wm(0, 999_999.99, a), wm(1, 0.01, a)]), 0);
}

#[test]
fn just_below_the_maximum_is_ordinary_use() {
    assert_eq!(
        reversals(&[wm(0, 99_999.998, None), wm(1, 99_999.999, None)]),
        0
    );
}

#[test]
fn a_fall_from_below_the_wrap_band_is_still_reversed() {
    // 98999 m³ is more than 1 % short of 100000: not about to wrap.
    assert_eq!(reversals(&[wm(0, 98_999.0, None), wm(1, 0.5, None)]), 1);
    // Near the maximum, but not near zero after.
    assert_eq!(reversals(&[wm(0, 99_999.0, None), wm(1, 5_000.0, None)]), 1);
}

#[test]
fn a_new_serial_restarting_near_zero_is_a_new_meter() {
    let (old, new) = (Some("00000000000001"), Some("00000000000042"));
    assert_eq!(reversals(&[wm(0, 1_234.5, old), wm(1, 0.02, new)]), 0);
    // The new meter is the baseline from then on: it can still reverse.
    assert_eq!(
        reversals(&[wm(0, 1_234.5, old), wm(1, 0.02, new), wm(2, 0.01, new)]),
        1
    );
}

#[test]
fn a_register_restarting_under_the_same_serial_is_reversed() {
    let a = Some("00000000000001");
    assert_eq!(reversals(&[wm(0, 1_234.5, a), wm(1, 0.02, a)]), 1);
    // Without serials nothing tells a replacement from a reversal.
    assert_eq!(reversals(&[wm(0, 1_234.5, None), wm(1, 0.02, None)]), 1);
    // A serial appearing for the first time is not a change of meter.
    assert_eq!(reversals(&[wm(0, 1_234.5, None), wm(1, 0.02, a)]), 1);
}

#[test]
fn heat_meters_are_judged_on_their_heat_register() {
    let heat = |h: i64, kwh: f64| {
        let mut r = Reading::new(
            Timestamp(h * HOUR),
            "gw-1",
            "hm-1",
            DeviceKind::HeatMeter,
            0,
        );
        r.seq = h as u64;
        r.values.insert("heat_kwh".into(), kwh);
        r
    };
    assert_eq!(reversals(&[heat(0, 4_500.0), heat(1, 4_400.0)]), 1);
    assert_eq!(reversals(&[heat(0, 999_999.5), heat(1, 1.5)]), 0);
}
