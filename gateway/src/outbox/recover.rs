//! Opening an outbox after a clean stop, a kill or a power cut: every
//! segment is checked and a torn tail cut off, but every intact record is
//! kept (a reading that was stored is never cut), and the sequence book is
//! carried past whatever a crash left behind.

use super::seqs::SeqBook;
use super::{io_err, open_active, state, Outbox, OutboxError, OutboxOptions, Recovery, Segment};
use crate::outbox::StoredRecord;
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::PathBuf;
use tracing::warn;

impl Outbox {
    /// Opens (or creates) the outbox in `options.dir` for the uplinks named
    /// in `uplinks`: checks every record, truncates a torn tail, loads the
    /// cursors (an uplink without one starts at the oldest record) and moves
    /// every device's `seq` to its reserved high-water mark, reporting the
    /// seqs skipped by that in [`Recovery::seq_gaps`].
    pub fn open(options: OutboxOptions, uplinks: &[&str]) -> Result<(Self, Recovery), OutboxError> {
        let dir = options.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let path = entry.map_err(io_err("listing", &dir))?.path();
            if let Some(first) = Segment::first_id_of(&path) {
                found.push((first, path));
            }
        }
        found.sort();
        let mut recovery = Recovery {
            segments: found.len(),
            ..Recovery::default()
        };
        // Records below the commit mark have their seqs in the sequence
        // file; those past it are read for their seqs.
        let mark_path = dir.join(state::COMMITTED);
        let committed = match state::load(&mark_path) {
            Ok(m) => m.get(state::NEXT_ID).copied(),
            Err(e) => {
                warn!(
                    "outbox commit mark {} is unreadable ({e}); reading every record's seq",
                    mark_path.display()
                );
                None
            }
        };
        let mut past_mark: BTreeMap<String, u64> = BTreeMap::new();
        let mut note = |payload: &[u8]| {
            let Ok(r) = StoredRecord::parse(payload) else {
                return;
            };
            if let Some(seq) = r.seq() {
                let next = seq.saturating_add(1);
                match past_mark.get_mut(r.device) {
                    Some(n) => *n = (*n).max(next),
                    None => {
                        past_mark.insert(r.device.to_owned(), next);
                    }
                }
            }
        };
        let mut segments = VecDeque::new();
        for (first, path) in found {
            let scan = super::segment::scan_and_repair(&path, first, committed, &mut note)
                .map_err(io_err("reading", &path))?;
            if let Some(why) = scan.reason {
                warn!(
                    "outbox segment {} ends with {} bytes that are not intact records \
                     ({why}); cut them off after the last one",
                    path.display(),
                    scan.truncated
                );
            }
            recovery.truncated_bytes += scan.truncated;
            recovery.records += scan.segment.records();
            segments.push_back(scan.segment);
        }

        let cursors_path = dir.join(state::CURSORS);
        let saved = state::load(&cursors_path).unwrap_or_else(|e| {
            warn!(
                "outbox cursors {} are unreadable ({e}); every uplink resends from the oldest record",
                cursors_path.display()
            );
            BTreeMap::new()
        });
        let seq_path = dir.join(state::SEQUENCES);
        let mut seqs = SeqBook::load(&seq_path).unwrap_or_else(|e| {
            warn!(
                "outbox sequence numbers {} are unreadable ({e}); devices count on from the \
                 start time",
                seq_path.display()
            );
            SeqBook::default()
        });
        recovery.seq_gaps = seqs.recover(&past_mark);

        // What was written after the last commit may live only in the page
        // cache (after a kill): sync it before anyone can send it.
        for seg in segments
            .iter()
            .filter(|s| committed.is_none_or(|c| s.next_id > c))
        {
            fs::File::open(&seg.path)
                .and_then(|f| f.sync_data())
                .map_err(io_err("syncing", &seg.path))?;
        }
        let next_id = segments.back().map_or(0, |s| s.next_id);
        let oldest = segments.front().map_or(next_id, |s| s.first_id);
        let cursors: BTreeMap<String, u64> = uplinks
            .iter()
            .map(|u| {
                let c = saved.get(*u).copied().unwrap_or(oldest);
                ((*u).to_owned(), c.clamp(oldest, next_id))
            })
            .collect();

        // Appends always go to a fresh segment: the last one may end where a
        // power cut left it, and is never appended to again.
        let active_seg = Segment {
            path: Segment::path_for(&dir, next_id),
            first_id: next_id,
            next_id,
            bytes: 0,
            last_ms: i64::MIN,
        };
        let active = if segments.back().is_some_and(|s| s.records() == 0) {
            // An empty last segment is reused rather than left behind.
            let seg = segments.pop_back().unwrap_or(active_seg);
            let a = open_active(&seg.path)?;
            segments.push_back(seg);
            a
        } else {
            let a = open_active(&active_seg.path)?;
            state::sync_dir(&dir).map_err(io_err("syncing", &dir))?;
            segments.push_back(active_seg);
            a
        };

        let mut outbox = Self::assemble(options, segments, active, cursors, seqs);
        outbox.marked = committed.unwrap_or(0);
        outbox.free_acknowledged();
        outbox.refresh_stats();
        Ok((outbox, recovery))
    }
}
