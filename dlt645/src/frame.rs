//! Frames on the wire (DL/T 645-2007 §7.1) and their encoding and decoding.
//!
//! ```text
//! FE FE FE FE  68  A0 A1 A2 A3 A4 A5  68  C  L  DATA…  CS  16
//! wake-up      start  address      start         +33H  sum end
//! ```
//!
//! - Up to four `FEH` bytes precede a frame to wake the receiver (§7.2);
//!   a decoder skips them like any other noise before the start byte.
//! - The address is 6 bytes of BCD, least significant first ([`Address`]).
//! - `L` is the data length: at most 200 bytes (§7.1.4: reads ≤ 200,
//!   writes ≤ 50), so a frame is never longer than [`MAX_FRAME_LEN`].
//! - Every data byte is sent plus `33H` and received minus `33H` (§7.1.5);
//!   [`Frame`] keeps the plain bytes.
//! - `CS` is the sum modulo 256 of every byte from the first `68H` to the
//!   last data byte (§7.1.6).
//!
//! [`decode`] looks at one buffer; [`crate::Receiver`] finds frames in a
//! byte stream that may be split, noisy or corrupt.

use crate::{Address, Control};
use core::fmt;

/// Start of a frame; also marks the end of the address.
pub const START: u8 = 0x68;
/// End of a frame.
pub const END: u8 = 0x16;
/// Wake-up byte sent before a frame.
pub const WAKE_UP: u8 = 0xFE;
/// What the sender adds to every data byte.
pub const DATA_OFFSET: u8 = 0x33;
/// Longest data field the standard allows (§7.1.4).
pub const MAX_DATA_LEN: usize = 200;
/// Bytes of a frame around its data: 68, address, 68, C, L, CS, 16.
pub const OVERHEAD: usize = 12;
/// Longest frame without wake-up bytes.
pub const MAX_FRAME_LEN: usize = OVERHEAD + MAX_DATA_LEN;
/// Wake-up bytes the standard sends before a frame.
pub const DEFAULT_WAKE_UP: usize = 4;
/// Most wake-up bytes [`Frame::encode`] will send.
pub const MAX_WAKE_UP: usize = 16;

/// One frame with its data field as plain bytes (the `33H` removed).
///
/// Owns a fixed 200-byte array, so decoding never allocates.
#[derive(Clone)]
pub struct Frame {
    /// The meter the frame is to or from.
    pub address: Address,
    /// Direction, answer status and function.
    pub control: Control,
    len: u8,
    data: [u8; MAX_DATA_LEN],
}

/// A data field longer than the standard allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataTooLong {
    /// The length asked for.
    pub len: usize,
}

impl fmt::Display for DataTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a data field of {} bytes is longer than the {MAX_DATA_LEN} bytes DL/T 645-2007 allows",
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
    /// More wake-up bytes than [`MAX_WAKE_UP`].
    TooManyWakeUpBytes {
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
            EncodeError::TooManyWakeUpBytes { asked } => write!(
                f,
                "{asked} wake-up bytes asked for; at most {MAX_WAKE_UP} are sent"
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
    /// The byte after the address is not the second `68H`.
    SecondStart {
        /// Offset of the frame's first `68H`.
        at: usize,
        /// The byte found instead.
        found: u8,
    },
    /// `L` is above the standard's 200 bytes.
    DataTooLong {
        /// Offset of the frame's first `68H`.
        at: usize,
        /// The length byte.
        len: u8,
    },
    /// The checksum byte does not match the frame's bytes.
    Checksum {
        /// Offset of the frame's first `68H`.
        at: usize,
        /// The sum of the bytes received.
        computed: u8,
        /// The checksum byte received.
        received: u8,
    },
    /// The byte after the checksum is not `16H`.
    End {
        /// Offset of the frame's first `68H`.
        at: usize,
        /// The byte found instead.
        found: u8,
    },
    /// An address byte is neither BCD nor `AAH`.
    Address {
        /// Offset of the frame's first `68H`.
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
            DecodeError::SecondStart { at, .. }
            | DecodeError::DataTooLong { at, .. }
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
            DecodeError::SecondStart { at, found } => write!(
                f,
                "frame at byte {at}: byte {} is {found:02X}H, not the second start byte 68H",
                at + 7
            ),
            DecodeError::DataTooLong { at, len } => write!(
                f,
                "frame at byte {at}: data length {len} is over the {MAX_DATA_LEN} bytes \
                 DL/T 645-2007 allows"
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
                "frame at byte {at}: address {address} is not 12 BCD digits"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

impl Frame {
    /// A frame with `data` (plain bytes, at most 200).
    pub fn new(address: Address, control: Control, data: &[u8]) -> Result<Self, DataTooLong> {
        if data.len() > MAX_DATA_LEN {
            return Err(DataTooLong { len: data.len() });
        }
        let mut frame = Frame {
            address,
            control,
            len: data.len() as u8,
            data: [0; MAX_DATA_LEN],
        };
        frame.data[..data.len()].copy_from_slice(data);
        Ok(frame)
    }

    /// The data field, plain (the `33H` removed).
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// Bytes [`Self::encode`] writes with `wake_up` wake-up bytes.
    pub fn encoded_len(&self, wake_up: usize) -> usize {
        wake_up + OVERHEAD + usize::from(self.len)
    }

    /// Writes the frame, preceded by `wake_up` `FEH` bytes, into `out`;
    /// returns the number of bytes written.
    pub fn encode(&self, wake_up: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
        if wake_up > MAX_WAKE_UP {
            return Err(EncodeError::TooManyWakeUpBytes { asked: wake_up });
        }
        let needed = self.encoded_len(wake_up);
        if out.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        out[..wake_up].fill(WAKE_UP);
        let frame = &mut out[wake_up..needed];
        frame[0] = START;
        frame[1..7].copy_from_slice(&self.address.0);
        frame[7] = START;
        frame[8] = self.control.0;
        frame[9] = self.len;
        for (o, d) in frame[10..].iter_mut().zip(self.data()) {
            *o = d.wrapping_add(DATA_OFFSET);
        }
        let cs_at = 10 + usize::from(self.len);
        frame[cs_at] = checksum(&frame[..cs_at]);
        frame[cs_at + 1] = END;
        Ok(needed)
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address
            && self.control == other.control
            && self.data() == other.data()
    }
}

impl Eq for Frame {}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("address", &self.address)
            .field("control", &self.control)
            .field("data", &self.data())
            .finish()
    }
}

/// The sum modulo 256 of `bytes` (§7.1.6).
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// Decodes the first frame in `buf`, skipping whatever comes before its
/// first `68H` (wake-up bytes, line noise). Returns the frame and the
/// number of bytes up to and including its `16H`.
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
    if frame.len() < 8 {
        return Err(DecodeError::Incomplete);
    }
    if frame[7] != START {
        return Err(DecodeError::SecondStart {
            at,
            found: frame[7],
        });
    }
    let mut address = [0u8; 6];
    address.copy_from_slice(&frame[1..7]);
    let address = Address(address);
    if !address.is_valid() {
        return Err(DecodeError::Address { at, address });
    }
    if frame.len() < 10 {
        return Err(DecodeError::Incomplete);
    }
    let len = frame[9];
    if usize::from(len) > MAX_DATA_LEN {
        return Err(DecodeError::DataTooLong { at, len });
    }
    let cs_at = 10 + usize::from(len);
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
    for (d, w) in data.iter_mut().zip(&frame[10..cs_at]) {
        *d = w.wrapping_sub(DATA_OFFSET);
    }
    Ok((
        Frame {
            address,
            control: Control(frame[8]),
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

    /// Read of 00 01 00 00 (forward active energy) from meter 000000000001,
    /// computed by hand: DI0..DI3 = 00 00 01 00, each + 33H = 33 33 34 33;
    /// CS = 68+01+68+11+04+33+33+34+33 = 1B3H → B3H.
    const READ_ENERGY: [u8; 16] = [
        0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x11, 0x04, 0x33, 0x33, 0x34, 0x33, 0xB3,
        0x16,
    ];

    fn meter_1() -> Address {
        Address::parse("000000000001").unwrap()
    }

    #[test]
    fn encodes_the_hand_computed_read_request() {
        let f = Frame::new(
            meter_1(),
            Control::request(Function::ReadData),
            &[0, 0, 1, 0],
        )
        .unwrap();
        let mut out = [0u8; 32];
        let n = f.encode(0, &mut out).unwrap();
        assert_eq!(&out[..n], &READ_ENERGY);
        let n = f.encode(4, &mut out).unwrap();
        assert_eq!(&out[..4], &[0xFE; 4]);
        assert_eq!(&out[4..n], &READ_ENERGY);
    }

    #[test]
    fn decodes_the_hand_computed_read_request_after_wake_up_bytes() {
        let mut wire = [0xFEu8; 20];
        wire[4..].copy_from_slice(&READ_ENERGY);
        let (f, used) = decode(&wire).unwrap();
        assert_eq!(used, 20);
        assert_eq!(f.address, meter_1());
        assert_eq!(f.control, Control(0x11));
        assert_eq!(f.data(), &[0, 0, 1, 0]);
    }

    #[test]
    fn decodes_a_hand_computed_answer() {
        // Meter 000000000001 answers 00 01 00 00 with 1234.56 kWh: data
        // 00 00 01 00 56 34 12 00, + 33H = 33 33 34 33 89 67 45 33.
        // CS by hand: 68+01=69, +68=D1, +91=162, +08=16A, +33=19D, +33=1D0,
        // +34=204, +33=237, +89=2C0, +67=327, +45=36C, +33=39F → 9FH.
        let wire = [
            0x68, 0x01, 0, 0, 0, 0, 0, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89, 0x67, 0x45,
            0x33, 0x9F, 0x16,
        ];
        let (f, used) = decode(&wire).unwrap();
        assert_eq!(used, wire.len());
        assert!(f.control.from_meter());
        assert_eq!(f.data(), &[0, 0, 1, 0, 0x56, 0x34, 0x12, 0]);
    }

    #[test]
    fn a_split_frame_is_incomplete_until_its_last_byte() {
        for cut in 0..READ_ENERGY.len() {
            assert_eq!(
                decode(&READ_ENERGY[..cut]).unwrap_err(),
                DecodeError::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_before_the_frame_is_skipped() {
        let mut wire = std::vec![0x00, 0x12, 0xFE, 0x99];
        wire.extend_from_slice(&READ_ENERGY);
        wire.push(0x42);
        let (f, used) = decode(&wire).unwrap();
        assert_eq!(used, 4 + READ_ENERGY.len(), "trailing bytes are left");
        assert_eq!(f.data(), &[0, 0, 1, 0]);
    }

    #[test]
    fn a_wrong_checksum_names_both_sums() {
        let mut wire = READ_ENERGY;
        wire[14] = 0xB4;
        let e = decode(&wire).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Checksum {
                at: 0,
                computed: 0xB3,
                received: 0xB4
            }
        );
        assert!(e.to_string().contains("checksum B4H"), "{e}");
        // A corrupted data byte is caught the same way.
        let mut wire = READ_ENERGY;
        wire[12] ^= 0x01;
        assert!(matches!(decode(&wire), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn a_wrong_length_shows_as_a_checksum_or_end_error() {
        // L says 5 where 4 bytes follow: the checksum lands on the wrong byte.
        let mut wire = std::vec::Vec::from(READ_ENERGY);
        wire[9] = 0x05;
        wire.extend_from_slice(&[0x00, 0x00]);
        assert!(matches!(
            decode(&wire),
            Err(DecodeError::Checksum { .. } | DecodeError::End { .. })
        ));
        // L says 3: the data sum is right up to CS but the end byte is not.
        let mut short = READ_ENERGY;
        short[9] = 0x03;
        short[13] = checksum(&short[..13]);
        assert_eq!(
            decode(&short).unwrap_err(),
            DecodeError::End { at: 0, found: 0xB3 }
        );
    }

    #[test]
    fn structural_errors_are_named() {
        let mut wire = READ_ENERGY;
        wire[7] = 0x69;
        assert_eq!(
            decode(&wire).unwrap_err(),
            DecodeError::SecondStart { at: 0, found: 0x69 }
        );
        let mut wire = READ_ENERGY;
        wire[9] = 201;
        assert_eq!(
            decode(&wire).unwrap_err(),
            DecodeError::DataTooLong { at: 0, len: 201 }
        );
        let mut wire = READ_ENERGY;
        wire[2] = 0x0F;
        let e = decode(&wire).unwrap_err();
        assert!(matches!(e, DecodeError::Address { at: 0, .. }));
        assert!(e.to_string().contains("address 000000000F01"), "{e}");
        let mut wire = READ_ENERGY;
        wire[15] = 0x17;
        assert_eq!(
            decode(&wire).unwrap_err(),
            DecodeError::End { at: 0, found: 0x17 }
        );
    }

    #[test]
    fn encoding_checks_limits() {
        assert_eq!(
            Frame::new(meter_1(), Control(0x11), &[0; 201]).err(),
            Some(DataTooLong { len: 201 })
        );
        let f = Frame::new(meter_1(), Control(0x11), &[0; 200]).unwrap();
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
            Err(EncodeError::TooManyWakeUpBytes { asked: 17 })
        );
    }

    #[test]
    fn data_bytes_wrap_when_offset() {
        // CDH..FFH + 33H wrap past 00H; the receiver must undo it exactly.
        let f = Frame::new(meter_1(), Control(0x91), &[0xCD, 0xFF, 0x00]).unwrap();
        let mut out = [0u8; 32];
        let n = f.encode(0, &mut out).unwrap();
        assert_eq!(&out[10..13], &[0x00, 0x32, 0x33]);
        assert_eq!(decode(&out[..n]).unwrap().0, f);
    }
}
