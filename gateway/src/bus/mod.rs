//! Buses: the thin I/O layer that carries register reads to devices.
//!
//! Device logic (`devices/`) plans reads and decodes words without touching a
//! socket; a bus only executes one [`ReadRequest`] at a time and says in words
//! why it failed. Modbus TCP and Modbus RTU (which owns its framing and
//! inter-frame silence, docs/pitfalls.md) sit side by side behind the same
//! [`RegisterReader`] trait.

pub mod cjt188;
pub mod dlt645;
pub mod framed_line;
pub mod modbus_rtu;
pub mod modbus_tcp;
pub mod serial;

use crate::profile::Function;
use std::fmt;
use std::future::Future;
use thiserror::Error;

/// One read of consecutive registers from one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadRequest {
    /// Holding or input registers.
    pub function: Function,
    /// First address.
    pub start: u16,
    /// Number of registers (1..=125).
    pub count: u16,
}

impl ReadRequest {
    /// One past the last address (as u32: a request may end at 65535).
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

impl fmt::Display for ReadRequest {
    /// `holding registers 100..=212`, as people name register ranges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            write!(f, "{} register {}", self.function, self.start)
        } else {
            write!(
                f,
                "{} registers {}..={}",
                self.function,
                self.start,
                self.end() - 1
            )
        }
    }
}

/// Why a read failed.
#[derive(Debug, Error)]
pub enum BusError {
    /// The device answered with a Modbus exception: it is there, but refused
    /// this request. The connection stays usable.
    #[error("exception {code:#04x} ({})", exception_name(*code))]
    Exception {
        /// The exception code from the response.
        code: u8,
    },
    /// The device could not be reached or did not answer in time; the reason
    /// is in words ("connection refused", "no answer within 1000 ms").
    #[error("{0}")]
    Unreachable(String),
}

impl BusError {
    /// Whether the device answered (an exception) rather than stayed silent.
    pub fn device_answered(&self) -> bool {
        matches!(self, BusError::Exception { .. })
    }
}

/// The Modbus specification's names for exception codes.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        0x01 => "illegal function",
        0x02 => "illegal data address",
        0x03 => "illegal data value",
        0x04 => "server device failure",
        0x05 => "acknowledge",
        0x06 => "server device busy",
        0x08 => "memory parity error",
        0x0A => "gateway path unavailable",
        0x0B => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

/// Something that executes register reads: a Modbus TCP connection today, a
/// serial bus or a test double tomorrow.
pub trait RegisterReader {
    /// Reads `request.count` registers; the result has exactly that many words.
    fn read(
        &mut self,
        request: ReadRequest,
    ) -> impl Future<Output = Result<Vec<u16>, BusError>> + Send;
}

pub use crate::net::io_reason;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_read_as_register_ranges() {
        let r = ReadRequest {
            function: Function::Holding,
            start: 100,
            count: 113,
        };
        assert_eq!(r.to_string(), "holding registers 100..=212");
        let one = ReadRequest { count: 1, ..r };
        assert_eq!(one.to_string(), "holding register 100");
        assert_eq!(
            BusError::Exception { code: 2 }.to_string(),
            "exception 0x02 (illegal data address)"
        );
    }
}
