//! Encoding: a value in the unit of its name → the words a device holds.
//!
//! The inverse of [`decode`](super::decode), from the same profile. The
//! meter simulators serve their values through it, and commands that write
//! registers can use it, so "what the device holds" has one definition and
//! a round trip through both is a test of each.

use crate::profile::{ByteOrder, Register, ValueType, WordOrder};
use thiserror::Error;

/// Why a value cannot be put into a register.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EncodeError {
    /// The value, after scale and offset, does not fit the type.
    #[error("{name}: {value} does not fit a {value_type} (raw {raw})")]
    OutOfRange {
        /// Register name.
        name: String,
        /// The value given.
        value: f64,
        /// The raw number it scales to.
        raw: f64,
        /// The register's type.
        value_type: ValueType,
    },
    /// Text for a number register, or a number for a text register.
    #[error("{name}: a {value_type} cannot hold {what}")]
    WrongKind {
        /// Register name.
        name: String,
        /// The register's type.
        value_type: ValueType,
        /// What was given.
        what: &'static str,
    },
}

/// The words of `reg` holding `value` (in the unit of the name), in the
/// register's byte and word order. A `bool` with a `bit` yields a word
/// with only that bit set; callers that share the word merge it (see
/// [`merge_bit`]).
pub fn encode(reg: &Register, value: f64) -> Result<Vec<u16>, EncodeError> {
    let raw = (value - reg.offset) / reg.scale;
    let out_of_range = || EncodeError::OutOfRange {
        name: reg.name.clone(),
        value,
        raw,
        value_type: reg.value_type,
    };
    let int = |min: f64, max: f64| -> Result<u64, EncodeError> {
        let r = raw.round();
        if !r.is_finite() || r < min || r > max {
            return Err(out_of_range());
        }
        // Two's complement for the negative ones; truncated to width below.
        Ok(if r < 0.0 { (r as i64) as u64 } else { r as u64 })
    };
    if reg.function.is_bits() {
        return Ok(vec![u16::from(raw != 0.0)]);
    }
    let bits: u64 = match reg.value_type {
        ValueType::U16 => int(0.0, 65_535.0)?,
        ValueType::I16 => int(-32_768.0, 32_767.0)? & 0xFFFF,
        ValueType::U32 => int(0.0, 4_294_967_295.0)?,
        ValueType::I32 => int(-2_147_483_648.0, 2_147_483_647.0)? & 0xFFFF_FFFF,
        // f64 cannot tell the top integers apart anyway; the limits are the
        // nearest representable ones.
        ValueType::U64 => int(0.0, 18_446_744_073_709_549_568.0)?,
        ValueType::I64 => int(-9_223_372_036_854_775_808.0, 9_223_372_036_854_774_784.0)?,
        ValueType::F32 => {
            if !raw.is_finite() || raw.abs() > f64::from(f32::MAX) {
                return Err(out_of_range());
            }
            u64::from((raw as f32).to_bits())
        }
        ValueType::F64 => {
            if !raw.is_finite() {
                return Err(out_of_range());
            }
            raw.to_bits()
        }
        ValueType::Bool => {
            let on = raw != 0.0;
            match reg.bit {
                Some(b) => u64::from(on) << b,
                None => u64::from(on),
            }
        }
        ValueType::Bcd16 => to_bcd(int(0.0, 9_999.0)?),
        ValueType::Bcd32 => to_bcd(int(0.0, 99_999_999.0)?),
        ValueType::String { .. } => {
            return Err(EncodeError::WrongKind {
                name: reg.name.clone(),
                value_type: reg.value_type,
                what: "a number",
            })
        }
    };
    let n = usize::from(reg.value_type.words());
    // Most significant word first.
    let words: Vec<u16> = (0..n)
        .map(|i| (bits >> (16 * (n - 1 - i))) as u16)
        .collect();
    Ok(arrange(reg, words))
}

/// The words of a string register holding `text`, NUL-padded. Longer text
/// or non-ASCII text is refused.
pub fn encode_text(reg: &Register, text: &str) -> Result<Vec<u16>, EncodeError> {
    let ValueType::String { words } = reg.value_type else {
        return Err(EncodeError::WrongKind {
            name: reg.name.clone(),
            value_type: reg.value_type,
            what: "text",
        });
    };
    let capacity = usize::from(words) * 2;
    if text.len() > capacity || !text.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Err(EncodeError::WrongKind {
            name: reg.name.clone(),
            value_type: reg.value_type,
            what: "text longer than its registers or outside printable ASCII",
        });
    }
    let mut bytes = text.as_bytes().to_vec();
    bytes.resize(capacity, 0);
    let words = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Ok(arrange(reg, words))
}

/// Sets or clears the flag of a `bool` register with a `bit` in `word`,
/// keeping the other bits (several flags share one status register).
pub fn merge_bit(reg: &Register, word: u16, on: bool) -> u16 {
    match reg.bit {
        Some(b) => {
            let mask = 1u16 << b;
            let fixed = match reg.byte_order {
                ByteOrder::Big => mask,
                ByteOrder::Little => mask.swap_bytes(),
            };
            if on {
                word | fixed
            } else {
                word & !fixed
            }
        }
        None => u16::from(on),
    }
}

fn to_bcd(mut n: u64) -> u64 {
    let mut out = 0;
    let mut shift = 0;
    while n > 0 {
        out |= (n % 10) << shift;
        n /= 10;
        shift += 4;
    }
    out
}

/// Value-order words (most significant first, high byte first) into the
/// register's word and byte order.
fn arrange(reg: &Register, mut words: Vec<u16>) -> Vec<u16> {
    if reg.word_order == WordOrder::LowFirst && !reg.value_type.is_text() {
        words.reverse();
    }
    if reg.byte_order == ByteOrder::Little {
        for w in &mut words {
            *w = w.swap_bytes();
        }
    }
    words
}
