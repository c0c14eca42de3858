//! Drivers for the socket's hardware, each generic over embedded-hal 1.0
//! traits, owning its bus or pin and giving it back with `release`.
//!
//! - [`bl0942::Bl0942`]: the BL0942 energy-metering IC on a UART
//!   (embedded-hal-nb serial).
//! - [`ntc::Ntc`]: an NTC thermistor read through an ADC value (Beta
//!   equation).
//! - [`relay::Relay`]: the socket relay on an `OutputPin`.
//! - [`residual::FaultInput`]: the residual-current module's fault line on
//!   an `InputPin`.

pub mod bl0942;
pub mod ntc;
pub mod relay;
pub mod residual;
