//! The outbox on a full disk: room set aside for its state files, and
//! segments sized to the space left.
//!
//! When the disk fills (the outbox itself, or a log beside it), freeing what
//! the uplinks delivered needs a little space first: the sequence book and
//! the commit mark must be saved (each is a new small file renamed over the
//! old one) before a segment whose records are not yet committed may be
//! deleted, or a restart would announce seqs that were delivered as unused.
//! So the outbox keeps a file of [`RESERVE_BYTES`] zeros beside its
//! segments, deletes it the moment a write fails, and writes it again once
//! writes succeed with room to spare. Its size also says how little space
//! the state files need.
//!
//! Segments are closed at a quarter of the space free when they were
//! opened (at most `segment_bytes`), so on a filling disk they get small
//! and each one every uplink delivered can be deleted soon; a failed write
//! also closes the active segment when it holds only delivered, committed
//! records, so that its room is freed too.

use super::{Outbox, MIN_SEGMENT_BYTES};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use tracing::warn;

/// The reserve's file name in the outbox folder.
pub const RESERVE: &str = "reserve.bin";

/// Bytes set aside: room for the state files many times over, small beside
/// any outbox.
pub const RESERVE_BYTES: usize = 64 * 1024;

/// The reserve file and whether it is in place.
#[derive(Debug)]
pub struct Reserve {
    path: PathBuf,
    present: bool,
}

impl Reserve {
    /// The reserve of the outbox in `dir`; writes it if it is missing (a
    /// disk too full for it is no error: it is written when space returns).
    pub fn open(dir: &Path) -> Self {
        let path = dir.join(RESERVE);
        let present = fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES as u64);
        let mut r = Self { path, present };
        r.restore();
        r
    }

    /// Whether the reserve file is in place.
    pub(super) fn is_present(&self) -> bool {
        self.present
    }

    /// Deletes the reserve, so the state files fit on a full disk.
    pub fn release(&mut self) {
        if !self.present {
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => self.present = false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.present = false,
            Err(e) => warn!(
                "could not delete the outbox's reserve {}: {e}",
                self.path.display()
            ),
        }
    }

    /// Writes the reserve again if it is missing; on a disk still too full
    /// it deletes what it wrote and tries again next time.
    pub fn restore(&mut self) {
        if self.present {
            return;
        }
        match write_zeros(&self.path) {
            Ok(()) => self.present = true,
            Err(_) => {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

impl Outbox {
    /// Bytes free for this outbox on its file system, if the system says.
    fn free_bytes(&self) -> Option<u64> {
        let fs = nix::sys::statvfs::statvfs(&self.options.dir).ok()?;
        // u64 on 64-bit hosts, u32 on a 32-bit Pi OS.
        #[allow(clippy::useless_conversion)]
        let free = u64::from(fs.blocks_available()).saturating_mul(u64::from(fs.fragment_size()));
        Some(free)
    }

    /// The size to close the active segment at: `segment_bytes` (at most a
    /// quarter of the cap), but at most a quarter of the space free on the
    /// outbox's file system now, and never below [`MIN_SEGMENT_BYTES`].
    pub(super) fn sized_to_free_space(&self) -> u64 {
        let configured = self.options.effective_segment_bytes();
        self.free_bytes().map_or(configured, |free| {
            (free / 4).clamp(MIN_SEGMENT_BYTES, configured)
        })
    }

    /// Whether the outbox's reserve file is in place (see the module docs):
    /// absent while the disk is too full for it.
    pub fn reserve_present(&self) -> bool {
        self.reserve.is_present()
    }

    /// Writes the reserve again when it is missing and there is room for
    /// it twice over (so it never takes the last of the space).
    pub(super) fn restore_reserve(&mut self) {
        if !self.reserve.is_present()
            && self
                .free_bytes()
                .is_some_and(|f| f >= 2 * RESERVE_BYTES as u64)
        {
            self.reserve.restore();
        }
    }

    /// After a failed write: releases the reserve so the state files fit,
    /// commits what was written, closes the active segment if every uplink
    /// has delivered it, deletes every delivered segment, and sizes the
    /// next segments to the space now free.
    pub(super) fn make_room(&mut self) {
        self.reserve.release();
        let _ = self.sync();
        let end = self.written_end();
        if self.durable >= end
            && self.min_cursor() >= end
            && self.segments.back().is_some_and(|s| s.bytes > 0)
        {
            let _ = self.roll(false);
        }
        self.free_acknowledged();
        self.restore_reserve();
        self.segment_target = self.sized_to_free_space();
    }
}

fn write_zeros(path: &Path) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(&[0u8; RESERVE_BYTES])?;
    f.sync_data()
}
