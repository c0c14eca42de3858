//! The charging-socket controller: a state machine per socket (idle →
//! plugged → charging → full → finished, or fault) with the protections of
//! `docs/detection.md` as configuration, and a pile-level power limit.
//!
//! It works from a monotonic tick passed in, never from a wall clock, so the
//! simulator can run it 1000× faster than real time.
//!
//! ```
//! use gridwatch_firmware::controller::{Measurement, Protections, SocketController, Trip};
//! use gridwatch_firmware::pile_map::{FaultCode, SocketState};
//!
//! let mut socket = SocketController::new(Protections::default())?;
//! socket.plug_in();
//! socket.start()?;
//! let charging = Measurement { voltage_v: 230.0, current_a: 0.9, power_w: 200.0, temperature_c: 30.0, ..Measurement::default() };
//! assert_eq!(socket.tick(0, &charging), None);
//! assert_eq!(socket.tick(1_000, &charging), None);
//! assert_eq!(socket.state(), SocketState::Charging);
//! let short = Measurement { current_a: 7.0, power_w: 1600.0, ..charging };
//! assert_eq!(socket.tick(2_000, &short), Some(Trip::Fault(FaultCode::Overcurrent)));
//! assert!(!socket.relay_on());
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

mod config;
mod pile;
mod socket;

pub use config::{Abandon, AutoStop, ConfigError, OverTemperature, PileLimits, Protections};
pub use pile::PileController;
pub use socket::{CommandError, Measurement, SocketController, Trip};

#[cfg(test)]
mod tests;
