//! The durable outbox: every reading and event is written here before any
//! uplink sees it, and stays until every uplink has acknowledged it.
//!
//! A small segmented log of our own (docs/outbox.md says why, with figures):
//! records ([`record`]) carry a CRC-32C and consecutive ids, and are appended
//! to the newest segment file ([`segment`]); a segment is closed at
//! `segment_bytes` and deleted whole once every uplink's cursor is past it.
//! Appends go to a buffer; [`Outbox::commit`] (the group commit, run every
//! `fsync_interval_ms` by the [`writer`] task) syncs them to disk and only
//! then makes them visible to uplinks, so an uplink never sends what a power
//! cut could take back. On start, [`Outbox::open`] checks every record and
//! cuts a torn tail off.
//!
//! Each uplink has a cursor (the first id it has not acknowledged) and each
//! device its next sequence number, both in small files ([`state`]) written
//! at commit. A commit syncs the records, then writes the sequence file, then
//! a commit mark (the next id); on open, records past the mark are cut like
//! a torn tail. So no record survives a crash (even one the page cache kept
//! after a SIGKILL) whose `seq` the sequence file does not cover: a `seq` is
//! never used twice for different readings.
//!
//! The size cap (`max_bytes`, and `max_age_s` if set) drops the oldest
//! segment when exceeded, counts the records it held that some uplink had not
//! yet delivered, and says so in the log. A full disk is logged and counted,
//! never fatal.

pub mod frame;
pub mod queue;
pub mod segment;
pub mod state;
pub mod writer;

pub use frame::Entry;
pub use queue::{queue, Record, RecordSender, StoredRecord};
use segment::{Position, Segment};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;
use tracing::warn;

/// Smallest segment the outbox makes, whatever the cap.
const MIN_SEGMENT_BYTES: u64 = 4096;
/// Bytes buffered before appends reach the file (between commits).
const WRITE_BUFFER: usize = 256 * 1024;

/// How an outbox is laid out and capped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxOptions {
    /// The folder of segments and state files (created if missing).
    pub dir: PathBuf,
    /// A segment is closed when it reaches this size.
    pub segment_bytes: u64,
    /// The outbox never holds more than about this many bytes: the oldest
    /// segment is dropped first.
    pub max_bytes: u64,
    /// Segments whose newest record is older than this are dropped (ms).
    pub max_age_ms: Option<i64>,
}

impl OutboxOptions {
    /// The segment size used: at most a quarter of the cap, so that dropping
    /// one segment frees room without dropping far more than needed.
    fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes
            .min(self.max_bytes / 4)
            .max(MIN_SEGMENT_BYTES)
    }
}

/// Why the outbox could not do something, naming the file.
#[derive(Debug, Error)]
pub enum OutboxError {
    /// A file operation failed.
    #[error("outbox {what} {}: {source}", path.display())]
    Io {
        /// What was being done (`writing`, `syncing`, …).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OutboxError {
    let path = path.to_owned();
    move |source| OutboxError::Io { what, path, source }
}

/// What opening an existing outbox found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Intact records kept.
    pub records: u64,
    /// Segment files found.
    pub segments: usize,
    /// Bytes cut off (torn or damaged tails).
    pub truncated_bytes: u64,
}

/// Counters for status and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Records in the outbox not yet acknowledged by every uplink.
    pub pending: u64,
    /// Bytes on disk in segments.
    pub bytes: u64,
    /// Records dropped by the cap since start, undelivered to some uplink.
    pub dropped: u64,
    /// Records lost because they could not be written (disk full, I/O errors).
    pub write_failures: u64,
    /// Bytes appended since start (headers included).
    pub bytes_appended: u64,
}

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

struct Active {
    file: BufWriter<File>,
}

/// The outbox (see the module docs). Not thread-safe by itself: the
/// [`writer::OutboxHandle`] shares it between the writer and the uplinks.
pub struct Outbox {
    options: OutboxOptions,
    segments: VecDeque<Segment>,
    active: Active,
    /// Ids below this are synced and may be read.
    durable: u64,
    cursors: BTreeMap<String, u64>,
    saved_cursors: BTreeMap<String, u64>,
    sequences: BTreeMap<String, u64>,
    sequences_dirty: bool,
    stats: OutboxStats,
    scratch: Vec<u8>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `options.dir` for the uplinks named
    /// in `uplinks`: checks every record, truncates a torn tail, and loads
    /// the cursors (an uplink without one starts at the oldest record) and
    /// the sequence numbers.
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
        // Records past the last commit mark were never synced as a whole nor
        // covered by the sequence file: they are cut, like a torn tail.
        let mark_path = dir.join(state::COMMITTED);
        let committed = match state::load(&mark_path) {
            Ok(m) => Some(m.get(state::NEXT_ID).copied().unwrap_or(0)),
            Err(e) => {
                warn!(
                    "outbox commit mark {} is unreadable ({e}); keeping every intact record",
                    mark_path.display()
                );
                None
            }
        };
        let mut segments = VecDeque::new();
        for (first, path) in found {
            if committed.is_some_and(|c| first >= c) {
                let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if size > 0 {
                    warn!(
                        "outbox segment {} holds only records written after the last commit; \
                         removed ({size} bytes)",
                        path.display()
                    );
                }
                fs::remove_file(&path).map_err(io_err("removing", &path))?;
                recovery.truncated_bytes += size;
                continue;
            }
            let scan = segment::scan_and_repair(&path, first, committed)
                .map_err(io_err("reading", &path))?;
            if let Some(why) = scan.reason {
                warn!(
                    "outbox segment {} ends with {} bytes that are not committed records \
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
        let sequences = state::load(&seq_path).unwrap_or_else(|e| {
            warn!(
                "outbox sequence numbers {} are unreadable ({e}); devices count on from the start time",
                seq_path.display()
            );
            BTreeMap::new()
        });

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

        let mut outbox = Self {
            options,
            segments,
            active,
            durable: next_id,
            saved_cursors: BTreeMap::new(),
            cursors,
            sequences,
            sequences_dirty: false,
            stats: OutboxStats::default(),
            scratch: Vec::new(),
        };
        outbox.free_acknowledged();
        outbox.refresh_stats();
        Ok((outbox, recovery))
    }

    /// The id the next append gets.
    pub fn next_id(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.next_id)
    }

    /// Ids below this are on disk and readable by uplinks.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The next `seq` for `device`, if the outbox has counted it before.
    pub fn next_seq(&self, device: &str) -> Option<u64> {
        self.sequences.get(device).copied()
    }

    /// The first id `uplink` has not acknowledged.
    pub fn cursor(&self, uplink: &str) -> Option<u64> {
        self.cursors.get(uplink).copied()
    }

    /// Counters.
    pub fn stats(&self) -> OutboxStats {
        self.stats.clone()
    }

    /// Appends one record appended at `now_ms` that used `seq` of `device`
    /// (if it is a device's). It is readable after the next [`Self::commit`].
    /// Enforces the cap afterwards.
    pub fn append(
        &mut self,
        payload: &[u8],
        device_seq: Option<(&str, u64)>,
        now_ms: i64,
    ) -> Result<u64, OutboxError> {
        let id = self.next_id();
        self.scratch.clear();
        frame::encode(id, now_ms, payload, &mut self.scratch);
        let path = self.active_path().to_owned();
        if let Err(e) = self.active.file.write_all(&self.scratch) {
            self.stats.write_failures += 1;
            // What reached the file of this record is torn: start a new
            // segment so the next record does not follow garbage.
            let _ = self.roll(false);
            return Err(io_err("writing", &path)(e));
        }
        let n = self.scratch.len() as u64;
        if let Some(seg) = self.segments.back_mut() {
            seg.next_id += 1;
            seg.bytes += n;
            seg.last_ms = now_ms;
        }
        self.stats.bytes_appended += n;
        if let Some((device, seq)) = device_seq {
            let next = seq.saturating_add(1);
            let e = self.sequences.entry(device.to_owned()).or_insert(0);
            if next > *e {
                *e = next;
                self.sequences_dirty = true;
            }
        }
        if self
            .segments
            .back()
            .is_some_and(|s| s.bytes >= self.options.effective_segment_bytes())
        {
            if let Err(e) = self.roll(true) {
                warn!("could not close a full outbox segment: {e}; appending to it meanwhile");
            }
        }
        self.enforce_cap(now_ms);
        Ok(id)
    }

    fn active_path(&self) -> &Path {
        self.segments
            .back()
            .map_or(self.options.dir.as_path(), |s| s.path.as_path())
    }

    /// Closes the active segment (synced, if `commit`) and opens a new one.
    fn roll(&mut self, commit: bool) -> Result<(), OutboxError> {
        if commit {
            self.commit()?;
        }
        let first = self.next_id();
        let path = Segment::path_for(&self.options.dir, first);
        if self.segments.back().is_some_and(|s| s.path == path) {
            // Nothing was appended to it: it already is a fresh segment.
            return Ok(());
        }
        self.active = open_active(&path)?;
        let _ = state::sync_dir(&self.options.dir);
        self.segments.push_back(Segment {
            path,
            first_id: first,
            next_id: first,
            bytes: 0,
            last_ms: i64::MIN,
        });
        Ok(())
    }

    /// The group commit: writes the sequence numbers, syncs every appended
    /// record to disk, makes them readable, saves moved cursors and deletes
    /// segments every uplink is done with.
    pub fn commit(&mut self) -> Result<(), OutboxError> {
        let dir = self.options.dir.clone();
        let next = self.next_id();
        if self.durable < next {
            let path = self.active_path().to_owned();
            self.active.file.flush().map_err(io_err("writing", &path))?;
            self.active
                .file
                .get_ref()
                .sync_data()
                .map_err(io_err("syncing", &path))?;
            // Then the sequence numbers these records used, then the mark
            // that they are committed: on open, records past the mark are
            // cut, so no record survives whose `seq` the file does not cover.
            if self.sequences_dirty {
                let p = dir.join(state::SEQUENCES);
                state::store(&p, &self.sequences).map_err(io_err("writing", &p))?;
                self.sequences_dirty = false;
            }
            let p = dir.join(state::COMMITTED);
            let mark = BTreeMap::from([(state::NEXT_ID.to_owned(), next)]);
            state::store(&p, &mark).map_err(io_err("writing", &p))?;
            self.durable = next;
        }
        if self.cursors != self.saved_cursors {
            let p = dir.join(state::CURSORS);
            state::store(&p, &self.cursors).map_err(io_err("writing", &p))?;
            self.saved_cursors = self.cursors.clone();
        }
        self.free_acknowledged();
        self.refresh_stats();
        Ok(())
    }

    /// Reads up to `max_records` durable records from `cursor` on, and moves
    /// it past them. Records dropped by the cap are skipped.
    pub fn read(
        &self,
        cursor: &mut ReadCursor,
        max_records: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        let mut out = Vec::new();
        let oldest = self.segments.front().map_or(0, |s| s.first_id);
        if cursor.next_id < oldest {
            cursor.next_id = oldest;
            cursor.position = None;
        }
        while out.len() < max_records && cursor.next_id < self.durable {
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
                self.durable.min(seg.next_id),
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

    /// `uplink` has delivered every record below `next_id`. Saved at the next
    /// commit; segments are freed then too.
    pub fn acknowledge(&mut self, uplink: &str, next_id: u64) {
        if let Some(c) = self.cursors.get_mut(uplink) {
            if next_id > *c {
                *c = next_id.min(self.durable);
            }
        }
    }

    fn min_cursor(&self) -> u64 {
        self.cursors
            .values()
            .copied()
            .min()
            .unwrap_or_else(|| self.next_id())
    }

    /// Deletes closed segments every uplink is past.
    fn free_acknowledged(&mut self) {
        let done = self.min_cursor();
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.next_id <= done) {
            if let Some(seg) = self.segments.pop_front() {
                if let Err(e) = fs::remove_file(&seg.path) {
                    warn!(
                        "could not delete delivered outbox segment {}: {e}",
                        seg.path.display()
                    );
                }
            }
        }
    }

    /// Drops the oldest segments while the outbox is over its byte cap or
    /// they are older than the age cap. The active segment is closed first
    /// if it alone is over the cap.
    pub fn enforce_cap(&mut self, now_ms: i64) {
        loop {
            let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            let too_big = total > self.options.max_bytes;
            let too_old = self.options.max_age_ms.is_some_and(|age| {
                self.segments.len() > 1
                    && self
                        .segments
                        .front()
                        .is_some_and(|s| s.last_ms < now_ms.saturating_sub(age))
            });
            if !too_big && !too_old {
                break;
            }
            if self.segments.len() == 1 {
                if self.roll(true).is_err() {
                    break;
                }
                continue;
            }
            let Some(seg) = self.segments.pop_front() else {
                break;
            };
            let undelivered = seg
                .next_id
                .saturating_sub(self.min_cursor().max(seg.first_id));
            for c in self.cursors.values_mut() {
                if *c < seg.next_id {
                    *c = seg.next_id;
                }
            }
            self.stats.dropped += undelivered;
            let _ = fs::remove_file(&seg.path);
            if undelivered > 0 {
                warn!(
                    "the outbox is over its {} cap; dropped the oldest {undelivered} undelivered \
                     records (ids {}..{}); {} dropped since start",
                    if too_big { "size" } else { "age" },
                    seg.first_id,
                    seg.next_id,
                    self.stats.dropped
                );
            }
        }
        self.refresh_stats();
    }

    fn refresh_stats(&mut self) {
        self.stats.bytes = self.segments.iter().map(|s| s.bytes).sum();
        self.stats.pending = self.next_id().saturating_sub(self.min_cursor());
    }
}

fn open_active(path: &Path) -> Result<Active, OutboxError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err("creating", path))?;
    Ok(Active {
        file: BufWriter::with_capacity(WRITE_BUFFER, file),
    })
}

#[cfg(test)]
mod tests;
