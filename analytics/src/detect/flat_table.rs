//! Per-flat state for detectors that keep one small record per flat.
//!
//! A city has about a million flats, so how a detector finds a flat's
//! record and what the lookup costs in memory matter as much as the record
//! itself. Every such detector keys by the flat (`site/building/unit`),
//! addresses records by a dense `u32` (which building lists and windows
//! can hold in 4 bytes), and reports its bytes per flat; this table is that
//! one way, so the figures in docs/BENCHMARKS.md count the same things for
//! every detector.

use std::collections::HashMap;
use std::ops::{Index, IndexMut};

/// Records by flat, in the order the flats were first seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FlatTable<T> {
    index: HashMap<String, u32>,
    keys: Vec<String>,
    rows: Vec<T>,
}

impl<T> Default for FlatTable<T> {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            keys: Vec::new(),
            rows: Vec::new(),
        }
    }
}

impl<T> FlatTable<T> {
    /// The record number of `flat`, if it has one.
    pub fn find(&self, flat: &str) -> Option<u32> {
        self.index.get(flat).copied()
    }

    /// Adds the record of a flat that has none yet and returns its number.
    /// A flat already present keeps its record (and number): state is never
    /// silently reset by a second insert.
    pub fn insert(&mut self, flat: String, row: T) -> u32 {
        if let Some(i) = self.find(&flat) {
            return i;
        }
        let i = u32::try_from(self.rows.len()).expect("fewer than 2^32 flats");
        self.index.insert(flat.clone(), i);
        self.keys.push(flat);
        self.rows.push(row);
        i
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
        let keys: usize = self.keys.iter().map(|k| 2 * k.capacity() + 24).sum();
        let index = self.index.capacity() * (std::mem::size_of::<(String, u32)>() + 1);
        keys + index + self.rows.capacity() * std::mem::size_of::<T>()
    }
}

impl<T> Index<u32> for FlatTable<T> {
    type Output = T;
    fn index(&self, i: u32) -> &T {
        &self.rows[i as usize]
    }
}

impl<T> IndexMut<u32> for FlatTable<T> {
    fn index_mut(&mut self, i: u32) -> &mut T {
        &mut self.rows[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flats_keep_their_number_and_record() {
        let mut t: FlatTable<u64> = FlatTable::default();
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
}
