//! Every protection at its threshold and just below it.

use super::*;
use crate::pile_map::{FaultCode, SocketState, PILE_FAULT_OVERLOAD, PILE_FAULT_SOCKET};

const MIN: u64 = 60_000;

fn load(power_w: f32) -> Measurement {
    Measurement {
        voltage_v: 230.0,
        current_a: power_w / (230.0 * 0.95),
        power_w,
        temperature_c: 30.0,
        residual_ma: 2,
        residual_fault: false,
    }
}

fn charging(protections: Protections) -> SocketController {
    let mut s = SocketController::new(protections).expect("valid protections");
    s.plug_in();
    s.start().expect("no fault");
    assert_eq!(s.tick(0, &load(200.0)), None);
    s
}

/// Ticks once a second from `from_ms` to `to_ms` (inclusive) with `m`;
/// returns the first trip and when.
fn run(
    s: &mut SocketController,
    from_ms: u64,
    to_ms: u64,
    m: impl Fn(u64) -> Measurement,
) -> Option<(u64, Trip)> {
    let mut t = from_ms;
    while t <= to_ms {
        if let Some(trip) = s.tick(t, &m(t)) {
            return Some((t, trip));
        }
        t += 1000;
    }
    None
}

#[test]
fn overcurrent_trips_above_5_5_a_and_not_at_it() {
    let mut s = charging(Protections::default());
    let at = Measurement {
        current_a: 5.5,
        power_w: 1000.0,
        ..load(0.0)
    };
    assert_eq!(s.tick(1000, &at), None);
    let above = Measurement {
        current_a: 5.51,
        ..at
    };
    assert_eq!(
        s.tick(2000, &above),
        Some(Trip::Fault(FaultCode::Overcurrent))
    );
    assert!(!s.relay_on());
    assert_eq!(s.state(), SocketState::Fault);
    assert_eq!(s.snapshot().fault, FaultCode::Overcurrent);
}

#[test]
fn overpower_trips_above_1200_w_and_not_at_it() {
    let mut s = charging(Protections::default());
    let at = Measurement {
        current_a: 5.0,
        power_w: 1200.0,
        ..load(0.0)
    };
    assert_eq!(s.tick(1000, &at), None);
    let above = Measurement {
        power_w: 1200.5,
        ..at
    };
    assert_eq!(
        s.tick(2000, &above),
        Some(Trip::Fault(FaultCode::Overpower))
    );
}

fn hot(start_ms: u64, c_per_min: f32) -> impl Fn(u64) -> Measurement {
    move |t| Measurement {
        temperature_c: 65.1 + c_per_min * (t - start_ms) as f32 / 60_000.0,
        ..load(200.0)
    }
}

#[test]
fn over_temperature_trips_after_60_s_of_fast_rise() {
    let mut s = charging(Protections::default());
    // Above 65 °C from t = 1 s, rising 3 °C/min: trips 60 s later, not before.
    assert_eq!(run(&mut s, 1000, 60_000, hot(1000, 3.0)), None);
    assert_eq!(
        run(&mut s, 61_000, 61_000, hot(1000, 3.0)),
        Some((61_000, Trip::Fault(FaultCode::OverTemperature)))
    );
}

#[test]
fn over_temperature_ignores_a_slow_rise_or_a_short_spike() {
    // Rising 0.9 °C/min, just under the rate filter, for ten minutes.
    let mut slow = charging(Protections::default());
    assert_eq!(run(&mut slow, 1000, 10 * MIN, hot(1000, 0.9)), None);
    // A fast spike above 65 °C for 59 s, then back to 60 °C, twice.
    let mut spike = charging(Protections::default());
    for round in 0..2u64 {
        let start = 1000 + round * 2 * MIN;
        assert_eq!(
            run(&mut spike, start, start + 59_000, hot(start, 5.0)),
            None
        );
        let cool = Measurement {
            temperature_c: 60.0,
            ..load(200.0)
        };
        assert_eq!(spike.tick(start + 60_000, &cool), None);
    }
    assert!(spike.relay_on());
}

#[test]
fn residual_current_trips_at_30_ma_and_not_at_29() {
    let mut s = charging(Protections::default());
    let m29 = Measurement {
        residual_ma: 29,
        ..load(200.0)
    };
    assert_eq!(s.tick(1000, &m29), None);
    let m30 = Measurement {
        residual_ma: 30,
        ..m29
    };
    assert_eq!(
        s.tick(2000, &m30),
        Some(Trip::Fault(FaultCode::ResidualCurrent))
    );
}

#[test]
fn residual_fault_input_trips_and_blocks_reset_while_active() {
    let mut s = charging(Protections::default());
    let input = Measurement {
        residual_fault: true,
        residual_ma: 0,
        ..load(200.0)
    };
    assert_eq!(
        s.tick(1000, &input),
        Some(Trip::Fault(FaultCode::ResidualCurrent))
    );
    assert_eq!(
        s.reset_fault(),
        Err(CommandError::CauseStillPresent(FaultCode::ResidualCurrent))
    );
    assert_eq!(
        s.start(),
        Err(CommandError::Faulted(FaultCode::ResidualCurrent))
    );
    assert_eq!(s.tick(2000, &load(0.0)), None);
    assert_eq!(s.reset_fault(), Ok(()));
    assert_eq!(s.start(), Ok(()));
    assert!(s.relay_on());
}

#[test]
fn auto_stop_when_under_45_w_for_45_minutes() {
    let mut s = charging(Protections::default());
    assert_eq!(s.tick(1000, &load(300.0)), None);
    // Under 45 W from t = 2 s: stops exactly 45 min later, not a second before.
    let low = |_| load(44.9);
    assert_eq!(run(&mut s, 2000, 2000 + 45 * MIN - 1000, low), None);
    assert_eq!(s.state(), SocketState::Full);
    assert_eq!(
        run(&mut s, 2000 + 45 * MIN, 2000 + 45 * MIN, low),
        Some((2000 + 45 * MIN, Trip::Stopped))
    );
    assert!(!s.relay_on());
    assert_eq!(s.state(), SocketState::Finished);
    assert_eq!(s.fault(), FaultCode::None);
}

#[test]
fn power_at_45_w_is_not_full() {
    let mut s = charging(Protections::default());
    assert_eq!(run(&mut s, 1000, 60 * MIN, |_| load(45.0)), None);
    assert_eq!(s.state(), SocketState::Charging);
}

#[test]
fn abandoned_socket_stops_on_a_low_five_minute_mean() {
    let protections = Protections {
        auto_stop: None,
        ..Protections::default()
    };
    // Windows run from the start tick at 0; the first closes at 5 min.
    let mut low = charging(protections);
    assert_eq!(
        run(&mut low, 1000, 5 * MIN, |_| load(2.4)),
        Some((5 * MIN, Trip::Stopped))
    );
    let mut at = charging(protections);
    assert_eq!(run(&mut at, 1000, 30 * MIN, |_| load(2.6)), None);
}

#[test]
fn session_cap_stops_after_12_hours_of_charging() {
    let protections = Protections {
        forced_stop_ms: None,
        ..Protections::default()
    };
    let mut s = charging(protections);
    let hour = 3_600_000;
    assert_eq!(s.tick(12 * hour - 1, &load(200.0)), None);
    assert_eq!(
        s.tick(12 * hour, &load(200.0)),
        Some(Trip::Fault(FaultCode::SessionTooLong))
    );
}

#[test]
fn forced_stop_after_24_hours_plugged() {
    let protections = Protections {
        max_charging_ms: None,
        ..Protections::default()
    };
    let mut s = charging(protections);
    let hour = 3_600_000;
    s.stop();
    assert_eq!(s.tick(20 * hour, &load(0.0)), None);
    s.start().expect("no fault");
    assert_eq!(s.tick(24 * hour - 1, &load(200.0)), None);
    assert_eq!(
        s.tick(24 * hour, &load(200.0)),
        Some(Trip::Fault(FaultCode::SessionTooLong))
    );
}

#[test]
fn legacy_pile_never_cuts_anything_off() {
    let mut s = charging(Protections::legacy());
    let awful = Measurement {
        current_a: 9.0,
        power_w: 2000.0,
        temperature_c: 90.0,
        residual_ma: 200,
        ..load(0.0)
    };
    assert_eq!(run(&mut s, 1000, 30 * 3_600_000, |_| awful), None);
    assert!(s.relay_on());
    assert_eq!(s.state(), SocketState::Charging);
    assert_eq!(s.fault(), FaultCode::None);
}

#[test]
fn states_follow_plug_relay_and_power() {
    let mut s = SocketController::new(Protections::legacy()).expect("valid");
    assert_eq!(s.state(), SocketState::Idle);
    s.plug_in();
    assert_eq!(s.state(), SocketState::Plugged);
    s.start().expect("no fault");
    s.tick(0, &load(0.0));
    assert_eq!(s.state(), SocketState::Plugged, "no energy yet");
    s.tick(60_000, &load(200.0));
    assert_eq!(s.state(), SocketState::Charging);
    assert!((s.session_energy_wh() - 200.0 / 60.0).abs() < 1e-3);
    s.tick(120_000, &load(10.0));
    assert_eq!(s.state(), SocketState::Full);
    s.stop();
    assert_eq!(s.state(), SocketState::Finished);
    assert_eq!(s.snapshot().session_s, 120);
    s.unplug();
    assert_eq!(s.state(), SocketState::Idle);
    assert_eq!(s.snapshot().energy_wh, 0.0);
}

#[test]
fn invalid_protections_are_refused() {
    let nan = Protections {
        overcurrent_a: Some(f32::NAN),
        ..Protections::default()
    };
    assert_eq!(
        SocketController::new(nan).err().map(|e| e.field),
        Some("overcurrent_a")
    );
    let mut s = SocketController::new(Protections::default()).expect("valid");
    let zero = Protections {
        residual_trip_ma: Some(0),
        ..Protections::default()
    };
    assert!(s.set_protections(zero).is_err());
    assert_eq!(s.protections(), &Protections::default());
}

fn pile(n: usize, limits: PileLimits) -> PileController<[SocketController; 4]> {
    let s = SocketController::new(Protections::default()).expect("valid");
    let mut p = PileController::new([s.clone(), s.clone(), s.clone(), s], limits);
    for i in 1..=n as u16 {
        p.socket_mut(i).expect("exists").plug_in();
    }
    p
}

#[test]
fn pile_refuses_new_sessions_above_7_8_kw() {
    let limits = PileLimits {
        cut_above_w: None,
        ..PileLimits::default()
    };
    let mut p = pile(4, limits);
    p.start(1).expect("starts");
    p.tick(
        0,
        |n| if n == 1 { load(7800.0) } else { load(0.0) },
        |_, _| {},
    );
    assert_eq!(p.start(2), Ok(()), "at the limit a session may start");
    p.tick(
        1000,
        |n| if n == 1 { load(7800.5) } else { load(0.0) },
        |_, _| {},
    );
    assert_eq!(p.start(3), Err(CommandError::PileAtLimit));
    assert_eq!(p.start(9), Err(CommandError::NoSuchSocket(9)));
}

#[test]
fn pile_cuts_the_newest_session_above_8_7_kw() {
    let protections = Protections {
        overpower_w: None,
        overcurrent_a: None,
        ..Protections::default()
    };
    let s = SocketController::new(protections).expect("valid");
    let mut p = PileController::new([s.clone(), s.clone(), s], PileLimits::default());
    for n in [2, 1, 3] {
        p.socket_mut(n).expect("exists").plug_in();
        p.start(n).expect("starts");
    }
    let mut tripped = [None; 4];
    p.tick(
        0,
        |_| load(2900.0),
        |n, t| tripped[usize::from(n)] = Some(t),
    );
    assert_eq!(tripped, [None; 4], "8.7 kW exactly is allowed");
    p.tick(
        1000,
        |_| load(2901.0),
        |n, t| tripped[usize::from(n)] = Some(t),
    );
    assert_eq!(
        tripped,
        [None, None, None, Some(Trip::Stopped)],
        "socket 3 started last"
    );
    assert_eq!(
        p.snapshot().fault_bits & PILE_FAULT_OVERLOAD,
        PILE_FAULT_OVERLOAD
    );
    assert!(p.socket(1).expect("exists").relay_on());
}

#[test]
fn pile_fault_bit_follows_socket_faults() {
    let mut p = pile(1, PileLimits::default());
    p.start(1).expect("starts");
    p.tick(
        0,
        |n| {
            if n == 1 {
                Measurement {
                    residual_ma: 40,
                    ..load(100.0)
                }
            } else {
                load(0.0)
            }
        },
        |_, _| {},
    );
    assert_eq!(p.snapshot().fault_bits, PILE_FAULT_SOCKET);
    assert_eq!(
        p.start(1),
        Err(CommandError::Faulted(FaultCode::ResidualCurrent))
    );
}
