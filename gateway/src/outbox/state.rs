//! The small files beside the segments: each uplink's cursor and each
//! device's next sequence number. Written whole, to a temporary file that is
//! synced and then renamed over the old one, so a power cut leaves either
//! the old or the new version, never half of one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Cursor file: uplink name → id of the first record it has not acknowledged.
pub const CURSORS: &str = "cursors.json";
/// Sequence file: device id → the next `seq` to stamp.
pub const SEQUENCES: &str = "sequences.json";
/// Commit mark: `{"next_id": n}`, every record below `n` is committed.
pub const COMMITTED: &str = "committed.json";
/// The key of the commit mark.
pub const NEXT_ID: &str = "next_id";

/// Reads a name → number map; a missing file is an empty map. A damaged
/// one is reported, so the caller can say what it falls back to.
pub fn load(path: &Path) -> io::Result<BTreeMap<String, u64>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `map`, atomically and durably.
pub fn store(path: &Path, map: &BTreeMap<String, u64>) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(map).map_err(io::Error::other)?;
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Syncs a folder, so a file created or renamed in it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
