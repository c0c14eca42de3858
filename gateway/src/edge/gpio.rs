//! The pin behind an output: real GPIO through rppal with the `rpi`
//! feature on a Raspberry Pi, otherwise a [`LoggedPin`].

use std::convert::Infallible;

use embedded_hal::digital::{ErrorType, OutputPin};

use super::output::{LoggedPin, OutputConfig};
use super::EdgeError;

/// An output pin of the gateway.
#[derive(Debug)]
pub enum Pin {
    /// Logs what it would switch.
    Logged(LoggedPin),
    /// A GPIO line of the Pi (rppal implements embedded-hal 1.0).
    #[cfg(feature = "rpi")]
    Gpio(rppal::gpio::OutputPin),
}

impl ErrorType for Pin {
    type Error = Infallible;
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        match self {
            Pin::Logged(p) => p.set_low(),
            #[cfg(feature = "rpi")]
            Pin::Gpio(p) => OutputPin::set_low(p),
        }
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        match self {
            Pin::Logged(p) => p.set_high(),
            #[cfg(feature = "rpi")]
            Pin::Gpio(p) => OutputPin::set_high(p),
        }
    }
}

/// Opens the pin for `config`: GPIO on a Pi with the `rpi` feature (an
/// error if the line is taken), a [`LoggedPin`] everywhere else.
pub fn open(config: &OutputConfig) -> Result<Pin, EdgeError> {
    #[cfg(feature = "rpi")]
    {
        match rppal::gpio::Gpio::new() {
            Ok(gpio) => {
                let pin = gpio.get(config.gpio_bcm).map_err(|e| EdgeError::Gpio {
                    name: config.name.clone(),
                    gpio_bcm: config.gpio_bcm,
                    reason: e.to_string(),
                })?;
                return Ok(Pin::Gpio(pin.into_output()));
            }
            Err(e) => tracing::warn!(
                output = %config.name,
                "no Raspberry Pi GPIO here ({e}); edge output {} on GPIO {} only logs what it would switch",
                config.name,
                config.gpio_bcm
            ),
        }
    }
    Ok(Pin::Logged(LoggedPin::new(&config.name, config.gpio_bcm)))
}
