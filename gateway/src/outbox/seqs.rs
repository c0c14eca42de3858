//! Sequence numbers that are never used twice, after any number of crashes.
//!
//! A device's `seq` is stamped by its poller, but it only counts as *used*
//! once a record carrying it is written to a segment (from then on an uplink
//! may send it). Before the first record of a block is written, the outbox
//! durably reserves the block: the sequence file then says "the next
//! [`BLOCK`] seqs from here may be in use", written to a temporary file,
//! synced, renamed and the folder synced. On restart every device goes on at
//! its reserved high-water mark, whatever a crash left behind, so no seq can
//! come back. The part of the block that was never written is announced as a
//! [`SeqGap`], so a consumer can tell a seq that was never used from a lost
//! reading.
//!
//! The file also says how far each device's written records went (`used`)
//! as of the last commit; records written after the commit mark are read on
//! open to carry `used` on, so the gap starts right after the last record a
//! crash left on disk.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Seqs reserved at once: one write of the sequence file per this many
/// records of a device, and at most this many seqs skipped per crash.
pub const BLOCK: u64 = 4096;

/// A range of one device's seqs that were reserved but never used: no
/// record with these seqs exists or will ever exist. Inclusive bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqGap {
    /// The device.
    pub device: String,
    /// First seq never used.
    pub from: u64,
    /// Last seq never used.
    pub to: u64,
}

/// One device in the sequence file. Older gateways wrote a plain number
/// (the next seq as of the last commit), which is read as both.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Plain(u64),
    Book { reserved: u64, used: u64 },
}

/// Every device's reservation (durable) and use (in memory, saved at
/// commit and with each reservation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqBook {
    /// The first seq not covered by a durable reservation.
    reserved: BTreeMap<String, u64>,
    /// One past the highest seq written to a segment.
    used: BTreeMap<String, u64>,
    /// `used` changed since the file was last written.
    dirty: bool,
}

impl SeqBook {
    /// Reads the sequence file; a missing one is an empty book.
    pub fn load(path: &Path) -> io::Result<Self> {
        let map: BTreeMap<String, Stored> = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        let mut book = Self::default();
        for (device, s) in map {
            let (reserved, used) = match s {
                Stored::Plain(n) => (n, n),
                Stored::Book { reserved, used } => (reserved, used),
            };
            book.reserved.insert(device.clone(), reserved);
            book.used.insert(device, used);
        }
        Ok(book)
    }

    /// After a restart: `found` holds, per device, one past the highest seq
    /// among records written after the last commit mark. Moves every device
    /// to its restart point and returns the ranges skipped by it.
    pub fn recover(&mut self, found: &BTreeMap<String, u64>) -> Vec<SeqGap> {
        for (device, &next) in found {
            let u = self.used.entry(device.clone()).or_insert(0);
            if next > *u {
                // Records past the commit mark: saved with the next mark.
                *u = next;
                self.dirty = true;
            }
        }
        let mut gaps = Vec::new();
        for (device, &used) in &self.used {
            let r = self.reserved.entry(device.clone()).or_insert(used);
            if used < *r {
                gaps.push(SeqGap {
                    device: device.clone(),
                    from: used,
                    to: *r - 1,
                });
            }
            *r = (*r).max(used);
        }
        gaps
    }

    /// The seq a device goes on from after a restart: its high-water mark.
    pub fn next_seq(&self, device: &str) -> Option<u64> {
        self.reserved.get(device).copied()
    }

    /// The book with a block reserved for every device in `highest` (device
    /// → highest seq about to be written) that its reservation does not
    /// cover, or `None` when it covers them all.
    pub fn reserving(&self, highest: &BTreeMap<String, u64>) -> Option<Self> {
        let mut next: Option<Self> = None;
        for (device, &seq) in highest {
            if self.reserved.get(device).is_some_and(|&r| seq < r) {
                continue;
            }
            let book = next.get_or_insert_with(|| self.clone());
            book.reserved
                .insert(device.clone(), seq.saturating_add(BLOCK));
            // A device new to the book has used nothing below this seq.
            book.used.entry(device.clone()).or_insert(seq);
        }
        next
    }

    /// Records up to `highest` (device → highest seq) were written.
    pub fn wrote(&mut self, highest: &BTreeMap<String, u64>) {
        for (device, &seq) in highest {
            let next = seq.saturating_add(1);
            match self.used.get_mut(device) {
                Some(u) if next <= *u => {}
                Some(u) => {
                    *u = next;
                    self.dirty = true;
                }
                None => {
                    self.used.insert(device.clone(), next);
                    self.dirty = true;
                }
            }
        }
    }

    /// At a clean stop, when no seq can be stamped any more: gives back
    /// every device's unused rest of its block, so a restart skips nothing.
    /// The caller stores the book afterwards.
    pub fn release(&mut self) {
        for (device, r) in self.reserved.iter_mut() {
            if let Some(&u) = self.used.get(device) {
                if u < *r {
                    *r = u;
                    self.dirty = true;
                }
            }
        }
    }

    /// `used` changed since the last [`Self::store`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Replaces the file at `path` durably: a temporary file, synced,
    /// renamed, and the folder synced, so not even a power cut can bring an
    /// older reservation back.
    pub fn store(&mut self, path: &Path) -> io::Result<()> {
        let map: BTreeMap<&str, Stored> = self
            .reserved
            .iter()
            .map(|(d, &reserved)| {
                let used = self.used.get(d).copied().unwrap_or(reserved);
                (d.as_str(), Stored::Book { reserved, used })
            })
            .collect();
        let bytes = serde_json::to_vec(&map).map_err(io::Error::other)?;
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            super::state::sync_dir(dir)?;
        }
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(device: &str, seq: u64) -> BTreeMap<String, u64> {
        BTreeMap::from([(device.to_owned(), seq)])
    }

    #[test]
    fn a_block_is_reserved_once_and_covers_the_next_ones() {
        let book = SeqBook::default();
        let b = book.reserving(&one("m", 100)).unwrap();
        assert_eq!(b.next_seq("m"), Some(100 + BLOCK));
        assert!(b.reserving(&one("m", 100 + BLOCK - 1)).is_none());
        assert!(b.reserving(&one("m", 100 + BLOCK)).is_some());
    }

    #[test]
    fn old_plain_files_are_read_as_used_and_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sequences.json");
        fs::write(&p, br#"{"m":42}"#).unwrap();
        let mut book = SeqBook::load(&p).unwrap();
        assert!(book.recover(&BTreeMap::new()).is_empty());
        assert_eq!(book.next_seq("m"), Some(42));
    }

    proptest! {
        // Each case syncs files a few dozen times.
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A gateway that writes records, reserving as it goes, and is
        /// killed after any step (kill -9 keeps what was written): the
        /// restart point is past every seq written, and exactly the seqs
        /// between the last one written and the restart point are announced.
        #[test]
        fn no_seq_is_reused_and_every_skip_is_announced(
            runs in proptest::collection::vec((1u64..10_000, 0usize..4), 1..8),
            first in 0u64..1_000_000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("sequences.json");
            let mut written: Vec<u64> = Vec::new();
            // What the open scan finds past the commit mark.
            let mut past_mark: BTreeMap<String, u64> = BTreeMap::new();
            let mut next = first;
            for (records, crash_step) in runs {
                let mut book = SeqBook::load(&path).unwrap();
                let gaps = book.recover(&past_mark);
                past_mark.clear();
                if let Some(n) = book.next_seq("m") { next = n; }
                let last = written.last().copied();
                prop_assert!(last.is_none_or(|l| next > l), "restart at {} reuses {:?}", next, last);
                match (last, gaps.as_slice()) {
                    (Some(l), []) => prop_assert_eq!(l + 1, next, "a skip not announced"),
                    (Some(l), [g]) => prop_assert_eq!((g.from, g.to + 1), (l + 1, next)),
                    (None, [g]) => prop_assert_eq!(g.to + 1, next),
                    (None, []) => {}
                    _ => prop_assert!(false, "more than one gap for one device: {:?}", gaps),
                }
                let stop = records / 2;
                for i in 0..records {
                    let seq = next;
                    if let Some(b) = book.reserving(&one("m", seq)) {
                        book = b;
                        book.store(&path).unwrap();
                        // Killed between the reservation and the record.
                        if crash_step == 1 && i == stop { break; }
                    }
                    written.push(seq);
                    book.wrote(&one("m", seq));
                    past_mark.insert("m".into(), seq + 1);
                    next += 1;
                    if crash_step == 2 && i == stop { break; }
                }
                // The commit saves `used`, unless the kill came first.
                if crash_step != 2 && book.is_dirty() {
                    book.store(&path).unwrap();
                    past_mark.clear();
                }
            }
        }
    }
}
