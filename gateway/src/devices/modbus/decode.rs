//! Decoding: register words → numbers in the unit of the value's name.
//!
//! Sans-IO: the poller drops each response into a [`RegisterImage`], then
//! every register is decoded from the image by its type, byte order, word
//! order, scale and offset. Bad words never panic; they become a
//! [`DecodeError`] naming the register.

use crate::bus::ReadRequest;
use crate::profile::{ByteOrder, Function, Register, ValueType, WordOrder};
use std::collections::BTreeMap;
use thiserror::Error;

/// The words a poll has read so far, by table and address.
#[derive(Debug, Default, Clone)]
pub struct RegisterImage {
    words: BTreeMap<(Function, u16), u16>,
}

impl RegisterImage {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a response to `request`.
    pub fn insert(&mut self, request: &ReadRequest, words: &[u16]) {
        for (addr, w) in (request.start..=u16::MAX).zip(words) {
            self.words.insert((request.function, addr), *w);
        }
    }

    /// `len` words from `start`, or `None` if any of them was not read.
    pub fn get(&self, function: Function, start: u16, len: u16) -> Option<Vec<u16>> {
        (0..len)
            .map(|i| {
                let addr = start.checked_add(i)?;
                self.words.get(&(function, addr)).copied()
            })
            .collect()
    }
}

/// A raw number as the device encoded it, before scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw {
    /// An integer type.
    Int(i64),
    /// A floating-point type.
    Float(f64),
}

impl Raw {
    fn as_f64(self) -> f64 {
        match self {
            Raw::Int(i) => i as f64,
            Raw::Float(f) => f,
        }
    }
}

/// Why a register's words could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DecodeError {
    /// The words of the register were not read (its request failed).
    #[error("{name}: not read")]
    Missing {
        /// Register name.
        name: String,
    },
    /// The number of words does not match the type.
    #[error("{name}: a {value_type} needs {expected} registers, got {got}")]
    WrongLength {
        /// Register name.
        name: String,
        /// Its type.
        value_type: ValueType,
        /// Words the type needs.
        expected: u16,
        /// Words given.
        got: usize,
    },
    /// A float register holds NaN or infinity, which no consumer can use.
    #[error("{name}: the device reports {value}, not a number")]
    NotFinite {
        /// Register name.
        name: String,
        /// The value.
        value: f64,
    },
    /// A check register (`expect`) holds a value this profile does not know.
    #[error(
        "{name} reads {found}, but this profile understands only {expected}; \
         the device's register map may have changed, so nothing is decoded"
    )]
    Unexpected {
        /// Register name.
        name: String,
        /// What the device says.
        found: i64,
        /// What the profile expects.
        expected: i64,
    },
}

/// Decodes the raw number of `reg` from exactly its words.
pub fn decode_raw(reg: &Register, words: &[u16]) -> Result<Raw, DecodeError> {
    let expected = reg.value_type.words();
    if words.len() != usize::from(expected) {
        return Err(DecodeError::WrongLength {
            name: reg.name.clone(),
            value_type: reg.value_type,
            expected,
            got: words.len(),
        });
    }
    let fix = |w: u16| match reg.byte_order {
        ByteOrder::Big => w,
        ByteOrder::Little => w.swap_bytes(),
    };
    let bits32 = || {
        let (a, b) = (fix(words[0]), fix(words[1]));
        match reg.word_order {
            WordOrder::HighFirst => (u32::from(a) << 16) | u32::from(b),
            WordOrder::LowFirst => (u32::from(b) << 16) | u32::from(a),
        }
    };
    let raw = match reg.value_type {
        ValueType::U16 => Raw::Int(i64::from(fix(words[0]))),
        ValueType::I16 => Raw::Int(i64::from(fix(words[0]) as i16)),
        ValueType::U32 => Raw::Int(i64::from(bits32())),
        ValueType::I32 => Raw::Int(i64::from(bits32() as i32)),
        ValueType::F32 => {
            let v = f64::from(f32::from_bits(bits32()));
            if !v.is_finite() {
                return Err(DecodeError::NotFinite {
                    name: reg.name.clone(),
                    value: v,
                });
            }
            Raw::Float(v)
        }
    };
    Ok(raw)
}

/// Applies scale and offset. Decimal scales (0.1, 0.001) divide by their
/// reciprocal instead of multiplying, so 2301 × 0.1 reads 230.1 rather than
/// 230.10000000000002 in every JSON payload.
pub fn scale(reg: &Register, raw: Raw) -> f64 {
    let x = raw.as_f64();
    let s = reg.scale;
    let scaled = if s.abs() < 1.0 {
        let inv = 1.0 / s;
        if (inv - inv.round()).abs() <= 1e-9 * inv.abs() {
            x / inv.round()
        } else {
            x * s
        }
    } else {
        x * s
    };
    scaled + reg.offset
}

/// Decodes the registers of one block (the device level, or one channel
/// whose block starts at `block_start`) into named values. Check registers
/// are verified and left out.
pub fn decode_block(
    registers: &[Register],
    image: &RegisterImage,
    block_start: u16,
) -> Result<BTreeMap<String, f64>, DecodeError> {
    let mut values = BTreeMap::new();
    for reg in registers {
        let start = block_start.saturating_add(reg.address);
        let words =
            image
                .get(reg.function, start, reg.len())
                .ok_or_else(|| DecodeError::Missing {
                    name: reg.name.clone(),
                })?;
        let raw = decode_raw(reg, &words)?;
        if let Some(expected) = reg.expect {
            let found = match raw {
                Raw::Int(i) => i,
                Raw::Float(f) => f as i64,
            };
            if found != expected {
                return Err(DecodeError::Unexpected {
                    name: reg.name.clone(),
                    found,
                    expected,
                });
            }
            continue;
        }
        values.insert(reg.name.clone(), scale(reg, raw));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(value_type: ValueType) -> Register {
        Register {
            name: "x".into(),
            function: Function::Holding,
            address: 0,
            value_type,
            byte_order: ByteOrder::Big,
            word_order: WordOrder::HighFirst,
            scale: 1.0,
            offset: 0.0,
            unit: None,
            meanings: BTreeMap::new(),
            expect: None,
            line: 1,
        }
    }

    #[test]
    fn u32_high_word_first_puts_the_first_register_on_top() {
        let r = reg(ValueType::U32);
        assert_eq!(decode_raw(&r, &[0x0001, 0x0002]), Ok(Raw::Int(0x0001_0002)));
    }

    #[test]
    fn u32_low_word_first_swaps_the_registers() {
        let r = Register {
            word_order: WordOrder::LowFirst,
            ..reg(ValueType::U32)
        };
        assert_eq!(decode_raw(&r, &[0x0002, 0x0001]), Ok(Raw::Int(0x0001_0002)));
    }

    #[test]
    fn little_byte_order_swaps_bytes_within_each_word() {
        let r = Register {
            byte_order: ByteOrder::Little,
            ..reg(ValueType::U16)
        };
        assert_eq!(decode_raw(&r, &[0x3412]), Ok(Raw::Int(0x1234)));
        // All four orders of a float: 1.5f32 = 0x3FC0_0000.
        let f = reg(ValueType::F32);
        assert_eq!(decode_raw(&f, &[0x3FC0, 0x0000]), Ok(Raw::Float(1.5)));
        let cdab = Register {
            word_order: WordOrder::LowFirst,
            ..f.clone()
        };
        assert_eq!(decode_raw(&cdab, &[0x0000, 0x3FC0]), Ok(Raw::Float(1.5)));
        let badc = Register {
            byte_order: ByteOrder::Little,
            ..f.clone()
        };
        assert_eq!(decode_raw(&badc, &[0xC03F, 0x0000]), Ok(Raw::Float(1.5)));
        let dcba = Register {
            byte_order: ByteOrder::Little,
            word_order: WordOrder::LowFirst,
            ..f
        };
        assert_eq!(decode_raw(&dcba, &[0x0000, 0xC03F]), Ok(Raw::Float(1.5)));
    }

    #[test]
    fn i16_negatives_are_twos_complement() {
        let r = Register {
            scale: 0.1,
            ..reg(ValueType::I16)
        };
        let raw = decode_raw(&r, &[0xFF9C]).unwrap(); // -100
        assert_eq!(raw, Raw::Int(-100));
        assert_eq!(scale(&r, raw), -10.0);
    }

    #[test]
    fn i32_negatives_span_both_words() {
        let r = reg(ValueType::I32);
        assert_eq!(decode_raw(&r, &[0xFFFF, 0xFFFE]), Ok(Raw::Int(-2)));
    }

    #[test]
    fn decimal_scales_give_the_nearest_decimal() {
        let r = Register {
            scale: 0.1,
            ..reg(ValueType::U16)
        };
        assert_eq!(scale(&r, Raw::Int(2301)), 230.1);
        let ma = Register {
            scale: 0.001,
            ..reg(ValueType::U16)
        };
        assert_eq!(scale(&ma, Raw::Int(1234)), 1.234);
        let offset = Register {
            scale: 2.0,
            offset: -40.0,
            ..reg(ValueType::U16)
        };
        assert_eq!(scale(&offset, Raw::Int(30)), 20.0);
    }

    #[test]
    fn wrong_word_count_and_nan_are_errors_not_panics() {
        let r = reg(ValueType::U32);
        assert!(matches!(
            decode_raw(&r, &[1]),
            Err(DecodeError::WrongLength { got: 1, .. })
        ));
        let f = reg(ValueType::F32);
        assert!(matches!(
            decode_raw(&f, &[0x7FC0, 0]),
            Err(DecodeError::NotFinite { .. })
        ));
    }

    #[test]
    fn blocks_decode_relative_to_their_start_and_check_expectations() {
        let mut image = RegisterImage::new();
        let req = ReadRequest {
            function: Function::Holding,
            start: 100,
            count: 3,
        };
        image.insert(&req, &[1, 0, 7]);
        let version = Register {
            name: "version".into(),
            expect: Some(1),
            ..reg(ValueType::U16)
        };
        let power = Register {
            name: "power_w".into(),
            address: 1,
            ..reg(ValueType::U32)
        };
        let values = decode_block(&[version.clone(), power.clone()], &image, 100).unwrap();
        assert_eq!(values.len(), 1, "check registers are not emitted");
        assert_eq!(values["power_w"], 7.0);

        let strict = Register {
            expect: Some(2),
            ..version
        };
        assert!(matches!(
            decode_block(&[strict], &image, 100),
            Err(DecodeError::Unexpected { found: 1, .. })
        ));
        assert!(matches!(
            decode_block(&[power], &image, 200),
            Err(DecodeError::Missing { .. })
        ));
    }
}
