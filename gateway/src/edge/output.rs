//! One named output (buzzer, lift relay, status LED) held on for a time
//! after it was last fired.

use std::convert::Infallible;

use embedded_hal::digital::{ErrorType, OutputPin};
use serde::Deserialize;
use tracing::info;

/// An output as the installer configures it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Name the rules refer to, e.g. `lobby-buzzer`.
    pub name: String,
    /// BCM GPIO number on the Pi's header.
    pub gpio_bcm: u8,
    /// Drive the pin low to switch the output on (many relay boards).
    #[serde(default)]
    pub active_low: bool,
    /// How long the output stays on after the last firing.
    pub hold_ms: u64,
}

/// A pin that only logs: what the gateway uses without the `rpi` feature or
/// off a Pi, so a test bench shows what it would switch.
#[derive(Debug, Clone)]
pub struct LoggedPin {
    name: String,
    gpio_bcm: u8,
    high: bool,
}

impl LoggedPin {
    /// A logging stand-in for `name` on BCM `gpio_bcm`.
    pub fn new(name: &str, gpio_bcm: u8) -> Self {
        Self {
            name: name.to_owned(),
            gpio_bcm,
            high: false,
        }
    }

    /// The level it would drive now.
    pub fn is_high(&self) -> bool {
        self.high
    }

    fn set(&mut self, high: bool) {
        if high != self.high {
            let level = if high { "high" } else { "low" };
            info!(output = %self.name, gpio = self.gpio_bcm, "would drive GPIO {} {level} for {} (no GPIO here)", self.gpio_bcm, self.name);
        }
        self.high = high;
    }
}

impl ErrorType for LoggedPin {
    type Error = Infallible;
}

impl OutputPin for LoggedPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set(true);
        Ok(())
    }
}

/// An output that is on from a firing until `hold_ms` after the last one.
#[derive(Debug)]
pub struct HeldOutput<P> {
    config: OutputConfig,
    pin: P,
    until_ms: Option<u64>,
    on: bool,
}

impl<P: OutputPin> HeldOutput<P> {
    /// Takes `pin` and switches the output off.
    pub fn new(config: OutputConfig, pin: P) -> Result<Self, P::Error> {
        let mut output = Self {
            config,
            pin,
            until_ms: None,
            on: true,
        };
        output.switch(false)?;
        Ok(output)
    }

    /// The output's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the output is on.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Switches on now and holds until `now_ms + hold_ms` (a later firing
    /// extends the hold).
    pub fn fire(&mut self, now_ms: u64) -> Result<(), P::Error> {
        let until = now_ms.saturating_add(self.config.hold_ms);
        self.until_ms = Some(self.until_ms.map_or(until, |u| u.max(until)));
        self.switch(true)
    }

    /// Releases the output once its hold has run out at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), P::Error> {
        if self.until_ms.is_some_and(|until| now_ms >= until) {
            self.until_ms = None;
            self.switch(false)?;
        }
        Ok(())
    }

    fn switch(&mut self, on: bool) -> Result<(), P::Error> {
        if on == self.on {
            return Ok(());
        }
        if on != self.config.active_low {
            self.pin.set_high()?;
        } else {
            self.pin.set_low()?;
        }
        self.on = on;
        Ok(())
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

    fn config(active_low: bool) -> OutputConfig {
        OutputConfig {
            name: "lift-relay".into(),
            gpio_bcm: 27,
            active_low,
            hold_ms: 30_000,
        }
    }

    #[test]
    fn held_output_switches_on_and_releases_after_the_hold() {
        let pin = Mock::new(&[
            Transaction::set(State::Low),
            Transaction::set(State::High),
            Transaction::set(State::Low),
        ]);
        let mut out = HeldOutput::new(config(false), pin).expect("mock");
        out.fire(1_000).expect("mock");
        out.tick(30_999).expect("mock");
        assert!(out.is_on(), "held until 31 000");
        out.tick(31_000).expect("mock");
        assert!(!out.is_on());
        out.release().done();
    }

    #[test]
    fn a_second_firing_extends_the_hold_without_rewriting_the_pin() {
        let pin = Mock::new(&[
            Transaction::set(State::High),
            Transaction::set(State::Low),
            Transaction::set(State::High),
        ]);
        let mut out = HeldOutput::new(config(true), pin).expect("mock");
        out.fire(0).expect("mock");
        out.fire(20_000).expect("mock");
        out.tick(30_000).expect("mock");
        assert!(out.is_on(), "extended to 50 000");
        out.tick(50_000).expect("mock");
        assert!(!out.is_on());
        out.release().done();
    }

    #[test]
    fn config_refuses_unknown_fields() {
        let bad =
            toml::from_str::<OutputConfig>("name = \"b\"\ngpio_bcm = 4\nhold_ms = 1\npin = 3");
        assert!(bad.is_err());
    }
}
