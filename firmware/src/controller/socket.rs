//! One socket's control logic: session, relay decision and protections.
//!
//! The controller is sans-IO: it is told what the meter measured and what
//! time it is (a monotonic tick in ms), and it answers whether the relay
//! should be closed. Drivers read the meter and switch the relay around it,
//! so the same logic runs on the MCU, in the simulator and in tests, and can
//! be driven faster than real time.

use crate::pile_map::{FaultCode, SocketSnapshot, SocketState};

use super::config::{ConfigError, Protections};

/// What the socket's sensors show at one tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measurement {
    /// Mains voltage.
    pub voltage_v: f32,
    /// RMS current through the socket.
    pub current_a: f32,
    /// Active power through the socket.
    pub power_w: f32,
    /// Socket temperature.
    pub temperature_c: f32,
    /// Residual (earth-leakage) current.
    pub residual_ma: u16,
    /// The residual-current module's own fault output is active.
    pub residual_fault: bool,
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Socket number outside 1..=N.
    NoSuchSocket(u16),
    /// The socket has a latched fault; reset it first.
    Faulted(FaultCode),
    /// The whole pile is above its no-new-session limit.
    PileAtLimit,
    /// The fault cannot be reset while its cause is still present.
    CauseStillPresent(FaultCode),
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoSuchSocket(n) => write!(f, "socket {n} does not exist"),
            Self::Faulted(c) => write!(f, "socket has a latched fault {c:?}; reset it first"),
            Self::PileAtLimit => write!(f, "pile is above its no-new-session power limit"),
            Self::CauseStillPresent(c) => write!(f, "fault {c:?} cannot be reset: still present"),
        }
    }
}

impl core::error::Error for CommandError {}

/// What a tick decided, besides the relay state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// A protection cut the socket off and latched this fault.
    Fault(FaultCode),
    /// The session ended normally: full (auto-stop) or abandoned.
    Stopped,
}

#[derive(Debug, Clone, Copy, Default)]
struct Session {
    elapsed_ms: u64,
    relay_on_ms: u64,
    energy_wh: f64,
}

/// The control logic of one socket. See the [module docs](crate::controller).
#[derive(Debug, Clone)]
pub struct SocketController {
    protections: Protections,
    plugged: bool,
    relay_on: bool,
    fault: FaultCode,
    session: Session,
    last: Measurement,
    last_tick_ms: Option<u64>,
    /// When power first fell under the auto-stop level.
    low_since_ms: Option<u64>,
    /// When, and at what temperature, the socket first exceeded the limit.
    hot_since: Option<(u64, f32)>,
    /// Abandon window: elapsed ms and energy in W·ms.
    window: (u64, f64),
}

impl SocketController {
    /// An empty socket, relay open, with `protections` (validated).
    pub fn new(protections: Protections) -> Result<Self, ConfigError> {
        protections.validate()?;
        Ok(Self {
            protections,
            plugged: false,
            relay_on: false,
            fault: FaultCode::None,
            session: Session::default(),
            last: Measurement::default(),
            last_tick_ms: None,
            low_since_ms: None,
            hot_since: None,
            window: (0, 0.0),
        })
    }

    /// The protections in force.
    pub fn protections(&self) -> &Protections {
        &self.protections
    }

    /// Replaces the protections (e.g. a "set limits" command), after
    /// checking them; on error nothing changes.
    pub fn set_protections(&mut self, protections: Protections) -> Result<(), ConfigError> {
        protections.validate()?;
        self.protections = protections;
        Ok(())
    }

    /// Whether the relay should be closed now.
    pub fn relay_on(&self) -> bool {
        self.relay_on
    }

    /// Whether a plug is in.
    pub fn is_plugged(&self) -> bool {
        self.plugged
    }

    /// The latched fault, [`FaultCode::None`] if there is none.
    pub fn fault(&self) -> FaultCode {
        self.fault
    }

    /// The last measurement given to [`tick`](Self::tick).
    pub fn measurement(&self) -> &Measurement {
        &self.last
    }

    /// A plug went in: a new session begins (the relay stays as it is).
    pub fn plug_in(&mut self) {
        self.plugged = true;
        self.session = Session::default();
        self.reset_filters();
    }

    /// The plug came out: the session ends and the relay opens. A latched
    /// fault stays until [`reset_fault`](Self::reset_fault).
    pub fn unplug(&mut self) {
        self.plugged = false;
        self.relay_on = false;
        self.session = Session::default();
        self.reset_filters();
    }

    /// Closes the relay (a paid or tag-started session, or a Modbus
    /// command). Refused while a fault is latched.
    pub fn start(&mut self) -> Result<(), CommandError> {
        if self.fault != FaultCode::None {
            return Err(CommandError::Faulted(self.fault));
        }
        if !self.relay_on {
            self.relay_on = true;
            self.session.relay_on_ms = 0;
            self.reset_filters();
        }
        Ok(())
    }

    /// Opens the relay; the session stays until unplug.
    pub fn stop(&mut self) {
        self.relay_on = false;
        self.reset_filters();
    }

    /// Clears a latched fault, unless its cause is still measured (the
    /// residual-current input is active). The relay stays open.
    pub fn reset_fault(&mut self) -> Result<(), CommandError> {
        if self.fault == FaultCode::ResidualCurrent && self.residual_tripped(&self.last) {
            return Err(CommandError::CauseStillPresent(self.fault));
        }
        self.fault = FaultCode::None;
        Ok(())
    }

    /// Advances to `now_ms` (monotonic) with the sensors showing `m`, and
    /// applies the protections. Returns what tripped, if anything; the relay
    /// decision is then [`relay_on`](Self::relay_on).
    pub fn tick(&mut self, now_ms: u64, m: &Measurement) -> Option<Trip> {
        let dt = self
            .last_tick_ms
            .map_or(0, |last| now_ms.saturating_sub(last));
        self.last_tick_ms = Some(now_ms.max(self.last_tick_ms.unwrap_or(0)));
        self.last = *m;
        if self.plugged {
            self.session.elapsed_ms = self.session.elapsed_ms.saturating_add(dt);
            self.session.energy_wh += f64::from(m.power_w.max(0.0)) * dt as f64 / 3_600_000.0;
            if self.relay_on {
                self.session.relay_on_ms = self.session.relay_on_ms.saturating_add(dt);
            }
        }
        if !self.relay_on {
            return None;
        }
        if let Some(code) = self.check_faults(now_ms, m) {
            self.relay_on = false;
            self.fault = code;
            self.reset_filters();
            return Some(Trip::Fault(code));
        }
        if self.plugged && self.session_ended(now_ms, m, dt) {
            self.stop();
            return Some(Trip::Stopped);
        }
        None
    }

    fn residual_tripped(&self, m: &Measurement) -> bool {
        self.protections
            .residual_trip_ma
            .is_some_and(|trip| m.residual_fault || m.residual_ma >= trip)
    }

    fn check_faults(&mut self, now_ms: u64, m: &Measurement) -> Option<FaultCode> {
        let p = self.protections;
        if self.residual_tripped(m) {
            return Some(FaultCode::ResidualCurrent);
        }
        if p.overcurrent_a.is_some_and(|limit| m.current_a > limit) {
            return Some(FaultCode::Overcurrent);
        }
        if p.overpower_w.is_some_and(|limit| m.power_w > limit) {
            return Some(FaultCode::Overpower);
        }
        if let Some(t) = p.over_temperature {
            if m.temperature_c > t.limit_c {
                let (since, from_c) = *self.hot_since.get_or_insert((now_ms, m.temperature_c));
                let held = now_ms - since;
                if held >= t.persistence_ms {
                    let minutes = held as f32 / 60_000.0;
                    let rise = if minutes > 0.0 {
                        (m.temperature_c - from_c) / minutes
                    } else {
                        0.0
                    };
                    if rise > t.min_rise_c_per_min || t.min_rise_c_per_min == 0.0 {
                        return Some(FaultCode::OverTemperature);
                    }
                }
            } else {
                self.hot_since = None;
            }
        }
        if !self.plugged {
            return None;
        }
        let s = self.session;
        if p.max_charging_ms.is_some_and(|max| s.relay_on_ms >= max)
            || p.forced_stop_ms.is_some_and(|max| s.elapsed_ms >= max)
        {
            return Some(FaultCode::SessionTooLong);
        }
        None
    }

    /// Auto-stop when full and abandon detection.
    fn session_ended(&mut self, now_ms: u64, m: &Measurement, dt: u64) -> bool {
        if let Some(a) = self.protections.auto_stop {
            if m.power_w < a.below_w {
                let since = *self.low_since_ms.get_or_insert(now_ms);
                if now_ms - since >= a.hold_ms {
                    return true;
                }
            } else {
                self.low_since_ms = None;
            }
        }
        if let Some(a) = self.protections.abandon {
            self.window.0 += dt;
            self.window.1 += f64::from(m.power_w.max(0.0)) * dt as f64;
            if self.window.0 >= a.window_ms {
                let mean = self.window.1 / self.window.0 as f64;
                self.window = (0, 0.0);
                if mean < f64::from(a.below_w) {
                    return true;
                }
            }
        }
        false
    }

    fn reset_filters(&mut self) {
        self.low_since_ms = None;
        self.hot_since = None;
        self.window = (0, 0.0);
    }

    /// What the socket reports now, from the state and last measurement.
    pub fn state(&self) -> SocketState {
        let delivered = self.session.energy_wh > 0.0;
        if self.fault != FaultCode::None {
            SocketState::Fault
        } else if !self.plugged {
            SocketState::Idle
        } else if !self.relay_on {
            if delivered {
                SocketState::Finished
            } else {
                SocketState::Plugged
            }
        } else if self.last.power_w >= self.protections.full_below_w {
            SocketState::Charging
        } else if delivered {
            SocketState::Full
        } else {
            SocketState::Plugged
        }
    }

    /// Energy delivered in this session.
    pub fn session_energy_wh(&self) -> f64 {
        self.session.energy_wh
    }

    /// Time since plug-in.
    pub fn session_ms(&self) -> u64 {
        self.session.elapsed_ms
    }

    /// The socket's registers' values (see [`crate::pile_map`]).
    pub fn snapshot(&self) -> SocketSnapshot {
        SocketSnapshot {
            state: self.state(),
            voltage_v: self.last.voltage_v,
            current_a: self.last.current_a,
            power_w: self.last.power_w,
            energy_wh: self.session.energy_wh as f32,
            temperature_c: self.last.temperature_c,
            relay_on: self.relay_on,
            fault: self.fault,
            session_s: u32::try_from(self.session.elapsed_ms / 1000).unwrap_or(u32::MAX),
            residual_ma: self.last.residual_ma,
        }
    }
}
