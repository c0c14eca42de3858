//! The control code C (DL/T 645-2007 §7.1.3).
//!
//! One byte: D7 says who sent the frame (0 master, 1 meter), D6 whether
//! the meter answers normally (0) or abnormally (1, the data field is then
//! an error word, see [`crate::ErrorWord`]), D5 whether a follow-up frame
//! holds more of the answer, and D4..D0 the function. A meter answers a
//! read (`11H`) with `91H`, `B1H` when more follows, or `D1H` when it
//! cannot.

use core::fmt;

/// What a frame asks or answers (C bits D4..D0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `08H` broadcast time setting: every meter sets its clock, none answers.
    BroadcastTime,
    /// `11H` read data by data identifier.
    ReadData,
    /// `12H` read the follow-up frame of a long answer.
    ReadFollowUp,
    /// `13H` read the communication address (to the wildcard address).
    ReadAddress,
    /// `14H` write data.
    WriteData,
    /// `15H` write the communication address.
    WriteAddress,
    /// `16H` freeze.
    Freeze,
    /// `17H` change the baud rate.
    ChangeBaudRate,
    /// `18H` change a password.
    ChangePassword,
    /// `19H` clear the maximum demand.
    ClearMaxDemand,
    /// `1AH` clear the meter.
    ClearMeter,
    /// `1BH` clear events.
    ClearEvents,
    /// `1CH` relay control (trip, close, alarm).
    Control,
    /// Any code the 2007 edition reserves.
    Reserved(u8),
}

impl Function {
    /// The five function bits.
    pub const fn code(self) -> u8 {
        match self {
            Function::BroadcastTime => 0x08,
            Function::ReadData => 0x11,
            Function::ReadFollowUp => 0x12,
            Function::ReadAddress => 0x13,
            Function::WriteData => 0x14,
            Function::WriteAddress => 0x15,
            Function::Freeze => 0x16,
            Function::ChangeBaudRate => 0x17,
            Function::ChangePassword => 0x18,
            Function::ClearMaxDemand => 0x19,
            Function::ClearMeter => 0x1A,
            Function::ClearEvents => 0x1B,
            Function::Control => 0x1C,
            Function::Reserved(c) => c & 0x1F,
        }
    }

    /// The function of the five bits `code & 0x1F`.
    pub const fn from_code(code: u8) -> Self {
        match code & 0x1F {
            0x08 => Function::BroadcastTime,
            0x11 => Function::ReadData,
            0x12 => Function::ReadFollowUp,
            0x13 => Function::ReadAddress,
            0x14 => Function::WriteData,
            0x15 => Function::WriteAddress,
            0x16 => Function::Freeze,
            0x17 => Function::ChangeBaudRate,
            0x18 => Function::ChangePassword,
            0x19 => Function::ClearMaxDemand,
            0x1A => Function::ClearMeter,
            0x1B => Function::ClearEvents,
            0x1C => Function::Control,
            c => Function::Reserved(c),
        }
    }
}

/// The control byte, kept as sent so that reserved codes survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control(pub u8);

const FROM_METER: u8 = 0x80;
const ABNORMAL: u8 = 0x40;
const FOLLOW_UP: u8 = 0x20;

impl Control {
    /// A master's request for `function`.
    pub const fn request(function: Function) -> Self {
        Control(function.code())
    }

    /// A meter's normal answer to `function`; `more` when a follow-up
    /// frame holds the rest.
    pub const fn answer(function: Function, more: bool) -> Self {
        Control(FROM_METER | if more { FOLLOW_UP } else { 0 } | function.code())
    }

    /// A meter's abnormal answer to `function` (data: one error word).
    pub const fn abnormal(function: Function) -> Self {
        Control(FROM_METER | ABNORMAL | function.code())
    }

    /// D7: the meter sent it.
    pub const fn from_meter(self) -> bool {
        self.0 & FROM_METER != 0
    }

    /// D6: the meter could not do what was asked.
    pub const fn is_abnormal(self) -> bool {
        self.0 & ABNORMAL != 0
    }

    /// D5: a follow-up frame holds more of the answer.
    pub const fn has_follow_up(self) -> bool {
        self.0 & FOLLOW_UP != 0
    }

    /// D4..D0.
    pub const fn function(self) -> Function {
        Function::from_code(self.0)
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}H", self.0)
    }
}

/// The error word ERR of an abnormal answer (§7.3.2, table "错误信息字").
///
/// A meter sets one bit per reason; bit 7 is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorWord(pub u8);

impl ErrorWord {
    /// Bit 0: some other error.
    pub const OTHER: u8 = 0x01;
    /// Bit 1: no such data (the meter does not have this identifier).
    pub const NO_DATA: u8 = 0x02;
    /// Bit 2: wrong password or not authorised.
    pub const UNAUTHORISED: u8 = 0x04;
    /// Bit 3: the baud rate cannot be changed.
    pub const BAUD_RATE: u8 = 0x08;
    /// Bit 4: too many annual time zones.
    pub const TIME_ZONES: u8 = 0x10;
    /// Bit 5: too many daily time periods.
    pub const DAY_PERIODS: u8 = 0x20;
    /// Bit 6: too many tariffs.
    pub const TARIFFS: u8 = 0x40;

    const MEANINGS: [(u8, &'static str); 7] = [
        (Self::OTHER, "other error"),
        (Self::NO_DATA, "no such data"),
        (Self::UNAUTHORISED, "wrong password or not authorised"),
        (Self::BAUD_RATE, "baud rate cannot be changed"),
        (Self::TIME_ZONES, "too many annual time zones"),
        (Self::DAY_PERIODS, "too many daily time periods"),
        (Self::TARIFFS, "too many tariffs"),
    ];

    /// Whether the meter said it does not have the identifier asked for:
    /// the one error a poller should treat as "this model lacks that value".
    pub const fn is_no_data(self) -> bool {
        self.0 & Self::NO_DATA != 0
    }
}

impl fmt::Display for ErrorWord {
    /// The reasons in words, `; `-separated, then the raw byte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, meaning) in Self::MEANINGS {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str("; ")?;
                }
                f.write_str(meaning)?;
                first = false;
            }
        }
        if first {
            f.write_str("no reason given")?;
        }
        write!(f, " (ERR {:02X}H)", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn answers_to_a_read_have_the_standard_codes() {
        assert_eq!(Control::request(Function::ReadData).0, 0x11);
        assert_eq!(Control::answer(Function::ReadData, false).0, 0x91);
        assert_eq!(Control::answer(Function::ReadData, true).0, 0xB1);
        assert_eq!(Control::abnormal(Function::ReadData).0, 0xD1);
        assert_eq!(Control::answer(Function::ReadAddress, false).0, 0x93);
        assert_eq!(Control::request(Function::BroadcastTime).0, 0x08);
        assert_eq!(Control::answer(Function::ReadFollowUp, false).0, 0x92);
    }

    #[test]
    fn bits_read_back() {
        let c = Control(0xD1);
        assert!(c.from_meter() && c.is_abnormal() && !c.has_follow_up());
        assert_eq!(c.function(), Function::ReadData);
        let c = Control(0xB2);
        assert!(c.from_meter() && !c.is_abnormal() && c.has_follow_up());
        assert_eq!(c.function(), Function::ReadFollowUp);
        assert!(!Control(0x11).from_meter());
    }

    #[test]
    fn every_function_code_round_trips() {
        for code in 0..0x20u8 {
            assert_eq!(Function::from_code(code).code(), code);
        }
        assert_eq!(Function::from_code(0x03), Function::Reserved(0x03));
    }

    #[test]
    fn error_words_say_every_reason() {
        assert_eq!(ErrorWord(0x02).to_string(), "no such data (ERR 02H)");
        assert_eq!(
            ErrorWord(0x05).to_string(),
            "other error; wrong password or not authorised (ERR 05H)"
        );
        assert_eq!(ErrorWord(0x80).to_string(), "no reason given (ERR 80H)");
        assert!(ErrorWord(0x03).is_no_data());
        assert!(!ErrorWord(0x01).is_no_data());
    }
}
