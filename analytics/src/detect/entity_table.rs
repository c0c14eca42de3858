//! Per-entity state for detectors that keep one small record per flat or
//! per meter.
//!
//! A city has about a million flats and three meters to each, so how a
//! detector finds a record and what the lookup costs in memory matter as
//! much as the record itself. The flat detectors key by the flat
//! (`site/building/unit`), the meter detectors by the meter
//! (`site/gateway/device`); all address records by a dense `u32` (which
//! building lists and windows can hold in 4 bytes) and report their bytes
//! per flat through this table, so the figures in docs/BENCHMARKS.md count
//! the same things for every detector.

use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;
use std::ops::{Index, IndexMut};

/// Records by flat (or meter), in the order they were first seen.
///
/// Each key is held once, in the list of keys by number; the index is a
/// hash table of numbers alone (4 bytes a slot), hashing the key a number
/// points at. A map from key to number beside the list held every key
/// twice, and its slots were as wide as a key: together about a third of a
/// small detector's bytes per flat.
#[derive(Debug, Clone)]
pub struct EntityTable<T> {
    keys: Vec<Box<str>>,
    index: hashbrown::HashTable<u32>,
    rows: Vec<T>,
}

impl<T> Default for EntityTable<T> {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            index: hashbrown::HashTable::new(),
            rows: Vec::new(),
        }
    }
}

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Room for one more in `v`, grown by an eighth rather than doubled: a
/// district's flats arrive in its first hour and then stay, so doubling
/// would leave up to half the room unused for good.
fn grow<X>(v: &mut Vec<X>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 8 + 4);
    }
}

impl<T> EntityTable<T> {
    /// The record number of `flat`, if it has one.
    pub fn find(&self, flat: &str) -> Option<u32> {
        let keys = &self.keys;
        self.index
            .find(hash(flat), |&i| &*keys[i as usize] == flat)
            .copied()
    }

    /// Adds the record of a flat that has none yet and returns its number.
    /// A flat already present keeps its record (and number): state is never
    /// silently reset by a second insert.
    pub fn insert(&mut self, flat: String, row: T) -> u32 {
        if let Some(i) = self.find(&flat) {
            return i;
        }
        let i = u32::try_from(self.rows.len()).expect("fewer than 2^32 flats");
        let keys = &self.keys;
        self.index
            .insert_unique(hash(&flat), i, |&j| hash(&keys[j as usize]));
        grow(&mut self.keys);
        self.keys.push(flat.into_boxed_str());
        grow(&mut self.rows);
        self.rows.push(row);
        i
    }

    /// The record of `key`, if it has one.
    pub fn get(&self, key: &str) -> Option<&T> {
        self.find(key).map(|i| &self.rows[i as usize])
    }

    /// The record of `key` to change, if it has one.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        self.find(key).map(|i| &mut self.rows[i as usize])
    }

    /// The record of `key`, made by `make` if it has none (the key is
    /// copied only then).
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> T) -> &mut T {
        let i = match self.find(key) {
            Some(i) => i,
            None => self.insert(key.to_owned(), make()),
        };
        &mut self.rows[i as usize]
    }

    /// Every key with its record, by number.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.keys.iter().map(|k| &**k).zip(&self.rows)
    }

    /// The flat of a record number.
    pub fn key(&self, i: u32) -> &str {
        &self.keys[i as usize]
    }

    /// Flats with a record.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No flat has a record yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every record, by number.
    pub fn rows(&self) -> &[T] {
        &self.rows
    }

    /// Bytes taken by the keys, the index and the records' inline part.
    /// What a record owns on the heap is its detector's to add, since only
    /// it knows.
    pub fn bytes(&self) -> usize {
        let keys = self.keys.capacity() * std::mem::size_of::<Box<str>>();
        let text: usize = self.keys.iter().map(|k| k.len()).sum();
        // A hash table with room for n has the next power of two above
        // 8n/7 slots, each a number and a control byte.
        let slots = if self.index.capacity() == 0 {
            0
        } else {
            (self.index.capacity() * 8 / 7).next_power_of_two() * (4 + 1)
        };
        keys + text + slots + self.rows.capacity() * std::mem::size_of::<T>()
    }
}

/// A checkpoint holds the keys in number order and the records; the index
/// is rebuilt on reading. One written before the index held the keys once
/// (with an `index` map beside them) reads the same way.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved<K, R> {
    keys: K,
    rows: R,
}

impl<T: serde::Serialize> serde::Serialize for EntityTable<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let keys: Vec<&str> = self.keys.iter().map(|k| &**k).collect();
        Saved {
            keys,
            rows: &self.rows,
        }
        .serialize(s)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for EntityTable<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let saved = Saved::<Vec<String>, Vec<T>>::deserialize(d)?;
        if saved.keys.len() != saved.rows.len() {
            return Err(serde::de::Error::custom(format!(
                "a flat table with {} keys and {} records",
                saved.keys.len(),
                saved.rows.len()
            )));
        }
        let mut t = EntityTable::default();
        for (k, row) in saved.keys.into_iter().zip(saved.rows) {
            let n = t.len();
            if t.insert(k, row) as usize != n {
                return Err(serde::de::Error::custom("a flat table lists a flat twice"));
            }
        }
        Ok(t)
    }
}

impl<T> Index<u32> for EntityTable<T> {
    type Output = T;
    fn index(&self, i: u32) -> &T {
        &self.rows[i as usize]
    }
}

impl<T> IndexMut<u32> for EntityTable<T> {
    fn index_mut(&mut self, i: u32) -> &mut T {
        &mut self.rows[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flats_keep_their_number_and_record() {
        let mut t: EntityTable<u64> = EntityTable::default();
        assert!(t.is_empty());
        let a = t.insert("s/b/0101".into(), 1);
        let b = t.insert("s/b/0102".into(), 2);
        assert_ne!(a, b);
        t[a] += 10;
        // A second insert neither resets the record nor adds a flat.
        assert_eq!(t.insert("s/b/0101".into(), 99), a);
        assert_eq!((t[a], t[b], t.len()), (11, 2, 2));
        assert_eq!(t.find("s/b/0102"), Some(b));
        assert_eq!(t.find("s/b/0103"), None);
        assert_eq!(t.key(b), "s/b/0102");
        assert_eq!(t.rows(), &[11, 2]);
        // Keys and index are counted, not only the records.
        assert!(t.bytes() > 2 * std::mem::size_of::<u64>() + 2 * 8);
    }

    #[test]
    fn a_checkpointed_table_reads_back_and_so_does_one_of_the_old_shape() {
        let mut t: EntityTable<u64> = EntityTable::default();
        t.insert("s/b/0102".into(), 7);
        t.insert("s/b/0101".into(), 9);
        let bytes = rmp_serde::to_vec_named(&t).unwrap();
        let back: EntityTable<u64> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.find("s/b/0101"), Some(1));
        assert_eq!((back.key(0), back[0], back[1]), ("s/b/0102", 7, 9));
        // Before 7 Dec 2026 a table was saved with its index map beside the
        // keys; the index is rebuilt from the keys.
        #[derive(serde::Serialize)]
        struct Old {
            index: std::collections::HashMap<String, u32>,
            keys: Vec<String>,
            rows: Vec<u64>,
        }
        let old = Old {
            index: [("s/b/0201".to_owned(), 0)].into_iter().collect(),
            keys: vec!["s/b/0201".into()],
            rows: vec![42],
        };
        let back: EntityTable<u64> =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&old).unwrap()).unwrap();
        assert_eq!((back.find("s/b/0201"), back[0]), (Some(0), 42));
        // Damage is an error, not a table that finds the wrong record.
        let bad = Old {
            index: Default::default(),
            keys: vec!["a".into(), "a".into()],
            rows: vec![1, 2],
        };
        let err =
            rmp_serde::from_slice::<EntityTable<u64>>(&rmp_serde::to_vec_named(&bad).unwrap());
        assert!(err.unwrap_err().to_string().contains("twice"));
        let short = Old {
            index: Default::default(),
            keys: vec!["a".into()],
            rows: vec![],
        };
        let err =
            rmp_serde::from_slice::<EntityTable<u64>>(&rmp_serde::to_vec_named(&short).unwrap());
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("1 keys and 0 records"));
    }
}
