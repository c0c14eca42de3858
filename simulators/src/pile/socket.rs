//! One simulated socket's hardware: relay, plugged-in charger, injected
//! faults, heat, and the residual-current module.
//!
//! This is the physics behind the firmware's traits: the relay is a
//! [`Relay`] driver on a simulated pin, the residual-current module's fault
//! line a [`FaultInput`], the meter a [`Bl0942`] driver talking to a
//! simulated chip over a simulated UART, and the temperature an [`Ntc`]
//! conversion of a simulated ADC value (see [`super::hardware`]). Whether anything is cut off is decided
//! by the firmware's controller in [`PileModel`](super::PileModel), never
//! here: an injected fault only changes what the socket draws, how hot it
//! gets or how much current leaks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use gridwatch_firmware::controller::Measurement;
use gridwatch_firmware::drivers::bl0942::Bl0942;
use gridwatch_firmware::drivers::ntc::Ntc;
use gridwatch_firmware::drivers::relay::Relay;
use gridwatch_firmware::drivers::residual::FaultInput;
use serde::Deserialize;

use super::hardware::{thermistor_adc, Sensed, SimFaultLine, SimMeterUart, SimRelayPin};

use super::charger::{ChargeStage, Charger};
use super::noise::Noise;

/// A fault to inject into a socket; it lasts until
/// [`PileModel::clear_faults`](super::PileModel::clear_faults), across
/// sessions, and only shows while a charger is plugged in and the relay is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The load draws [`OVERCURRENT_A`] (≈ 1.5 kW) instead of the charge curve.
    Overcurrent,
    /// The socket heats at [`OVER_TEMPERATURE_RAMP_C_PER_MIN`] up to
    /// [`OVER_TEMPERATURE_MAX_C`], e.g. a worn contact.
    OverTemperature,
    /// The charger never finishes: after the plateau, power stays at 60–70 W.
    ChargingPastFull,
    /// Earth leakage of [`LEAKAGE_MA`] while the socket is live, and the
    /// residual-current module's fault line goes active.
    ResidualCurrent,
}

/// Residual current under [`Fault::ResidualCurrent`].
pub const LEAKAGE_MA: u16 = 45;

/// Current drawn under [`Fault::Overcurrent`].
pub const OVERCURRENT_A: f64 = 7.0;
/// Temperature rise under [`Fault::OverTemperature`].
pub const OVER_TEMPERATURE_RAMP_C_PER_MIN: f64 = 3.0;
/// Where the [`Fault::OverTemperature`] ramp levels off.
pub const OVER_TEMPERATURE_MAX_C: f64 = 80.0;
/// Power factor of a charger with PFC; relates power to current.
const POWER_FACTOR: f64 = 0.95;

/// Pile-wide physics a socket needs to advance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Environment {
    pub ambient_c: f64,
    pub mains_voltage_v: f64,
    pub thermal_rise_c_per_w: f64,
    pub thermal_time_constant_s: f64,
}

/// Injected faults; `past_full_w` is the level the never-ending taper holds.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    overcurrent: bool,
    over_temperature: bool,
    past_full_w: Option<f64>,
    leakage: bool,
}

#[derive(Debug)]
pub(crate) struct Socket {
    charger: Option<Charger>,
    relay: Relay<SimRelayPin>,
    fault_line: FaultInput<SimFaultLine>,
    /// The module's side of `fault_line`: true pulls it low.
    leak_line: Arc<AtomicBool>,
    meter: Bl0942<SimMeterUart>,
    /// What the metering chip senses (its side of `meter`'s UART).
    sensed: Arc<Mutex<Sensed>>,
    ntc: Ntc,
    /// Energy through the socket since the pile started, the chip's CF count.
    energy_wh: f64,
    temperature_c: f64,
    faults: Faults,
    /// True power now (no measurement noise), what energy integrates.
    power_w: f64,
    /// Last sampled measurement noise, so reads between steps agree.
    voltage_v: f64,
    residual_ma: u16,
}

impl Socket {
    pub(crate) fn new(env: &Environment) -> Self {
        // The simulated pins cannot fail: their error type is Infallible.
        let relay = match Relay::new(SimRelayPin::default()) {
            Ok(relay) => relay,
            Err(never) => match never {},
        };
        let line = SimFaultLine::default();
        let uart = SimMeterUart::default();
        Self {
            charger: None,
            relay,
            leak_line: Arc::clone(&line.low),
            fault_line: FaultInput::new(line),
            sensed: Arc::clone(&uart.sensed),
            meter: Bl0942::new(uart),
            ntc: Ntc::default(),
            energy_wh: 0.0,
            temperature_c: env.ambient_c,
            faults: Faults::default(),
            power_w: 0.0,
            voltage_v: env.mains_voltage_v,
            residual_ma: 0,
        }
    }

    pub(crate) fn is_plugged(&self) -> bool {
        self.charger.is_some()
    }

    pub(crate) fn charger(&self) -> Option<&Charger> {
        self.charger.as_ref()
    }

    pub(crate) fn relay_on(&self) -> bool {
        self.relay.is_closed()
    }

    /// A charger is plugged in; the relay stays as the controller left it.
    pub(crate) fn plug_in(&mut self, charger: Charger, env: &Environment) {
        self.charger = Some(charger);
        self.update_power(env);
    }

    /// The charger is unplugged.
    pub(crate) fn unplug(&mut self, env: &Environment) {
        self.charger = None;
        self.update_power(env);
    }

    /// Drives the relay as the controller decided.
    pub(crate) fn set_relay(&mut self, on: bool, env: &Environment) {
        if let Err(never) = self.relay.set(on) {
            match never {}
        }
        self.update_power(env);
    }

    pub(crate) fn inject(&mut self, fault: Fault, noise: &mut Noise, env: &Environment) {
        match fault {
            Fault::Overcurrent => self.faults.overcurrent = true,
            Fault::OverTemperature => self.faults.over_temperature = true,
            Fault::ChargingPastFull => {
                self.faults.past_full_w = Some(noise.uniform(60.0, 70.0));
            }
            Fault::ResidualCurrent => self.faults.leakage = true,
        }
        self.update_power(env);
    }

    /// Removes one injected fault, leaving the others (a fault with a
    /// duration ends on its own).
    pub(crate) fn clear_fault(&mut self, fault: Fault, env: &Environment) {
        match fault {
            Fault::Overcurrent => self.faults.overcurrent = false,
            Fault::OverTemperature => self.faults.over_temperature = false,
            Fault::ChargingPastFull => self.faults.past_full_w = None,
            Fault::ResidualCurrent => self.faults.leakage = false,
        }
        self.update_power(env);
    }

    pub(crate) fn clear_faults(&mut self, env: &Environment) {
        self.faults = Faults::default();
        self.update_power(env);
    }

    /// The injected faults, for ground truth.
    pub(crate) fn faults(&self) -> Vec<Fault> {
        let f = self.faults;
        [
            (f.overcurrent, Fault::Overcurrent),
            (f.over_temperature, Fault::OverTemperature),
            (f.past_full_w.is_some(), Fault::ChargingPastFull),
            (f.leakage, Fault::ResidualCurrent),
        ]
        .into_iter()
        .filter_map(|(on, fault)| on.then_some(fault))
        .collect()
    }

    fn powered(&self) -> bool {
        self.relay_on() && self.charger.is_some()
    }

    /// Advances physics by `dt_ms` (the pile keeps this ≤ 1 s).
    pub(crate) fn advance(&mut self, dt_ms: u64, env: &Environment) {
        let dt_s = dt_ms as f64 / 1000.0;
        let powered = self.powered();
        self.energy_wh += self.power_w * dt_s / 3600.0;
        if let Some(charger) = &mut self.charger {
            if powered {
                charger.advance(dt_s);
            }
        }
        // First-order thermal model: heading for ambient + k·P with time
        // constant τ, integrated exactly for the step.
        let target = env.ambient_c + env.thermal_rise_c_per_w * self.power_w;
        let decay = (-dt_s / env.thermal_time_constant_s).exp();
        let mut t = target + (self.temperature_c - target) * decay;
        let overheating = self.faults.over_temperature
            || self
                .charger
                .as_ref()
                .is_some_and(|c| c.spec().kind.overheats());
        if overheating && powered {
            let ramp = self.temperature_c + OVER_TEMPERATURE_RAMP_C_PER_MIN * dt_s / 60.0;
            t = t.max(ramp.min(OVER_TEMPERATURE_MAX_C));
        }
        self.temperature_c = t;
        self.update_power(env);
    }

    /// Draws this step's measurement noise.
    pub(crate) fn sample(&mut self, noise: &mut Noise, voltage_noise_v: f64, env: &Environment) {
        self.voltage_v = env.mains_voltage_v + noise.jitter(voltage_noise_v);
        self.residual_ma = if self.power_w > 1.0 {
            1 + (noise.unit() * 3.0) as u16
        } else {
            0
        };
        self.update_leakage();
    }

    /// Recomputes the true power after anything that changes the load.
    fn update_power(&mut self, env: &Environment) {
        self.power_w = match &self.charger {
            Some(c) if self.relay_on() => {
                if self.faults.overcurrent {
                    OVERCURRENT_A * env.mains_voltage_v * POWER_FACTOR
                } else {
                    let curve = c.mains_power_w();
                    match self.faults.past_full_w {
                        Some(level) if c.stage() != ChargeStage::Plateau => curve.max(level),
                        _ => curve,
                    }
                }
            }
            _ => 0.0,
        };
        self.update_leakage();
    }

    /// Leakage flows, and the module's line goes low, only while live.
    fn update_leakage(&mut self) {
        let leaking = self.faults.leakage && self.powered();
        self.leak_line.store(leaking, Ordering::Relaxed);
        if leaking {
            self.residual_ma = LEAKAGE_MA;
        } else if self.residual_ma == LEAKAGE_MA {
            self.residual_ma = 0;
        }
    }

    /// What the socket's sensors show now, read through the firmware's
    /// drivers exactly as on the board.
    pub(crate) fn measure(&mut self) -> Measurement {
        let current_a = if self.voltage_v > 0.0 {
            self.power_w / (self.voltage_v * POWER_FACTOR)
        } else {
            0.0
        };
        *self.sensed.lock().unwrap_or_else(PoisonError::into_inner) = Sensed {
            voltage_v: self.voltage_v,
            current_a,
            power_w: self.power_w,
            energy_wh: self.energy_wh,
        };
        // The simulated chip always answers with a valid packet; should it
        // not, the firmware would see a dead meter: zeros.
        let reading = self.meter.read().ok();
        let raw = thermistor_adc(&self.ntc, self.temperature_c);
        let residual_fault = match self.fault_line.is_tripped() {
            Ok(tripped) => tripped,
            Err(never) => match never {},
        };
        Measurement {
            voltage_v: reading.map_or(0.0, |r| r.voltage_v),
            current_a: reading.map_or(0.0, |r| r.current_a),
            power_w: reading.map_or(0.0, |r| r.power_w),
            temperature_c: self.ntc.celsius(raw).unwrap_or(f32::NAN),
            residual_ma: self.residual_ma,
            residual_fault,
        }
    }
}
