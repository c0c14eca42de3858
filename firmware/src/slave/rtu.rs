//! Modbus RTU framing for the pile's slave, sans-IO.
//!
//! [`FrameReceiver`] turns bytes and their arrival times into frames using
//! the 3.5-character silence; [`respond`] answers one frame from a
//! [`PileController`] into a buffer. The UART driver and its timer stay
//! outside, so every edge case (stray bytes, bad CRC, broadcast) is a unit
//! test. CRC-16/MODBUS is appended low byte first.

use super::{read_coils, read_holding, write_coils, write_holding, Exception};
use crate::controller::{PileController, SocketController};

/// Most coils a pile has: one relay per socket.
const COILS: usize = crate::pile_map::MAX_SOCKETS as usize;

/// Largest RTU frame (address + PDU of 253 bytes + CRC).
pub const MAX_ADU: usize = 256;

/// CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The inter-frame silence for `baud`: 3.5 characters of 11 bits, and a
/// fixed 1750 µs above 19 200 baud (Modbus over serial line, 2.5.1.1).
pub const fn silence_us(baud: u32) -> u64 {
    if baud == 0 || baud > 19_200 {
        1_750
    } else {
        (35 * 11 * 1_000_000 / 10) / baud as u64
    }
}

/// Collects bytes into frames by the inter-frame silence.
#[derive(Debug, Clone)]
pub struct FrameReceiver {
    buf: [u8; MAX_ADU],
    len: usize,
    overflow: bool,
    last_us: Option<u64>,
    silence_us: u64,
}

impl FrameReceiver {
    /// A receiver for a line at `baud`.
    pub const fn new(baud: u32) -> Self {
        Self {
            buf: [0; MAX_ADU],
            len: 0,
            overflow: false,
            last_us: None,
            silence_us: silence_us(baud),
        }
    }

    /// A byte arrived at `now_us`. A byte after a silence starts a new frame
    /// (whatever came before it and was not taken is dropped).
    pub fn push(&mut self, byte: u8, now_us: u64) {
        if self
            .last_us
            .is_some_and(|last| now_us.saturating_sub(last) >= self.silence_us)
        {
            self.len = 0;
            self.overflow = false;
        }
        self.last_us = Some(now_us);
        if self.len < MAX_ADU {
            self.buf[self.len] = byte;
            self.len += 1;
        } else {
            self.overflow = true;
        }
    }

    /// The frame that ended, once the line has been silent long enough at
    /// `now_us`; an overlong frame is dropped.
    pub fn poll(&mut self, now_us: u64) -> Option<&[u8]> {
        let last = self.last_us?;
        if self.len == 0 || now_us.saturating_sub(last) < self.silence_us {
            return None;
        }
        let len = core::mem::take(&mut self.len);
        self.last_us = None;
        if core::mem::take(&mut self.overflow) {
            return None;
        }
        Some(&self.buf[..len])
    }
}

/// Answers one RTU request `frame` addressed to `unit` (or broadcast, 0),
/// writing the reply into `out`. Returns the reply's length: 0 when nothing
/// must be sent (bad CRC, another unit, broadcast, a frame too short).
pub fn respond<S>(
    pile: &mut PileController<S>,
    unit: u8,
    frame: &[u8],
    out: &mut [u8; MAX_ADU],
) -> usize
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    if frame.len() < 4 {
        return 0;
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    if crc16(body) != u16::from_le_bytes([crc[0], crc[1]]) {
        return 0;
    }
    let address = body[0];
    if address != unit && address != 0 {
        return 0;
    }
    let function = body[1];
    out[0] = unit;
    out[1] = function;
    let len = match answer(pile, function, &body[2..], &mut out[2..MAX_ADU - 2]) {
        Ok(n) => 2 + n,
        Err(e) => {
            out[1] = function | 0x80;
            out[2] = e as u8;
            3
        }
    };
    if address == 0 {
        return 0; // broadcast: executed, never answered
    }
    let crc = crc16(&out[..len]).to_le_bytes();
    out[len] = crc[0];
    out[len + 1] = crc[1];
    len + 2
}

fn be(data: &[u8], at: usize) -> Result<u16, Exception> {
    match data.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Exception::IllegalDataValue),
    }
}

/// Executes one PDU; writes the reply's data (after the function code) into
/// `out` and returns its length.
fn answer<S>(
    pile: &mut PileController<S>,
    function: u8,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, Exception>
where
    S: AsRef<[SocketController]> + AsMut<[SocketController]>,
{
    match function {
        0x01 => {
            let (start, count) = (be(data, 0)?, be(data, 2)?);
            let n = usize::from(count);
            if n == 0 || count > super::MAX_READ_COILS {
                return Err(Exception::IllegalDataValue);
            }
            // No pile has more coils than sockets.
            let mut bits = [false; COILS];
            if n > COILS {
                return Err(Exception::IllegalDataAddress);
            }
            read_coils(pile, start, &mut bits[..n])?;
            let bytes = n.div_ceil(8);
            out[0] = bytes as u8;
            out[1..=bytes].fill(0);
            for (i, &on) in bits[..n].iter().enumerate() {
                out[1 + i / 8] |= u8::from(on) << (i % 8);
            }
            Ok(1 + bytes)
        }
        0x03 => {
            let (start, count) = (be(data, 0)?, be(data, 2)?);
            let mut words = [0u16; super::MAX_READ_REGISTERS as usize];
            let n = usize::from(count);
            if n == 0 || n > words.len() {
                return Err(Exception::IllegalDataValue);
            }
            read_holding(pile, start, &mut words[..n])?;
            out[0] = (2 * n) as u8;
            for (i, w) in words[..n].iter().enumerate() {
                out[1 + 2 * i..3 + 2 * i].copy_from_slice(&w.to_be_bytes());
            }
            Ok(1 + 2 * n)
        }
        0x05 => {
            let (addr, value) = (be(data, 0)?, be(data, 2)?);
            let on = match value {
                0xFF00 => true,
                0x0000 => false,
                _ => return Err(Exception::IllegalDataValue),
            };
            write_coils(pile, addr, &[on])?;
            out[..4].copy_from_slice(&data[..4]);
            Ok(4)
        }
        0x06 => {
            let (addr, value) = (be(data, 0)?, be(data, 2)?);
            write_holding(pile, addr, &[value])?;
            out[..4].copy_from_slice(&data[..4]);
            Ok(4)
        }
        0x0F => {
            let (start, count) = (be(data, 0)?, be(data, 2)?);
            let n = usize::from(count);
            let bytes = data.get(5..).ok_or(Exception::IllegalDataValue)?;
            if n == 0
                || count > super::MAX_WRITE_COILS
                || usize::from(data[4]) != n.div_ceil(8)
                || bytes.len() != n.div_ceil(8)
            {
                return Err(Exception::IllegalDataValue);
            }
            if n > COILS {
                return Err(Exception::IllegalDataAddress);
            }
            let mut bits = [false; COILS];
            for (i, bit) in bits[..n].iter_mut().enumerate() {
                *bit = bytes[i / 8] & (1 << (i % 8)) != 0;
            }
            write_coils(pile, start, &bits[..n])?;
            out[..4].copy_from_slice(&data[..4]);
            Ok(4)
        }
        0x10 => {
            let (start, count) = (be(data, 0)?, be(data, 2)?);
            let n = usize::from(count);
            let bytes = data.get(5..).ok_or(Exception::IllegalDataValue)?;
            if n == 0
                || n > usize::from(super::MAX_WRITE_REGISTERS)
                || usize::from(data[4]) != 2 * n
                || bytes.len() != 2 * n
            {
                return Err(Exception::IllegalDataValue);
            }
            let mut words = [0u16; super::MAX_WRITE_REGISTERS as usize];
            for (i, w) in words[..n].iter_mut().enumerate() {
                *w = u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
            }
            write_holding(pile, start, &words[..n])?;
            out[..4].copy_from_slice(&data[..4]);
            Ok(4)
        }
        _ => Err(Exception::IllegalFunction),
    }
}
