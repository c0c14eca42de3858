//! BL0942 energy-metering IC (Shanghai Belling) on a UART.
//!
//! The BL0942 is the single-phase metering chip found in many Chinese smart
//! sockets and pile controllers. Over its UART (4800 baud, 8N1 by default)
//! the host sends a read command `0x58 | address` followed by a register
//! address; register [`REG_FULL_PACKET`] (`0xAA`) returns all measurements in
//! one 23-byte frame:
//!
//! | byte | content |
//! |---|---|
//! | 0 | head `0x55` |
//! | 1..=3 | I_RMS, u24 little-endian |
//! | 4..=6 | V_RMS, u24 LE |
//! | 7..=9 | I_FAST_RMS, u24 LE |
//! | 10..=12 | WATT, i24 LE (two's complement) |
//! | 13..=15 | CF_CNT (energy pulses), u24 LE |
//! | 16..=17 | FREQ (line period in µs), u16 LE |
//! | 18 | reserved |
//! | 19 | STATUS |
//! | 20..=21 | reserved |
//! | 22 | checksum |
//!
//! with `checksum = !(command + sum of bytes 0..=21)` (mod 256), where
//! `command` is the read command byte `0x58 | address` — the rule of the
//! datasheet's UART section, as ESPHome's BL0942 driver also implements it.

use embedded_hal_nb::nb;
use embedded_hal_nb::serial::{Read, Write};

/// Read command for device address 0; OR in the address (0..=3).
pub const CMD_READ: u8 = 0x58;
/// Register address that returns the full measurement packet.
pub const REG_FULL_PACKET: u8 = 0xAA;
/// First byte of a full packet.
pub const FRAME_HEAD: u8 = 0x55;
/// Length of a full packet, head and checksum included.
pub const FRAME_LEN: usize = 23;

/// Why a reading failed. No variant panics; a bad frame is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The UART reported an error.
    Bus(E),
    /// No byte arrived within the poll budget (the chip is silent or the
    /// line is cut).
    Timeout {
        /// Bytes received before the line went quiet.
        received: usize,
    },
    /// The first byte was not [`FRAME_HEAD`].
    BadHead(u8),
    /// The checksum did not match.
    Checksum {
        /// What the bytes add up to.
        expected: u8,
        /// What the frame carried.
        got: u8,
    },
}

/// Counts per physical unit. The defaults are those of the reference design
/// (1 mΩ shunt, resistor divider on the voltage input); calibrate per board.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// V_RMS counts per volt.
    pub counts_per_v: f32,
    /// I_RMS counts per ampere.
    pub counts_per_a: f32,
    /// WATT counts per watt.
    pub counts_per_w: f32,
    /// CF_CNT counts per kWh.
    pub counts_per_kwh: f32,
}

impl Default for Calibration {
    /// The reference-design values used by ESPHome's BL0942 driver.
    fn default() -> Self {
        Self {
            counts_per_v: 15_873.359,
            counts_per_a: 251_213.47,
            counts_per_w: 596.0,
            counts_per_kwh: 3_304.611,
        }
    }
}

/// One full packet's registers, raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw {
    /// I_RMS.
    pub i_rms: u32,
    /// V_RMS.
    pub v_rms: u32,
    /// I_FAST_RMS.
    pub i_fast_rms: u32,
    /// WATT, signed.
    pub watt: i32,
    /// CF_CNT.
    pub cf_cnt: u32,
    /// FREQ: line period in µs.
    pub freq: u16,
    /// STATUS.
    pub status: u8,
}

/// A reading in physical units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// RMS voltage.
    pub voltage_v: f32,
    /// RMS current.
    pub current_a: f32,
    /// Active power (negative when reversed).
    pub power_w: f32,
    /// Energy counter since the chip's reset.
    pub energy_wh: f32,
    /// Line frequency, 0 when the period register is 0.
    pub frequency_hz: f32,
}

/// Decodes a full packet; pure, for the driver and for tests.
pub fn decode_frame(
    frame: &[u8; FRAME_LEN],
    command: u8,
) -> Result<Raw, Error<core::convert::Infallible>> {
    if frame[0] != FRAME_HEAD {
        return Err(Error::BadHead(frame[0]));
    }
    let expected = !frame[..FRAME_LEN - 1]
        .iter()
        .fold(command, |sum, &b| sum.wrapping_add(b));
    let got = frame[FRAME_LEN - 1];
    if expected != got {
        return Err(Error::Checksum { expected, got });
    }
    let u24 = |at: usize| u32::from_le_bytes([frame[at], frame[at + 1], frame[at + 2], 0]);
    let watt = ((u24(10) << 8) as i32) >> 8; // sign-extend 24 bits
    Ok(Raw {
        i_rms: u24(1),
        v_rms: u24(4),
        i_fast_rms: u24(7),
        watt,
        cf_cnt: u24(13),
        freq: u16::from_le_bytes([frame[16], frame[17]]),
        status: frame[19],
    })
}

impl Raw {
    /// Converts to physical units with `cal`.
    pub fn to_reading(&self, cal: &Calibration) -> Reading {
        Reading {
            voltage_v: self.v_rms as f32 / cal.counts_per_v,
            current_a: self.i_rms as f32 / cal.counts_per_a,
            power_w: self.watt as f32 / cal.counts_per_w,
            energy_wh: self.cf_cnt as f32 * 1000.0 / cal.counts_per_kwh,
            frequency_hz: if self.freq == 0 {
                0.0
            } else {
                1_000_000.0 / f32::from(self.freq)
            },
        }
    }
}

/// A BL0942 on a UART. See the [module docs](self) for the protocol.
#[derive(Debug)]
pub struct Bl0942<U> {
    uart: U,
    address: u8,
    calibration: Calibration,
    max_polls: u32,
}

impl<U, E> Bl0942<U>
where
    U: Read<u8, Error = E> + Write<u8, Error = E>,
{
    /// A chip at device address 0 with the reference calibration.
    pub fn new(uart: U) -> Self {
        Self {
            uart,
            address: 0,
            calibration: Calibration::default(),
            max_polls: 100_000,
        }
    }

    /// Sets the device address (0..=3, from the A1/A2 pins; higher bits
    /// are ignored) and the calibration.
    pub fn with(mut self, address: u8, calibration: Calibration) -> Self {
        self.address = address & 0x03;
        self.calibration = calibration;
        self
    }

    /// How many `WouldBlock`s one byte may take before [`Error::Timeout`];
    /// size it from the UART's polling rate (one byte at 4800 baud is
    /// about 2.1 ms).
    pub fn with_poll_budget(mut self, max_polls: u32) -> Self {
        self.max_polls = max_polls.max(1);
        self
    }

    /// Asks for the full packet and decodes it.
    pub fn read(&mut self) -> Result<Reading, Error<E>> {
        Ok(self.read_raw()?.to_reading(&self.calibration))
    }

    /// Asks for the full packet and returns its raw registers.
    pub fn read_raw(&mut self) -> Result<Raw, Error<E>> {
        let command = CMD_READ | self.address;
        for byte in [command, REG_FULL_PACKET] {
            nb::block!(self.uart.write(byte)).map_err(Error::Bus)?;
        }
        nb::block!(self.uart.flush()).map_err(Error::Bus)?;
        let mut frame = [0u8; FRAME_LEN];
        for (received, slot) in frame.iter_mut().enumerate() {
            *slot = self.read_byte(received)?;
        }
        decode_frame(&frame, command).map_err(|e| match e {
            Error::BadHead(b) => Error::BadHead(b),
            Error::Checksum { expected, got } => Error::Checksum { expected, got },
            Error::Timeout { received } => Error::Timeout { received },
            Error::Bus(never) => match never {},
        })
    }

    fn read_byte(&mut self, received: usize) -> Result<u8, Error<E>> {
        for _ in 0..self.max_polls {
            match self.uart.read() {
                Ok(b) => return Ok(b),
                Err(nb::Error::WouldBlock) => continue,
                Err(nb::Error::Other(e)) => return Err(Error::Bus(e)),
            }
        }
        Err(Error::Timeout { received })
    }

    /// Gives the UART back.
    pub fn release(self) -> U {
        self.uart
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::serial::{Mock, Transaction};

    /// A full packet with the given raw values and a correct checksum.
    fn packet(i: u32, v: u32, watt: i32, cf: u32, freq: u16) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        f[0] = FRAME_HEAD;
        f[1..4].copy_from_slice(&i.to_le_bytes()[..3]);
        f[4..7].copy_from_slice(&v.to_le_bytes()[..3]);
        f[7..10].copy_from_slice(&i.to_le_bytes()[..3]);
        f[10..13].copy_from_slice(&watt.to_le_bytes()[..3]);
        f[13..16].copy_from_slice(&cf.to_le_bytes()[..3]);
        f[16..18].copy_from_slice(&freq.to_le_bytes());
        let sum = f[..FRAME_LEN - 1]
            .iter()
            .fold(CMD_READ, |s, &b| s.wrapping_add(b));
        f[FRAME_LEN - 1] = !sum;
        f
    }

    fn request() -> [Transaction<u8>; 3] {
        [
            Transaction::write_many([CMD_READ, REG_FULL_PACKET]),
            Transaction::flush(),
            Transaction::read_many([]),
        ]
    }

    #[test]
    fn reads_a_full_packet_and_scales_it() {
        // 230 V, 0.9 A, 200 W, 1 kWh, 50 Hz in reference-design counts.
        let f = packet(226_092, 3_650_873, 119_200, 3_305, 20_000);
        let [w, flush, _] = request();
        let mut uart = Mock::new(&[w, flush, Transaction::read_many(f)]);
        let mut meter = Bl0942::new(uart.clone());
        let r = meter.read().expect("valid packet");
        assert!((r.voltage_v - 230.0).abs() < 0.01, "{r:?}");
        assert!((r.current_a - 0.9).abs() < 0.001, "{r:?}");
        assert!((r.power_w - 200.0).abs() < 0.01, "{r:?}");
        assert!((r.energy_wh - 1000.1).abs() < 0.1, "{r:?}");
        assert!((r.frequency_hz - 50.0).abs() < 1e-3, "{r:?}");
        uart.done();
    }

    #[test]
    fn checksum_covers_the_command_and_every_byte() {
        // All-zero registers: !(0x58 + 0x55) = !0xAD = 0x52.
        let f = packet(0, 0, 0, 0, 0);
        assert_eq!(f[FRAME_LEN - 1], 0x52);
        assert!(decode_frame(&f, CMD_READ).is_ok());
        // The same bytes from address 1 (command 0x59) do not check out.
        assert_eq!(
            decode_frame(&f, CMD_READ | 1),
            Err(Error::Checksum {
                expected: 0x51,
                got: 0x52
            })
        );
    }

    #[test]
    fn negative_power_is_sign_extended() {
        let f = packet(0, 0, -596, 0, 0);
        let raw = decode_frame(&f, CMD_READ).expect("valid");
        assert_eq!(raw.watt, -596);
        assert_eq!(raw.to_reading(&Calibration::default()).power_w, -1.0);
    }

    #[test]
    fn a_corrupted_byte_is_a_checksum_error_not_a_panic() {
        let good = packet(226_092, 3_650_873, 119_200, 3_305, 20_000);
        for at in 1..FRAME_LEN {
            let mut bad = good;
            bad[at] ^= 0x10;
            assert!(matches!(
                decode_frame(&bad, CMD_READ),
                Err(Error::Checksum { .. })
            ));
        }
        let mut head = good;
        head[0] = 0x00;
        assert_eq!(decode_frame(&head, CMD_READ), Err(Error::BadHead(0)));
    }

    #[test]
    fn a_silent_chip_is_a_timeout_after_the_poll_budget() {
        let would_block = || Transaction::read_error(nb::Error::WouldBlock);
        let [w, flush, _] = request();
        let mut uart = Mock::new(&[w, flush, would_block(), would_block(), would_block()]);
        let mut meter = Bl0942::new(uart.clone()).with_poll_budget(3);
        assert_eq!(meter.read_raw(), Err(Error::Timeout { received: 0 }));
        uart.done();
    }

    #[test]
    fn address_goes_into_the_command_byte() {
        let mut f = packet(0, 0, 0, 0, 0);
        f[FRAME_LEN - 1] = !f[..FRAME_LEN - 1]
            .iter()
            .fold(CMD_READ | 2, |s, &b| s.wrapping_add(b));
        let mut uart = Mock::new(&[
            Transaction::write_many([CMD_READ | 2, REG_FULL_PACKET]),
            Transaction::flush(),
            Transaction::read_many(f),
        ]);
        let mut meter = Bl0942::new(uart.clone()).with(2, Calibration::default());
        assert!(meter.read_raw().is_ok());
        uart.done();
    }
}
