//! The values of one register block as a flat list, written as JSON with
//! no map in between: the hot path of a Modbus poll.
//!
//! A reading's `values` is a map of owned names (`BTreeMap<String, f64>`):
//! for a 100-register meter that is 100 names copied, sorted and freed at
//! every poll, which was most of the gateway's CPU per value. Here the names
//! are sorted and JSON-escaped once per profile ([`BlockKeys`]), a poll
//! fills a `Vec<f64>` in register order ([`FlatValues`]), and the writer
//! prints the pairs in name order, exactly as serde prints the map (whole
//! numbers as integers): the bytes published are the same either way. A
//! block of plain 16-bit integers (a generic meter's) goes further: its
//! words are kept and printed as they are ([`Plain`]).

use super::decode::{decode_each, DecodeError, RegisterImage};
use crate::profile::{ByteOrder, Function, Register, ValueType};
use gridwatch_telemetry::codec::CodecError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest magnitude below which every whole f64 is exact as an i64 (as
/// the telemetry codec writes whole numbers).
const EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53
/// Bytes a key is padded to, so that writing one is a copy of a constant
/// size (inlined) instead of a call to `memmove` per key: those calls,
/// two per value, were the largest single item of the gateway's CPU per
/// value (profiled with perf at 50 ms polls). Longer keys take the slow
/// way.
const KEY_PAD: usize = 32;
/// Room a buffer needs past the JSON it will hold, for the padding of the
/// last copy: a buffer made with the length of the previous poll's JSON
/// plus this is never grown while it is written.
pub const JSON_SLACK: usize = KEY_PAD;

/// The numeric registers of one block in name order, each with its JSON
/// key (`"name":`), made once per profile.
#[derive(Debug, PartialEq)]
pub struct BlockKeys {
    /// (index of the register in the block, `"name":` as JSON).
    sorted: Vec<(usize, Box<[u8]>)>,
    /// The same keys in the same order, each padded to [`KEY_PAD`] bytes,
    /// when every key fits.
    padded: Option<Vec<[u8; KEY_PAD]>>,
    /// When every register is a plain 16-bit integer ([`Plain`]).
    plain: Option<Plain>,
}

/// A block whose every register is one 16-bit integer word of one table,
/// high byte first, unscaled, unchecked (a generic meter's holding
/// registers): its value *is* the word, so a poll keeps the words and the
/// JSON is printed straight from them, with no decoding to `f64` and back
/// (which was a third of the gateway's user-space instructions per value,
/// callgrind at 50 ms polls). The bytes are the same as the decoded way's.
#[derive(Debug, PartialEq)]
struct Plain {
    function: Function,
    /// Lowest and highest register address (relative to the block).
    first: u16,
    last: u16,
    /// Per key, in key order: (word offset from `first`, signed).
    words: Vec<(usize, bool)>,
}

impl Plain {
    fn new(registers: &[Register], sorted: &[(usize, Box<[u8]>)]) -> Option<Self> {
        let first_reg = registers.first()?;
        let plain = |r: &Register| {
            matches!(r.value_type, ValueType::U16 | ValueType::I16)
                && r.function == first_reg.function
                && !r.function.is_bits()
                && r.byte_order == ByteOrder::Big
                && r.scale == 1.0
                && r.offset == 0.0
                && r.expect.is_none()
                && r.expect_text.is_none()
                && r.bit.is_none()
        };
        if !registers.iter().all(plain) {
            return None;
        }
        let first = registers.iter().map(|r| r.address).min()?;
        let last = registers.iter().map(|r| r.address).max()?;
        let words = sorted
            .iter()
            .map(|(i, _)| {
                let r = &registers[*i];
                (
                    usize::from(r.address - first),
                    r.value_type == ValueType::I16,
                )
            })
            .collect();
        Some(Self {
            function: first_reg.function,
            first,
            last,
            words,
        })
    }

    /// The block's words, when the image holds exactly one response and it
    /// covers every register (else the decoded way decides, as before).
    fn words_in<'a>(&self, image: &'a RegisterImage, block_start: u16) -> Option<&'a [u16]> {
        let (function, at, words) = image.sole_run()?;
        let first = usize::from(block_start.checked_add(self.first)?);
        let last = usize::from(block_start.checked_add(self.last)?);
        let at = usize::from(at);
        if function != self.function || first < at || last >= at + words.len() {
            return None;
        }
        words.get(first - at..=last - at)
    }
}

impl BlockKeys {
    /// The keys of `registers` (every register; those that give no number
    /// are skipped when a poll has no value for them).
    pub fn new(registers: &[Register]) -> Arc<Self> {
        let mut sorted: Vec<(usize, Box<[u8]>)> = registers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut key = serde_json::to_vec(&r.name).unwrap_or_default();
                key.push(b':');
                (i, key.into_boxed_slice())
            })
            .collect();
        // The JSON key sorts as the name does: both start with '"' and
        // profile names are a-z0-9_ (no escapes).
        sorted.sort_by(|a, b| registers[a.0].name.cmp(&registers[b.0].name));
        let padded = sorted
            .iter()
            .map(|(_, key)| {
                let mut p = [0u8; KEY_PAD];
                p.get_mut(..key.len())?.copy_from_slice(key);
                Some(p)
            })
            .collect();
        let plain = Plain::new(registers, &sorted);
        Arc::new(Self {
            sorted,
            padded,
            plain,
        })
    }
}

/// One block's values from one poll, in register order (`None` for a
/// register that gives no number: a check or text).
#[derive(Debug, Clone, PartialEq)]
pub struct FlatValues {
    keys: Arc<BlockKeys>,
    registers: Arc<[Register]>,
    values: Values,
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    /// Per register, in register order.
    Decoded(Vec<Option<f64>>),
    /// The block's words from its first register's address on ([`Plain`]).
    Plain(Vec<u16>),
}

impl FlatValues {
    /// Decodes the block at `block_start` from `image` (as
    /// [`super::decode::decode_block`] does).
    pub fn decode(
        keys: &Arc<BlockKeys>,
        registers: &Arc<[Register]>,
        image: &RegisterImage,
        block_start: u16,
    ) -> Result<Self, DecodeError> {
        if let Some(words) = keys
            .plain
            .as_ref()
            .and_then(|p| p.words_in(image, block_start))
        {
            return Ok(Self {
                keys: keys.clone(),
                registers: registers.clone(),
                values: Values::Plain(words.to_vec()),
            });
        }
        let mut values = vec![None; registers.len()];
        decode_each(registers, image, block_start, |i, _, x| values[i] = Some(x))?;
        Ok(Self {
            keys: keys.clone(),
            registers: registers.clone(),
            values: Values::Decoded(values),
        })
    }

    /// Whether no register gave a number.
    pub fn is_empty(&self) -> bool {
        match &self.values {
            Values::Decoded(values) => values.iter().all(Option::is_none),
            Values::Plain(_) => self.registers.is_empty(),
        }
    }

    /// The values as a map (report by exception compares maps).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        (0..self.keys.sorted.len())
            .filter_map(|n| {
                let (i, _) = self.keys.sorted[n];
                let v = self.value(n)?;
                Some((self.registers[i].name.clone(), v))
            })
            .collect()
    }

    /// The value of the `n`th key.
    fn value(&self, n: usize) -> Option<f64> {
        match &self.values {
            Values::Decoded(values) => values[self.keys.sorted[n].0],
            Values::Plain(words) => {
                let plain = self.keys.plain.as_ref()?;
                Some(plain_int(words, plain.words[n]) as f64)
            }
        }
    }

    /// Appends `{"name":value,…}` in name order, whole numbers as integers,
    /// as the telemetry codec writes a reading's `values`. A value that is
    /// not finite is refused, as the codec refuses it.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        if let (Values::Plain(words), Some(plain), Some(padded)) =
            (&self.values, &self.keys.plain, &self.keys.padded)
        {
            out.push(b'{');
            for (n, (_, key)) in self.keys.sorted.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                push_padded(out, &padded[n], key.len());
                push_int(out, plain_int(words, plain.words[n]));
            }
            out.push(b'}');
            return Ok(());
        }
        out.push(b'{');
        let mut first = true;
        for (n, (i, key)) in self.keys.sorted.iter().enumerate() {
            let Some(v) = self.value(n) else { continue };
            if !v.is_finite() {
                return Err(CodecError::NonFinite {
                    name: self.registers[*i].name.clone(),
                    value: v,
                });
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match &self.keys.padded {
                Some(padded) => push_padded(out, &padded[n], key.len()),
                None => out.extend_from_slice(key),
            }
            if v.fract() == 0.0 && v.abs() < EXACT_INT && !(v == 0.0 && v.is_sign_negative()) {
                push_int(out, v as i64);
            } else {
                // serde_json's own float printing, so the bytes match.
                let _ = serde_json::to_writer(&mut *out, &v);
            }
        }
        out.push(b'}');
        Ok(())
    }
}

/// The integer a plain register's word holds.
fn plain_int(words: &[u16], (offset, signed): (usize, bool)) -> i64 {
    let w = words[offset];
    if signed {
        i64::from(w as i16)
    } else {
        i64::from(w)
    }
}

/// Appends the first `len` bytes of `padded`: the whole array is copied
/// (a constant size, so no call) and the padding cut off again.
fn push_padded<const N: usize>(out: &mut Vec<u8>, padded: &[u8; N], len: usize) {
    let end = out.len() + len;
    out.extend_from_slice(padded);
    out.truncate(end);
}

/// Appends `v` in decimal, as serde_json writes an i64. Below 10^8 (every
/// 16-bit register) the digits are gathered in one `u64`, first digit in
/// the top byte, and its eight bytes copied whole ([`push_padded`]).
fn push_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    let mut u = v.unsigned_abs();
    if u >= 100_000_000 {
        use std::io::Write as _;
        let _ = write!(out, "{u}");
        return;
    }
    let mut digits = 0u64;
    let mut len = 0;
    loop {
        digits = (digits >> 8) | ((u64::from(b'0') + u % 10) << 56);
        len += 1;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    push_padded(out, &digits.to_be_bytes(), len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::ReadRequest;
    use crate::profile::{Function, ProfileLibrary};
    use gridwatch_telemetry::{codec, DeviceKind, Reading, Timestamp};

    /// The `values` object of the reading the codec writes for `map`.
    fn codec_values(map: BTreeMap<String, f64>) -> String {
        let mut r = Reading::new(Timestamp(1), "gw", "d", DeviceKind::Generic, 1);
        r.values = map;
        let json = String::from_utf8(codec::encode(&r).unwrap()).unwrap();
        let at = json.find("\"values\":").unwrap() + "\"values\":".len();
        json[at..json.len() - 1].to_owned()
    }

    fn check(model: &str, function: Function, words: impl Fn(u16) -> u16) {
        let profile = ProfileLibrary::built_in().get(model).unwrap();
        let regs: Arc<[Register]> = profile.registers.clone().into();
        let keys = BlockKeys::new(&regs);
        let mut image = RegisterImage::new();
        for start in (0..400u16).step_by(100) {
            let request = ReadRequest {
                function,
                start,
                count: 100,
            };
            image.insert(
                &request,
                &(start..start + 100).map(&words).collect::<Vec<_>>(),
            );
        }
        let flat = FlatValues::decode(&keys, &regs, &image, 0).unwrap();
        assert!(!flat.is_empty());
        let map = flat.to_map();
        assert_eq!(
            map,
            super::super::decode::decode_block(&regs, &image, 0).unwrap()
        );
        let mut json = Vec::new();
        flat.write_json(&mut json).unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), codec_values(map));
    }

    #[test]
    fn a_prepared_record_stores_the_bytes_of_the_reading_with_its_map() {
        use crate::outbox::Record;
        let profile = ProfileLibrary::built_in().get("generic-holding").unwrap();
        let regs: Arc<[Register]> = profile.registers.clone().into();
        let mut image = RegisterImage::new();
        let request = ReadRequest {
            function: Function::Holding,
            start: 0,
            count: 100,
        };
        image.insert(&request, &(0..100u16).map(|a| a * 601).collect::<Vec<_>>());
        let flat = FlatValues::decode(&BlockKeys::new(&regs), &regs, &image, 0).unwrap();
        let mut values_json = Vec::new();
        flat.write_json(&mut values_json).unwrap();
        let mut reading = Reading::new(Timestamp(7), "gw", "m-1", DeviceKind::Generic, 42);
        reading.site = "yard".into();
        let prepared = Record::Prepared {
            reading: reading.clone(),
            values_json,
        };
        reading.values = flat.to_map();
        let plain = Record::Reading(reading);
        assert_eq!(prepared.to_payload().unwrap(), plain.to_payload().unwrap());
        assert_eq!(
            Record::from_payload(&prepared.to_payload().unwrap()).unwrap(),
            plain
        );
    }

    /// The plain way (one response, 16-bit integers) and the decoded way
    /// give the same bytes and the same map.
    fn check_plain(profile_text: &str, words: &[u16], expect_plain: bool) {
        let profile = crate::profile::Profile::from_toml_str(profile_text, "test", None).unwrap();
        let regs: Arc<[Register]> = profile.registers.clone().into();
        let keys = BlockKeys::new(&regs);
        let mut image = RegisterImage::new();
        let request = ReadRequest {
            function: Function::Holding,
            start: 0,
            count: words.len() as u16,
        };
        image.insert(&request, words);
        let flat = FlatValues::decode(&keys, &regs, &image, 0).unwrap();
        assert_eq!(matches!(flat.values, Values::Plain(_)), expect_plain);
        let map = super::super::decode::decode_block(&regs, &image, 0).unwrap();
        assert_eq!(flat.to_map(), map);
        let mut json = Vec::new();
        flat.write_json(&mut json).unwrap();
        assert_eq!(String::from_utf8(json).unwrap(), codec_values(map));
        // A second response in the image: the decoded way decides.
        image.insert(&request, words);
        let twice = FlatValues::decode(&keys, &regs, &image, 0).unwrap();
        assert!(matches!(twice.values, Values::Decoded(_)));
        assert_eq!(twice.to_map(), flat.to_map());
    }

    #[test]
    fn plain_integer_blocks_are_printed_from_their_words_with_the_same_bytes() {
        let words: Vec<u16> = (0..100u16).map(|a| a.wrapping_mul(7919)).collect();
        check_plain(
            include_str!("../../../../config/devices/generic-holding.toml"),
            &words,
            true,
        );
        // Signed, out of order, with holes, names of different lengths.
        let signed = r#"
model = "t"
vendor = "t"
kind = "generic"
document = "t"
function = "holding"
registers = [
  { address = 7, type = "i16", name = "z_temperature" },
  { address = 2, type = "u16", name = "a" },
  { address = 5, type = "i16", name = "a_rather_long_name_for_a_register_that_does_not_fit" },
]
"#;
        check_plain(signed, &[1, 2, 65535, 4, 5, 32768, 7, 65000], true);
        // Scaled: decoded, as before.
        let scaled = signed.replace(
            r#"type = "u16", name = "a""#,
            r#"type = "u16", name = "a", scale = 0.1"#,
        );
        check_plain(&scaled, &[1, 2, 65535, 4, 5, 32768, 7, 65000], false);
    }

    #[test]
    fn integers_are_written_as_serde_json_writes_them() {
        let mut cases = vec![
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            99,
            100,
            65535,
            -32768,
            i64::MAX,
            i64::MIN,
        ];
        cases.extend((1..19).flat_map(|e| {
            let p = 10i64.pow(e);
            [p - 1, p, p + 1, -p + 1, -p, -p - 1]
        }));
        for v in cases {
            let mut out = b"x".to_vec();
            push_int(&mut out, v);
            assert_eq!(
                out,
                [b"x".as_slice(), v.to_string().as_bytes()].concat(),
                "{v}"
            );
        }
    }

    #[test]
    fn whole_values_are_written_as_the_codec_writes_them() {
        check("generic-holding", Function::Holding, |a| {
            a.wrapping_mul(7919)
        });
    }

    #[test]
    fn fractional_values_are_written_as_the_codec_writes_them() {
        // f32 high words near 230 (0x4366), low words varied: finite values.
        check("eastron-sdm630", Function::Input, |a| {
            if a % 2 == 0 {
                0x4360 + a % 16
            } else {
                a.wrapping_mul(7919)
            }
        });
    }
}
