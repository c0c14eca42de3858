//! Drivers for the socket's hardware, each generic over embedded-hal 1.0
//! traits, owning its bus or pin and giving it back with `release`.
//!
//! - [`relay::Relay`]: the socket relay on an `OutputPin`.
//! - [`residual::FaultInput`]: the residual-current module's fault line on
//!   an `InputPin`.

pub mod relay;
pub mod residual;
