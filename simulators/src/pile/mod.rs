//! A simulated multi-socket e-bike charging pile, served over Modbus TCP.
//!
//! The pile speaks the register map of [`gridwatch_firmware::pile_map`]
//! (the same encoders the firmware uses), so a gateway that reads this
//! simulator reads a real pile. It is built in three layers:
//!
//! - [`PileModel`]: pure state over simulated time. Each socket holds a
//!   charger and battery following the field's e-bike charge curve (plateau,
//!   monotone taper, full), a first-order thermal model and injectable
//!   [`Fault`]s, behind the firmware's embedded-hal drivers (a simulated
//!   relay pin and residual-current line). The firmware's own
//!   [`PileController`](gridwatch_firmware::controller::PileController)
//!   runs every simulated second and decides state, relays and fault codes.
//!   [`Protection::Legacy`] (the default, used by the demo's yard) never
//!   cuts anything off, so detection is left to the gateway and analytics;
//!   [`Protection::Protected`] trips as docs/detection.md says.
//! - [`serve`]: a Modbus TCP server (read holding registers, read and write
//!   relay coils, write commands and limits) in front of a [`SharedPile`],
//!   answering through the firmware's own slave code.
//! - [`spawn_clock`]: a task that advances the model from the real clock,
//!   optionally much faster than real time.
//!
//! ```
//! use gridwatch_simulators::pile::{ChargerKind, PileConfig, PileModel};
//! use gridwatch_firmware::pile_map::{self, SocketState};
//!
//! let mut pile = PileModel::new(PileConfig { sockets: 4, ..PileConfig::default() })?;
//! pile.plug_in(2, ChargerKind::Lithium)?;
//! pile.step(30 * 60 * 1000); // half an hour of simulated time
//! let base = pile_map::socket_base(2).expect("socket 2 is mapped");
//! let words = pile.read_holding(base, pile_map::SOCKET_BLOCK_LEN)?;
//! let socket = pile_map::decode_socket_registers(&words)?;
//! assert_eq!(socket.state, SocketState::Charging);
//! assert!(socket.power_w > 100.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod charger;
mod clock;
pub mod command;
mod config;
mod hardware;
mod model;
mod noise;
mod registers;
mod server;
mod socket;

use std::sync::{Arc, Mutex, PoisonError};

pub(crate) use charger::Charger;
pub use charger::{ChargeStage, ChargerKind, ChargerSpec, MAX_CHARGE_CURRENT_A};
pub use clock::{spawn_clock, ClockError};
pub use command::Piles;
pub use config::{PileConfig, PileConfigError, Protection};
pub use hardware::{SimFaultLine, SimMeterUart, SimRelayPin};
pub use model::{PileModel, PileReading, SessionTruth, SocketError};
pub use registers::{
    RegisterError, MAX_READ_COILS, MAX_READ_REGISTERS, MAX_WRITE_COILS, MAX_WRITE_REGISTERS,
};
pub use server::{serve, PileService};
pub use socket::{
    Fault, LEAKAGE_MA, OVERCURRENT_A, OVER_TEMPERATURE_MAX_C, OVER_TEMPERATURE_RAMP_C_PER_MIN,
};

/// A [`PileModel`] shared between the Modbus server, the clock and whoever
/// drives the scenario (plugging in, injecting faults).
///
/// Access goes through [`with`](Self::with), a synchronous closure, so the
/// lock can never be held across an `.await`.
#[derive(Debug, Clone)]
pub struct SharedPile(Arc<Mutex<PileModel>>);

impl SharedPile {
    /// Shares `model`.
    pub fn new(model: PileModel) -> Self {
        Self(Arc::new(Mutex::new(model)))
    }

    /// Runs `f` with the model locked. If an earlier holder panicked the
    /// model is used as it was left: for a simulator, serving slightly
    /// inconsistent numbers beats taking every client down with it.
    pub fn with<R>(&self, f: impl FnOnce(&mut PileModel) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

impl From<PileModel> for SharedPile {
    fn from(model: PileModel) -> Self {
        Self::new(model)
    }
}
