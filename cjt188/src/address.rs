//! Meter addresses (A0..A6) and meter types (T).
//!
//! An address is 14 decimal digits, printed on the meter (often as a bar
//! code). On the wire it is 7 bytes of packed BCD, least significant byte
//! first, so `00000000000001` travels as `01 00 00 00 00 00 00`. Many
//! meters put a manufacturer code in A5 A6. `AAH` bytes are wildcards: a
//! master that does not know the meter on a line reads its address with
//! `AAAAAAAAAAAAAA`, and a meter compares only the bytes that are not `AAH`.
//!
//! The meter type T follows the first `68H`: 10H-19H water (10H cold,
//! 11H domestic hot, 12H drinking, 13H reclaimed), 20H-29H heat (20H heat,
//! 21H cooling), 30H-39H gas, 40H-49H other meters.

use core::fmt;

/// A meter's address, as its seven wire bytes (A0 first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 7]);

/// Why a string is not a meter address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// Not exactly 14 characters.
    Length {
        /// The number of characters given.
        found: usize,
    },
    /// A character that is neither a decimal digit nor `A` (wildcard).
    Character {
        /// 0-based position in the string.
        at: usize,
        /// The character.
        found: char,
    },
    /// `A` must fill a whole byte (`AA`), never half of one.
    HalfWildcard {
        /// 0-based position in the string of the byte's first digit.
        at: usize,
    },
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Length { found } => write!(
                f,
                "a CJ/T 188 meter address has 14 digits (as printed on the meter), not {found}"
            ),
            AddressError::Character { at, found } => write!(
                f,
                "character {} is {found:?}; a meter address has only the digits 0-9 \
                 (and AA as a wildcard byte)",
                at + 1
            ),
            AddressError::HalfWildcard { at } => write!(
                f,
                "digits {} and {} mix A with a digit; a wildcard fills a whole byte (AA)",
                at + 1,
                at + 2
            ),
        }
    }
}

impl core::error::Error for AddressError {}

impl Address {
    /// Whoever is on the line: for reading an unknown meter's address.
    pub const WILDCARD: Address = Address([0xAA; 7]);

    /// Parses the 14 digits printed on a meter, most significant first.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let found = text.chars().count();
        if found != 14 {
            return Err(AddressError::Length { found });
        }
        if let Some((at, found)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
            return Err(AddressError::Character { at, found });
        }
        let digits = text.as_bytes();
        let mut bytes = [0u8; 7];
        for (i, pair) in digits.chunks(2).enumerate() {
            let at = 2 * i;
            let byte = match (pair[0], pair[1]) {
                (b'A' | b'a', b'A' | b'a') => 0xAA,
                (hi @ b'0'..=b'9', lo @ b'0'..=b'9') => ((hi - b'0') << 4) | (lo - b'0'),
                (b'A' | b'a', b'0'..=b'9') | (b'0'..=b'9', b'A' | b'a') => {
                    return Err(AddressError::HalfWildcard { at })
                }
                (hi, _) if !hi.is_ascii_digit() && !matches!(hi, b'A' | b'a') => {
                    return Err(AddressError::Character {
                        at,
                        found: char::from(hi),
                    })
                }
                (_, lo) => {
                    return Err(AddressError::Character {
                        at: at + 1,
                        found: char::from(lo),
                    })
                }
            };
            // Text is most significant first; the wire is A0 (least) first.
            bytes[6 - i] = byte;
        }
        Ok(Address(bytes))
    }

    /// Whether every byte is packed BCD or the wildcard `AAH`.
    pub fn is_valid(&self) -> bool {
        self.0
            .iter()
            .all(|&b| b == 0xAA || (b >> 4 <= 9 && b & 0x0F <= 9))
    }

    /// Whether any byte is the wildcard `AAH`.
    pub fn has_wildcard(&self) -> bool {
        self.0.contains(&0xAA)
    }

    /// Whether a meter at `self` takes a request sent to `to`: every byte of
    /// `to` is either `AAH` or equal to the meter's.
    pub fn accepts(&self, to: &Address) -> bool {
        self.0
            .iter()
            .zip(&to.0)
            .all(|(mine, theirs)| *theirs == 0xAA || mine == theirs)
    }
}

impl fmt::Display for Address {
    /// The 14 digits as printed on the meter (`AA` for wildcard bytes, two
    /// hex digits for a byte that is not BCD, so a log shows what came).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// The meter type byte T.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterType(pub u8);

/// What a meter measures, from its type byte's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterFamily {
    /// 10H-19H: cold, domestic hot, drinking and reclaimed water.
    Water,
    /// 20H-29H: heat (and cooling) energy.
    Heat,
    /// 30H-39H: gas.
    Gas,
    /// 40H-49H: other meters (electricity in the standard's table).
    Other,
}

impl MeterType {
    /// 10H cold water meter.
    pub const COLD_WATER: MeterType = MeterType(0x10);
    /// 11H domestic hot water meter.
    pub const HOT_WATER: MeterType = MeterType(0x11);
    /// 12H drinking water meter.
    pub const DRINKING_WATER: MeterType = MeterType(0x12);
    /// 13H reclaimed water meter.
    pub const RECLAIMED_WATER: MeterType = MeterType(0x13);
    /// 20H heat meter (heating).
    pub const HEAT: MeterType = MeterType(0x20);
    /// 21H heat meter (cooling).
    pub const COOLING: MeterType = MeterType(0x21);
    /// 30H gas meter.
    pub const GAS: MeterType = MeterType(0x30);
    /// 40H other (electricity) meter.
    pub const OTHER: MeterType = MeterType(0x40);
    /// AAH: any type, for reading the address of an unknown meter.
    pub const WILDCARD: MeterType = MeterType(0xAA);

    /// The family, or `None` for a byte outside 10H-49H (including the
    /// wildcard).
    pub const fn family(self) -> Option<MeterFamily> {
        match self.0 {
            0x10..=0x19 => Some(MeterFamily::Water),
            0x20..=0x29 => Some(MeterFamily::Heat),
            0x30..=0x39 => Some(MeterFamily::Gas),
            0x40..=0x49 => Some(MeterFamily::Other),
            _ => None,
        }
    }

    /// Whether a meter of type `self` takes a request for type `to`.
    pub fn accepts(self, to: MeterType) -> bool {
        to == MeterType::WILDCARD || to == self
    }
}

impl fmt::Display for MeterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}H", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn parses_digits_most_significant_first() {
        let a = Address::parse("00112233447833").unwrap();
        assert_eq!(a.0, [0x33, 0x78, 0x44, 0x33, 0x22, 0x11, 0x00]);
        assert_eq!(a.to_string(), "00112233447833");
        assert!(a.is_valid());
        assert_eq!(Address::parse("AAAAAAAAAAAAAA").unwrap(), Address::WILDCARD);
    }

    #[test]
    fn bad_text_is_named() {
        assert_eq!(
            Address::parse("123").unwrap_err(),
            AddressError::Length { found: 3 }
        );
        assert_eq!(
            Address::parse("0000000000000x").unwrap_err(),
            AddressError::Character { at: 13, found: 'x' }
        );
        assert_eq!(
            Address::parse("A0000000000000").unwrap_err(),
            AddressError::HalfWildcard { at: 0 }
        );
        assert_eq!(
            Address::parse("000000000000水1").unwrap_err(),
            AddressError::Character {
                at: 12,
                found: '水'
            }
        );
        assert!(AddressError::Length { found: 12 }
            .to_string()
            .contains("14 digits"));
    }

    #[test]
    fn wildcards_match_any_byte() {
        let meter = Address::parse("00000000000042").unwrap();
        assert!(meter.accepts(&Address::WILDCARD));
        assert!(meter.accepts(&meter));
        assert!(meter.accepts(&Address::parse("AAAAAAAAAAAA42").unwrap()));
        assert!(!meter.accepts(&Address::parse("AAAAAAAAAAAA43").unwrap()));
        assert!(!Address([0x0F; 7]).is_valid());
        assert_eq!(Address([0x0F; 7]).to_string(), "0F0F0F0F0F0F0F");
    }

    #[test]
    fn meter_types_fall_into_families() {
        assert_eq!(MeterType::COLD_WATER.family(), Some(MeterFamily::Water));
        assert_eq!(MeterType(0x19).family(), Some(MeterFamily::Water));
        assert_eq!(MeterType::HEAT.family(), Some(MeterFamily::Heat));
        assert_eq!(MeterType::GAS.family(), Some(MeterFamily::Gas));
        assert_eq!(MeterType(0x49).family(), Some(MeterFamily::Other));
        assert_eq!(MeterType(0x50).family(), None);
        assert_eq!(MeterType::WILDCARD.family(), None);
        assert!(MeterType::GAS.accepts(MeterType::WILDCARD));
        assert!(!MeterType::GAS.accepts(MeterType::COLD_WATER));
    }
}
