//! Behaviour of the pile model over simulated hours: the charge curve and
//! each fault's signature, as docs/detection.md describes them.

use gridwatch_firmware::pile_map::{FaultCode, SocketSnapshot, SocketState};

use super::*;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;

fn pile(seed: u64) -> PileModel {
    PileModel::new(PileConfig {
        sockets: 4,
        seed,
        ..PileConfig::default()
    })
    .expect("valid config")
}

/// Socket 1, sampled once a simulated minute for `hours`.
fn run_minutes(p: &mut PileModel, hours: u64) -> Vec<SocketSnapshot> {
    (0..hours * 60)
        .map(|_| {
            p.step(MINUTE_MS);
            p.socket(1).expect("socket 1")
        })
        .collect()
}

/// Checks the shape of one session that ends full: returns (hours to
/// full, kWh at full).
fn assert_normal_curve(p: &mut PileModel) -> (f64, f64) {
    let samples = run_minutes(p, 10);
    let full_at = samples
        .iter()
        .position(|s| s.state == SocketState::Full)
        .expect("the battery gets full within 10 h");
    let charging = &samples[..full_at];
    assert!(charging.iter().all(|s| s.state == SocketState::Charging));

    // Plateau: the first hour is flat within ±12 % and in the e-bike range.
    let first_hour: Vec<f32> = charging[..60].iter().map(|s| s.power_w).collect();
    let (lo, hi) = first_hour
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    assert!(lo >= 60.0 && hi <= 320.0, "plateau {lo}..{hi} W");
    assert!(hi / lo < 1.12, "plateau not flat: {lo}..{hi} W");

    // Taper: from the peak to full, power never rises, and ends below 45 W.
    let peak = charging
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.power_w.total_cmp(&b.1.power_w))
        .map(|(i, _)| i)
        .expect("samples");
    for pair in charging[peak..].windows(2) {
        assert!(
            pair[1].power_w <= pair[0].power_w,
            "taper reversed: {pair:?}"
        );
    }
    let last = charging.last().expect("charged for a while").power_w;
    assert!(last < 45.0, "last charging sample {last} W");
    assert!(samples[full_at..].iter().all(|s| s.power_w < 45.0));

    let hours = (full_at + 1) as f64 / 60.0;
    let kwh = f64::from(samples[full_at].energy_wh) / 1000.0;
    assert!((2.0..=8.0).contains(&hours), "full after {hours} h");
    assert!((0.3..=2.0).contains(&kwh), "{kwh} kWh");
    (hours, kwh)
}

#[test]
fn lithium_charge_has_plateau_taper_then_full() {
    for seed in 1..=8 {
        let mut p = pile(seed);
        p.plug_in(1, ChargerKind::Lithium).expect("free socket");
        let (hours, kwh) = assert_normal_curve(&mut p);
        assert!(hours > 0.0 && kwh > 0.0);
        let s = p.socket(1).expect("socket 1");
        assert!(
            s.power_w < 1.0,
            "BMS stopped, only no-load draw: {} W",
            s.power_w
        );
    }
}

#[test]
fn lead_acid_charge_has_bulk_second_stage_then_float() {
    for seed in 1..=8 {
        let mut p = pile(seed);
        p.plug_in(1, ChargerKind::LeadAcid).expect("free socket");
        assert_normal_curve(&mut p);
        let float = p.socket(1).expect("socket 1").power_w;
        assert!((2.0..20.0).contains(&float), "float {float} W");
    }
}

#[test]
fn charging_warms_the_socket_slowly_above_ambient() {
    let mut p = pile(3);
    p.plug_in_with(1, ChargerSpec::typical(ChargerKind::Lithium))
        .expect("free socket");
    let samples = run_minutes(&mut p, 2);
    let t = samples.last().expect("samples").temperature_c;
    assert!((26.0..35.0).contains(&t), "{t} °C after 2 h");
    // Idle at ambient, as the thermistor's 12-bit ADC resolves it.
    let idle = p.socket(2).expect("socket 2").temperature_c;
    assert!((idle - 25.0).abs() < 0.05, "{idle} °C");
}

#[test]
fn overcurrent_draws_seven_amps_unnoticed() {
    let mut p = pile(1);
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.inject(1, Fault::Overcurrent).expect("socket 1");
    for s in run_minutes(&mut p, 1) {
        assert!(s.current_a > 5.5, "{} A", s.current_a);
        assert!((1400.0..1700.0).contains(&s.power_w), "{} W", s.power_w);
        assert_eq!(s.fault, FaultCode::None);
        assert_eq!(s.state, SocketState::Charging);
    }
    p.clear_faults(1).expect("socket 1");
    assert!(p.socket(1).expect("socket 1").current_a < 2.0);
}

#[test]
fn over_temperature_rises_fast_and_crosses_65() {
    let mut p = pile(1);
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.inject(1, Fault::OverTemperature).expect("socket 1");
    let samples = run_minutes(&mut p, 1);
    let crossed = samples
        .iter()
        .position(|s| s.temperature_c > 65.0)
        .expect("crosses 65 °C within an hour");
    for pair in samples[..=crossed].windows(2) {
        let rise = pair[1].temperature_c - pair[0].temperature_c;
        assert!(rise > 1.0, "rose only {rise} °C in a minute");
    }
    let last = samples.last().expect("samples").temperature_c;
    assert!(
        (79.0..=80.5).contains(&last),
        "levels off near 80 °C, got {last}"
    );
    assert_eq!(samples[crossed].fault, FaultCode::None);
}

#[test]
fn charging_past_full_keeps_drawing_after_ten_hours() {
    let mut p = pile(1);
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.inject(1, Fault::ChargingPastFull).expect("socket 1");
    p.step(10 * HOUR_MS);
    let s = p.socket(1).expect("socket 1");
    assert!((60.0..=70.0).contains(&s.power_w), "{} W", s.power_w);
    assert_eq!(s.state, SocketState::Charging);
    assert_eq!(
        p.faults(1).expect("socket 1"),
        vec![Fault::ChargingPastFull]
    );
}

#[test]
fn relay_off_stops_the_draw_and_pauses_the_charge() {
    let mut p = pile(1);
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.step(HOUR_MS);
    let soc = p
        .session(1)
        .expect("socket 1")
        .expect("plugged")
        .state_of_charge;
    p.set_relay(1, false).expect("socket 1");
    let off = p.socket(1).expect("socket 1");
    assert_eq!(
        (off.power_w, off.current_a, off.state),
        (0.0, 0.0, SocketState::Finished)
    );
    p.step(HOUR_MS);
    let after = p
        .session(1)
        .expect("socket 1")
        .expect("plugged")
        .state_of_charge;
    assert_eq!(soc, after);
    p.set_relay(1, true).expect("socket 1");
    assert_eq!(p.socket(1).expect("socket 1").state, SocketState::Charging);
}

#[test]
fn unplug_ends_the_session() {
    let mut p = pile(1);
    p.plug_in(2, ChargerKind::LeadAcid).expect("free socket");
    assert_eq!(
        p.plug_in(2, ChargerKind::Lithium),
        Err(SocketError::AlreadyPlugged(2))
    );
    p.step(HOUR_MS);
    assert_eq!(p.socket(2).expect("socket 2").session_s, 3600);
    p.unplug(2).expect("plugged");
    let s = p.socket(2).expect("socket 2");
    assert_eq!(
        (s.state, s.energy_wh, s.session_s, s.relay_on),
        (SocketState::Idle, 0.0, 0, false)
    );
    assert_eq!(p.unplug(2), Err(SocketError::NotPlugged(2)));
}

#[test]
fn sockets_outside_the_pile_are_refused() {
    let mut p = pile(1);
    for n in [0, 5] {
        assert_eq!(
            p.plug_in(n, ChargerKind::Lithium),
            Err(SocketError::NoSuchSocket {
                socket: n,
                sockets: 4
            })
        );
    }
    let bad = ChargerSpec {
        capacity_ah: -1.0,
        ..ChargerSpec::typical(ChargerKind::Lithium)
    };
    assert!(matches!(
        p.plug_in_with(1, bad),
        Err(SocketError::InvalidSpec { .. })
    ));
}

#[test]
fn same_seed_and_operations_give_same_registers() {
    let run = |seed| {
        let mut p = pile(seed);
        p.plug_in(1, ChargerKind::Lithium).expect("free socket");
        p.plug_in(3, ChargerKind::LeadAcid).expect("free socket");
        p.step(90 * MINUTE_MS);
        p.read_holding(100, 80).expect("mapped")
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn step_size_does_not_change_the_physics() {
    let mut coarse = pile(1);
    let mut fine = pile(1);
    for p in [&mut coarse, &mut fine] {
        p.plug_in_with(1, ChargerSpec::typical(ChargerKind::Lithium))
            .expect("free socket");
    }
    coarse.step(3 * HOUR_MS);
    for _ in 0..3 * 3600 {
        fine.step(1000);
    }
    let (a, b) = (coarse.socket(1).expect("s"), fine.socket(1).expect("s"));
    assert_eq!(
        (a.power_w, a.energy_wh, a.temperature_c),
        (b.power_w, b.energy_wh, b.temperature_c)
    );
    assert_eq!(coarse.now_ms(), fine.now_ms());
}

#[test]
fn pile_block_sums_socket_power() {
    let mut p = pile(1);
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.plug_in(4, ChargerKind::Lithium).expect("free socket");
    p.step(MINUTE_MS);
    let r = p.snapshot();
    let sum: f32 = r.sockets.iter().map(|s| s.power_w).sum();
    assert_eq!(r.pile.total_power_w, sum);
    assert_eq!((r.pile.socket_count, r.pile.fault_bits), (4, 0));
    assert_eq!(r.at_ms, MINUTE_MS);
}

fn protected_pile() -> PileModel {
    PileModel::new(PileConfig {
        sockets: 4,
        protection: crate::pile::Protection::Protected,
        ..PileConfig::default()
    })
    .expect("valid config")
}

#[test]
fn protected_pile_cuts_overcurrent_within_a_second() {
    let mut p = protected_pile();
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.step(MINUTE_MS);
    p.inject(1, Fault::Overcurrent).expect("socket 1");
    p.step(1000);
    let s = p.socket(1).expect("socket 1");
    assert_eq!(
        (s.state, s.fault, s.relay_on),
        (SocketState::Fault, FaultCode::Overcurrent, false)
    );
    assert_eq!(s.power_w, 0.0);
    assert_eq!(
        p.pile_snapshot().fault_bits,
        gridwatch_firmware::pile_map::PILE_FAULT_SOCKET
    );
    // Latched: the relay cannot be closed again until the fault is reset.
    assert!(matches!(
        p.set_relay(1, true),
        Err(SocketError::Refused { socket: 1, .. })
    ));
    p.clear_faults(1).expect("socket 1");
    p.reset_fault(1).expect("cause gone");
    p.set_relay(1, true).expect("starts again");
    p.step(MINUTE_MS);
    assert_eq!(p.socket(1).expect("socket 1").state, SocketState::Charging);
}

#[test]
fn protected_pile_cuts_over_temperature_after_persistence() {
    let mut p = protected_pile();
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    p.inject(1, Fault::OverTemperature).expect("socket 1");
    let samples = run_minutes(&mut p, 1);
    let crossed = samples
        .iter()
        .position(|s| s.temperature_c > 65.0)
        .expect("crosses 65 °C");
    let tripped = samples
        .iter()
        .position(|s| s.fault == FaultCode::OverTemperature)
        .expect("trips");
    // Sampled each minute: the trip comes one or two samples after the crossing.
    assert!(
        (crossed + 1..=crossed + 2).contains(&tripped),
        "{crossed} {tripped}"
    );
    assert!(samples[tripped..].iter().all(|s| !s.relay_on));
}

#[test]
fn protected_pile_trips_on_earth_leakage_and_legacy_does_not() {
    let mut p = protected_pile();
    p.plug_in(2, ChargerKind::LeadAcid).expect("free socket");
    p.inject(2, Fault::ResidualCurrent).expect("socket 2");
    p.step(1000);
    let s = p.socket(2).expect("socket 2");
    assert_eq!((s.fault, s.relay_on), (FaultCode::ResidualCurrent, false));
    let mut legacy = pile(1);
    legacy
        .plug_in(2, ChargerKind::LeadAcid)
        .expect("free socket");
    legacy.inject(2, Fault::ResidualCurrent).expect("socket 2");
    legacy.step(MINUTE_MS);
    let s = legacy.socket(2).expect("socket 2");
    assert_eq!(
        (s.fault, s.relay_on, s.residual_ma),
        (FaultCode::None, true, 45)
    );
}

#[test]
fn protected_pile_stops_a_full_battery_by_itself() {
    let mut p = protected_pile();
    p.plug_in(1, ChargerKind::Lithium).expect("free socket");
    let samples = run_minutes(&mut p, 10);
    let finished = samples
        .iter()
        .position(|s| s.state == SocketState::Finished)
        .expect("stops within 10 h");
    assert!(!samples[finished].relay_on);
    assert_eq!(samples[finished].fault, FaultCode::None);
    assert!(samples[finished..].iter().all(|s| s.power_w == 0.0));
}
