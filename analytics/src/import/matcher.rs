//! The register's meters indexed by the key a mapping matches on (meter
//! number, account or address) → the flat, for every row of an import.
//!
//! A city's register has millions of meters, so the index is compact: each
//! key and each flat is stored once, end to end in one string, and found
//! again through an open-addressing table of `u32` ids hashed with FxHash.
//! Two million meters take about 130 MB, where a `HashMap<String, _>` of
//! the keys beside the parsed register took more than a gigabyte.
//! [`Matcher::load`] builds it while streaming the register file, so no
//! parsed entry is kept.

use super::MatchBy;
use crate::register::{FlatEntry, MeterEntry, RegisterError, RegisterFile, TagEntry};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// Strings stored end to end, each with an id (its order of arrival), found
/// again by an open-addressing table with linear probing.
#[derive(Debug, Default)]
struct Interner {
    text: String,
    /// Where string `i` ends in `text`; it starts where `i - 1` ends.
    ends: Vec<usize>,
    /// `0`: empty; else the top half of the string's hash beside its id + 1,
    /// so a probe that meets another string's slot moves on without
    /// reading that string. A power of two long, at most half full.
    slots: Vec<u64>,
}

impl Interner {
    fn hash(s: &str) -> u64 {
        let mut h = rustc_hash::FxHasher::default();
        h.write(s.as_bytes());
        // FxHash leaves keys that differ in their last digits close
        // together; a finaliser (MurmurHash3's) spreads them over the
        // table, whose slot is picked by the top bits.
        let mut x = h.finish();
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn slot_of(hash: u64, len: usize) -> usize {
        (hash >> (64 - len.trailing_zeros())) as usize
    }

    fn get_str(&self, id: u32) -> &str {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The id of `s`, if stored.
    fn get(&self, s: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let hash = Self::hash(s);
        let tag = (hash >> 32) << 32;
        let mut i = Self::slot_of(hash, self.slots.len());
        loop {
            match self.slots[i] {
                0 => return None,
                slot if (slot >> 32) << 32 == tag => {
                    let id = slot as u32 - 1;
                    if self.get_str(id) == s {
                        return Some(id);
                    }
                }
                _ => {}
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `s`, storing it if new; `true` when it was new.
    fn intern(&mut self, s: &str) -> (u32, bool) {
        if let Some(id) = self.get(s) {
            return (id, false);
        }
        if (self.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let id = self.len() as u32;
        self.text.push_str(s);
        self.ends.push(self.text.len());
        self.place(id);
        (id, true)
    }

    fn place(&mut self, id: u32) {
        let mask = self.slots.len() - 1;
        let hash = Self::hash(self.get_str(id));
        let mut i = Self::slot_of(hash, self.slots.len());
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = ((hash >> 32) << 32) | u64::from(id + 1);
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(64);
        self.slots = vec![0; len];
        for id in 0..self.len() as u32 {
            self.place(id);
        }
    }

    /// Gives back the spare capacity of a finished index.
    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// The register's meters, indexed by the key a mapping matches on.
#[derive(Debug, Default)]
pub struct Matcher {
    keys: Interner,
    /// The flat id of each key id.
    key_flat: Vec<u32>,
    flats: Interner,
    conflicts: Vec<String>,
}

impl Matcher {
    /// Indexes `register`'s meters by `by`.
    pub fn new(register: &RegisterFile, by: MatchBy) -> Self {
        let mut m = Self::default();
        for e in &register.meters {
            m.add(e, by);
        }
        m.finish()
    }

    /// Reads the register file at `path` and indexes its meters by `by`,
    /// streaming: flats and tags are checked as [`RegisterFile::load`]
    /// checks them and dropped, meters go into the index one by one.
    pub fn load(path: &Path, by: MatchBy) -> Result<Self, RegisterError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| RegisterError::Read {
            path: name.clone(),
            source,
        })?;
        let mut de =
            serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(1 << 20, file));
        let mut build = Build {
            matcher: Matcher::default(),
            by,
            seen: HashSet::new(),
            invalid: None,
        };
        let parsed = (&mut build).deserialize(&mut de).and_then(|()| de.end());
        if let Some(reason) = build.invalid {
            return Err(RegisterError::Invalid { path: name, reason });
        }
        parsed.map_err(|source| {
            // A read error mid-file is the disk's, not the JSON's.
            if source.is_io() {
                RegisterError::Read {
                    path: name.clone(),
                    source: source.into(),
                }
            } else {
                RegisterError::Parse {
                    path: name.clone(),
                    source,
                }
            }
        })?;
        Ok(build.matcher.finish())
    }

    fn add(&mut self, e: &MeterEntry, by: MatchBy) {
        let key = match by {
            MatchBy::Meter => Some(&e.meter),
            MatchBy::Account => e.account.as_ref(),
            MatchBy::Address => e.address.as_ref(),
        };
        let Some(key) = key else { return };
        let key = key.trim();
        let (flat, _) = self.flats.intern(&e.flat);
        let (id, new) = self.keys.intern(key);
        if new {
            self.key_flat.push(flat);
        } else {
            if self.key_flat[id as usize] != flat {
                self.conflicts.push(key.to_owned());
            }
            self.key_flat[id as usize] = flat;
        }
    }

    fn finish(mut self) -> Self {
        self.keys.shrink();
        self.flats.shrink();
        self.key_flat.shrink_to_fit();
        self
    }

    /// Keys the register gives to two different flats (the later entry
    /// wins); the command line warns about them.
    pub fn conflicts(&self) -> &[String] {
        &self.conflicts
    }

    /// The flat of a key.
    pub fn flat(&self, key: &str) -> Option<&str> {
        self.keys
            .get(key)
            .map(|id| self.flats.get_str(self.key_flat[id as usize]))
    }

    /// Keys indexed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys: nothing can match.
    pub fn is_empty(&self) -> bool {
        self.keys.len() == 0
    }
}

/// The state of [`Matcher::load`] while the register streams by.
struct Build {
    matcher: Matcher,
    by: MatchBy,
    /// (flat, since) of the flat entries so far, as 128-bit hashes: the
    /// check that no flat has two entries for one date, without keeping
    /// the flats' names (a false alarm would need two 128-bit hashes to
    /// collide).
    seen: HashSet<u128>,
    /// What [`RegisterFile::check`] would refuse.
    invalid: Option<String>,
}

impl Build {
    /// Checks one flat entry; what is wrong is kept in `invalid`.
    fn flat(&mut self, f: FlatEntry) -> Result<(), String> {
        let checked = self.check(&f);
        if let Err(reason) = &checked {
            self.invalid = Some(reason.clone());
        }
        checked
    }

    fn check(&mut self, f: &FlatEntry) -> Result<(), String> {
        let day = f.since_day()?;
        let half = |salt: u8| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (salt, f.flat.as_str(), day).hash(&mut h);
            h.finish()
        };
        let key = (u128::from(half(0)) << 64) | u128::from(half(1));
        if !self.seen.insert(key) {
            return Err(f.duplicate_error());
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Flats,
    Tags,
    Meters,
}

impl<'de> DeserializeSeed<'de> for &mut Build {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_struct("RegisterFile", &["flats", "tags", "meters"], self)
    }
}

impl<'de> Visitor<'de> for &mut Build {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a register: an object of flats, tags and meters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Flats => map.next_value_seed(each(|f: FlatEntry| self.flat(f)))?,
                // Checked as the register's types, then dropped.
                Field::Tags => map.next_value_seed(each(|_: TagEntry| Ok(())))?,
                Field::Meters => {
                    let by = self.by;
                    map.next_value_seed(each(|m: MeterEntry| {
                        self.matcher.add(&m, by);
                        Ok(())
                    }))?
                }
            }
        }
        Ok(())
    }
}

/// A JSON array whose elements are handed one by one to a function.
struct Each<T, F>(F, std::marker::PhantomData<fn(T)>);

fn each<T, F: FnMut(T) -> Result<(), String>>(f: F) -> Each<T, F> {
    Each(f, std::marker::PhantomData)
}

impl<'de, T, F> DeserializeSeed<'de> for Each<T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<(), String>,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T, F> Visitor<'de> for Each<T, F>
where
    T: serde::Deserialize<'de>,
    F: FnMut(T) -> Result<(), String>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<S: SeqAccess<'de>>(mut self, mut seq: S) -> Result<(), S::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            (self.0)(item).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::RegisterError;

    fn load(json: &str, by: MatchBy) -> Result<Matcher, RegisterError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("register.json");
        std::fs::write(&path, json).unwrap();
        Matcher::load(&path, by)
    }

    #[test]
    fn loading_streams_the_same_index_as_the_parsed_register() {
        let json = r#"{"flats": [{"flat": "s/b/1", "occupants": 2}],
            "tags": [{"identity": "t1", "flat": "s/b/1"}],
            "meters": [
                {"meter": "M1", "flat": "s/b/1", "account": " A1 "},
                {"meter": "M2", "flat": "s/b/2"},
                {"meter": "M1", "flat": "s/b/3"}]}"#;
        let file: RegisterFile = serde_json::from_str(json).unwrap();
        for by in [MatchBy::Meter, MatchBy::Account, MatchBy::Address] {
            let (streamed, parsed) = (load(json, by).unwrap(), Matcher::new(&file, by));
            assert_eq!(streamed.len(), parsed.len());
            assert_eq!(streamed.conflicts(), parsed.conflicts());
            for key in ["M1", "M2", "A1", "nope"] {
                assert_eq!(streamed.flat(key), parsed.flat(key), "{by:?} {key}");
            }
        }
        assert_eq!(
            load(json, MatchBy::Account).unwrap().flat("A1"),
            Some("s/b/1")
        );
    }

    #[test]
    fn loading_refuses_what_the_register_refuses() {
        let bad_date = r#"{"flats": [{"flat": "s/b/1", "occupants": 2, "since": "2026-02-30"}]}"#;
        let e = load(bad_date, MatchBy::Meter).unwrap_err();
        assert!(
            matches!(&e, RegisterError::Invalid { reason, .. } if reason.contains("not a date")),
            "{e}"
        );
        let twice = r#"{"flats": [{"flat": "s/b/1", "occupants": 2},
            {"flat": "s/b/1", "occupants": 3}]}"#;
        let e = load(twice, MatchBy::Meter).unwrap_err();
        assert!(e.to_string().contains("two entries without a date"), "{e}");
        for broken in [
            r#"{"meters": [{"meter": "M1"}]}"#,
            r#"{"meters": [], "lifts": []}"#,
            r#"{"meters": [{"meter": "M1", "flat": "f", "colour": "red"}]}"#,
            r#"{"meters": []} trailing"#,
        ] {
            let e = load(broken, MatchBy::Meter).unwrap_err();
            assert!(matches!(e, RegisterError::Parse { .. }), "{broken}: {e}");
        }
    }

    #[test]
    fn the_index_finds_every_key_of_a_large_register() {
        let mut m = Matcher::default();
        for i in 0..10_000u32 {
            let e = MeterEntry {
                meter: format!("{:013}", 3_300_000_000_000u64 + u64::from(i)),
                flat: format!("gen/b{:04}/{:04}", i / 100, i % 100),
                account: None,
                address: None,
            };
            m.add(&e, MatchBy::Meter);
        }
        let m = m.finish();
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.flat("3300000009999"), Some("gen/b0099/0099"));
        assert_eq!(m.flat("3300000000000"), Some("gen/b0000/0000"));
        assert_eq!(m.flat("3300000010000"), None);
        assert!(m.conflicts().is_empty());
    }
}
