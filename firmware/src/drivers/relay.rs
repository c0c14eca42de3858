//! The socket's relay on a digital output.
//!
//! Owns its pin and remembers what it last commanded, so the controller's
//! decision and the pin can be compared without reading the pin back. Most
//! relay boards are driven through a transistor (high = closed); boards with
//! an active-low input are built with [`Relay::active_low`].

use embedded_hal::digital::OutputPin;

/// A relay on an [`OutputPin`]. Starts open (socket off).
#[derive(Debug)]
pub struct Relay<P> {
    pin: P,
    active_low: bool,
    closed: bool,
}

impl<P: OutputPin> Relay<P> {
    /// A relay closed by driving `pin` high; opens it now.
    pub fn new(pin: P) -> Result<Self, P::Error> {
        Self::build(pin, false)
    }

    /// A relay closed by driving `pin` low; opens it now.
    pub fn active_low(pin: P) -> Result<Self, P::Error> {
        Self::build(pin, true)
    }

    fn build(pin: P, active_low: bool) -> Result<Self, P::Error> {
        let mut relay = Self {
            pin,
            active_low,
            closed: true,
        };
        relay.set(false)?;
        Ok(relay)
    }

    /// Closes (`true`, socket live) or opens the relay. The pin is written
    /// only when the state changes; on error the remembered state is kept.
    pub fn set(&mut self, closed: bool) -> Result<(), P::Error> {
        if closed == self.closed {
            return Ok(());
        }
        if closed != self.active_low {
            self.pin.set_high()?;
        } else {
            self.pin.set_low()?;
        }
        self.closed = closed;
        Ok(())
    }

    /// Whether the relay was last commanded closed.
    pub fn is_closed(&self) -> bool {
        self.closed
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
    fn relay_starts_open_and_writes_only_changes() {
        let pin = Mock::new(&[
            Transaction::set(State::Low),
            Transaction::set(State::High),
            Transaction::set(State::Low),
        ]);
        let mut relay = Relay::new(pin).expect("mock pin");
        assert!(!relay.is_closed());
        relay.set(true).expect("mock pin");
        relay.set(true).expect("no second write");
        assert!(relay.is_closed());
        relay.set(false).expect("mock pin");
        relay.release().done();
    }

    #[test]
    fn active_low_relay_inverts_the_pin() {
        let pin = Mock::new(&[Transaction::set(State::High), Transaction::set(State::Low)]);
        let mut relay = Relay::active_low(pin).expect("mock pin");
        relay.set(true).expect("mock pin");
        relay.release().done();
    }
}
