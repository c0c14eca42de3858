#![no_std]
//! Charging-socket logic for Gridwatch's pile controllers, on embedded-hal 1.0.
//!
//! This crate runs on the pile's microcontroller, so it is `no_std` and never
//! allocates. The same code runs inside the pile simulator on the host.
//!
//! - [`pile_map`] is the one definition of the pile's Modbus register map:
//!   the firmware encodes its measurements with it, the simulator serves
//!   exactly the same words, and the gateway's device profile is written
//!   against it.
//! - [`controller`] is each socket's state machine with the protections of
//!   docs/detection.md as configuration, plus the whole-pile power limit; it runs
//!   from a tick passed in, never a wall clock.
//! - [`drivers`] read the BL0942 metering IC, the NTC thermistor, and drive
//!   the relay and read the residual-current line, over embedded-hal 1.0.
//! - [`slave`] answers Modbus requests from the controller, with sans-IO RTU
//!   framing.
//!
//! ```
//! use gridwatch_firmware::pile_map::{self, FaultCode, SocketSnapshot, SocketState};
//!
//! let socket = SocketSnapshot {
//!     state: SocketState::Charging,
//!     voltage_v: 231.4,
//!     current_a: 0.9,
//!     power_w: 201.6,
//!     energy_wh: 350.0,
//!     temperature_c: 28.5,
//!     relay_on: true,
//!     fault: FaultCode::None,
//!     session_s: 5400,
//!     residual_ma: 2,
//! };
//! let words = pile_map::encode_socket_registers(&socket);
//! assert_eq!(words[pile_map::SOCKET_VOLTAGE as usize], 2314);
//! assert_eq!(pile_map::socket_base(2), Some(120));
//! ```

#[cfg(feature = "std")]
extern crate std;

pub mod controller;
pub mod drivers;
pub mod pile_map;
pub mod slave;
