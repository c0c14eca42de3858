//! Bulk import of utilities' meter exports (`gridwatch-analytics import
//! readings`): CSV or gzip, described per source by a [`Mapping`], each row
//! matched to a flat through the register's meters and stored in the
//! analytics store keyed by (source, time, meter).
//!
//! Nothing is dropped without a trace: a row that cannot be read or matched
//! is counted by [`Reject`] reason and written, with its file and line, to
//! the reject file. Files are streamed line by line, so memory does not grow
//! with their size. docs/import.md is the user's guide.

pub mod cli;
mod export;
pub mod generate;
pub mod mapping;
mod matcher;
pub mod register_cli;
pub mod register_export;
pub mod row;
pub mod source;
pub mod tips_cli;

pub use mapping::{Column, Encoding, Kind, Mapping, MappingError, MatchBy};
pub use matcher::Matcher;
pub use row::Reject;

use crate::register::RegisterError;

use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Exit code: every row imported.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command line, the mapping, the register or a header is
/// wrong; nothing was imported from the file concerned.
pub const EXIT_USAGE: u8 = 1;
/// Exit code: the import finished but some rows were rejected.
pub const EXIT_REJECTED: u8 = 2;
/// Exit code: a file could not be read or the store could not be written.
pub const EXIT_IO: u8 = 3;

/// Why an import stopped.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The mapping file.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The register file.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// A mapped column is not in the file's header.
    #[error("{file}: the header has no column {column:?} (it has: {found})")]
    Header {
        /// The export.
        file: String,
        /// The column the mapping names.
        column: String,
        /// The header's columns.
        found: String,
    },
    /// An export or the reject file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            ImportError::Mapping(_) | ImportError::Register(_) | ImportError::Header { .. } => {
                EXIT_USAGE
            }
            ImportError::Io { .. } | ImportError::Store(_) => EXIT_IO,
        }
    }
}

/// What an import did, over all its files.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Data rows read (not the header, not blank lines).
    pub rows: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Rows stored under a new key.
    pub stored: u64,
    /// Rows already stored with the same value.
    pub unchanged: u64,
    /// Rows that replaced a stored value (a corrected re-send).
    pub corrected: u64,
    /// Rows stored with the utility's bad-quality flag.
    pub quality_bad: u64,
    /// Rows rejected, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
}

impl Summary {
    /// Rows rejected for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The exit code this outcome calls for.
    pub fn exit_code(&self) -> u8 {
        if self.rejected_total() > 0 {
            EXIT_REJECTED
        } else {
            EXIT_OK
        }
    }
}

/// One rejected row, for the reject file.
#[derive(Debug, Clone, Copy)]
pub struct Rejected<'a> {
    /// The export.
    pub file: &'a str,
    /// 1-based line number in the (decompressed) file.
    pub line: u64,
    /// Why.
    pub reason: Reject,
    /// The line as read (decoded; undecodable bytes replaced).
    pub text: &'a str,
}

/// Writes rejects as TSV: `file`, `line`, `reason`, `text`, with tabs,
/// newlines and backslashes in the text escaped (`\t`, `\n`, `\\`).
pub fn write_reject(out: &mut dyn Write, r: &Rejected<'_>) -> std::io::Result<()> {
    let mut text = String::with_capacity(r.text.len());
    for c in r.text.trim_end_matches(['\r', '\n']).chars() {
        match c {
            '\t' => text.push_str("\\t"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\\' => text.push_str("\\\\"),
            c => text.push(c),
        }
    }
    writeln!(out, "{}\t{}\t{}\t{text}", r.file, r.line, r.reason.as_str())
}

/// How far an import is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The file being read.
    pub file: &'a Path,
    /// Bytes of it read from disk.
    pub bytes: u64,
    /// Its size on disk.
    pub size: u64,
    /// Rows read so far over all files.
    pub rows: u64,
}

/// Imports `files` with one mapping into `store`. Rejected rows go to
/// `rejects`; `progress` is called every few tens of thousands of rows.
pub fn import(
    store: &Store,
    mapping: &Mapping,
    matcher: &Matcher,
    files: &[PathBuf],
    rejects: &mut dyn FnMut(&Rejected<'_>) -> std::io::Result<()>,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<Summary, ImportError> {
    let mut summary = Summary::default();
    store.import_into(&mapping.source, mapping.kind.as_str(), |w| {
        for file in files {
            export::import_file(w, mapping, matcher, file, &mut summary, rejects, progress)?;
            summary.files += 1;
        }
        Ok::<_, ImportError>(())
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::{MeterEntry, RegisterFile};

    fn meter(meter: &str, flat: &str, account: Option<&str>) -> MeterEntry {
        MeterEntry {
            meter: meter.into(),
            flat: flat.into(),
            account: account.map(Into::into),
            address: None,
        }
    }

    #[test]
    fn the_matcher_indexes_by_the_mapped_key_and_reports_conflicts() {
        let reg = RegisterFile {
            meters: vec![
                meter("M1", "s/b/1", Some("A1")),
                meter("M2", "s/b/2", None),
                meter("M1", "s/b/3", None),
            ],
            ..RegisterFile::default()
        };
        let by_meter = Matcher::new(&reg, MatchBy::Meter);
        assert_eq!(by_meter.flat("M1"), Some("s/b/3"));
        assert_eq!(by_meter.conflicts(), ["M1"]);
        let by_account = Matcher::new(&reg, MatchBy::Account);
        assert_eq!(
            (by_account.len(), by_account.flat("A1")),
            (1, Some("s/b/1"))
        );
        assert!(Matcher::new(&reg, MatchBy::Address).is_empty());
    }

    #[test]
    fn a_reject_line_escapes_tabs_and_backslashes() {
        let mut out = Vec::new();
        let r = Rejected {
            file: "f.csv",
            line: 7,
            reason: Reject::Value,
            text: "a\tb\\c\r\n",
        };
        write_reject(&mut out, &r).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "f.csv\t7\tvalue\ta\\tb\\\\c\n"
        );
    }
}
