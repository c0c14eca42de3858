//! The pile as a pure state machine over simulated time.
//!
//! No sockets, no wall clock: the caller advances time explicitly, so a test
//! can charge a battery for ten hours in milliseconds and the demo can run a
//! yard 1000× faster than real time. Measurement noise is drawn once per
//! [`PileModel::step`], so any number of reads between two steps agree.

use gridwatch_firmware::pile_map::{
    PileSnapshot, SocketSnapshot, PILE_FAULT_OVERLOAD, PILE_FAULT_SOCKET,
};

use super::charger::{ChargeStage, Charger, ChargerKind, ChargerSpec};
use super::config::{PileConfig, PileConfigError};
use super::noise::Noise;
use super::socket::{Environment, Fault, Socket};

/// Physics is integrated in steps of at most this many simulated ms.
const MAX_SUBSTEP_MS: u64 = 1000;

/// Why an operation on a socket was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SocketError {
    /// Socket number outside 1..=N.
    #[error("socket {socket} does not exist; this pile has sockets 1 to {sockets}")]
    NoSuchSocket {
        /// Socket asked for.
        socket: u16,
        /// Sockets on the pile.
        sockets: u16,
    },
    /// Plug-in on a socket that already has a plug.
    #[error("socket {0} already has a charger plugged in")]
    AlreadyPlugged(u16),
    /// Unplug on an empty socket.
    #[error("socket {0} has nothing plugged in")]
    NotPlugged(u16),
    /// A charger spec that no battery could have.
    #[error("socket {socket}: charger spec {spec:?} is not a plausible e-bike battery")]
    InvalidSpec {
        /// Socket asked for.
        socket: u16,
        /// The refused spec.
        spec: ChargerSpec,
    },
}

/// Everything the pile's meters show at one simulated instant.
#[derive(Debug, Clone, PartialEq)]
pub struct PileReading {
    /// Simulated time, ms since the model was created.
    pub at_ms: u64,
    /// The pile block.
    pub pile: PileSnapshot,
    /// Sockets 1..=N, in order (`sockets[0]` is socket 1).
    pub sockets: Vec<SocketSnapshot>,
}

/// Ground truth about a socket's session, which no register shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionTruth {
    /// The battery and charger plugged in.
    pub spec: ChargerSpec,
    /// Where the charger is in its curve.
    pub stage: ChargeStage,
    /// Battery state of charge, `0.0..=1.0`.
    pub state_of_charge: f64,
}

/// A simulated multi-socket e-bike charging pile. See the [module
/// docs](super) for the behaviour and [`PileModel::read_holding`] for the
/// Modbus view.
#[derive(Debug, Clone)]
pub struct PileModel {
    config: PileConfig,
    env: Environment,
    noise: Noise,
    now_ms: u64,
    sockets: Vec<Socket>,
}

impl PileModel {
    /// Builds an idle pile at simulated time 0, all relays off.
    pub fn new(config: PileConfig) -> Result<Self, PileConfigError> {
        config.validate()?;
        let env = Environment {
            ambient_c: config.ambient_c,
            mains_voltage_v: config.mains_voltage_v,
            thermal_rise_c_per_w: config.thermal_rise_c_per_w,
            thermal_time_constant_s: config.thermal_time_constant_s,
        };
        let mut model = Self {
            noise: Noise::new(config.seed),
            sockets: (0..config.sockets).map(|_| Socket::new(&env)).collect(),
            config,
            env,
            now_ms: 0,
        };
        model.sample();
        Ok(model)
    }

    /// The configuration the pile was built from.
    pub fn config(&self) -> &PileConfig {
        &self.config
    }

    /// Number of sockets N.
    pub fn socket_count(&self) -> u16 {
        self.config.sockets
    }

    /// Simulated time, ms since the model was created.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Advances simulated time by `dt_ms`.
    pub fn step(&mut self, dt_ms: u64) {
        let mut left = dt_ms;
        while left > 0 {
            let dt = left.min(MAX_SUBSTEP_MS);
            for socket in &mut self.sockets {
                socket.advance(dt, &self.env);
            }
            left -= dt;
        }
        self.now_ms = self.now_ms.saturating_add(dt_ms);
        self.sample();
    }

    /// Advances simulated time to `t_ms`; does nothing if that is not later
    /// than [`now_ms`](Self::now_ms) (time never runs backwards).
    pub fn advance_to(&mut self, t_ms: u64) {
        if t_ms > self.now_ms {
            self.step(t_ms - self.now_ms);
        }
    }

    /// Plugs a charger with a random battery of `kind` into `socket` and
    /// closes its relay, as a paid or tag-started session does. Returns the
    /// battery drawn, as ground truth.
    pub fn plug_in(&mut self, socket: u16, kind: ChargerKind) -> Result<ChargerSpec, SocketError> {
        self.check_free(socket)?;
        let spec = ChargerSpec::random(kind, &mut self.noise);
        self.plug_in_with(socket, spec)?;
        Ok(spec)
    }

    /// Like [`plug_in`](Self::plug_in) with a chosen battery.
    pub fn plug_in_with(&mut self, socket: u16, spec: ChargerSpec) -> Result<(), SocketError> {
        self.check_free(socket)?;
        if !spec.is_valid() {
            return Err(SocketError::InvalidSpec { socket, spec });
        }
        let env = self.env;
        self.socket_mut(socket)?.plug_in(Charger::new(spec), &env);
        Ok(())
    }

    /// Unplugs `socket`: the session ends, its counters return to 0 and the
    /// relay opens.
    pub fn unplug(&mut self, socket: u16) -> Result<(), SocketError> {
        let s = self.socket_mut(socket)?;
        if !s.is_plugged() {
            return Err(SocketError::NotPlugged(socket));
        }
        s.unplug();
        Ok(())
    }

    /// Opens (`false`) or closes (`true`) a socket's relay. With the relay
    /// open the socket draws nothing and its charger pauses.
    pub fn set_relay(&mut self, socket: u16, on: bool) -> Result<(), SocketError> {
        let env = self.env;
        self.socket_mut(socket)?.set_relay(on, &env);
        Ok(())
    }

    /// Whether `socket`'s relay is closed.
    pub fn relay(&self, socket: u16) -> Result<bool, SocketError> {
        Ok(self.socket_ref(socket)?.relay_on())
    }

    /// Injects `fault` into `socket` until [`clear_faults`](Self::clear_faults).
    pub fn inject(&mut self, socket: u16, fault: Fault) -> Result<(), SocketError> {
        let env = self.env;
        let index = self.index(socket)?;
        self.sockets[index].inject(fault, &mut self.noise, &env);
        Ok(())
    }

    /// Removes every injected fault from `socket`.
    pub fn clear_faults(&mut self, socket: u16) -> Result<(), SocketError> {
        let env = self.env;
        self.socket_mut(socket)?.clear_faults(&env);
        Ok(())
    }

    /// The faults injected into `socket`: the ground truth analytics should
    /// find.
    pub fn faults(&self, socket: u16) -> Result<Vec<Fault>, SocketError> {
        Ok(self.socket_ref(socket)?.faults())
    }

    /// The session plugged into `socket`, if any, as ground truth for
    /// evaluating detectors.
    pub fn session(&self, socket: u16) -> Result<Option<SessionTruth>, SocketError> {
        Ok(self.socket_ref(socket)?.charger().map(|c| SessionTruth {
            spec: *c.spec(),
            stage: c.stage(),
            state_of_charge: c.state_of_charge(),
        }))
    }

    /// What `socket`'s meter shows now.
    pub fn socket(&self, socket: u16) -> Result<SocketSnapshot, SocketError> {
        Ok(self.socket_ref(socket)?.snapshot())
    }

    /// What all meters show now. Registers are these values encoded with
    /// [`gridwatch_firmware::pile_map`].
    pub fn snapshot(&self) -> PileReading {
        PileReading {
            at_ms: self.now_ms,
            pile: self.pile_snapshot(),
            sockets: self.sockets.iter().map(Socket::snapshot).collect(),
        }
    }

    /// The pile block's values now.
    pub fn pile_snapshot(&self) -> PileSnapshot {
        let sockets: Vec<SocketSnapshot> = self.sockets.iter().map(Socket::snapshot).collect();
        let total_power_w: f32 = sockets.iter().map(|s| s.power_w).sum();
        let mut fault_bits = 0;
        if sockets.iter().any(|s| s.fault as u16 != 0) {
            fault_bits |= PILE_FAULT_SOCKET;
        }
        if f64::from(total_power_w) > self.config.rated_power_w {
            fault_bits |= PILE_FAULT_OVERLOAD;
        }
        PileSnapshot {
            socket_count: self.config.sockets,
            total_power_w,
            fault_bits,
        }
    }

    fn sample(&mut self) {
        let amplitude = self.config.voltage_noise_v;
        for socket in &mut self.sockets {
            socket.sample(&mut self.noise, amplitude, &self.env);
        }
    }

    fn check_free(&self, socket: u16) -> Result<(), SocketError> {
        if self.socket_ref(socket)?.is_plugged() {
            return Err(SocketError::AlreadyPlugged(socket));
        }
        Ok(())
    }

    fn index(&self, socket: u16) -> Result<usize, SocketError> {
        if socket == 0 || socket > self.config.sockets {
            return Err(SocketError::NoSuchSocket {
                socket,
                sockets: self.config.sockets,
            });
        }
        Ok(usize::from(socket - 1))
    }

    fn socket_ref(&self, socket: u16) -> Result<&Socket, SocketError> {
        let i = self.index(socket)?;
        Ok(&self.sockets[i])
    }

    fn socket_mut(&mut self, socket: u16) -> Result<&mut Socket, SocketError> {
        let i = self.index(socket)?;
        Ok(&mut self.sockets[i])
    }
}

#[cfg(test)]
mod tests;
