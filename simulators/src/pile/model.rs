//! The pile as a pure state machine over simulated time: simulated
//! hardware (chargers, heat, relays) run by the firmware's own controller.
//!
//! No sockets, no wall clock: the caller advances time explicitly, so a test
//! can charge a battery for ten hours in milliseconds and the demo can run a
//! yard 1000× faster than real time. Every simulated second the physics
//! advances, the firmware's [`PileController`] is ticked with what the
//! sensors show, and the relays are driven as it decides, so a simulated
//! pile behaves exactly as the firmware would. Measurement noise is drawn
//! once per [`PileModel::step`], so any number of reads between two steps
//! agree.

use gridwatch_firmware::controller::{
    CommandError, PileController, Protections, SocketController, Trip,
};
use gridwatch_firmware::pile_map::{PileSnapshot, SocketSnapshot};
use tracing::info;

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
    /// The firmware refused a command (latched fault, pile at its limit).
    #[error("socket {socket}: the pile's firmware refused: {reason}")]
    Refused {
        /// Socket asked for.
        socket: u16,
        /// Why the controller refused.
        reason: CommandError,
    },
    /// Limits that the firmware cannot work with.
    #[error("socket {socket}: invalid protection setting: {reason}")]
    InvalidLimits {
        /// Socket asked for.
        socket: u16,
        /// The offending setting.
        reason: gridwatch_firmware::controller::ConfigError,
    },
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
#[derive(Debug)]
pub struct PileModel {
    config: PileConfig,
    env: Environment,
    noise: Noise,
    now_ms: u64,
    sockets: Vec<Socket>,
    controller: PileController<Vec<SocketController>>,
    /// The firmware hung: see [`PileModel::set_hung`].
    hung: bool,
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
        let (protections, limits) = config.firmware();
        let controllers = (0..config.sockets)
            .map(|_| SocketController::new(protections))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PileConfigError::Firmware(e.field))?;
        let mut model = Self {
            noise: Noise::new(config.seed),
            sockets: (0..config.sockets).map(|_| Socket::new(&env)).collect(),
            controller: PileController::new(controllers, limits),
            config,
            env,
            now_ms: 0,
            hung: false,
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
            self.now_ms = self.now_ms.saturating_add(dt);
            self.run_firmware();
        }
        self.sample();
    }

    /// Hangs the firmware (or lets it run again): a non-compliant pile
    /// that still answers Modbus but whose registers are stuck at their
    /// last values, because the controller stopped reading its sensors.
    /// The physics goes on (chargers charge, faults heat), unseen.
    pub fn set_hung(&mut self, hung: bool) {
        self.hung = hung;
        if !hung {
            self.settle();
        }
    }

    /// Whether the firmware is hung ([`set_hung`](Self::set_hung)).
    pub fn is_hung(&self) -> bool {
        self.hung
    }

    /// One firmware tick at `now_ms`: the controller reads every socket's
    /// sensors, decides, and the relays follow. Nothing while hung.
    fn run_firmware(&mut self) {
        if self.hung {
            return;
        }
        let sockets = &mut self.sockets;
        let now = self.now_ms;
        self.controller.tick(
            now,
            |n| sockets[usize::from(n - 1)].measure(),
            |n, trip| match trip {
                Trip::Fault(code) => {
                    info!(socket = n, "pile firmware cut socket {n} off: {code:?}");
                }
                Trip::Stopped => info!(socket = n, "pile firmware ended the session on socket {n}"),
            },
        );
        self.apply_relays();
    }

    fn apply_relays(&mut self) {
        let env = self.env;
        for (socket, controller) in self.sockets.iter_mut().zip(self.controller.sockets()) {
            if socket.relay_on() != controller.relay_on() {
                socket.set_relay(controller.relay_on(), &env);
            }
        }
    }

    /// After an event (plug, command, fault injection): the firmware sees
    /// the new sensor values at the same instant.
    fn settle(&mut self) {
        self.apply_relays();
        self.run_firmware();
    }

    /// Advances simulated time to `t_ms`; does nothing if that is not later
    /// than [`now_ms`](Self::now_ms) (time never runs backwards).
    pub fn advance_to(&mut self, t_ms: u64) {
        if t_ms > self.now_ms {
            self.step(t_ms - self.now_ms);
        }
    }

    /// Plugs a charger with a random battery of `kind` into `socket` and
    /// starts it, as a paid or tag-started session does (the firmware may
    /// refuse to close the relay: a latched fault, or the pile at its
    /// limit). Returns the battery drawn, as ground truth.
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
        self.controller
            .socket_mut(socket)
            .map_err(|reason| SocketError::Refused { socket, reason })?
            .plug_in();
        if let Err(reason) = self.controller.start(socket) {
            info!(
                socket,
                "pile firmware did not start socket {socket}: {reason}"
            );
        }
        self.settle();
        Ok(())
    }

    /// Unplugs `socket`: the session ends, its counters return to 0 and the
    /// relay opens.
    pub fn unplug(&mut self, socket: u16) -> Result<(), SocketError> {
        let env = self.env;
        let s = self.socket_mut(socket)?;
        if !s.is_plugged() {
            return Err(SocketError::NotPlugged(socket));
        }
        s.unplug(&env);
        self.firmware(socket, |c| {
            c.socket_mut(socket)?.unplug();
            Ok(())
        })?;
        self.settle();
        Ok(())
    }

    /// Asks the firmware to close (`true`, start) or open (`false`, stop) a
    /// socket's relay. With the relay open the socket draws nothing and its
    /// charger pauses. Starting is refused while the socket has a latched
    /// fault or the pile is above its no-new-session limit.
    pub fn set_relay(&mut self, socket: u16, on: bool) -> Result<(), SocketError> {
        self.index(socket)?;
        let result = self.firmware(
            socket,
            |c| if on { c.start(socket) } else { c.stop(socket) },
        );
        self.settle();
        result
    }

    /// Clears a socket's latched fault (the relay stays open).
    pub fn reset_fault(&mut self, socket: u16) -> Result<(), SocketError> {
        self.index(socket)?;
        let result = self.firmware(socket, |c| c.reset_fault(socket));
        self.settle();
        result
    }

    /// The firmware's protections of `socket`.
    pub fn protections(&self, socket: u16) -> Result<Protections, SocketError> {
        self.index(socket)?;
        self.controller
            .socket(socket)
            .map(|c| *c.protections())
            .map_err(|reason| SocketError::Refused { socket, reason })
    }

    /// Replaces `socket`'s protections ("set limits"), validated by the
    /// firmware.
    pub fn set_protections(
        &mut self,
        socket: u16,
        protections: Protections,
    ) -> Result<(), SocketError> {
        self.index(socket)?;
        let c = self
            .controller
            .socket_mut(socket)
            .map_err(|reason| SocketError::Refused { socket, reason })?;
        c.set_protections(protections)
            .map_err(|reason| SocketError::InvalidLimits { socket, reason })
    }

    /// The firmware's view of the pile, for inspection.
    pub fn controller(&self) -> &PileController<Vec<SocketController>> {
        &self.controller
    }

    /// Runs a firmware operation (a Modbus write), then lets the hardware
    /// follow its decision.
    pub(crate) fn with_firmware<R>(
        &mut self,
        f: impl FnOnce(&mut PileController<Vec<SocketController>>) -> R,
    ) -> R {
        let result = f(&mut self.controller);
        self.settle();
        result
    }

    fn firmware(
        &mut self,
        socket: u16,
        f: impl FnOnce(&mut PileController<Vec<SocketController>>) -> Result<(), CommandError>,
    ) -> Result<(), SocketError> {
        f(&mut self.controller).map_err(|reason| SocketError::Refused { socket, reason })
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
        self.settle();
        Ok(())
    }

    /// Removes one injected fault from `socket`, leaving any others.
    pub fn clear_fault(&mut self, socket: u16, fault: Fault) -> Result<(), SocketError> {
        let env = self.env;
        self.socket_mut(socket)?.clear_fault(fault, &env);
        self.settle();
        Ok(())
    }

    /// Removes every injected fault from `socket`.
    pub fn clear_faults(&mut self, socket: u16) -> Result<(), SocketError> {
        let env = self.env;
        self.socket_mut(socket)?.clear_faults(&env);
        self.settle();
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

    /// What `socket`'s registers show now: the firmware's snapshot.
    pub fn socket(&self, socket: u16) -> Result<SocketSnapshot, SocketError> {
        self.index(socket)?;
        self.controller
            .socket(socket)
            .map(SocketController::snapshot)
            .map_err(|reason| SocketError::Refused { socket, reason })
    }

    /// What all meters show now. Registers are these values encoded with
    /// [`gridwatch_firmware::pile_map`].
    pub fn snapshot(&self) -> PileReading {
        PileReading {
            at_ms: self.now_ms,
            pile: self.pile_snapshot(),
            sockets: self
                .controller
                .sockets()
                .iter()
                .map(SocketController::snapshot)
                .collect(),
        }
    }

    /// The pile block's values now.
    pub fn pile_snapshot(&self) -> PileSnapshot {
        self.controller.snapshot()
    }

    fn sample(&mut self) {
        let amplitude = self.config.voltage_noise_v;
        for socket in &mut self.sockets {
            socket.sample(&mut self.noise, amplitude, &self.env);
        }
        self.run_firmware();
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
