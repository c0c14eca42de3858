//! Reading the outbox: each uplink's place in it, and the read that serves
//! written records from that place on.

use super::{io_err, segment, Entry, Outbox, OutboxError, Position};
use tracing::warn;

/// A reader's place: the next id it wants, and where that is on disk.
#[derive(Debug, Clone, Default)]
pub struct ReadCursor {
    next_id: u64,
    position: Option<Position>,
}

impl ReadCursor {
    /// A reader starting at `id`.
    pub fn at(id: u64) -> Self {
        Self {
            next_id: id,
            position: None,
        }
    }

    /// The next id this reader will return.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}

impl Outbox {
    /// Reads up to `max_records` written records from `cursor` on, and moves
    /// it past them. Records dropped by the cap are skipped.
    pub fn read(
        &self,
        cursor: &mut ReadCursor,
        max_records: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        let mut out = Vec::new();
        let readable = self.readable();
        let oldest = self.segments.front().map_or(0, |s| s.first_id);
        if cursor.next_id < oldest {
            cursor.next_id = oldest;
            cursor.position = None;
        }
        while out.len() < max_records && cursor.next_id < readable {
            // Just written: from memory, without opening the file.
            let room = max_records - out.len();
            if let Some(next) = self.recent.read(cursor.next_id, readable, room, &mut out) {
                cursor.next_id = next;
                continue;
            }
            let Some(seg) = self
                .segments
                .iter()
                .find(|s| s.first_id <= cursor.next_id && cursor.next_id < s.next_id)
            else {
                // In a gap that damage cut out of an older segment: go on
                // with the next segment that has records.
                match self
                    .segments
                    .iter()
                    .find(|s| s.first_id > cursor.next_id && s.records() > 0)
                {
                    Some(next) => {
                        cursor.next_id = next.first_id;
                        cursor.position = None;
                        continue;
                    }
                    None => break,
                }
            };
            let (mut got, pos) = segment::read(
                seg,
                cursor.position,
                cursor.next_id,
                readable.min(seg.next_id),
                max_records - out.len(),
                1 << 20,
            )
            .map_err(io_err("reading", &seg.path))?;
            match got.last() {
                Some(last) => {
                    cursor.next_id = last.id + 1;
                    cursor.position = Some(pos);
                }
                None => {
                    // Nothing readable where the index says records are
                    // (damaged since start): skip the rest of the segment.
                    warn!(
                        "outbox segment {} has no readable record at id {}; skipping to id {}",
                        seg.path.display(),
                        cursor.next_id,
                        seg.next_id
                    );
                    cursor.next_id = seg.next_id;
                    cursor.position = None;
                }
            }
            out.append(&mut got);
        }
        Ok(out)
    }
}
