//! The residual-current (earth-leakage) module's fault output, on a
//! digital input.
//!
//! Socket RCD modules (30 mA type A/AC) raise a fault line when they trip;
//! the controller trips the socket on it whatever the measured residual
//! current says.

use embedded_hal::digital::InputPin;

/// A residual-current fault line. Most modules pull the line low on fault
/// (open-collector), so that is the default; see [`FaultInput::active_high`].
#[derive(Debug)]
pub struct FaultInput<P> {
    pin: P,
    active_high: bool,
}

impl<P: InputPin> FaultInput<P> {
    /// A fault line that is active when low.
    pub fn new(pin: P) -> Self {
        Self {
            pin,
            active_high: false,
        }
    }

    /// A fault line that is active when high.
    pub fn active_high(pin: P) -> Self {
        Self {
            pin,
            active_high: true,
        }
    }

    /// Whether the module reports a fault now.
    pub fn is_tripped(&mut self) -> Result<bool, P::Error> {
        let high = self.pin.is_high()?;
        Ok(high == self.active_high)
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    #[test]
    fn active_low_line_trips_when_low() {
        let pin = Mock::new(&[Transaction::get(State::High), Transaction::get(State::Low)]);
        let mut input = FaultInput::new(pin);
        assert_eq!(input.is_tripped(), Ok(false));
        assert_eq!(input.is_tripped(), Ok(true));
        input.release().done();
    }

    #[test]
    fn active_high_line_trips_when_high() {
        let pin = Mock::new(&[Transaction::get(State::High)]);
        let mut input = FaultInput::active_high(pin);
        assert_eq!(input.is_tripped(), Ok(true));
        input.release().done();
    }
}
