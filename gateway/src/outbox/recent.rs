//! The records written last, kept in memory for the uplinks.
//!
//! An uplink sends a record moments after the writer wrote it. Reading it
//! back from the segment file cost five system calls per read (open, seek,
//! two reads, close), as many as the rest of a reading's path together. So
//! the outbox keeps a copy of the frames it wrote until every uplink has
//! acknowledged them, up to [`RECENT_MAX_BYTES`], and serves reads from
//! here; an uplink that fell further behind (an outage) reads the file as
//! before. Pure code over bytes: the outbox hands it frames it wrote.

use super::frame::{Entry, HEADER_LEN};
use std::collections::VecDeque;

/// Bytes of frames kept at most. A reading is one to two KiB, so this is
/// more than a second of ten meters polled every 10 ms, while an uplink that
/// keeps up acknowledges within milliseconds and keeps only a few here.
pub const RECENT_MAX_BYTES: usize = 128 * 1024;

/// Frames written last, with consecutive ids.
#[derive(Debug, Default)]
pub struct Recent {
    /// Frames; those before `offsets[0]` are forgotten, kept until compacted.
    bytes: Vec<u8>,
    /// Where each kept frame starts in `bytes`.
    offsets: VecDeque<usize>,
    /// The id of the frame at `offsets[0]` (or of the next one written).
    first_id: u64,
}

impl Recent {
    /// The id after the last frame kept.
    pub fn next_id(&self) -> u64 {
        self.first_id + self.offsets.len() as u64
    }

    /// Remembers `frames`, whole records this outbox encoded and just wrote,
    /// the first of which has id `first_id`. Frames that do not follow the
    /// kept ones (after a gap) replace them.
    pub fn wrote(&mut self, first_id: u64, frames: &[u8]) {
        if first_id != self.next_id() || self.offsets.is_empty() {
            self.clear(first_id);
        }
        let base = self.bytes.len();
        let mut at = 0;
        while let Some(head) = frames.get(at..at + HEADER_LEN) {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if at + HEADER_LEN + len > frames.len() {
                break;
            }
            self.offsets.push_back(base + at);
            at += HEADER_LEN + len;
        }
        self.bytes.extend_from_slice(&frames[..at]);
        while self.kept_bytes() > RECENT_MAX_BYTES && !self.offsets.is_empty() {
            self.offsets.pop_front();
            self.first_id += 1;
        }
        self.compact();
    }

    /// Forgets the frames below `id` (every uplink has them).
    pub fn forget_below(&mut self, id: u64) {
        while self.first_id < id && !self.offsets.is_empty() {
            self.offsets.pop_front();
            self.first_id += 1;
        }
        if self.offsets.is_empty() {
            self.clear(self.first_id);
        }
    }

    /// Appends to `out` the kept records from `from` on, below `below`, at
    /// most `max` of them; returns the id after the last one appended, or
    /// `None` if `from` is not kept here.
    pub fn read(&self, from: u64, below: u64, max: usize, out: &mut Vec<Entry>) -> Option<u64> {
        if from < self.first_id || from >= self.next_id() {
            return None;
        }
        let mut id = from;
        let end = below.min(self.next_id());
        let mut taken = 0;
        while id < end && taken < max {
            let at = self.offsets[(id - self.first_id) as usize];
            let head = &self.bytes[at..at + HEADER_LEN];
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let mut ms = [0u8; 8];
            ms.copy_from_slice(&head[16..24]);
            out.push(Entry {
                id,
                appended_ms: i64::from_le_bytes(ms),
                payload: self.bytes[at + HEADER_LEN..at + HEADER_LEN + len].to_vec(),
            });
            id += 1;
            taken += 1;
        }
        Some(id)
    }

    fn kept_bytes(&self) -> usize {
        self.offsets.front().map_or(0, |&o| self.bytes.len() - o)
    }

    fn clear(&mut self, first_id: u64) {
        self.bytes.clear();
        self.offsets.clear();
        self.first_id = first_id;
        if self.bytes.capacity() > 2 * RECENT_MAX_BYTES {
            self.bytes.shrink_to(RECENT_MAX_BYTES);
        }
    }

    /// Moves the kept frames to the front once the forgotten ones take
    /// more room than they do.
    fn compact(&mut self) {
        let Some(&start) = self.offsets.front() else {
            return;
        };
        if start > 4096 && start > self.bytes.len() - start {
            self.bytes.drain(..start);
            for o in &mut self.offsets {
                *o -= start;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::frame;

    fn frames(first: u64, n: u64, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for id in first..first + n {
            frame::encode(id, id as i64 * 10, &vec![id as u8; size], &mut out);
        }
        out
    }

    #[test]
    fn serves_what_was_written_in_order_and_not_beyond_below() {
        let mut r = Recent::default();
        r.wrote(5, &frames(5, 3, 10));
        r.wrote(8, &frames(8, 2, 10));
        let mut out = Vec::new();
        assert_eq!(r.read(6, 9, 100, &mut out), Some(9));
        let ids: Vec<u64> = out.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![6, 7, 8]);
        assert_eq!(out[0].payload, vec![6u8; 10]);
        assert_eq!(out[2].appended_ms, 80);
        assert_eq!(r.read(4, 9, 100, &mut out), None);
        assert_eq!(r.read(10, 11, 100, &mut out), None);
    }

    #[test]
    fn forgets_acknowledged_records_and_starts_over_after_a_gap() {
        let mut r = Recent::default();
        r.wrote(0, &frames(0, 4, 10));
        r.forget_below(3);
        let mut out = Vec::new();
        assert_eq!(r.read(2, 4, 10, &mut out), None);
        assert_eq!(r.read(3, 4, 10, &mut out), Some(4));
        r.wrote(10, &frames(10, 1, 10));
        assert_eq!(r.read(3, 11, 10, &mut out), None);
        assert_eq!(r.read(10, 11, 10, &mut out), Some(11));
    }

    #[test]
    fn keeps_at_most_its_bound_and_compacts() {
        let mut r = Recent::default();
        for i in 0..1000 {
            r.wrote(i, &frames(i, 1, 1000));
        }
        assert!(r.kept_bytes() <= RECENT_MAX_BYTES);
        assert!(r.bytes.len() <= 2 * RECENT_MAX_BYTES + 2048);
        let mut out = Vec::new();
        assert_eq!(r.read(999, 1000, 1, &mut out), Some(1000));
        assert_eq!(out[0].payload, vec![(999 % 256) as u8; 1000]);
    }
}
