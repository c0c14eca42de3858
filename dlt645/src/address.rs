//! Meter addresses (DL/T 645-2007 §7.1.2).
//!
//! An address is 12 decimal digits, usually printed on the meter's face.
//! On the wire it is 6 bytes of packed BCD, least significant byte first,
//! so `000000000001` travels as `01 00 00 00 00 00`. Two special values:
//! `999999999999` is the broadcast address (every meter obeys, none
//! answers; used for time setting), and `AAAAAAAAAAAA` is the wildcard a
//! master uses to ask "whoever is on this line" for its address (the
//! standard also lets the high bytes be `AA` to shorten an address; a meter
//! compares only the bytes that are not `AA`).

use core::fmt;

/// A meter's communication address, as its six wire bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 6]);

/// Why a string is not a meter address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// Not exactly 12 characters.
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
    /// `A` must fill a whole byte (two digits, `AA`), never half of one.
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
                "a meter address has 12 digits (as printed on the meter), not {found}"
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
    /// Every meter on the line; none answers (§7.1.2).
    pub const BROADCAST: Address = Address([0x99; 6]);
    /// Whoever is on the line, for reading an unknown meter's address.
    pub const WILDCARD: Address = Address([0xAA; 6]);

    /// Parses the 12 digits printed on a meter, most significant first.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let found = text.chars().count();
        if found != 12 {
            return Err(AddressError::Length { found });
        }
        if let Some((at, found)) = text.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
            return Err(AddressError::Character { at, found });
        }
        let digits = text.as_bytes();
        let mut wire = [0u8; 6];
        for (pair, chunk) in digits.chunks_exact(2).enumerate() {
            let at = pair * 2;
            let hi = nibble(chunk[0]).ok_or(AddressError::Character {
                at,
                found: char::from(chunk[0]),
            })?;
            let lo = nibble(chunk[1]).ok_or(AddressError::Character {
                at: at + 1,
                found: char::from(chunk[1]),
            })?;
            if (hi == 0xA) != (lo == 0xA) {
                return Err(AddressError::HalfWildcard { at });
            }
            // The first pair printed is the most significant byte: last on the wire.
            wire[5 - pair] = (hi << 4) | lo;
        }
        Ok(Address(wire))
    }

    /// Whether a meter at `self` must act on a frame addressed to `to`:
    /// its own address, the broadcast address, or a wildcard whose
    /// non-`AA` bytes match.
    pub fn accepts(&self, to: &Address) -> bool {
        *to == Address::BROADCAST
            || self
                .0
                .iter()
                .zip(to.0.iter())
                .all(|(mine, theirs)| *theirs == 0xAA || mine == theirs)
    }

    /// Whether each byte is two BCD digits or the `AA` wildcard: what a
    /// meter can have. Frames from the line are checked with this.
    pub fn is_valid(&self) -> bool {
        self.0
            .iter()
            .all(|b| *b == 0xAA || (b >> 4 <= 9 && b & 0x0F <= 9))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A' | b'a' => Some(0xA),
        _ => None,
    }
}

impl fmt::Display for Address {
    /// The 12 digits as printed on the meter (`AA` bytes as `AA`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn printed_digits_travel_least_significant_byte_first() {
        let a = Address::parse("123456789012").unwrap();
        assert_eq!(a.0, [0x12, 0x90, 0x78, 0x56, 0x34, 0x12]);
        assert_eq!(a.to_string(), "123456789012");
        assert_eq!(
            Address::parse("000000000001").unwrap().0,
            [1, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn wildcards_and_broadcast_parse_and_match() {
        assert_eq!(Address::parse("AAAAAAAAAAAA").unwrap(), Address::WILDCARD);
        assert_eq!(Address::parse("999999999999").unwrap(), Address::BROADCAST);
        let meter = Address::parse("000000001234").unwrap();
        assert!(meter.accepts(&Address::WILDCARD));
        assert!(meter.accepts(&Address::BROADCAST));
        assert!(meter.accepts(&Address::parse("aaaaaaaa1234").unwrap()));
        assert!(!meter.accepts(&Address::parse("aaaaaaaa1235").unwrap()));
        assert!(!meter.accepts(&Address::parse("000000001235").unwrap()));
    }

    #[test]
    fn bad_addresses_name_the_problem() {
        assert_eq!(
            Address::parse("12345"),
            Err(AddressError::Length { found: 5 })
        );
        assert_eq!(
            Address::parse("12345678901x"),
            Err(AddressError::Character { at: 11, found: 'x' })
        );
        assert_eq!(
            Address::parse("1A3456789012"),
            Err(AddressError::HalfWildcard { at: 0 })
        );
        assert_eq!(
            Address::parse("12345678901é"),
            Err(AddressError::Character {
                at: 11, found: 'é'
            })
        );
        let msg = Address::parse("12345678901x").unwrap_err().to_string();
        assert!(msg.contains("character 12"), "{msg}");
    }

    #[test]
    fn only_bcd_or_wildcard_bytes_are_valid() {
        assert!(Address([0x12, 0x34, 0xAA, 0, 0x99, 0x01]).is_valid());
        assert!(!Address([0x1F, 0, 0, 0, 0, 0]).is_valid());
        assert!(!Address([0xA0, 0, 0, 0, 0, 0]).is_valid());
    }
}
