//! Data identifiers and the formats of their values (DL/T 645-2007
//! Appendix A).
//!
//! A value is named by four bytes DI3 DI2 DI1 DI0, written as in the
//! standard's tables (`02 01 01 00`, phase A voltage) and sent DI0 first.
//! Values are packed BCD, least significant byte first, with a fixed number
//! of decimals given by the table's format (`XXX.X`). Quantities that can
//! be negative (current, power, power factor) carry the sign in the top
//! bit of the most significant byte (Appendix A, notes to Table A.3); the
//! magnitude is then one bit shorter.
//!
//! Formats below are from Table A.1 (energy: `XXXXXX.XX` kWh, 4 bytes) and
//! Table A.3 (variables). Reverse energy and the per-phase tables have the
//! same formats as the total they break down.

use core::fmt;

/// A data identifier DI3 DI2 DI1 DI0, held as `0xDI3DI2DI1DI0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataId(pub u32);

impl DataId {
    /// `00 00 00 00` combined active energy, total (signed).
    pub const COMBINED_ACTIVE_ENERGY: DataId = DataId(0x0000_0000);
    /// `00 01 00 00` forward (imported) active energy, total.
    pub const FORWARD_ACTIVE_ENERGY: DataId = DataId(0x0001_0000);
    /// `00 02 00 00` reverse (exported) active energy, total.
    pub const REVERSE_ACTIVE_ENERGY: DataId = DataId(0x0002_0000);
    /// `02 01 01 00` phase A voltage (`02 01 02 00` B, `02 01 03 00` C).
    pub const VOLTAGE_A: DataId = DataId(0x0201_0100);
    /// `02 02 01 00` phase A current (`02 02 02 00` B, `02 02 03 00` C).
    pub const CURRENT_A: DataId = DataId(0x0202_0100);
    /// `02 03 00 00` instantaneous active power, total (`.. 01 00` A …).
    pub const ACTIVE_POWER: DataId = DataId(0x0203_0000);
    /// `02 04 00 00` instantaneous reactive power, total.
    pub const REACTIVE_POWER: DataId = DataId(0x0204_0000);
    /// `02 05 00 00` instantaneous apparent power, total.
    pub const APPARENT_POWER: DataId = DataId(0x0205_0000);
    /// `02 06 00 00` power factor, total (`.. 01 00` A …).
    pub const POWER_FACTOR: DataId = DataId(0x0206_0000);
    /// `02 80 00 01` neutral current.
    pub const NEUTRAL_CURRENT: DataId = DataId(0x0280_0001);
    /// `02 80 00 02` grid frequency.
    pub const FREQUENCY: DataId = DataId(0x0280_0002);
    /// `02 80 00 07` temperature inside the meter.
    pub const METER_TEMPERATURE: DataId = DataId(0x0280_0007);

    /// The identifier for phase `phase` (1 = A, 2 = B, 3 = C) of a
    /// per-phase family whose DI1 numbers the phase (voltage, current,
    /// power, power factor): `VOLTAGE_A.phase(2)` is `02 01 02 00`.
    pub const fn phase(self, phase: u8) -> DataId {
        DataId((self.0 & 0xFFFF_00FF) | ((phase as u32) << 8))
    }

    /// DI0..DI3: the order on the wire.
    pub const fn to_wire(self) -> [u8; 4] {
        self.0.to_le_bytes()
    }

    /// The identifier from its wire bytes DI0..DI3.
    pub const fn from_wire(bytes: [u8; 4]) -> Self {
        DataId(u32::from_le_bytes(bytes))
    }

    /// The value format of a known identifier; `None` for identifiers
    /// this crate does not describe.
    pub fn format(self) -> Option<Format> {
        let [di3, di2, di1, di0] = self.0.to_be_bytes();
        let f = |bytes, decimals, signed| {
            Some(Format {
                bytes,
                decimals,
                signed,
            })
        };
        match (di3, di2, di1, di0) {
            // Table A.1: combined active energy may run backwards.
            (0x00, 0x00, 0x00..=0x3F, 0x00) => f(4, 2, true),
            // Forward/reverse active, total and per tariff, and per phase
            // (A 15H/16H, B 29H/2AH, C 3DH/3EH).
            (0x00, 0x01 | 0x02 | 0x15 | 0x16 | 0x29 | 0x2A | 0x3D | 0x3E, 0x00..=0x3F, 0x00) => {
                f(4, 2, false)
            }
            // Table A.3.
            (0x02, 0x01, 0x01..=0x03, 0x00) => f(2, 1, false),
            (0x02, 0x02, 0x01..=0x03, 0x00) => f(3, 3, true),
            (0x02, 0x03..=0x05, 0x00..=0x03, 0x00) => f(3, 4, true),
            (0x02, 0x06, 0x00..=0x03, 0x00) => f(2, 3, true),
            (0x02, 0x80, 0x00, 0x01) => f(3, 3, true),
            (0x02, 0x80, 0x00, 0x02) => f(2, 2, false),
            (0x02, 0x80, 0x00, 0x07) => f(2, 1, true),
            _ => None,
        }
    }
}

impl fmt::Display for DataId {
    /// As in the standard's tables: `02 01 01 00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.to_be_bytes();
        write!(f, "{a:02X} {b:02X} {c:02X} {d:02X}")
    }
}

/// How a value is packed: BCD bytes, implied decimals, sign bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Format {
    /// Bytes on the wire.
    pub bytes: u8,
    /// Digits after the decimal point (`XXX.X`: 1).
    pub decimals: u8,
    /// Whether the top bit of the last byte is a sign.
    pub signed: bool,
}

/// A decoded value: an integer of the format's smallest step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Value {
    /// The digits as an integer (`220.1` V is 2201).
    pub raw: i64,
    /// Digits after the decimal point.
    pub decimals: u8,
}

const POW10: [f64; 9] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

impl Value {
    /// The value in the format's unit.
    pub fn to_f64(self) -> f64 {
        self.raw as f64 / POW10[usize::from(self.decimals.min(8))]
    }
}

/// Why bytes are not a value of a format, or a value does not fit one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// The answer has a different number of bytes than the format.
    Length {
        /// Bytes the format has.
        expected: u8,
        /// Bytes received.
        found: usize,
    },
    /// A nibble above 9 (meters send `FFH…` for "not available").
    NotBcd {
        /// Byte offset in the value, least significant first.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// The number has more digits than the format (encoding only).
    OutOfRange {
        /// The number asked for, in steps.
        raw: i64,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Length { expected, found } => write!(
                f,
                "the value has {found} bytes where its format has {expected}"
            ),
            ValueError::NotBcd { at, byte } => write!(
                f,
                "value byte {at} is {byte:02X}H, which is not two BCD digits"
            ),
            ValueError::OutOfRange { raw } => {
                write!(f, "{raw} does not fit the format's digits")
            }
        }
    }
}

impl core::error::Error for ValueError {}

impl Format {
    /// Largest magnitude, in steps, the format can carry.
    pub fn max_raw(self) -> i64 {
        let digits = u32::from(self.bytes) * 2;
        if self.signed {
            // The top digit loses its 8s bit to the sign: at most 7.
            8 * 10i64.pow(digits - 1) - 1
        } else {
            10i64.pow(digits) - 1
        }
    }

    /// Decodes `bytes` (plain, least significant first).
    pub fn decode(self, bytes: &[u8]) -> Result<Value, ValueError> {
        if bytes.len() != usize::from(self.bytes) {
            return Err(ValueError::Length {
                expected: self.bytes,
                found: bytes.len(),
            });
        }
        let mut raw: i64 = 0;
        let mut negative = false;
        for (at, &b) in bytes.iter().enumerate().rev() {
            let mut byte = b;
            if self.signed && at + 1 == bytes.len() {
                negative = byte & 0x80 != 0;
                byte &= 0x7F;
            }
            if byte >> 4 > 9 || byte & 0x0F > 9 {
                return Err(ValueError::NotBcd { at, byte: b });
            }
            raw = raw * 100 + i64::from(byte >> 4) * 10 + i64::from(byte & 0x0F);
        }
        Ok(Value {
            raw: if negative { -raw } else { raw },
            decimals: self.decimals,
        })
    }

    /// Encodes `raw` steps into `out` (least significant byte first);
    /// returns the bytes written.
    pub fn encode(self, raw: i64, out: &mut [u8]) -> Result<usize, ValueError> {
        let n = usize::from(self.bytes);
        if raw.unsigned_abs() > self.max_raw().unsigned_abs() || (raw < 0 && !self.signed) {
            return Err(ValueError::OutOfRange { raw });
        }
        if out.len() < n {
            return Err(ValueError::Length {
                expected: self.bytes,
                found: out.len(),
            });
        }
        let mut rest = raw.unsigned_abs();
        for o in out[..n].iter_mut() {
            let two = (rest % 100) as u8;
            *o = ((two / 10) << 4) | (two % 10);
            rest /= 100;
        }
        if raw < 0 {
            out[n - 1] |= 0x80;
        }
        Ok(n)
    }

    /// `value` in the format's unit, rounded to its decimals.
    pub fn raw_of(self, value: f64) -> i64 {
        let scaled = value * POW10[usize::from(self.decimals.min(8))];
        // Round half away from zero without std's f64::round.
        if scaled >= 0.0 {
            (scaled + 0.5) as i64
        } else {
            (scaled - 0.5) as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_of(di: DataId) -> Format {
        di.format().unwrap()
    }

    #[test]
    fn identifiers_travel_di0_first() {
        assert_eq!(DataId::FORWARD_ACTIVE_ENERGY.to_wire(), [0, 0, 1, 0]);
        assert_eq!(DataId::VOLTAGE_A.to_wire(), [0, 1, 1, 2]);
        assert_eq!(DataId::FREQUENCY.to_wire(), [2, 0, 0x80, 2]);
        assert_eq!(DataId::from_wire([0, 1, 1, 2]), DataId::VOLTAGE_A);
        assert_eq!(DataId::CURRENT_A.phase(3), DataId(0x0202_0300));
        assert_eq!(DataId::ACTIVE_POWER.phase(1), DataId(0x0203_0100));
    }

    #[test]
    fn formats_follow_the_standards_tables() {
        let e = fmt_of(DataId::FORWARD_ACTIVE_ENERGY);
        assert_eq!((e.bytes, e.decimals, e.signed), (4, 2, false)); // XXXXXX.XX
        let v = fmt_of(DataId::VOLTAGE_A.phase(3));
        assert_eq!((v.bytes, v.decimals, v.signed), (2, 1, false)); // XXX.X
        let i = fmt_of(DataId::CURRENT_A);
        assert_eq!((i.bytes, i.decimals, i.signed), (3, 3, true)); // XXX.XXX
        let p = fmt_of(DataId::ACTIVE_POWER);
        assert_eq!((p.bytes, p.decimals, p.signed), (3, 4, true)); // XX.XXXX
        let pf = fmt_of(DataId::POWER_FACTOR);
        assert_eq!((pf.bytes, pf.decimals, pf.signed), (2, 3, true)); // X.XXX
        let hz = fmt_of(DataId::FREQUENCY);
        assert_eq!((hz.bytes, hz.decimals, hz.signed), (2, 2, false)); // XX.XX
        assert_eq!(DataId(0x0201_0400).format(), None, "no phase D");
        assert_eq!(DataId(0x0401_0000).format(), None);
    }

    #[test]
    fn decodes_hand_packed_values() {
        // 220.1 V: digits 2201, least significant byte first: 01 22.
        let v = fmt_of(DataId::VOLTAGE_A).decode(&[0x01, 0x22]).unwrap();
        assert_eq!(
            v,
            Value {
                raw: 2201,
                decimals: 1
            }
        );
        assert!((v.to_f64() - 220.1).abs() < 1e-9);
        // 1234.56 kWh: 00 12 34 56 → 56 34 12 00.
        let e = fmt_of(DataId::FORWARD_ACTIVE_ENERGY)
            .decode(&[0x56, 0x34, 0x12, 0x00])
            .unwrap();
        assert_eq!(e.raw, 123_456);
        // -5.123 A: 005123 with the sign bit: 23 51 80.
        let i = fmt_of(DataId::CURRENT_A)
            .decode(&[0x23, 0x51, 0x80])
            .unwrap();
        assert_eq!(i.raw, -5123);
        assert!((i.to_f64() + 5.123).abs() < 1e-9);
        // -1.2345 kW: 012345 → 45 23 81.
        let p = fmt_of(DataId::ACTIVE_POWER)
            .decode(&[0x45, 0x23, 0x81])
            .unwrap();
        assert_eq!(p.raw, -12_345);
        // 0.987 power factor: 0987 → 87 09.
        let pf = fmt_of(DataId::POWER_FACTOR).decode(&[0x87, 0x09]).unwrap();
        assert_eq!(pf.raw, 987);
        // 50.02 Hz: 5002 → 02 50.
        assert_eq!(
            fmt_of(DataId::FREQUENCY).decode(&[0x02, 0x50]).unwrap().raw,
            5002
        );
    }

    #[test]
    fn encodes_what_it_decodes() {
        let mut out = [0u8; 4];
        let i = fmt_of(DataId::CURRENT_A);
        assert_eq!(i.encode(-5123, &mut out), Ok(3));
        assert_eq!(&out[..3], &[0x23, 0x51, 0x80]);
        let v = fmt_of(DataId::VOLTAGE_A);
        assert_eq!(v.encode(v.raw_of(230.04), &mut out), Ok(2));
        assert_eq!(&out[..2], &[0x00, 0x23]);
        assert_eq!(v.raw_of(229.96), 2300);
        assert_eq!(i.raw_of(-0.0015), -2);
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let v = fmt_of(DataId::VOLTAGE_A);
        assert_eq!(
            v.decode(&[0x01]),
            Err(ValueError::Length {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            v.decode(&[0x01, 0xFF]),
            Err(ValueError::NotBcd { at: 1, byte: 0xFF })
        );
        let mut out = [0u8; 4];
        assert_eq!(
            v.encode(10_000, &mut out),
            Err(ValueError::OutOfRange { raw: 10_000 })
        );
        assert_eq!(
            v.encode(-1, &mut out),
            Err(ValueError::OutOfRange { raw: -1 })
        );
        let i = fmt_of(DataId::CURRENT_A);
        assert_eq!(i.max_raw(), 799_999);
        assert!(i.encode(800_000, &mut out).is_err());
        assert_eq!(
            v.encode(1, &mut out[..1]),
            Err(ValueError::Length {
                expected: 2,
                found: 1
            })
        );
    }
}
