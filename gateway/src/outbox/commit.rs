//! The group commit: writing the batch, syncing it (with or without the
//! outbox held), then saving the sequence book, the commit mark and moved
//! cursors. Its own file because it is the one place that decides what a
//! power cut can lose (docs/outbox.md).

use super::{io_err, state, Outbox, OutboxError};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

/// Commits per save of the commit mark and the sequence book's use. They
/// only spare reading records back for their seqs on open, so they need
/// not be saved at every commit: with the default 1 s interval, open reads
/// at most about 10 s of records more. Each save is two files written,
/// synced and renamed, which at every commit cost a tenth of the gateway's
/// CPU. A segment past the saved mark is never deleted before a newer mark
/// is saved ([`Outbox::mark_covers`]), so every record whose seq the
/// sequence file may not know is still there to be read on open.
pub const MARK_EVERY: u32 = 10;

impl Outbox {
    /// The group commit: writes the batch, syncs every written record,
    /// saves the sequence book and the commit mark, saves moved cursors, and
    /// always (even when something failed) deletes segments every uplink is
    /// done with, before returning the first error.
    pub fn commit(&mut self) -> Result<(), OutboxError> {
        let (flushed, unsynced) = self.prepare_commit();
        let synced = unsynced.map(Unsynced::sync).transpose();
        self.finish_commit(flushed, synced)
    }

    /// The last commit of a clean stop, once nothing appends any more: also
    /// gives back the unused rest of every device's reserved seq block, so
    /// the next start skips no seq.
    pub fn close(&mut self) -> Result<(), OutboxError> {
        self.commit()?;
        self.save_mark()?;
        if self.batch_records == 0 {
            self.seqs.release();
            let p = self.options.dir.join(state::SEQUENCES);
            self.seqs.store(&p).map_err(io_err("writing", &p))?;
        }
        Ok(())
    }

    /// The group commit in three steps, so that the fsync, which can take
    /// tens of milliseconds on an SD card, runs without the outbox: this
    /// step writes the batch and hands out what needs syncing (a second
    /// handle on the active segment, and how far it goes); the caller
    /// lets go of the outbox, runs [`Unsynced::sync`], and takes the
    /// outbox again for [`Self::finish_commit`]. Meanwhile writers go on
    /// appending and uplinks go on reading. Same outcome as [`Self::commit`].
    pub fn prepare_commit(&mut self) -> (Result<(), OutboxError>, Option<Unsynced>) {
        let flushed = self.flush();
        let next = self.written_end();
        if self.durable >= next {
            return (flushed, None);
        }
        let path = self.active_path().to_owned();
        match self.active.try_clone() {
            Ok(file) => (flushed, Some(Unsynced { file, path, next })),
            Err(e) => (flushed.and(Err(io_err("syncing", &path)(e))), None),
        }
    }

    /// The last step of [`Self::prepare_commit`]: `synced` is what
    /// [`Unsynced::sync`] returned (`Ok(None)` when nothing needed it).
    /// Saves the sequence book and the commit mark, saves moved cursors and
    /// frees delivered segments, before returning the first error.
    pub fn finish_commit(
        &mut self,
        flushed: Result<(), OutboxError>,
        synced: Result<Option<u64>, OutboxError>,
    ) -> Result<(), OutboxError> {
        let synced = synced.and_then(|next| next.map_or(Ok(()), |n| self.mark_synced(n)));
        let cursors = self.save_cursors();
        if self.failing {
            self.make_room();
        } else {
            self.free_acknowledged();
            self.restore_reserve();
        }
        self.refresh_stats();
        flushed.and(synced).and(cursors)
    }

    /// Syncs written records, then the sequence book (what they used), then
    /// the commit mark (records below it need not be read for seqs on open).
    pub(super) fn sync(&mut self) -> Result<(), OutboxError> {
        let next = self.written_end();
        if self.durable >= next {
            return Ok(());
        }
        let path = self.active_path().to_owned();
        self.active.sync_data().map_err(io_err("syncing", &path))?;
        self.mark_synced(next)
    }

    /// Records below `next` are synced; every [`MARK_EVERY`] commits the
    /// mark is saved too ([`Self::save_mark`]).
    fn mark_synced(&mut self, next: u64) -> Result<(), OutboxError> {
        if self.durable >= next {
            return Ok(());
        }
        self.durable = next;
        self.unmarked_commits += 1;
        if self.unmarked_commits >= MARK_EVERY {
            self.save_mark()?;
        }
        Ok(())
    }

    /// Saves the sequence book (what the synced records used; it may count
    /// a few records written since, which a power cut then loses as
    /// readings: within the bound) and then the commit mark at the synced
    /// end, if the saved one is behind it.
    pub(super) fn save_mark(&mut self) -> Result<(), OutboxError> {
        if self.marked >= self.durable {
            return Ok(());
        }
        let dir = self.options.dir.clone();
        if self.seqs.is_dirty() {
            let p = dir.join(state::SEQUENCES);
            self.seqs.store(&p).map_err(io_err("writing", &p))?;
        }
        let p = dir.join(state::COMMITTED);
        let mark = BTreeMap::from([(state::NEXT_ID.to_owned(), self.durable)]);
        state::store(&p, &mark).map_err(io_err("writing", &p))?;
        self.marked = self.durable;
        self.unmarked_commits = 0;
        Ok(())
    }

    /// Whether the saved mark is at or past `end` (a segment's end), saving
    /// it first if the records below `end` are synced: a segment may be
    /// deleted only then, or the seqs in it would be unknown on open.
    pub(super) fn mark_covers(&mut self, end: u64) -> bool {
        if self.marked >= end {
            return true;
        }
        self.durable >= end && self.save_mark().is_ok() && self.marked >= end
    }

    fn save_cursors(&mut self) -> Result<(), OutboxError> {
        if self.cursors != self.saved_cursors {
            let p = self.options.dir.join(state::CURSORS);
            state::store(&p, &self.cursors).map_err(io_err("writing", &p))?;
            self.saved_cursors = self.cursors.clone();
        }
        Ok(())
    }
}

/// Records written to a segment but not yet synced, with a handle of their
/// own so they can be synced without holding the outbox
/// ([`Outbox::prepare_commit`]).
pub struct Unsynced {
    file: File,
    path: PathBuf,
    next: u64,
}

impl Unsynced {
    /// Syncs them; returns the id below which every record is now synced.
    pub fn sync(self) -> Result<u64, OutboxError> {
        self.file
            .sync_data()
            .map_err(io_err("syncing", &self.path))?;
        Ok(self.next)
    }
}
