//! Values in a meter's data field: packed BCD numbers (least significant
//! byte first), unit codes, the meter's clock and its status word.

use core::fmt;

/// Why bytes are not a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// A nibble above 9 in a BCD field.
    NotBcd {
        /// 0-based offset of the byte in the value's field.
        at: usize,
        /// The byte.
        found: u8,
    },
    /// A number too large for the field's digits.
    TooLarge {
        /// The number.
        value: u64,
        /// Digits the field holds.
        digits: usize,
    },
    /// A clock field out of range (month 13, hour 24, …).
    BadTime,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotBcd { at, found } => {
                write!(
                    f,
                    "byte {at} of the value is {found:02X}H, not two BCD digits"
                )
            }
            ValueError::TooLarge { value, digits } => {
                write!(f, "{value} does not fit in {digits} BCD digits")
            }
            ValueError::BadTime => f.write_str("the meter's clock reads an impossible time"),
        }
    }
}

impl core::error::Error for ValueError {}

/// The unsigned number in packed BCD `bytes`, least significant byte first.
pub fn bcd_to_u64(bytes: &[u8]) -> Result<u64, ValueError> {
    let mut n = 0u64;
    for (at, &b) in bytes.iter().enumerate().rev() {
        if b >> 4 > 9 || b & 0x0F > 9 {
            return Err(ValueError::NotBcd { at, found: b });
        }
        n = n * 100 + u64::from(b >> 4) * 10 + u64::from(b & 0x0F);
    }
    Ok(n)
}

/// Writes `value` into `out` as packed BCD, least significant byte first.
pub fn u64_to_bcd(mut value: u64, out: &mut [u8]) -> Result<(), ValueError> {
    let original = value;
    for b in out.iter_mut() {
        let lo = (value % 10) as u8;
        let hi = (value / 10 % 10) as u8;
        *b = (hi << 4) | lo;
        value /= 100;
    }
    if value != 0 {
        return Err(ValueError::TooLarge {
            value: original,
            digits: 2 * out.len(),
        });
    }
    Ok(())
}

/// What a unit measures, and the unit [`Unit::factor`] converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// Energy (heat), converted to kWh.
    Energy,
    /// Power (heat power), converted to kW.
    Power,
    /// Volume, converted to m³.
    Volume,
    /// Flow rate, converted to m³/h.
    Flow,
}

/// A unit code as sent after a value (`2CH` m³, `05H` kWh, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit(pub u8);

impl Unit {
    /// `02H` Wh.
    pub const WH: Unit = Unit(0x02);
    /// `05H` kWh.
    pub const KWH: Unit = Unit(0x05);
    /// `08H` MWh.
    pub const MWH: Unit = Unit(0x08);
    /// `0EH` MJ.
    pub const MJ: Unit = Unit(0x0E);
    /// `11H` GJ.
    pub const GJ: Unit = Unit(0x11);
    /// `14H` W.
    pub const W: Unit = Unit(0x14);
    /// `17H` kW.
    pub const KW: Unit = Unit(0x17);
    /// `29H` litre.
    pub const L: Unit = Unit(0x29);
    /// `2CH` cubic metre.
    pub const M3: Unit = Unit(0x2C);
    /// `32H` litres per hour.
    pub const L_PER_H: Unit = Unit(0x32);
    /// `35H` cubic metres per hour.
    pub const M3_PER_H: Unit = Unit(0x35);

    /// What the unit measures and the factor to kWh, kW, m³ or m³/h;
    /// `None` for a code outside the standard's table.
    pub const fn factor(self) -> Option<(Quantity, f64)> {
        // Codes run in threes: the unit, ×10, ×100.
        const MJ_KWH: f64 = 1.0 / 3.6;
        let (q, base, first) = match self.0 {
            0x01 => return Some((Quantity::Energy, 1.0 / 3.6e6)), // J
            0x02..=0x04 => (Quantity::Energy, 1e-3, 0x02),        // Wh
            0x05..=0x07 => (Quantity::Energy, 1.0, 0x05),         // kWh
            0x08..=0x0A => (Quantity::Energy, 1e3, 0x08),         // MWh
            0x0B..=0x0D => (Quantity::Energy, MJ_KWH / 1e3, 0x0B), // kJ
            0x0E..=0x10 => (Quantity::Energy, MJ_KWH, 0x0E),      // MJ
            0x11..=0x13 => (Quantity::Energy, MJ_KWH * 1e3, 0x11), // GJ
            0x14..=0x16 => (Quantity::Power, 1e-3, 0x14),         // W
            0x17..=0x19 => (Quantity::Power, 1.0, 0x17),          // kW
            0x1A..=0x1C => (Quantity::Power, 1e3, 0x1A),          // MW
            0x29..=0x2B => (Quantity::Volume, 1e-3, 0x29),        // L
            0x2C..=0x2E => (Quantity::Volume, 1.0, 0x2C),         // m³
            0x32..=0x34 => (Quantity::Flow, 1e-3, 0x32),          // L/h
            0x35..=0x37 => (Quantity::Flow, 1.0, 0x35),           // m³/h
            0x40 => return Some((Quantity::Power, 1.0 / 3.6e6)),  // J/h
            0x43..=0x45 => (Quantity::Power, MJ_KWH / 1e3, 0x43), // kJ/h
            0x46..=0x48 => (Quantity::Power, MJ_KWH, 0x46),       // MJ/h
            0x49..=0x4B => (Quantity::Power, MJ_KWH * 1e3, 0x49), // GJ/h
            _ => return None,
        };
        let times = match self.0 - first {
            0 => 1.0,
            1 => 10.0,
            _ => 100.0,
        };
        Some((q, base * times))
    }

    /// The unit's symbol, for logs and documents.
    pub const fn symbol(self) -> &'static str {
        match self.0 {
            0x01 => "J",
            0x02 => "Wh",
            0x05 => "kWh",
            0x08 => "MWh",
            0x0A => "MWh×100",
            0x0B => "kJ",
            0x0E => "MJ",
            0x11 => "GJ",
            0x13 => "GJ×100",
            0x14 => "W",
            0x17 => "kW",
            0x1A => "MW",
            0x29 => "L",
            0x2C => "m³",
            0x32 => "L/h",
            0x35 => "m³/h",
            0x46 => "MJ/h",
            0x49 => "GJ/h",
            _ => "(see code)",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:02X}H)", self.symbol(), self.0)
    }
}

/// A 4-byte BCD register and its unit code: how cumulative flow, heat,
/// heat power and flow rate are sent. Flow rate has four decimals
/// (XXXX.XXXX), the others two (XXXXXX.XX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The register's 8 digits as a number (0 to 99 999 999).
    pub register: u32,
    /// Decimals: the register is `register / 10^decimals` of `unit`.
    pub decimals: u8,
    /// The unit code sent after the register.
    pub unit: Unit,
}

impl Reading {
    /// Largest register: 8 digits.
    pub const MAX_REGISTER: u32 = 99_999_999;

    /// A register with two decimals (cumulative flow, heat, heat power).
    pub const fn hundredths(register: u32, unit: Unit) -> Self {
        Reading {
            register,
            decimals: 2,
            unit,
        }
    }

    /// The register in its own unit.
    pub fn value(&self) -> f64 {
        let mut v = f64::from(self.register);
        for _ in 0..self.decimals {
            v /= 10.0;
        }
        v
    }

    /// The register in kWh, kW, m³ or m³/h, with what it measures; `None`
    /// for a unit code outside the standard's table.
    pub fn normalised(&self) -> Option<(Quantity, f64)> {
        self.unit.factor().map(|(q, k)| (q, self.value() * k))
    }

    pub(crate) fn decode(bytes: &[u8], decimals: u8) -> Result<Self, ValueError> {
        Ok(Reading {
            register: bcd_to_u64(&bytes[..4])? as u32,
            decimals,
            unit: Unit(bytes[4]),
        })
    }

    pub(crate) fn encode(&self, out: &mut [u8]) -> Result<(), ValueError> {
        u64_to_bcd(u64::from(self.register), &mut out[..4])?;
        out[4] = self.unit.0;
        Ok(())
    }
}

/// The meter's clock: 7 bytes of BCD, `ss mm hh DD MM YY CC` on the wire
/// (YYYYMMDDhhmmss, least significant byte first). Local time: meters know
/// no time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MeterTime {
    /// Year, 2000-2099 in practice.
    pub year: u16,
    /// Month 1-12.
    pub month: u8,
    /// Day 1-31.
    pub day: u8,
    /// Hour 0-23.
    pub hour: u8,
    /// Minute 0-59.
    pub minute: u8,
    /// Second 0-59.
    pub second: u8,
}

impl MeterTime {
    pub(crate) fn decode(b: &[u8]) -> Result<Self, ValueError> {
        let mut d = [0u8; 7];
        for (i, slot) in d.iter_mut().enumerate() {
            *slot = bcd_to_u64(&b[i..i + 1])
                .map_err(|_| ValueError::NotBcd { at: i, found: b[i] })? as u8;
        }
        let t = MeterTime {
            second: d[0],
            minute: d[1],
            hour: d[2],
            day: d[3],
            month: d[4],
            year: u16::from(d[6]) * 100 + u16::from(d[5]),
        };
        if !(1..=12).contains(&t.month)
            || !(1..=31).contains(&t.day)
            || t.hour > 23
            || t.minute > 59
            || t.second > 59
        {
            return Err(ValueError::BadTime);
        }
        Ok(t)
    }

    pub(crate) fn encode(&self, out: &mut [u8]) -> Result<(), ValueError> {
        if self.year > 9999 {
            return Err(ValueError::BadTime);
        }
        let parts = [
            self.second,
            self.minute,
            self.hour,
            self.day,
            self.month,
            (self.year % 100) as u8,
            (self.year / 100) as u8,
        ];
        for (o, p) in out.iter_mut().zip(parts) {
            u64_to_bcd(u64::from(p), core::slice::from_mut(o)).map_err(|_| ValueError::BadTime)?;
        }
        Ok(())
    }
}

impl fmt::Display for MeterTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The valve as the status word reports it (ST0 bits D1 D0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Valve {
    /// `00`: open.
    Open,
    /// `01`: closed.
    Closed,
    /// `11` (or the unassigned `10`): the valve is stuck or its state unknown.
    Abnormal,
}

/// The 2-byte status word ST: ST0 bits D1 D0 the valve, D2 the battery
/// (1 = low); the other bits and ST1 are the manufacturer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub [u8; 2]);

impl Status {
    const BATTERY_LOW: u8 = 0x04;

    /// A status with the valve and battery as given and no other bits.
    pub const fn new(valve: Valve, battery_low: bool) -> Self {
        let v = match valve {
            Valve::Open => 0,
            Valve::Closed => 1,
            Valve::Abnormal => 3,
        };
        Status([v | if battery_low { Self::BATTERY_LOW } else { 0 }, 0])
    }

    /// The valve state.
    pub const fn valve(self) -> Valve {
        match self.0[0] & 0x03 {
            0 => Valve::Open,
            1 => Valve::Closed,
            _ => Valve::Abnormal,
        }
    }

    /// Whether the meter reports a low battery.
    pub const fn battery_low(self) -> bool {
        self.0[0] & Self::BATTERY_LOW != 0
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn bcd_both_ways() {
        assert_eq!(bcd_to_u64(&[0x00, 0x77, 0x66, 0x55]), Ok(55_667_700));
        let mut out = [0u8; 4];
        u64_to_bcd(55_667_700, &mut out).unwrap();
        assert_eq!(out, [0x00, 0x77, 0x66, 0x55]);
        assert_eq!(
            u64_to_bcd(100_000_000, &mut out),
            Err(ValueError::TooLarge {
                value: 100_000_000,
                digits: 8
            })
        );
        assert_eq!(
            bcd_to_u64(&[0x00, 0x1A]),
            Err(ValueError::NotBcd { at: 1, found: 0x1A })
        );
    }

    #[test]
    fn units_convert_to_their_reference() {
        let close = |u: Unit, q: Quantity, k: f64| {
            let (got_q, got_k) = u.factor().unwrap();
            assert_eq!(got_q, q, "{u}");
            assert!((got_k - k).abs() <= k * 1e-12, "{u}: {got_k} != {k}");
        };
        close(Unit::M3, Quantity::Volume, 1.0);
        close(Unit::L, Quantity::Volume, 1e-3);
        close(Unit(0x2E), Quantity::Volume, 100.0);
        close(Unit::KWH, Quantity::Energy, 1.0);
        close(Unit::WH, Quantity::Energy, 1e-3);
        close(Unit(0x0A), Quantity::Energy, 1e5);
        close(Unit::GJ, Quantity::Energy, 1e3 / 3.6);
        close(Unit(0x13), Quantity::Energy, 1e5 / 3.6);
        close(Unit::MJ, Quantity::Energy, 1.0 / 3.6);
        close(Unit(0x01), Quantity::Energy, 1.0 / 3.6e6);
        close(Unit::KW, Quantity::Power, 1.0);
        close(Unit::W, Quantity::Power, 1e-3);
        close(Unit(0x1A), Quantity::Power, 1e3);
        close(Unit::M3_PER_H, Quantity::Flow, 1.0);
        close(Unit::L_PER_H, Quantity::Flow, 1e-3);
        assert_eq!(Unit(0x20).factor(), None);
        assert_eq!(Unit::M3.to_string(), "m³ (2CH)");
    }

    #[test]
    fn readings_keep_their_unit() {
        let r = Reading::decode(&[0x50, 0x34, 0x12, 0x00, 0x29], 2).unwrap();
        assert_eq!(r, Reading::hundredths(123_450, Unit::L));
        assert_eq!(r.value(), 1234.5);
        let (q, m3) = r.normalised().unwrap();
        assert_eq!(q, Quantity::Volume);
        assert!((m3 - 1.2345).abs() < 1e-12);
        let rate = Reading::decode(&[0x78, 0x56, 0x34, 0x12, 0x35], 4).unwrap();
        assert!((rate.value() - 1234.5678).abs() < 1e-9);
    }

    #[test]
    fn clock_low_byte_first() {
        let t = MeterTime::decode(&[0x31, 0x01, 0x22, 0x11, 0x05, 0x15, 0x20]).unwrap();
        assert_eq!(t.to_string(), "2015-05-11 22:01:31");
        let mut out = [0u8; 7];
        t.encode(&mut out).unwrap();
        assert_eq!(out, [0x31, 0x01, 0x22, 0x11, 0x05, 0x15, 0x20]);
        assert_eq!(
            MeterTime::decode(&[0x31, 0x01, 0x24, 0x11, 0x05, 0x15, 0x20]),
            Err(ValueError::BadTime)
        );
        assert!(matches!(
            MeterTime::decode(&[0x3A, 0x01, 0x22, 0x11, 0x05, 0x15, 0x20]),
            Err(ValueError::NotBcd { at: 0, .. })
        ));
    }

    #[test]
    fn status_bits() {
        let s = Status::new(Valve::Closed, true);
        assert_eq!(s.0, [0x05, 0x00]);
        assert_eq!(s.valve(), Valve::Closed);
        assert!(s.battery_low());
        assert_eq!(Status([0x03, 0xFF]).valve(), Valve::Abnormal);
        assert_eq!(Status([0xF8, 0x00]).valve(), Valve::Open);
        assert!(!Status([0xF8, 0x00]).battery_low());
    }
}
