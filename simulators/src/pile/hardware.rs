//! Simulated hardware behind the firmware's embedded-hal traits: the relay
//! coil's drive line, the residual-current module's fault line, the BL0942
//! metering IC on its UART, and the thermistor's ADC value.
//!
//! The socket's physics sets what each part "senses"; the firmware's own
//! drivers ([`Relay`](gridwatch_firmware::drivers::relay::Relay),
//! [`FaultInput`](gridwatch_firmware::drivers::residual::FaultInput),
//! [`Bl0942`](gridwatch_firmware::drivers::bl0942::Bl0942),
//! [`Ntc`]) read and drive them exactly as on the board.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use embedded_hal_nb::nb;
use embedded_hal_nb::serial;
use gridwatch_firmware::drivers::bl0942::{
    Calibration, CMD_READ, FRAME_HEAD, FRAME_LEN, REG_FULL_PACKET,
};
use gridwatch_firmware::drivers::ntc::Ntc;

/// The relay coil's drive line.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimRelayPin {
    high: bool,
}

impl ErrorType for SimRelayPin {
    type Error = Infallible;
}

impl OutputPin for SimRelayPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.high = false;
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.high = true;
        Ok(())
    }
}

/// The residual-current module's open-collector fault line (low = fault).
#[derive(Debug, Clone, Default)]
pub struct SimFaultLine {
    pub(crate) low: Arc<AtomicBool>,
}

impl ErrorType for SimFaultLine {
    type Error = Infallible;
}

impl InputPin for SimFaultLine {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(!self.low.load(Ordering::Relaxed))
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(self.low.load(Ordering::Relaxed))
    }
}

/// What the metering IC senses now, set by the socket's physics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sensed {
    pub voltage_v: f64,
    pub current_a: f64,
    pub power_w: f64,
    pub energy_wh: f64,
}

/// A BL0942 at device address 0 on the other end of a UART: answers the
/// full-packet read with a correctly framed, checksummed packet of what it
/// senses, in the reference calibration's counts.
#[derive(Debug, Clone)]
pub struct SimMeterUart {
    pub(crate) sensed: Arc<Mutex<Sensed>>,
    command: [u8; 2],
    command_len: usize,
    reply: [u8; FRAME_LEN],
    /// Bytes of `reply` already read; `FRAME_LEN` when there is none.
    sent: usize,
}

impl Default for SimMeterUart {
    fn default() -> Self {
        Self {
            sensed: Arc::default(),
            command: [0; 2],
            command_len: 0,
            reply: [0; FRAME_LEN],
            sent: FRAME_LEN,
        }
    }
}

impl SimMeterUart {
    fn packet(&self) -> [u8; FRAME_LEN] {
        let s = *self.sensed.lock().unwrap_or_else(PoisonError::into_inner);
        let cal = Calibration::default();
        // `as` saturates; the 24-bit registers then keep the low 3 bytes.
        let counts = |x: f64, per: f32| (x * f64::from(per)).round() as i64;
        let mut f = [0u8; FRAME_LEN];
        f[0] = FRAME_HEAD;
        let mut put = |at: usize, v: i64| {
            let v = v.clamp(-(1 << 23), (1 << 24) - 1) as u32;
            f[at..at + 3].copy_from_slice(&v.to_le_bytes()[..3]);
        };
        let i = counts(s.current_a, cal.counts_per_a);
        put(1, i);
        put(4, counts(s.voltage_v, cal.counts_per_v));
        put(7, i);
        put(
            10,
            counts(s.power_w, cal.counts_per_w).clamp(-(1 << 23), (1 << 23) - 1),
        );
        put(13, counts(s.energy_wh / 1000.0, cal.counts_per_kwh));
        f[16..18].copy_from_slice(&20_000u16.to_le_bytes()); // 50 Hz
        let sum = f[..FRAME_LEN - 1]
            .iter()
            .fold(CMD_READ, |acc, &b| acc.wrapping_add(b));
        f[FRAME_LEN - 1] = !sum;
        f
    }
}

impl serial::ErrorType for SimMeterUart {
    type Error = Infallible;
}

impl serial::Write<u8> for SimMeterUart {
    fn write(&mut self, word: u8) -> nb::Result<(), Infallible> {
        self.command[self.command_len] = word;
        self.command_len += 1;
        if self.command_len == 2 {
            if self.command == [CMD_READ, REG_FULL_PACKET] {
                self.reply = self.packet();
                self.sent = 0;
            }
            self.command_len = 0;
        }
        Ok(())
    }

    fn flush(&mut self) -> nb::Result<(), Infallible> {
        Ok(())
    }
}

impl serial::Read<u8> for SimMeterUart {
    fn read(&mut self) -> nb::Result<u8, Infallible> {
        let byte = *self.reply.get(self.sent).ok_or(nb::Error::WouldBlock)?;
        self.sent += 1;
        Ok(byte)
    }
}

/// The ADC value a thermistor at `temperature_c` gives on `ntc`'s divider
/// (the inverse of [`Ntc::celsius`]), kept off the open and short codes.
pub(crate) fn thermistor_adc(ntc: &Ntc, temperature_c: f64) -> u16 {
    let t = temperature_c + 273.15;
    let t0 = f64::from(ntc.t0_c) + 273.15;
    let r = f64::from(ntc.r0_ohm) * (f64::from(ntc.beta_k) * (1.0 / t - 1.0 / t0)).exp();
    let full = f64::from(ntc.full_scale);
    let raw = (full * r / (r + f64::from(ntc.series_ohm))).round();
    raw.clamp(1.0, full - 1.0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_firmware::drivers::bl0942::Bl0942;

    #[test]
    fn the_firmware_driver_reads_what_the_simulated_chip_senses() {
        let uart = SimMeterUart::default();
        *uart.sensed.lock().expect("not poisoned") = Sensed {
            voltage_v: 229.6,
            current_a: 0.913,
            power_w: 199.2,
            energy_wh: 812.0,
        };
        let mut meter = Bl0942::new(uart);
        let r = meter.read().expect("valid packet");
        assert!((r.voltage_v - 229.6).abs() < 1e-3, "{r:?}");
        assert!((r.current_a - 0.913).abs() < 1e-4, "{r:?}");
        assert!((r.power_w - 199.2).abs() < 0.01, "{r:?}");
        assert!((r.energy_wh - 812.0).abs() < 0.5, "{r:?}");
    }

    #[test]
    fn thermistor_round_trips_through_the_adc() {
        let ntc = Ntc::default();
        for t in [-20.0, 0.0, 25.0, 65.0, 80.0] {
            let back = ntc.celsius(thermistor_adc(&ntc, t)).expect("in range");
            assert!((f64::from(back) - t).abs() < 0.2, "{t} -> {back}");
        }
    }
}
