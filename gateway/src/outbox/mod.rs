//! The durable outbox: every reading and event is written here before any
//! uplink sees it, and stays until every uplink has acknowledged it.
//!
//! A small segmented log of our own (docs/outbox.md says why, with figures):
//! records ([`record`]) carry a CRC-32C and consecutive ids, and are appended
//! to the newest segment file ([`segment`]); a segment is closed at
//! `segment_bytes` and deleted whole once every uplink's cursor is past it.
//! Appends are gathered into a batch that [`Outbox::flush`] writes to the
//! file with one system call; from then on the records are *readable*:
//! uplinks may send them, without waiting for the disk. [`Outbox::commit`]
//! (the group commit, run every `fsync_interval_ms` by the [`writer`] task)
//! syncs them; from then on they are *durable*. So delivery waits for a
//! write, never for an fsync, and a power cut loses at most what was written
//! since the last commit. On start, [`Outbox::open`] checks every record,
//! cuts a torn tail off and keeps every intact record.
//!
//! Each uplink has a cursor (the first id it has not acknowledged), saved at
//! commit. Each device's `seq` is covered by a durable reservation before a
//! record carrying it is written ([`seqs`]): after any crash the device goes
//! on past the reservation and the seqs skipped are announced, so a `seq` is
//! never used twice and a consumer can tell a skipped seq from a lost one.
//!
//! A write that fails (a full disk) releases a reserve file ([`full_disk`]),
//! commits what was written, frees delivered segments (the active one too,
//! once it holds only delivered records), keeps the batch in memory (up to
//! [`HELD_MAX_BYTES`]) and tries again at the next flush or commit, in
//! chunks of whole records so a backlog larger than the room freed goes out
//! part by part; records beyond that are dropped and counted. Segments are
//! closed at a quarter of the space free when they were opened (at most
//! `segment_bytes`), so on a filling disk they get small and each delivered
//! one frees its room soon.
//!
//! The size cap (`max_bytes`, and `max_age_s` if set) drops the oldest
//! segment when exceeded, counts the records it held that some uplink had not
//! yet delivered, and says so in the log.

mod cap;
mod commit;
mod cursor;
pub mod frame;
mod full_disk;
pub mod queue;
mod recent;
mod recover;
pub mod segment;
pub mod seqs;
pub mod state;
pub mod writer;

pub use commit::Unsynced;
pub use cursor::ReadCursor;
pub use frame::Entry;
pub use queue::{queue, Record, RecordSender, StoredRecord};
use segment::{Position, Segment};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;
use tracing::warn;

/// Smallest segment the outbox makes, whatever the cap.
const MIN_SEGMENT_BYTES: u64 = 4096;
/// Bytes of records kept in memory while they cannot be written (a full
/// disk); a record beyond this is dropped and counted.
pub const HELD_MAX_BYTES: usize = 4 << 20;
/// A batch is written in chunks of whole records of about this size.
const WRITE_CHUNK_BYTES: usize = 64 * 1024;
/// A batch this large is written by [`Outbox::append`] itself (unless
/// writes are failing), so a caller that appends many records between
/// flushes still writes in large chunks.
const FLUSH_AT_BYTES: usize = 256 * 1024;

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
    /// A record was dropped: writes keep failing and the records waiting
    /// for them fill the memory set aside.
    #[error(
        "outbox writes keep failing and {held_bytes} bytes of records wait in memory;          a record was dropped"
    )]
    Full {
        /// Bytes waiting.
        held_bytes: usize,
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
    /// Seqs reserved before the restart but never used, per device: no
    /// record carries them. The gateway announces them in its status.
    pub seq_gaps: Vec<seqs::SeqGap>,
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
    /// Records dropped since start because they could not be written (a
    /// full disk) and memory held [`HELD_MAX_BYTES`] of others already.
    pub full_dropped: u64,
    /// Writes that failed since start (each retried later).
    pub write_failures: u64,
    /// Records kept in memory now, waiting to be written.
    pub held: u64,
    /// Bytes appended since start (headers included).
    pub bytes_appended: u64,
}

/// The outbox (see the module docs). Not thread-safe by itself: the
/// [`writer::OutboxHandle`] shares it between the writer and the uplinks.
pub struct Outbox {
    options: OutboxOptions,
    segments: VecDeque<Segment>,
    /// The newest segment's file, opened for appending.
    active: File,
    /// Ids below this are synced.
    durable: u64,
    /// The commit mark as last saved: records from here on are read for
    /// their seqs on open, so no segment past it may be deleted before a
    /// newer mark is saved ([`Self::save_mark`]).
    marked: u64,
    /// Commits since the mark was last saved ([`commit::MARK_EVERY`]).
    unmarked_commits: u32,
    cursors: BTreeMap<String, u64>,
    saved_cursors: BTreeMap<String, u64>,
    seqs: seqs::SeqBook,
    /// Encoded records not yet written, with ids from the written end on.
    batch: Vec<u8>,
    batch_records: u64,
    batch_last_ms: i64,
    /// Device → highest seq in the batch.
    batch_seqs: BTreeMap<String, u64>,
    /// The last write failed: records wait in memory for the next flush.
    failing: bool,
    /// Room set aside for the state files on a full disk.
    reserve: full_disk::Reserve,
    /// Copies of the records written last, which uplinks read from memory.
    recent: recent::Recent,
    /// The active segment is closed at this size ([`Self::sized_to_free_space`]).
    segment_target: u64,
    stats: OutboxStats,
    /// Tests: every write puts this many bytes in the file, then fails with
    /// ENOSPC, as a full disk does.
    #[cfg(test)]
    disk_full_after: Option<usize>,
}

impl Outbox {
    fn assemble(
        options: OutboxOptions,
        segments: VecDeque<Segment>,
        active: File,
        cursors: BTreeMap<String, u64>,
        seqs: seqs::SeqBook,
    ) -> Self {
        let durable = segments.back().map_or(0, |s| s.next_id);
        let reserve = full_disk::Reserve::open(&options.dir);
        let segment_target = options.effective_segment_bytes();
        let mut outbox = Self {
            options,
            segments,
            active,
            durable,
            marked: 0,
            unmarked_commits: 0,
            saved_cursors: BTreeMap::new(),
            cursors,
            seqs,
            batch: Vec::new(),
            batch_records: 0,
            batch_last_ms: i64::MIN,
            batch_seqs: BTreeMap::new(),
            failing: false,
            reserve,
            recent: recent::Recent::default(),
            segment_target,
            stats: OutboxStats::default(),
            #[cfg(test)]
            disk_full_after: None,
        };
        outbox.segment_target = outbox.sized_to_free_space();
        outbox
    }

    /// The id the next append gets.
    pub fn next_id(&self) -> u64 {
        self.written_end() + self.batch_records
    }

    /// One past the last record written to a segment file.
    fn written_end(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.next_id)
    }

    /// Ids below this are written and may be read (sent) by uplinks.
    pub fn readable(&self) -> u64 {
        self.written_end()
    }

    /// Ids below this are synced to disk and survive a power cut.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The next `seq` for `device`, if the outbox has counted it before: the
    /// high-water mark of its reservation, past every seq ever used.
    pub fn next_seq(&self, device: &str) -> Option<u64> {
        self.seqs.next_seq(device)
    }

    /// The first id `uplink` has not acknowledged.
    pub fn cursor(&self, uplink: &str) -> Option<u64> {
        self.cursors.get(uplink).copied()
    }

    /// Counters.
    pub fn stats(&self) -> OutboxStats {
        self.stats.clone()
    }

    /// Adds one record appended at `now_ms` that used `seq` of `device` (if
    /// it is a device's) to the batch; it is readable after the next
    /// [`Self::flush`] that succeeds. Fails, dropping the record and
    /// counting it, only when the records waiting for a write that keeps
    /// failing already fill [`HELD_MAX_BYTES`].
    pub fn append(
        &mut self,
        payload: &[u8],
        device_seq: Option<(&str, u64)>,
        now_ms: i64,
    ) -> Result<u64, OutboxError> {
        if self.batch.len() + frame::encoded_len(payload.len()) > HELD_MAX_BYTES
            && self.batch_records > 0
        {
            self.stats.full_dropped += 1;
            return Err(OutboxError::Full {
                held_bytes: self.batch.len(),
            });
        }
        let id = self.next_id();
        frame::encode(id, now_ms, payload, &mut self.batch);
        self.batch_records += 1;
        self.batch_last_ms = now_ms;
        if let Some((device, seq)) = device_seq {
            match self.batch_seqs.get_mut(device) {
                Some(s) => *s = (*s).max(seq),
                None => {
                    self.batch_seqs.insert(device.to_owned(), seq);
                }
            }
        }
        self.stats.held = self.batch_records;
        if self.batch.len() >= FLUSH_AT_BYTES && !self.failing {
            // A failure is counted and the batch kept; the caller hears of
            // it at its own flush or commit.
            let _ = self.flush();
        }
        Ok(id)
    }

    /// Writes the batch to the active segment with one system call, first
    /// reserving seq blocks it needs. On success the records are readable;
    /// on failure nothing of the batch is (a partial write is cut off), it
    /// stays in memory for the next try, and delivered segments are freed
    /// to make room. Enforces the cap afterwards.
    pub fn flush(&mut self) -> Result<(), OutboxError> {
        if self.batch_records == 0 {
            return Ok(());
        }
        let r = self.write_batch();
        self.failing = r.is_err();
        if r.is_err() {
            self.stats.write_failures += 1;
            self.make_room();
        }
        self.refresh_stats();
        r
    }

    fn write_batch(&mut self) -> Result<(), OutboxError> {
        if let Some(mut book) = self.seqs.reserving(&self.batch_seqs) {
            let p = self.options.dir.join(state::SEQUENCES);
            book.store(&p).map_err(io_err("reserving seqs in", &p))?;
            self.seqs = book;
        }
        let path = self.active_path().to_owned();
        // Written in chunks of whole records, so that after a full disk a
        // batch larger than the space freed still gets written, part by
        // part, instead of failing whole again and again.
        let mut done = 0;
        let mut result = Ok(());
        while done < self.batch.len() {
            let (end, records, last_ms) = self.chunk_end(done);
            let first = self.written_end();
            if let Err(e) = self.write_active(done, end) {
                // Cut what reached the file of this chunk, so the next write
                // does not follow garbage; failing that, start a new segment.
                let good = self.segments.back().map_or(0, |s| s.bytes);
                if self.active.set_len(good).is_err() {
                    let _ = self.roll(false);
                }
                result = Err(io_err("writing", &path)(e));
                break;
            }
            if let Some(seg) = self.segments.back_mut() {
                seg.next_id += records;
                seg.bytes += (end - done) as u64;
                seg.last_ms = last_ms;
            }
            self.recent.wrote(first, &self.batch[done..end]);
            self.batch_records -= records;
            done = end;
        }
        self.recent.forget_below(self.min_cursor());
        if done == 0 {
            return result;
        }
        self.stats.bytes_appended += done as u64;
        // Every seq of the batch belongs to a real reading, written now or
        // held in memory: none of them may be announced as unused.
        self.seqs.wrote(&self.batch_seqs);
        self.batch.drain(..done);
        if self.batch_records == 0 {
            self.batch_seqs.clear();
        }
        if self
            .segments
            .back()
            .is_some_and(|s| s.bytes >= self.segment_target)
        {
            if let Err(e) = self.roll(true) {
                warn!("could not close a full outbox segment: {e}; appending to it meanwhile");
            }
        }
        self.enforce_cap(self.batch_last_ms);
        result
    }

    /// Where the chunk of the batch starting at `from` ends: the rest of the
    /// batch if it is small, else whole records up to [`WRITE_CHUNK_BYTES`]
    /// (at least one); with how many records it holds and the append time
    /// of its last. Reads only the length and time fields of the frames
    /// this outbox encoded.
    fn chunk_end(&self, from: usize) -> (usize, u64, i64) {
        let batch = &self.batch;
        let whole = (batch.len(), self.batch_records, self.batch_last_ms);
        if batch.len() - from <= WRITE_CHUNK_BYTES {
            return whole;
        }
        let (mut end, mut records, mut last_ms) = (from, 0, i64::MIN);
        while end < batch.len() && (records == 0 || end - from < WRITE_CHUNK_BYTES) {
            let Some(head) = batch.get(end..end + frame::HEADER_LEN) else {
                return whole;
            };
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let mut ms = [0u8; 8];
            ms.copy_from_slice(&head[16..24]);
            end += frame::HEADER_LEN + len;
            records += 1;
            last_ms = i64::from_le_bytes(ms);
        }
        if end >= batch.len() {
            return whole;
        }
        (end, records, last_ms)
    }

    fn write_active(&mut self, from: usize, to: usize) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.disk_full_after {
            let part = &self.batch[from..to];
            self.active.write_all(&part[..n.min(part.len())])?;
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.active.write_all(&self.batch[from..to])
    }

    fn active_path(&self) -> &Path {
        self.segments
            .back()
            .map_or(self.options.dir.as_path(), |s| s.path.as_path())
    }

    /// Closes the active segment (synced, if `commit`) and opens a new one
    /// that starts at the written end.
    fn roll(&mut self, commit: bool) -> Result<(), OutboxError> {
        if commit {
            self.sync()?;
        }
        let first = self.written_end();
        let path = Segment::path_for(&self.options.dir, first);
        if self.segments.back().is_some_and(|s| s.path == path) {
            // Nothing was written to it: it already is a fresh segment.
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
        self.segment_target = self.sized_to_free_space();
        Ok(())
    }

    /// `uplink` has delivered every record below `next_id`. Saved at the next
    /// commit; segments are freed then too.
    pub fn acknowledge(&mut self, uplink: &str, next_id: u64) {
        let readable = self.readable();
        if let Some(c) = self.cursors.get_mut(uplink) {
            if next_id > *c {
                *c = next_id.min(readable);
            }
        }
    }

    fn min_cursor(&self) -> u64 {
        self.cursors
            .values()
            .copied()
            .min()
            .unwrap_or_else(|| self.written_end())
    }

    /// Deletes closed segments every uplink is past (saving the commit mark
    /// first where it is behind them).
    fn free_acknowledged(&mut self) {
        let done = self.min_cursor();
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.next_id <= done) {
            let end = self.segments.front().map_or(0, |s| s.next_id);
            if !self.mark_covers(end) {
                // Kept until a mark past it is saved (the next commit).
                break;
            }
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

    fn refresh_stats(&mut self) {
        self.stats.bytes = self.segments.iter().map(|s| s.bytes).sum();
        self.stats.pending = self.next_id().saturating_sub(self.min_cursor());
        self.stats.held = self.batch_records;
    }
}

fn open_active(path: &Path) -> Result<File, OutboxError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err("creating", path))
}

#[cfg(test)]
mod tests;
