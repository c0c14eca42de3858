//! The requests a master sends and the answers it gets (DL/T 645-2007
//! §7.3 read data, §7.4 read follow-up, §7.7 read address, §7.5
//! broadcast time), built on [`Frame`].

use crate::control::{Control, ErrorWord, Function};
use crate::data::DataId;
use crate::frame::Frame;
use crate::Address;
use core::fmt;

/// A time for broadcast time setting: the meter keeps local time with a
/// two-digit year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterTime {
    /// Year within the century, 0-99.
    pub year: u8,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-59.
    pub second: u8,
}

fn bcd(v: u8) -> u8 {
    ((v / 10 % 10) << 4) | (v % 10)
}

/// Requests a master sends.
impl Frame {
    /// Read the value of `di` from `address` (§7.3: C = 11H, L = 04H).
    pub fn read(address: Address, di: DataId) -> Frame {
        Self::with(address, Control::request(Function::ReadData), &di.to_wire())
    }

    /// Read follow-up frame `seq` of a long answer to `di` (§7.4: C = 12H,
    /// L = 05H).
    pub fn read_follow_up(address: Address, di: DataId, seq: u8) -> Frame {
        let [a, b, c, d] = di.to_wire();
        Self::with(
            address,
            Control::request(Function::ReadFollowUp),
            &[a, b, c, d, seq],
        )
    }

    /// Ask the only meter on the line for its address (§7.7: C = 13H to
    /// `AAAAAAAAAAAA`, L = 00H).
    pub fn read_address() -> Frame {
        Self::with(
            Address::WILDCARD,
            Control::request(Function::ReadAddress),
            &[],
        )
    }

    /// Set every meter's clock (§7.5: C = 08H to `999999999999`, data
    /// ss mm hh DD MM YY in BCD). Meters do not answer.
    pub fn broadcast_time(t: MeterTime) -> Frame {
        Self::with(
            Address::BROADCAST,
            Control::request(Function::BroadcastTime),
            &[
                bcd(t.second),
                bcd(t.minute),
                bcd(t.hour),
                bcd(t.day),
                bcd(t.month),
                bcd(t.year),
            ],
        )
    }

    fn with(address: Address, control: Control, data: &[u8]) -> Frame {
        match Frame::new(address, control, data) {
            Ok(f) => f,
            // Every caller passes at most 6 bytes.
            Err(_) => unreachable!("request data fits a frame"),
        }
    }
}

/// What a meter's frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// The value of `di` (or a part of it, when `more`).
    Data {
        /// The identifier answered.
        di: DataId,
        /// The value bytes, plain, least significant first.
        value: &'a [u8],
        /// A follow-up frame holds more (read it with
        /// [`Frame::read_follow_up`]).
        more: bool,
        /// The follow-up sequence number, in answers to a follow-up read.
        seq: Option<u8>,
    },
    /// The meter's address, answering [`Frame::read_address`].
    Address(Address),
    /// The meter could not do what was asked.
    Abnormal(ErrorWord),
}

/// Why a frame is not a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// D7 is 0: a master's frame (an echo, or another master on the line).
    NotFromMeter,
    /// The data field is too short for the function.
    TooShort {
        /// The function answered.
        function: Function,
        /// Data bytes received.
        len: usize,
    },
    /// A function this crate does not read answers of.
    Unsupported(Control),
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::NotFromMeter => {
                f.write_str("the frame came from a master, not a meter (an echo?)")
            }
            AnswerError::TooShort { function, len } => write!(
                f,
                "the answer to function {:02X}H has only {len} data bytes",
                function.code()
            ),
            AnswerError::Unsupported(c) => {
                write!(f, "control code {c} is not an answer this gateway reads")
            }
        }
    }
}

impl core::error::Error for AnswerError {}

impl Frame {
    /// Reads the frame as a meter's answer.
    pub fn answer(&self) -> Result<Answer<'_>, AnswerError> {
        let c = self.control;
        if !c.from_meter() {
            return Err(AnswerError::NotFromMeter);
        }
        let data = self.data();
        let function = c.function();
        let short = || AnswerError::TooShort {
            function,
            len: data.len(),
        };
        if c.is_abnormal() {
            return data
                .first()
                .map(|e| Answer::Abnormal(ErrorWord(*e)))
                .ok_or_else(short);
        }
        match function {
            Function::ReadData | Function::ReadFollowUp => {
                let follow = function == Function::ReadFollowUp;
                let min = if follow { 5 } else { 4 };
                if data.len() < min {
                    return Err(short());
                }
                let di = DataId::from_wire([data[0], data[1], data[2], data[3]]);
                let (value, seq) = if follow {
                    (&data[4..data.len() - 1], data.last().copied())
                } else {
                    (&data[4..], None)
                };
                Ok(Answer::Data {
                    di,
                    value,
                    more: c.has_follow_up(),
                    seq,
                })
            }
            Function::ReadAddress => {
                let bytes: [u8; 6] = data
                    .get(..6)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(short)?;
                Ok(Answer::Address(Address(bytes)))
            }
            _ => Err(AnswerError::Unsupported(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::decode;

    #[test]
    fn read_address_goes_to_the_wildcard_with_no_data() {
        let mut out = [0u8; 16];
        let n = Frame::read_address().encode(0, &mut out).unwrap();
        // CS = 68 + 6×AA + 68 + 13 + 00 = 68+3FC+68+13 = 4DFH → DFH.
        assert_eq!(
            &out[..n],
            &[0x68, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0x68, 0x13, 0x00, 0xDF, 0x16]
        );
    }

    #[test]
    fn broadcast_time_packs_bcd_seconds_first() {
        let f = Frame::broadcast_time(MeterTime {
            year: 26,
            month: 11,
            day: 29,
            hour: 5,
            minute: 7,
            second: 59,
        });
        assert_eq!(f.address, Address::BROADCAST);
        assert_eq!(f.control, Control(0x08));
        assert_eq!(f.data(), &[0x59, 0x07, 0x05, 0x29, 0x11, 0x26]);
    }

    #[test]
    fn read_answers_carry_the_identifier_and_value() {
        let a = Address::parse("000000000001").unwrap();
        let f = Frame::new(
            a,
            Control::answer(Function::ReadData, false),
            &[0, 1, 1, 2, 0x01, 0x22],
        )
        .unwrap();
        assert_eq!(
            f.answer(),
            Ok(Answer::Data {
                di: DataId::VOLTAGE_A,
                value: &[0x01, 0x22],
                more: false,
                seq: None
            })
        );
        let f = Frame::new(
            a,
            Control::answer(Function::ReadFollowUp, true),
            &[0, 0, 1, 0, 9, 9, 3],
        )
        .unwrap();
        assert_eq!(
            f.answer(),
            Ok(Answer::Data {
                di: DataId::FORWARD_ACTIVE_ENERGY,
                value: &[9, 9],
                more: true,
                seq: Some(3)
            })
        );
    }

    #[test]
    fn abnormal_answers_give_the_error_word() {
        // D1H with ERR 02H + 33H = 35H; CS by hand:
        // 68+01+68+D1+01+35 = 1D8H → D8H.
        let wire = [
            0x68, 0x01, 0, 0, 0, 0, 0, 0x68, 0xD1, 0x01, 0x35, 0xD8, 0x16,
        ];
        let (f, _) = decode(&wire).unwrap();
        let Ok(Answer::Abnormal(e)) = f.answer() else {
            panic!("{:?}", f.answer())
        };
        assert!(e.is_no_data());
    }

    #[test]
    fn unusable_answers_are_refused() {
        let a = Address::parse("000000000001").unwrap();
        let echo = Frame::read(a, DataId::VOLTAGE_A);
        assert_eq!(echo.answer(), Err(AnswerError::NotFromMeter));
        let short = Frame::new(a, Control(0x91), &[0, 1, 1]).unwrap();
        assert_eq!(
            short.answer(),
            Err(AnswerError::TooShort {
                function: Function::ReadData,
                len: 3
            })
        );
        let empty_err = Frame::new(a, Control(0xD1), &[]).unwrap();
        assert!(matches!(
            empty_err.answer(),
            Err(AnswerError::TooShort { .. })
        ));
        let short_addr = Frame::new(a, Control(0x93), &[1, 2]).unwrap();
        assert!(matches!(
            short_addr.answer(),
            Err(AnswerError::TooShort { .. })
        ));
        let write = Frame::new(a, Control(0x94), &[]).unwrap();
        assert_eq!(write.answer(), Err(AnswerError::Unsupported(Control(0x94))));
    }
}
