//! The values of one register block as a flat list, written as JSON with
//! no map in between: the hot path of a Modbus poll.
//!
//! A reading's `values` is a map of owned names (`BTreeMap<String, f64>`):
//! for a 100-register meter that is 100 names copied, sorted and freed at
//! every poll, which was most of the gateway's CPU per value. Here the names
//! are sorted and JSON-escaped once per profile ([`BlockKeys`]), a poll
//! fills a `Vec<f64>` in register order ([`FlatValues`]), and the writer
//! prints the pairs in name order, exactly as serde prints the map (whole
//! numbers as integers): the bytes published are the same either way.

use super::decode::{decode_each, DecodeError, RegisterImage};
use crate::profile::Register;
use gridwatch_telemetry::codec::CodecError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest magnitude below which every whole f64 is exact as an i64 (as
/// the telemetry codec writes whole numbers).
const EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53

/// The numeric registers of one block in name order, each with its JSON
/// key (`"name":`), made once per profile.
#[derive(Debug, PartialEq)]
pub struct BlockKeys {
    /// (index of the register in the block, `"name":` as JSON).
    sorted: Vec<(usize, Box<[u8]>)>,
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
        Arc::new(Self { sorted })
    }
}

/// One block's values from one poll, in register order (`None` for a
/// register that gives no number: a check or text).
#[derive(Debug, Clone, PartialEq)]
pub struct FlatValues {
    keys: Arc<BlockKeys>,
    registers: Arc<[Register]>,
    values: Vec<Option<f64>>,
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
        let mut values = vec![None; registers.len()];
        decode_each(registers, image, block_start, |i, _, x| values[i] = Some(x))?;
        Ok(Self {
            keys: keys.clone(),
            registers: registers.clone(),
            values,
        })
    }

    /// Whether no register gave a number.
    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// The values as a map (report by exception compares maps).
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        self.values
            .iter()
            .zip(self.registers.iter())
            .filter_map(|(v, r)| v.map(|v| (r.name.clone(), v)))
            .collect()
    }

    /// Appends `{"name":value,…}` in name order, whole numbers as integers,
    /// as the telemetry codec writes a reading's `values`. A value that is
    /// not finite is refused, as the codec refuses it.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.push(b'{');
        let mut first = true;
        for (i, key) in &self.keys.sorted {
            let Some(v) = self.values[*i] else { continue };
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
            out.extend_from_slice(key);
            if v.fract() == 0.0 && v.abs() < EXACT_INT && !(v == 0.0 && v.is_sign_negative()) {
                let _ = serde_json::to_writer(&mut *out, &(v as i64));
            } else {
                // serde_json's own float printing, so the bytes match.
                let _ = serde_json::to_writer(&mut *out, &v);
            }
        }
        out.push(b'}');
        Ok(())
    }
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
