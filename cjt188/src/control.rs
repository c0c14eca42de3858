//! The control code CTR and data identifiers DI.
//!
//! CTR is one byte: D7 says who sent the frame (0 master, 1 meter), D6
//! whether the meter answers normally (0) or abnormally (1), D5..D0 the
//! function. A meter answers a read (`01H`) with `81H`, or `C1H` when it
//! cannot. The data field of every request and normal answer starts with
//! the 2-byte data identifier DI (DI0, the low byte, first: `901FH`
//! travels as `1F 90`) and the sequence number SER, which the meter echoes.

use core::fmt;

/// What a frame asks or answers (CTR bits D5..D0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `01H` read data by data identifier.
    ReadData,
    /// `03H` read the meter's address (to the wildcard address).
    ReadAddress,
    /// `04H` write data (prices, dates, valve control).
    WriteData,
    /// `09H` read the key version.
    ReadKeyVersion,
    /// `15H` write the meter's address.
    WriteAddress,
    /// `16H` write the mechanical register synchronisation data.
    WriteSync,
    /// Any other code.
    Other(u8),
}

impl Function {
    /// The six function bits.
    pub const fn code(self) -> u8 {
        match self {
            Function::ReadData => 0x01,
            Function::ReadAddress => 0x03,
            Function::WriteData => 0x04,
            Function::ReadKeyVersion => 0x09,
            Function::WriteAddress => 0x15,
            Function::WriteSync => 0x16,
            Function::Other(c) => c & 0x3F,
        }
    }

    /// The function of six bits.
    pub const fn from_code(code: u8) -> Self {
        match code & 0x3F {
            0x01 => Function::ReadData,
            0x03 => Function::ReadAddress,
            0x04 => Function::WriteData,
            0x09 => Function::ReadKeyVersion,
            0x15 => Function::WriteAddress,
            0x16 => Function::WriteSync,
            c => Function::Other(c),
        }
    }
}

/// The control byte CTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control(pub u8);

impl Control {
    const FROM_METER: u8 = 0x80;
    const ABNORMAL: u8 = 0x40;

    /// A request from the master.
    pub const fn request(function: Function) -> Self {
        Control(function.code())
    }

    /// A normal answer from a meter (`81H` for a read).
    pub const fn answer(function: Function) -> Self {
        Control(Self::FROM_METER | function.code())
    }

    /// An abnormal answer from a meter (`C1H` for a read).
    pub const fn abnormal(function: Function) -> Self {
        Control(Self::FROM_METER | Self::ABNORMAL | function.code())
    }

    /// Whether the frame comes from a meter (D7).
    pub const fn from_meter(self) -> bool {
        self.0 & Self::FROM_METER != 0
    }

    /// Whether the meter could not do what was asked (D6).
    pub const fn is_abnormal(self) -> bool {
        self.0 & Self::ABNORMAL != 0
    }

    /// The function (D5..D0).
    pub const fn function(self) -> Function {
        Function::from_code(self.0)
    }
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}H", self.0)
    }
}

/// A data identifier, as the standard writes it (`901FH`); DI0 (low byte)
/// goes first on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataId(pub u16);

impl DataId {
    /// `901FH` metering data: cumulative flow (water, gas) or heat (heat
    /// meters), the settlement-day value, the meter's clock and status.
    pub const METER_DATA: DataId = DataId(0x901F);
    /// `810AH` the meter's address (with function `03H`).
    pub const ADDRESS: DataId = DataId(0x810A);
    /// `A017H` valve control (with function `04H`): `55H` open, `99H` close.
    pub const VALVE: DataId = DataId(0xA017);

    /// The two wire bytes, DI0 first.
    pub const fn to_wire(self) -> [u8; 2] {
        self.0.to_le_bytes()
    }

    /// The identifier of two wire bytes, DI0 first.
    pub const fn from_wire(bytes: [u8; 2]) -> Self {
        DataId(u16::from_le_bytes(bytes))
    }
}

impl fmt::Display for DataId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}H", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bits() {
        let read = Control::request(Function::ReadData);
        assert_eq!(read, Control(0x01));
        assert!(!read.from_meter());
        assert_eq!(Control::answer(Function::ReadData), Control(0x81));
        assert_eq!(Control::answer(Function::ReadAddress), Control(0x83));
        assert_eq!(Control::answer(Function::WriteData), Control(0x84));
        let bad = Control::abnormal(Function::ReadData);
        assert_eq!(bad, Control(0xC1));
        assert!(bad.from_meter() && bad.is_abnormal());
        assert_eq!(bad.function(), Function::ReadData);
        for code in 0..=0x3F {
            assert_eq!(Function::from_code(code).code(), code);
        }
    }

    #[test]
    fn identifiers_travel_low_byte_first() {
        assert_eq!(DataId::METER_DATA.to_wire(), [0x1F, 0x90]);
        assert_eq!(DataId::from_wire([0x0A, 0x81]), DataId::ADDRESS);
        assert_eq!(DataId::VALVE.to_wire(), [0x17, 0xA0]);
    }
}
