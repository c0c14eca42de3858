//! The history on disk, beside the checkpoint (`<checkpoint>.history`), so
//! that a restart does not blank every chart for six hours or eight weeks.
//!
//! Written like the checkpoint: to a temporary name, synced, renamed. A file
//! that cannot be read back (damaged, another format) is set aside as
//! `*.history.stale` and the history starts empty: charts are a view, never a
//! reason not to start.

use super::{History, Kept};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

const MAGIC: &[u8; 8] = b"GWHIST1\n";

/// Why the history file could not be written or read.
#[derive(Debug, Error)]
pub enum HistoryFileError {
    /// Reading or writing failed.
    #[error("history file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a history file, or damaged.
    #[error("history file {path} is damaged or not a history file: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// The history file that goes with checkpoint `checkpoint`.
pub fn beside(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.as_os_str().to_owned();
    name.push(".history");
    PathBuf::from(name)
}

impl History {
    /// Writes the history to `path`; the bytes written.
    pub fn save(&self, path: &Path) -> Result<u64, HistoryFileError> {
        let io = |source| HistoryFileError::Io {
            path: path.to_owned(),
            source,
        };
        let mut bytes = MAGIC.to_vec();
        {
            let g = self.read();
            rmp_serde::encode::write_named(&mut bytes, &g.kept).map_err(|e| {
                HistoryFileError::Damaged {
                    path: path.to_owned(),
                    reason: format!("could not encode: {e}"),
                }
            })?;
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(bytes.len() as u64)
    }

    /// Replaces the kept history with the file at `path`: `Ok(false)` when
    /// there is none yet.
    pub fn load(&self, path: &Path) -> Result<bool, HistoryFileError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(HistoryFileError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let damaged = |reason: String| HistoryFileError::Damaged {
            path: path.to_owned(),
            reason,
        };
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| damaged("it does not start with the history marker".into()))?;
        let kept: Kept = rmp_serde::from_slice(body).map_err(|e| damaged(e.to_string()))?;
        let too_many =
            kept.sockets.len() > super::MAX_SOCKETS || kept.flats.len() > super::MAX_FLATS;
        if too_many {
            return Err(damaged(
                "it holds more sockets or flats than the bounds".into(),
            ));
        }
        self.write().kept = kept;
        Ok(true)
    }

    /// Loads `path` if it can; a damaged file is moved to `*.stale` with a
    /// warning and the history starts empty; an unreadable one is logged.
    pub fn restore(&self, path: &Path) {
        match self.load(path) {
            Ok(true) => {
                let s = self.stats();
                tracing::info!(
                    "chart history restored from {}: {} sockets, {} flats",
                    path.display(),
                    s.sockets,
                    s.flats
                );
            }
            Ok(false) => {}
            Err(e @ HistoryFileError::Damaged { .. }) => {
                let mut to = path.as_os_str().to_owned();
                to.push(".stale");
                match std::fs::rename(path, &to) {
                    Ok(()) => tracing::warn!("{e}; moved aside, charts start empty"),
                    Err(io) => tracing::warn!("{e}; and it cannot be moved aside: {io}"),
                }
            }
            Err(e) => tracing::warn!("{e}; charts start empty"),
        }
    }
}
