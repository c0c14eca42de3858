//! Opening an export: plain or gzip (recognised by its magic bytes, not its
//! name), read in lines through a bounded buffer so a file of any size is
//! streamed, with a count of the bytes read on disk for progress.

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of a file read so far, shared with whoever shows progress.
#[derive(Debug, Clone, Default)]
pub struct BytesRead(Arc<AtomicU64>);

impl BytesRead {
    /// Bytes read from disk (compressed bytes for a .gz).
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

struct Counting<R> {
    inner: R,
    read: BytesRead,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Read buffer size: large enough that reads are few, small enough that
/// memory does not depend on the file.
const BUFFER_BYTES: usize = 256 * 1024;

/// An open export: its lines, its size on disk and the bytes read so far.
pub struct Export {
    /// The decompressed text, line by line.
    pub lines: Box<dyn BufRead>,
    /// The file's size on disk.
    pub size: u64,
    /// How far into the file reading is.
    pub read: BytesRead,
    /// The file is gzip.
    pub gzip: bool,
}

/// Opens `path`, decompressing it when it starts with gzip's magic bytes.
pub fn open(path: &Path) -> io::Result<Export> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let read = BytesRead::default();
    let mut raw = BufReader::with_capacity(
        BUFFER_BYTES,
        Counting {
            inner: file,
            read: read.clone(),
        },
    );
    let gzip = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let lines: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    Ok(Export {
        lines,
        size,
        read,
        gzip,
    })
}
