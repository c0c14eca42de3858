//! One simulated socket: relay, plugged-in charger, injected faults, heat.
//!
//! The socket is a legacy one: it measures but never protects itself. An
//! injected fault changes what the socket draws or how hot it gets, while its
//! fault-code register stays 0, because finding the fault from the numbers is
//! exactly what the gateway's edge rules and analytics are for.

use gridwatch_firmware::pile_map::{FaultCode, SocketSnapshot, SocketState};
use serde::Deserialize;

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
}

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

#[derive(Debug, Clone)]
struct Session {
    charger: Charger,
    energy_wh: f64,
    elapsed_ms: u64,
}

/// Injected faults; `past_full_w` is the level the never-ending taper holds.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    overcurrent: bool,
    over_temperature: bool,
    past_full_w: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Socket {
    session: Option<Session>,
    relay_on: bool,
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
        Self {
            session: None,
            relay_on: false,
            temperature_c: env.ambient_c,
            faults: Faults::default(),
            power_w: 0.0,
            voltage_v: env.mains_voltage_v,
            residual_ma: 0,
        }
    }

    pub(crate) fn is_plugged(&self) -> bool {
        self.session.is_some()
    }

    pub(crate) fn charger(&self) -> Option<&Charger> {
        self.session.as_ref().map(|s| &s.charger)
    }

    pub(crate) fn relay_on(&self) -> bool {
        self.relay_on
    }

    /// Starts a session; the pile closes the relay as a paid-for or
    /// tag-started session would.
    pub(crate) fn plug_in(&mut self, charger: Charger, env: &Environment) {
        self.session = Some(Session {
            charger,
            energy_wh: 0.0,
            elapsed_ms: 0,
        });
        self.relay_on = true;
        self.update_power(env);
    }

    /// Ends the session and opens the relay.
    pub(crate) fn unplug(&mut self) {
        self.session = None;
        self.relay_on = false;
        self.power_w = 0.0;
        self.residual_ma = 0;
    }

    pub(crate) fn set_relay(&mut self, on: bool, env: &Environment) {
        self.relay_on = on;
        self.update_power(env);
    }

    pub(crate) fn inject(&mut self, fault: Fault, noise: &mut Noise, env: &Environment) {
        match fault {
            Fault::Overcurrent => self.faults.overcurrent = true,
            Fault::OverTemperature => self.faults.over_temperature = true,
            Fault::ChargingPastFull => {
                self.faults.past_full_w = Some(noise.uniform(60.0, 70.0));
            }
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
        ]
        .into_iter()
        .filter_map(|(on, fault)| on.then_some(fault))
        .collect()
    }

    fn powered(&self) -> bool {
        self.relay_on && self.session.is_some()
    }

    /// Advances physics by `dt_ms` (the pile keeps this ≤ 1 s).
    pub(crate) fn advance(&mut self, dt_ms: u64, env: &Environment) {
        let dt_s = dt_ms as f64 / 1000.0;
        let powered = self.powered();
        if let Some(session) = &mut self.session {
            if powered {
                session.charger.advance(dt_s);
            }
            session.energy_wh += self.power_w * dt_s / 3600.0;
            session.elapsed_ms += dt_ms;
        }
        // First-order thermal model: heading for ambient + k·P with time
        // constant τ, integrated exactly for the step.
        let target = env.ambient_c + env.thermal_rise_c_per_w * self.power_w;
        let decay = (-dt_s / env.thermal_time_constant_s).exp();
        let mut t = target + (self.temperature_c - target) * decay;
        if self.faults.over_temperature && powered {
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
    }

    /// Recomputes the true power after anything that changes the load.
    fn update_power(&mut self, env: &Environment) {
        self.power_w = match &self.session {
            Some(s) if self.relay_on => {
                if self.faults.overcurrent {
                    OVERCURRENT_A * env.mains_voltage_v * POWER_FACTOR
                } else {
                    let curve = s.charger.mains_power_w();
                    match self.faults.past_full_w {
                        Some(level) if s.charger.stage() != ChargeStage::Plateau => {
                            curve.max(level)
                        }
                        _ => curve,
                    }
                }
            }
            _ => 0.0,
        };
    }

    fn state(&self) -> SocketState {
        match &self.session {
            None => SocketState::Idle,
            Some(s) if !self.relay_on => {
                if s.energy_wh > 0.0 {
                    SocketState::Finished
                } else {
                    SocketState::Plugged
                }
            }
            Some(s) => {
                let hides_full = self.faults.overcurrent || self.faults.past_full_w.is_some();
                if s.charger.stage() == ChargeStage::Done && !hides_full {
                    SocketState::Full
                } else {
                    SocketState::Charging
                }
            }
        }
    }

    /// What the socket's meter shows now.
    pub(crate) fn snapshot(&self) -> SocketSnapshot {
        let (energy_wh, session_ms) = self
            .session
            .as_ref()
            .map_or((0.0, 0), |s| (s.energy_wh, s.elapsed_ms));
        let current_a = if self.voltage_v > 0.0 {
            self.power_w / (self.voltage_v * POWER_FACTOR)
        } else {
            0.0
        };
        SocketSnapshot {
            state: self.state(),
            voltage_v: self.voltage_v as f32,
            current_a: current_a as f32,
            power_w: self.power_w as f32,
            energy_wh: energy_wh as f32,
            temperature_c: self.temperature_c as f32,
            relay_on: self.relay_on,
            fault: FaultCode::None,
            session_s: u32::try_from(session_ms / 1000).unwrap_or(u32::MAX),
            residual_ma: self.residual_ma,
        }
    }
}
