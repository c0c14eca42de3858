//! Frames on the wire and their encoding and decoding.
//!
//! ```text
//! FE FE FE FE  68  T  A0 A1 A2 A3 A4 A5 A6  CTR  L  DI0 DI1 SER data…  CS  16
//! preamble  start type      address         ctrl len     data field     sum end
//! ```
//!
//! - `FEH` preamble bytes wake the receiver; a decoder skips them like any
//!   other noise before the start byte.
//! - T is the meter type ([`MeterType`]), the address 7 bytes of BCD,
//!   least significant first ([`Address`]).
//! - `L` is the data length. Unlike DL/T 645 the data bytes are sent as
//!   they are, without a `33H` offset.
//! - `CS` is the sum modulo 256 of every byte from `68H` to the last data
//!   byte.
//!
//! [`decode`] looks at one buffer; [`crate::Receiver`] finds frames in a
//! byte stream that may be split, noisy or corrupt.

use crate::{Address, Control, MeterType};
use core::fmt;

/// Start of a frame.
pub const START: u8 = 0x68;
/// End of a frame.
pub const END: u8 = 0x16;
/// Preamble byte sent before a frame.
pub const PREAMBLE: u8 = 0xFE;
/// Longest data field this crate takes. The longest the standard's
/// metering answers need is 46 bytes (a heat meter's `901FH`); a longer
/// `L` is far more likely noise than a frame.
pub const MAX_DATA_LEN: usize = 100;
/// Bytes of a frame around its data: 68, T, address, CTR, L, CS, 16.
pub const OVERHEAD: usize = 13;
/// Longest frame without preamble.
pub const MAX_FRAME_LEN: usize = OVERHEAD + MAX_DATA_LEN;
/// Preamble bytes sent by default (as in the published examples).
pub const DEFAULT_PREAMBLE: usize = 4;
/// Most preamble bytes [`Frame::encode`] will send.
pub const MAX_PREAMBLE: usize = 16;

/// One frame. Owns a fixed 100-byte array, so decoding never allocates.
#[derive(Clone)]
pub struct Frame {
    /// The type of meter the frame is to or from.
    pub meter_type: MeterType,
    /// The meter the frame is to or from.
    pub address: Address,
    /// Direction, answer status and function.
    pub control: Control,
    len: u8,
    data: [u8; MAX_DATA_LEN],
}

/// A data field longer than [`MAX_DATA_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataTooLong {
    /// The length asked for.
    pub len: usize,
}

impl fmt::Display for DataTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a data field of {} bytes is longer than the {MAX_DATA_LEN} bytes this codec takes",
            self.len
        )
    }
}

impl core::error::Error for DataTooLong {}

/// Why [`Frame::encode`] could not write a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer holds fewer bytes than the frame needs.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// More preamble bytes than [`MAX_PREAMBLE`].
    TooLongPreamble {
        /// The number asked for.
        asked: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed, available } => write!(
                f,
                "the frame needs {needed} bytes but the buffer holds {available}"
            ),
            EncodeError::TooLongPreamble { asked } => write!(
                f,
                "{asked} preamble bytes asked for; at most {MAX_PREAMBLE} are sent"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why bytes are not a frame. Positions are offsets in the buffer given to
/// [`decode`], so a log can show the raw bytes and point at the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// No complete frame yet: more bytes may complete one.
    Incomplete,
    /// `L` is above [`MAX_DATA_LEN`].
    DataTooLong {
        /// Offset of the frame's `68H`.
        at: usize,
        /// The length byte.
        len: u8,
    },
    /// The checksum byte does not match the frame's bytes.
    Checksum {
        /// Offset of the frame's `68H`.
        at: usize,
        /// The sum of the bytes received.
        computed: u8,
        /// The checksum byte received.
        received: u8,
    },
    /// The byte after the checksum is not `16H`.
    End {
        /// Offset of the frame's `68H`.
        at: usize,
        /// The byte found instead.
        found: u8,
    },
    /// An address byte is neither BCD nor `AAH`.
    Address {
        /// Offset of the frame's `68H`.
        at: usize,
        /// The address bytes as received.
        address: Address,
    },
}

impl DecodeError {
    /// Offset of the rejected frame's first byte, if one was found.
    pub fn at(&self) -> Option<usize> {
        match self {
            DecodeError::Incomplete => None,
            DecodeError::DataTooLong { at, .. }
            | DecodeError::Checksum { at, .. }
            | DecodeError::End { at, .. }
            | DecodeError::Address { at, .. } => Some(*at),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("incomplete frame"),
            DecodeError::DataTooLong { at, len } => write!(
                f,
                "frame at byte {at}: data length {len} is over the {MAX_DATA_LEN} bytes \
                 this codec takes"
            ),
            DecodeError::Checksum {
                at,
                computed,
                received,
            } => write!(
                f,
                "frame at byte {at}: checksum {received:02X}H does not match the bytes \
                 received (they sum to {computed:02X}H)"
            ),
            DecodeError::End { at, found } => write!(
                f,
                "frame at byte {at}: ends with {found:02X}H instead of 16H"
            ),
            DecodeError::Address { at, address } => write!(
                f,
                "frame at byte {at}: address {address} is not 14 BCD digits"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

impl Frame {
    /// A frame with `data` (at most [`MAX_DATA_LEN`] bytes).
    pub fn new(
        meter_type: MeterType,
        address: Address,
        control: Control,
        data: &[u8],
    ) -> Result<Self, DataTooLong> {
        if data.len() > MAX_DATA_LEN {
            return Err(DataTooLong { len: data.len() });
        }
        let mut frame = Frame {
            meter_type,
            address,
            control,
            len: data.len() as u8,
            data: [0; MAX_DATA_LEN],
        };
        frame.data[..data.len()].copy_from_slice(data);
        Ok(frame)
    }

    /// The data field (DI, SER and what follows).
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// Bytes [`Self::encode`] writes after `preamble` preamble bytes.
    pub fn encoded_len(&self, preamble: usize) -> usize {
        preamble + OVERHEAD + usize::from(self.len)
    }

    /// Writes the frame, preceded by `preamble` `FEH` bytes, into `out`;
    /// returns the number of bytes written.
    pub fn encode(&self, preamble: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
        if preamble > MAX_PREAMBLE {
            return Err(EncodeError::TooLongPreamble { asked: preamble });
        }
        let needed = self.encoded_len(preamble);
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        out[..preamble].fill(PREAMBLE);
        let frame = &mut out[preamble..needed];
        frame[0] = START;
        frame[1] = self.meter_type.0;
        frame[2..9].copy_from_slice(&self.address.0);
        frame[9] = self.control.0;
        frame[10] = self.len;
        let cs_at = 11 + usize::from(self.len);
        frame[11..cs_at].copy_from_slice(self.data());
        frame[cs_at] = checksum(&frame[..cs_at]);
        frame[cs_at + 1] = END;
        Ok(needed)
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.meter_type == other.meter_type
            && self.address == other.address
            && self.control == other.control
            && self.data() == other.data()
    }
}

impl Eq for Frame {}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("meter_type", &self.meter_type)
            .field("address", &self.address)
            .field("control", &self.control)
            .field("data", &self.data())
            .finish()
    }
}

/// The sum modulo 256 of `bytes`.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// Decodes the first frame in `buf`, skipping whatever comes before its
/// first `68H` (preamble, line noise). Returns the frame and the number of
/// bytes up to and including its `16H`.
///
/// Only the first `68H` is tried: a stream that may hold noise that looks
/// like a start byte belongs in a [`crate::Receiver`], which tries again
/// one byte later.
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
    let at = buf
        .iter()
        .position(|b| *b == START)
        .ok_or(DecodeError::Incomplete)?;
    let frame = &buf[at..];
    if frame.len() < 9 {
        return Err(DecodeError::Incomplete);
    }
    let mut address = [0u8; 7];
    address.copy_from_slice(&frame[2..9]);
    let address = Address(address);
    if !address.is_valid() {
        return Err(DecodeError::Address { at, address });
    }
    if frame.len() < 11 {
        return Err(DecodeError::Incomplete);
    }
    let len = frame[10];
    if usize::from(len) > MAX_DATA_LEN {
        return Err(DecodeError::DataTooLong { at, len });
    }
    let cs_at = 11 + usize::from(len);
    if frame.len() < cs_at + 2 {
        return Err(DecodeError::Incomplete);
    }
    let computed = checksum(&frame[..cs_at]);
    if frame[cs_at] != computed {
        return Err(DecodeError::Checksum {
            at,
            computed,
            received: frame[cs_at],
        });
    }
    if frame[cs_at + 1] != END {
        return Err(DecodeError::End {
            at,
            found: frame[cs_at + 1],
        });
    }
    let mut data = [0u8; MAX_DATA_LEN];
    data[..usize::from(len)].copy_from_slice(&frame[11..cs_at]);
    Ok((
        Frame {
            meter_type: MeterType(frame[1]),
            address,
            control: Control(frame[9]),
            len,
            data,
        },
        at + cs_at + 2,
    ))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::Function;
    use std::string::ToString;

    /// Read 901FH (DI0 DI1 = 1F 90, SER 00) from cold water meter
    /// 00000000000001, computed by hand: 68+10+01+01+03+1F+90+00 = 12CH → 2CH.
    const READ: [u8; 16] = [
        0x68, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x1F, 0x90, 0x00, 0x2C,
        0x16,
    ];

    fn meter_1() -> Address {
        Address::parse("00000000000001").unwrap()
    }

    fn read_frame() -> Frame {
        Frame::new(
            MeterType::COLD_WATER,
            meter_1(),
            Control::request(Function::ReadData),
            &[0x1F, 0x90, 0x00],
        )
        .unwrap()
    }

    #[test]
    fn encodes_the_hand_computed_read() {
        let mut out = [0u8; 32];
        let n = read_frame().encode(0, &mut out).unwrap();
        assert_eq!(&out[..n], &READ);
        let n = read_frame().encode(2, &mut out).unwrap();
        assert_eq!(&out[..2], &[0xFE; 2]);
        assert_eq!(&out[2..n], &READ);
    }

    #[test]
    fn decodes_after_preamble_and_noise() {
        let mut wire = std::vec![0x00, 0x12, 0xFE, 0xFE];
        wire.extend_from_slice(&READ);
        wire.push(0x42);
        let (f, used) = decode(&wire).unwrap();
        assert_eq!(used, 4 + READ.len(), "trailing bytes are left");
        assert_eq!(f, read_frame());
    }

    #[test]
    fn data_is_not_offset() {
        // DL/T 645 adds 33H to every data byte; CJ/T 188 does not.
        let f = Frame::new(MeterType::GAS, meter_1(), Control(0x81), &[0x00, 0xFF]).unwrap();
        let mut out = [0u8; 32];
        let n = f.encode(0, &mut out).unwrap();
        assert_eq!(&out[11..13], &[0x00, 0xFF]);
        assert_eq!(decode(&out[..n]).unwrap().0, f);
    }

    #[test]
    fn a_split_frame_is_incomplete_until_its_last_byte() {
        for cut in 0..READ.len() {
            assert_eq!(
                decode(&READ[..cut]).unwrap_err(),
                DecodeError::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn errors_are_named() {
        let mut wire = READ;
        wire[14] = 0x2D;
        let e = decode(&wire).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Checksum {
                at: 0,
                computed: 0x2C,
                received: 0x2D
            }
        );
        assert!(e.to_string().contains("checksum 2DH"), "{e}");
        let mut wire = READ;
        wire[15] = 0x17;
        assert_eq!(
            decode(&wire).unwrap_err(),
            DecodeError::End { at: 0, found: 0x17 }
        );
        let mut wire = READ;
        wire[10] = 101;
        assert_eq!(
            decode(&wire).unwrap_err(),
            DecodeError::DataTooLong { at: 0, len: 101 }
        );
        let mut wire = READ;
        wire[2] = 0x0F;
        let e = decode(&wire).unwrap_err();
        assert!(e.to_string().contains("address 0000000000000F"), "{e}");
        assert_eq!(e.at(), Some(0));
    }

    #[test]
    fn encoding_checks_limits() {
        let big = [0u8; MAX_DATA_LEN + 1];
        assert_eq!(
            Frame::new(MeterType::GAS, meter_1(), Control(1), &big).err(),
            Some(DataTooLong { len: 101 })
        );
        let f = Frame::new(MeterType::GAS, meter_1(), Control(1), &big[1..]).unwrap();
        let mut out = [0u8; MAX_FRAME_LEN + 4];
        assert_eq!(f.encode(4, &mut out), Ok(MAX_FRAME_LEN + 4));
        assert_eq!(
            f.encode(5, &mut out),
            Err(EncodeError::BufferTooSmall {
                needed: MAX_FRAME_LEN + 5,
                available: MAX_FRAME_LEN + 4
            })
        );
        assert_eq!(
            f.encode(17, &mut out),
            Err(EncodeError::TooLongPreamble { asked: 17 })
        );
    }
}
