//! Modbus RTU frames as the master sees them, sans-IO.
//!
//! [`encode`] builds a request ADU (unit, PDU, CRC-16 low byte first);
//! [`ResponseReader`] collects the bytes that come back and says when a whole
//! response is in, from the function code and byte count alone, so the bus
//! need not wait for the trailing silence to know a frame ended; [`decode`]
//! checks it against the request. The CRC and the silence rule are the
//! firmware's ([`gridwatch_firmware::slave::rtu`]): one implementation for
//! both ends of the wire.
//!
//! A stray byte before the response (line noise, a late answer to an earlier
//! request) is skipped: the reader looks for a frame that starts with the
//! polled unit and the requested function and carries a valid CRC at any
//! offset of what arrived, so noise costs at most the one request it hit.

use crate::bus::ReadRequest;
use crate::profile::Function;
use gridwatch_firmware::slave::rtu::{crc16, MAX_ADU};
use thiserror::Error;

/// One master transaction: what the bus can ask a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtuRequest {
    /// Read coils (0x01), discrete inputs (0x02), holding (0x03) or input
    /// (0x04) registers; bits come back as 0/1 words.
    Read(ReadRequest),
    /// Write one coil (0x05): switching a socket's relay.
    WriteCoil {
        /// Coil address.
        address: u16,
        /// On or off.
        on: bool,
    },
    /// Write one holding register (0x06): a command or a limit.
    WriteRegister {
        /// Register address.
        address: u16,
        /// Value.
        value: u16,
    },
}

impl RtuRequest {
    /// The Modbus function code.
    pub fn function_code(&self) -> u8 {
        match self {
            RtuRequest::Read(r) => r.function.code(),
            RtuRequest::WriteCoil { .. } => 0x05,
            RtuRequest::WriteRegister { .. } => 0x06,
        }
    }

    /// Length of the complete normal response, CRC included.
    pub fn response_len(&self) -> usize {
        match self {
            RtuRequest::Read(r) => 5 + data_len(r),
            RtuRequest::WriteCoil { .. } | RtuRequest::WriteRegister { .. } => 8,
        }
    }
}

impl std::fmt::Display for RtuRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RtuRequest::Read(r) => write!(f, "{r}"),
            RtuRequest::WriteCoil { address, on } => {
                write!(
                    f,
                    "writing coil {address} {}",
                    if *on { "on" } else { "off" }
                )
            }
            RtuRequest::WriteRegister { address, value } => {
                write!(f, "writing {value} to register {address}")
            }
        }
    }
}

/// What a device answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Register values, as many as were asked for.
    Words(Vec<u16>),
    /// A write was carried out (the device echoed it).
    Written,
    /// A Modbus exception with its code.
    Exception(u8),
}

/// Why the bytes that came back are not a valid answer to the request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The checksum does not match: the frame was damaged on the line.
    #[error("CRC mismatch (frame {got:04x}, computed {want:04x})")]
    Crc {
        /// CRC carried by the frame.
        got: u16,
        /// CRC of its content.
        want: u16,
    },
    /// Fewer bytes than any response can have.
    #[error("only {0} bytes arrived, too few for a response")]
    Short(usize),
    /// Another unit answered.
    #[error("unit {got} answered instead of unit {want}")]
    Unit {
        /// Unit in the response.
        got: u8,
        /// Unit polled.
        want: u8,
    },
    /// The response is for another function.
    #[error("function {got:#04x} answered instead of {want:#04x}")]
    Function {
        /// Function in the response.
        got: u8,
        /// Function requested.
        want: u8,
    },
    /// The byte count or length does not fit the request.
    #[error("{0}")]
    Length(String),
    /// A write's echo differs from what was written.
    #[error("the device echoed a different write")]
    Echo,
}

/// Data bytes of a read's response: packed bits or big-endian words.
fn data_len(r: &ReadRequest) -> usize {
    match r.function {
        Function::Coils | Function::DiscreteInputs => usize::from(r.count).div_ceil(8),
        Function::Holding | Function::Input => 2 * usize::from(r.count),
    }
}

/// The request ADU for `unit`: address, PDU, CRC (low byte first).
pub fn encode(unit: u8, request: &RtuRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.push(unit);
    out.push(request.function_code());
    match request {
        RtuRequest::Read(r) => {
            out.extend_from_slice(&r.start.to_be_bytes());
            out.extend_from_slice(&r.count.to_be_bytes());
        }
        RtuRequest::WriteCoil { address, on } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&(if *on { 0xFF00u16 } else { 0 }).to_be_bytes());
        }
        RtuRequest::WriteRegister { address, value } => {
            out.extend_from_slice(&address.to_be_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
    let crc = crc16(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The length of the frame starting at `bytes[0]`, once enough of it is in
/// to tell (address and function, and for reads the byte count).
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let function = *bytes.get(1)?;
    if function & 0x80 != 0 {
        return Some(5);
    }
    match function {
        0x01..=0x04 => Some(5 + usize::from(*bytes.get(2)?)),
        0x05 | 0x06 | 0x0F | 0x10 => Some(8),
        // Unknown function: no way to tell where it ends; the reader waits
        // for the timeout and reports what it has.
        _ => None,
    }
}

/// Checks one complete frame against `request` and extracts the answer.
pub fn decode(unit: u8, request: &RtuRequest, frame: &[u8]) -> Result<Answer, FrameError> {
    if frame.len() < 5 {
        return Err(FrameError::Short(frame.len()));
    }
    let (body, crc) = frame.split_at(frame.len() - 2);
    let got = u16::from_le_bytes([crc[0], crc[1]]);
    let want = crc16(body);
    if got != want {
        return Err(FrameError::Crc { got, want });
    }
    if body[0] != unit {
        return Err(FrameError::Unit {
            got: body[0],
            want: unit,
        });
    }
    let function = request.function_code();
    if body[1] == function | 0x80 && body.len() == 3 {
        return Ok(Answer::Exception(body[2]));
    }
    if body[1] != function {
        return Err(FrameError::Function {
            got: body[1],
            want: function,
        });
    }
    match request {
        RtuRequest::Read(r) => {
            let data = &body[3..];
            if usize::from(body[2]) != data.len() || data.len() != data_len(r) {
                return Err(FrameError::Length(format!(
                    "asked for {r} and got {} data bytes (byte count {}) instead of {}",
                    data.len(),
                    body[2],
                    data_len(r)
                )));
            }
            Ok(Answer::Words(match r.function {
                Function::Coils | Function::DiscreteInputs => (0..usize::from(r.count))
                    .map(|i| u16::from(data[i / 8] >> (i % 8) & 1))
                    .collect(),
                Function::Holding | Function::Input => data
                    .chunks_exact(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]))
                    .collect(),
            }))
        }
        RtuRequest::WriteCoil { .. } | RtuRequest::WriteRegister { .. } => {
            if body.len() != 6 {
                return Err(FrameError::Length(format!(
                    "a write's echo has 8 bytes, not {}",
                    frame.len()
                )));
            }
            // The request's PDU is echoed verbatim.
            if body[2..6] != encode(unit, request)[2..6] {
                return Err(FrameError::Echo);
            }
            Ok(Answer::Written)
        }
    }
}

/// Collects the bytes of one response; at most [`MAX_ADU`] × 2 are kept, so
/// a babbling line costs bounded memory.
#[derive(Debug, Clone)]
pub struct ResponseReader {
    unit: u8,
    request: RtuRequest,
    buf: Vec<u8>,
    /// Bytes dropped as noise before the frame (for the log).
    skipped: usize,
}

/// Where a response stands after more bytes arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not complete yet: keep reading until the timeout.
    Incomplete,
    /// A frame for this request arrived (or an invalid one that cannot be
    /// anything else): decode it.
    Done(Result<Answer, FrameError>),
}

impl ResponseReader {
    /// A reader for the answer of `unit` to `request`.
    pub fn new(unit: u8, request: RtuRequest) -> Self {
        Self {
            unit,
            request,
            buf: Vec::with_capacity(request.response_len()),
            skipped: 0,
        }
    }

    /// Bytes dropped before the frame as noise.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Bytes held (not yet part of a decoded frame).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Adds `bytes` and says whether a response is complete.
    pub fn push(&mut self, bytes: &[u8]) -> Progress {
        self.buf.extend_from_slice(bytes);
        let function = self.request.function_code();
        let mut first_error = None;
        let mut start = 0;
        while start < self.buf.len() {
            let rest = &self.buf[start..];
            let plausible = rest[0] == self.unit
                && rest
                    .get(1)
                    .is_none_or(|&f| f == function || f == function | 0x80);
            if plausible {
                // A candidate that is not complete yet may still be noise
                // before a later, complete frame: keep scanning.
                match frame_len(rest) {
                    None => {}
                    Some(len) if rest.len() < len => {}
                    Some(len) => {
                        let result = decode(self.unit, &self.request, &rest[..len]);
                        if result.is_ok() {
                            self.skipped += start;
                            self.buf.drain(..start + len);
                            return Progress::Done(result);
                        }
                        first_error.get_or_insert(result);
                    }
                }
            }
            start += 1;
        }
        if self.buf.len() > 2 * MAX_ADU {
            // Far more than any response: give up on this one.
            let n = self.buf.len();
            self.buf.clear();
            return Progress::Done(first_error.unwrap_or(Err(FrameError::Length(format!(
                "{n} bytes arrived without a valid response among them"
            )))));
        }
        Progress::Incomplete
    }

    /// The timeout came: the best account of what arrived, for the error.
    pub fn give_up(&self) -> Option<FrameError> {
        let start = self.buf.iter().position(|&b| b == self.unit)?;
        let rest = &self.buf[start..];
        match frame_len(rest) {
            Some(len) if rest.len() >= len => decode(self.unit, &self.request, &rest[..len]).err(),
            Some(len) => Some(FrameError::Length(format!(
                "the response stopped after {} of {len} bytes",
                rest.len()
            ))),
            None => Some(FrameError::Short(rest.len())),
        }
    }
}

#[cfg(test)]
mod tests;
