//! One segment file of the outbox: named for its first record id, scanned
//! and repaired on start, read from a remembered offset.

use super::frame::{self, Decoded, Entry};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// File name suffix of segments.
pub const SUFFIX: &str = "seg";

/// What the outbox knows about one segment without reading it.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// Id of its first record (also in its name).
    pub first_id: u64,
    /// One past the id of its last record.
    pub next_id: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// When its newest record was appended (ms), for the age cap.
    pub last_ms: i64,
}

impl Segment {
    /// The path of the segment starting at `first_id` in `dir`.
    pub fn path_for(dir: &Path, first_id: u64) -> PathBuf {
        dir.join(format!("{first_id:020}.{SUFFIX}"))
    }

    /// The first id encoded in a segment's file name, if it is one.
    pub fn first_id_of(path: &Path) -> Option<u64> {
        if path.extension()? != SUFFIX {
            return None;
        }
        path.file_stem()?.to_str()?.parse().ok()
    }

    /// Records in the segment.
    pub fn records(&self) -> u64 {
        self.next_id - self.first_id
    }
}

/// What scanning a segment found.
#[derive(Debug)]
pub struct Scan {
    /// The segment as far as it is intact.
    pub segment: Segment,
    /// Bytes cut off the end because they were not an intact record.
    pub truncated: u64,
    /// Why, when something was cut.
    pub reason: Option<&'static str>,
}

/// Reads a segment, checks every record, and truncates the file after the
/// last intact one (a torn write from a power cut, or damage). Records must
/// carry consecutive ids from the name's id; the first that does not ends
/// the segment like damage does. `past_mark` hears the payload of every
/// intact record at or past the commit mark `committed` (if known), so the
/// caller can learn what was written after the last commit.
pub fn scan_and_repair(
    path: &Path,
    first_id: u64,
    committed: Option<u64>,
    past_mark: &mut dyn FnMut(&[u8]),
) -> io::Result<Scan> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut at = 0usize;
    let mut next_id = first_id;
    let mut last_ms = i64::MIN;
    let mut reason = None;
    loop {
        match frame::decode(&bytes[at..]) {
            Decoded::Record {
                id,
                appended_ms,
                payload,
                len,
            } => {
                if id != next_id {
                    reason = Some("record id out of sequence");
                    break;
                }
                if committed.is_none_or(|c| id >= c) {
                    past_mark(payload);
                }
                next_id += 1;
                last_ms = appended_ms;
                at += len;
            }
            Decoded::Incomplete => {
                if at < bytes.len() {
                    reason = Some("incomplete record at the end (torn write)");
                }
                break;
            }
            Decoded::Corrupt(why) => {
                reason = Some(why);
                break;
            }
        }
    }
    let truncated = (bytes.len() - at) as u64;
    if truncated > 0 {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(at as u64)?;
        f.sync_all()?;
    }
    Ok(Scan {
        segment: Segment {
            path: path.to_owned(),
            first_id,
            next_id,
            bytes: at as u64,
            last_ms,
        },
        truncated,
        reason,
    })
}

/// Where a reader is inside a segment: the byte offset of record `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The segment (by first id).
    pub segment: u64,
    /// Byte offset of record `id` in it.
    pub offset: u64,
    /// The record at `offset`.
    pub id: u64,
}

/// Reads records `from..below` of `segment`, at most `max_records` and
/// about `max_bytes`, starting at `hint` when it points into this segment at
/// or before `from`. Returns the records and the position after the last.
pub fn read(
    segment: &Segment,
    hint: Option<Position>,
    from: u64,
    below: u64,
    max_records: usize,
    max_bytes: usize,
) -> io::Result<(Vec<Entry>, Position)> {
    let start = match hint {
        Some(p) if p.segment == segment.first_id && p.id <= from => p,
        _ => Position {
            segment: segment.first_id,
            offset: 0,
            id: segment.first_id,
        },
    };
    let mut f = File::open(&segment.path)?;
    f.seek(SeekFrom::Start(start.offset))?;
    let mut pos = start;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = max_bytes.max(64 * 1024);
    let mut taken = 0usize;
    'fill: loop {
        buf.clear();
        (&mut f).take(chunk as u64).read_to_end(&mut buf)?;
        let mut at = 0usize;
        while pos.id < below && out.len() < max_records && taken < max_bytes {
            match frame::decode(&buf[at..]) {
                Decoded::Record {
                    id,
                    appended_ms,
                    payload,
                    len,
                } => {
                    if id >= from {
                        taken += payload.len();
                        out.push(Entry {
                            id,
                            appended_ms,
                            payload: payload.to_vec(),
                        });
                    }
                    at += len;
                    pos.offset += len as u64;
                    pos.id = id + 1;
                }
                Decoded::Incomplete if at == 0 && buf.len() as u64 == chunk as u64 => {
                    // One record larger than the chunk: read a bigger one.
                    chunk *= 4;
                    f.seek(SeekFrom::Start(pos.offset))?;
                    continue 'fill;
                }
                Decoded::Incomplete if buf.len() as u64 == chunk as u64 => {
                    f.seek(SeekFrom::Start(pos.offset))?;
                    continue 'fill;
                }
                // The end of what was written, or damage since the scan:
                // never served; the caller moves on or waits.
                _ => break 'fill,
            }
        }
        break;
    }
    Ok((out, pos))
}
