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

/// The words a poll has read so far, by table and address: one run of words
/// per answered request, in the order read. A poll has a handful of runs,
/// so a lookup scans them; a value inside one run is borrowed, not copied.
#[derive(Debug, Default, Clone)]
pub struct RegisterImage {
    runs: Vec<(Function, u16, Vec<u16>)>,
}

impl RegisterImage {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a response to `request` (words past address 65535 are
    /// ignored). A later response for the same addresses wins.
    pub fn insert(&mut self, request: &ReadRequest, words: &[u16]) {
        let room = usize::from(u16::MAX - request.start) + 1;
        let words = &words[..words.len().min(room)];
        self.runs
            .push((request.function, request.start, words.to_vec()));
    }

    /// `len` words from `start`, or `None` if any of them was not read.
    pub fn get(&self, function: Function, start: u16, len: u16) -> Option<Vec<u16>> {
        if let Some(words) = self.slice(function, start, len) {
            return Some(words.to_vec());
        }
        (0..len)
            .map(|i| self.word(function, start.checked_add(i)?))
            .collect()
    }

    /// The one run of words in the image, if it holds exactly one (a
    /// meter read with one request): its table, first address and words.
    pub fn sole_run(&self) -> Option<(Function, u16, &[u16])> {
        match self.runs.as_slice() {
            [(f, first, words)] => Some((*f, *first, words)),
            _ => None,
        }
    }

    /// `len` words from `start` when one response holds them all.
    pub fn slice(&self, function: Function, start: u16, len: u16) -> Option<&[u16]> {
        let (s, l) = (usize::from(start), usize::from(len));
        self.runs.iter().rev().find_map(|(f, first, words)| {
            let first = usize::from(*first);
            (*f == function && first <= s && s + l <= first + words.len())
                .then(|| &words[s - first..s - first + l])
        })
    }

    fn word(&self, function: Function, addr: u16) -> Option<u16> {
        self.slice(function, addr, 1).map(|w| w[0])
    }
}

/// A raw value as the device encoded it, before scaling.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// A signed integer type, a flag, or BCD.
    Int(i64),
    /// An unsigned 64-bit value (may exceed `i64`).
    UInt(u64),
    /// A floating-point type.
    Float(f64),
    /// A string register.
    Text(String),
}

impl Raw {
    /// The number, for everything but text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Raw::Int(i) => Some(*i as f64),
            Raw::UInt(u) => Some(*u as f64),
            Raw::Float(f) => Some(*f),
            Raw::Text(_) => None,
        }
    }

    /// The whole number, for integer types (for meanings and checks).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Raw::Int(i) => Some(*i),
            Raw::UInt(u) => i64::try_from(*u).ok(),
            Raw::Float(_) | Raw::Text(_) => None,
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
    /// A BCD register holds a nibble above 9.
    #[error("{name}: {words} is not binary-coded decimal (a digit above 9)")]
    NotBcd {
        /// Register name.
        name: String,
        /// The words, in hex.
        words: String,
    },
    /// A string register holds bytes that are not printable ASCII.
    #[error("{name}: byte {byte:#04x} at position {position} is not printable ASCII")]
    NotAscii {
        /// Register name.
        name: String,
        /// The offending byte.
        byte: u8,
        /// Its index in the text.
        position: usize,
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
        found: String,
        /// What the profile expects.
        expected: String,
    },
}

/// The register's words in value order: most significant word first, each
/// word's high byte first. Every byte/word order is undone here, once.
fn normalised(reg: &Register, words: &[u16]) -> Vec<u16> {
    let fix = |w: &u16| match reg.byte_order {
        ByteOrder::Big => *w,
        ByteOrder::Little => w.swap_bytes(),
    };
    let mut out: Vec<u16> = words.iter().map(fix).collect();
    if reg.word_order == WordOrder::LowFirst && !reg.value_type.is_text() {
        out.reverse();
    }
    out
}

/// [`normalised`] words of a number (at most four) combined into one
/// integer, without allocating: the hot path of every poll.
fn number_bits(reg: &Register, words: &[u16]) -> u64 {
    let fix = |w: u16| match reg.byte_order {
        ByteOrder::Big => w,
        ByteOrder::Little => w.swap_bytes(),
    };
    let push = |acc: u64, w: &u16| (acc << 16) | u64::from(fix(*w));
    match reg.word_order {
        WordOrder::LowFirst => words.iter().rev().fold(0, push),
        _ => words.iter().fold(0, push),
    }
}

fn combine(words: &[u16]) -> u64 {
    words
        .iter()
        .fold(0u64, |acc, w| (acc << 16) | u64::from(*w))
}

/// Decodes the raw value of `reg` from exactly its words.
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
    if reg.function.is_bits() {
        // One coil or discrete input, stored as 0 or 1.
        return Ok(Raw::Int(i64::from(words[0] != 0)));
    }
    let bits = number_bits(reg, words);
    let float = |v: f64| {
        if v.is_finite() {
            Ok(Raw::Float(v))
        } else {
            Err(DecodeError::NotFinite {
                name: reg.name.clone(),
                value: v,
            })
        }
    };
    match reg.value_type {
        ValueType::U16 | ValueType::U32 => Ok(Raw::Int(bits as i64)),
        ValueType::I16 => Ok(Raw::Int(i64::from(bits as u16 as i16))),
        ValueType::I32 => Ok(Raw::Int(i64::from(bits as u32 as i32))),
        ValueType::U64 => Ok(Raw::UInt(bits)),
        ValueType::I64 => Ok(Raw::Int(bits as i64)),
        ValueType::F32 => float(widen(f32::from_bits(bits as u32))),
        ValueType::F64 => float(f64::from_bits(bits)),
        ValueType::Bool => Ok(Raw::Int(match reg.bit {
            Some(b) => i64::from((bits >> b) & 1 == 1),
            None => i64::from(bits != 0),
        })),
        ValueType::Bcd16 | ValueType::Bcd32 => {
            let w = normalised(reg, words);
            debug_assert_eq!(combine(&w), bits);
            bcd(bits, w.len() * 4).ok_or_else(|| DecodeError::NotBcd {
                name: reg.name.clone(),
                words: w
                    .iter()
                    .map(|x| format!("{x:#06x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            })
        }
        ValueType::String { .. } => text(reg, &normalised(reg, words)),
    }
}

/// The f64 nearest to the decimal the f32 stands for: 230.2f32 becomes
/// 230.2, not 230.1999969482422, which is what the device meant and what
/// every JSON payload would otherwise show.
fn widen(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    // Rust prints the shortest decimal that reads back as the same f32.
    x.to_string().parse().unwrap_or_else(|_| f64::from(x))
}

/// `digits` nibbles of `bits` as a decimal number, or `None` for a nibble > 9.
fn bcd(bits: u64, digits: usize) -> Option<Raw> {
    let mut value = 0i64;
    for i in (0..digits).rev() {
        let d = (bits >> (i * 4)) & 0xF;
        if d > 9 {
            return None;
        }
        value = value * 10 + d as i64;
    }
    Some(Raw::Int(value))
}

/// ASCII text, two characters per word (high byte first after byte-order
/// correction), NUL- or space-padded at the end.
fn text(reg: &Register, words: &[u16]) -> Result<Raw, DecodeError> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    for (position, byte) in bytes[..end].iter().enumerate() {
        if !(0x20..0x7F).contains(byte) {
            return Err(DecodeError::NotAscii {
                name: reg.name.clone(),
                byte: *byte,
                position,
            });
        }
    }
    // Checked printable ASCII above, so this is valid UTF-8.
    let s = String::from_utf8_lossy(&bytes[..end]);
    Ok(Raw::Text(s.trim_end().to_owned()))
}

/// Applies scale and offset. Decimal scales (0.1, 0.001) divide by their
/// reciprocal instead of multiplying, so 2301 × 0.1 reads 230.1 rather than
/// 230.10000000000002 in every JSON payload.
pub fn scale(reg: &Register, x: f64) -> f64 {
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

/// The value of one register in the unit of its name (`None` for text).
pub fn decode_value(reg: &Register, words: &[u16]) -> Result<Option<f64>, DecodeError> {
    Ok(decode_raw(reg, words)?.as_f64().map(|x| scale(reg, x)))
}

/// Decodes the registers of one block (the device level, or one channel
/// whose block starts at `block_start`) into named values. Check registers
/// are verified and left out, and so is text, which is no number.
pub fn decode_block(
    registers: &[Register],
    image: &RegisterImage,
    block_start: u16,
) -> Result<BTreeMap<String, f64>, DecodeError> {
    // Gathered in register order, then built into the map in one pass:
    // `collect` sorts (a few sorted runs: reg0…reg9, reg10…reg19, …) and
    // builds the tree bottom-up, several times fewer key comparisons than
    // one insert per value. A name given twice keeps its last value, as
    // inserting would.
    let mut values = Vec::with_capacity(registers.len());
    decode_each(registers, image, block_start, |_, reg, x| {
        values.push((reg.name.clone(), x))
    })?;
    Ok(values.into_iter().collect())
}

/// [`decode_block`] without the map: hands each value, with the index of
/// its register, to `value`, in register order.
pub fn decode_each(
    registers: &[Register],
    image: &RegisterImage,
    block_start: u16,
    mut value: impl FnMut(usize, &Register, f64),
) -> Result<(), DecodeError> {
    for (i, reg) in registers.iter().enumerate() {
        let start = block_start.saturating_add(reg.address);
        let joined;
        let words = match image.slice(reg.function, start, reg.len()) {
            Some(w) => w,
            None => {
                joined = image.get(reg.function, start, reg.len()).ok_or_else(|| {
                    DecodeError::Missing {
                        name: reg.name.clone(),
                    }
                })?;
                &joined[..]
            }
        };
        let raw = decode_raw(reg, words)?;
        let unexpected = |found: String, expected: String| DecodeError::Unexpected {
            name: reg.name.clone(),
            found,
            expected,
        };
        match (&raw, reg.expect, &reg.expect_text) {
            (_, Some(expected), _) => {
                let found = raw.as_i64();
                if found != Some(expected) {
                    let shown = found.map_or_else(|| format!("{raw:?}"), |f| f.to_string());
                    return Err(unexpected(shown, expected.to_string()));
                }
            }
            (Raw::Text(found), None, Some(expected)) => {
                if found != expected {
                    return Err(unexpected(format!("{found:?}"), format!("{expected:?}")));
                }
            }
            (Raw::Text(_), None, None) => {}
            (_, None, _) => {
                if let Some(x) = raw.as_f64() {
                    value(i, reg, scale(reg, x));
                }
            }
        }
    }
    Ok(())
}

/// The text registers of a block that are not checks (serial numbers,
/// firmware versions): reported once in the log, never as values.
pub fn decode_labels(
    registers: &[Register],
    image: &RegisterImage,
    block_start: u16,
) -> Vec<(String, String)> {
    registers
        .iter()
        .filter(|r| r.value_type.is_text() && r.expect_text.is_none())
        .filter_map(|r| {
            let words = image.get(r.function, block_start.saturating_add(r.address), r.len())?;
            match decode_raw(r, &words) {
                Ok(Raw::Text(t)) => Some((r.name.clone(), t)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
