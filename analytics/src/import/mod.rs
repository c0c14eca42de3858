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
pub mod generate;
pub mod mapping;
pub mod row;
pub mod source;

pub use mapping::{Column, Encoding, Kind, Mapping, MappingError, MatchBy};
pub use row::Reject;

use crate::register::{RegisterError, RegisterFile};
use crate::store::imported::{ImportedRow, Put, ValueKind};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
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

/// The register's meters, indexed by the key a mapping matches on.
pub struct Matcher {
    keys: HashMap<String, u32>,
    flats: Vec<String>,
}

impl Matcher {
    /// Indexes `register`'s meters by `by`.
    pub fn new(register: &RegisterFile, by: MatchBy) -> Self {
        let mut flats: Vec<String> = Vec::new();
        let mut flat_ids: HashMap<&str, u32> = HashMap::new();
        let mut keys = HashMap::with_capacity(register.meters.len());
        for m in &register.meters {
            let key = match by {
                MatchBy::Meter => Some(&m.meter),
                MatchBy::Account => m.account.as_ref(),
                MatchBy::Address => m.address.as_ref(),
            };
            let Some(key) = key else { continue };
            let id = *flat_ids.entry(m.flat.as_str()).or_insert_with(|| {
                flats.push(m.flat.clone());
                (flats.len() - 1) as u32
            });
            keys.insert(key.trim().to_owned(), id);
        }
        Self { keys, flats }
    }

    /// The flat of a key.
    pub fn flat(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(|&i| self.flats[i as usize].as_str())
    }

    /// Keys indexed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys: nothing can match.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
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
            import_file(w, mapping, matcher, file, &mut summary, rejects, progress)?;
            summary.files += 1;
        }
        Ok::<_, ImportError>(())
    })?;
    Ok(summary)
}

/// Where a mapping's columns are in one file.
struct Layout {
    meter: usize,
    key: usize,
    timestamp: usize,
    value: usize,
    unit: Option<usize>,
    quality: Option<usize>,
    /// Fields a row needs at least.
    width: usize,
}

impl Layout {
    fn new(mapping: &Mapping, header: Option<&[&str]>, file: &str) -> Result<Self, ImportError> {
        let find = |c: &Column| -> Result<usize, ImportError> {
            match (c, header) {
                (Column::Number(n), _) => Ok(n - 1),
                (Column::Name(name), Some(h)) => {
                    h.iter()
                        .position(|f| f == name)
                        .ok_or_else(|| ImportError::Header {
                            file: file.to_owned(),
                            column: name.clone(),
                            found: h.join(", "),
                        })
                }
                // Mapping::check refuses names without a header.
                (Column::Name(name), None) => Err(ImportError::Header {
                    file: file.to_owned(),
                    column: name.clone(),
                    found: "no header".into(),
                }),
            }
        };
        let c = &mapping.columns;
        let need = |c: &Option<Column>| c.as_ref().map(&find).transpose();
        let meter = need(&c.meter)?.unwrap_or(0);
        let key = match mapping.match_by {
            MatchBy::Meter => Some(meter),
            MatchBy::Account => need(&c.account)?,
            MatchBy::Address => need(&c.address)?,
        }
        .unwrap_or(meter);
        let timestamp = need(&c.timestamp)?.unwrap_or(0);
        let value = need(&c.register)?.or(need(&c.interval)?).unwrap_or(0);
        let unit = need(&c.unit)?;
        let quality = need(&c.quality)?;
        let width = [
            Some(meter),
            Some(key),
            Some(timestamp),
            Some(value),
            unit,
            quality,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1;
        Ok(Self {
            meter,
            key,
            timestamp,
            value,
            unit,
            quality,
            width,
        })
    }
}

/// Decodes one line in the mapping's encoding, without the line break.
fn decode<'a>(bytes: &'a [u8], encoding: Encoding) -> Option<std::borrow::Cow<'a, str>> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(Into::into),
        Encoding::Gbk => {
            encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn import_file(
    w: &mut crate::store::imported::ImportWriter<'_>,
    mapping: &Mapping,
    matcher: &Matcher,
    path: &Path,
    summary: &mut Summary,
    rejects: &mut dyn FnMut(&Rejected<'_>) -> std::io::Result<()>,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<(), ImportError> {
    let name = path.display().to_string();
    let io = |source| ImportError::Io {
        file: name.clone(),
        source,
    };
    let mut export = source::open(path).map_err(io)?;
    let offset_s = row::parse_offset(&mapping.timestamp.utc_offset).unwrap_or(8 * 3600);
    let format = row::TimeFormat::compile(&mapping.timestamp.format).map_err(|reason| {
        MappingError::Invalid {
            path: mapping.source.clone(),
            reason,
        }
    })?;
    let fixed_factor = mapping
        .unit
        .as_deref()
        .and_then(|u| row::unit_factor(mapping.kind, u));
    let value_kind = if mapping.columns.register.is_some() {
        ValueKind::Register
    } else {
        ValueKind::Interval
    };
    let delim = mapping.delimiter_byte();
    let mut layout = if mapping.header {
        None
    } else {
        Some(Layout::new(mapping, None, &name)?)
    };
    let mut buf = Vec::with_capacity(256);
    let mut ranges = Vec::with_capacity(16);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if export.lines.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        line_no += 1;
        if line_no % 65_536 == 0 {
            progress(&Progress {
                file: path,
                bytes: export.read.get(),
                size: export.size,
                rows: summary.rows,
            });
        }
        let mut bytes = &buf[..];
        if line_no == 1 && mapping.encoding == Encoding::Utf8 {
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        let Some(text) = decode(bytes, mapping.encoding) else {
            summary.rows += 1;
            let lossy = String::from_utf8_lossy(bytes);
            reject(summary, rejects, &name, line_no, Reject::Encoding, &lossy).map_err(io)?;
            continue;
        };
        if text.trim().is_empty() {
            summary.blank_lines += 1;
            continue;
        }
        let Some(lay) = &layout else {
            let ok = row::split(&text, delim, &mut ranges);
            let header: Vec<&str> = ranges.iter().map(|&(a, b)| &text[a..b]).collect();
            if !ok {
                return Err(ImportError::Header {
                    file: name.clone(),
                    column: "(header)".into(),
                    found: "an unterminated quote".into(),
                });
            }
            layout = Some(Layout::new(mapping, Some(&header), &name)?);
            continue;
        };
        summary.rows += 1;
        match parse_row(
            &text,
            delim,
            lay,
            &mut ranges,
            &format,
            offset_s,
            fixed_factor,
            mapping,
            matcher,
        ) {
            Ok((meter, flat, ts_ms, value, quality_bad)) => {
                let put = w.put(&ImportedRow {
                    ts_ms,
                    meter,
                    flat,
                    value_kind,
                    value,
                    quality_bad,
                })?;
                match put {
                    Put::Inserted => summary.stored += 1,
                    Put::Unchanged => summary.unchanged += 1,
                    Put::Corrected => summary.corrected += 1,
                }
                summary.quality_bad += u64::from(quality_bad);
            }
            Err(why) => reject(summary, rejects, &name, line_no, why, &text).map_err(io)?,
        }
    }
    progress(&Progress {
        file: path,
        bytes: export.size,
        size: export.size,
        rows: summary.rows,
    });
    Ok(())
}

fn reject(
    summary: &mut Summary,
    rejects: &mut dyn FnMut(&Rejected<'_>) -> std::io::Result<()>,
    file: &str,
    line: u64,
    reason: Reject,
    text: &str,
) -> std::io::Result<()> {
    *summary.rejected.entry(reason.as_str()).or_default() += 1;
    rejects(&Rejected {
        file,
        line,
        reason,
        text,
    })
}

/// A data row → (meter, flat, UTC ms, value in kWh or m³, bad quality).
#[allow(clippy::too_many_arguments)]
fn parse_row<'a>(
    text: &'a str,
    delim: u8,
    lay: &Layout,
    ranges: &mut Vec<(usize, usize)>,
    format: &row::TimeFormat,
    offset_s: i64,
    fixed_factor: Option<f64>,
    mapping: &Mapping,
    matcher: &'a Matcher,
) -> Result<(&'a str, &'a str, i64, f64, bool), Reject> {
    if !row::split(text, delim, ranges) || ranges.len() < lay.width {
        return Err(Reject::Columns);
    }
    let field = |i: usize| &text[ranges[i].0..ranges[i].1];
    let meter = field(lay.meter);
    let key = field(lay.key);
    if meter.is_empty() || key.is_empty() {
        return Err(Reject::Meter);
    }
    let ts = format
        .parse(field(lay.timestamp), offset_s)
        .ok_or(Reject::Timestamp)?;
    let raw = row::parse_value(field(lay.value))?;
    let factor = match (lay.unit, fixed_factor) {
        (Some(u), _) => row::unit_factor(mapping.kind, field(u)).ok_or(Reject::Unit)?,
        (None, Some(f)) => f,
        (None, None) => return Err(Reject::Unit),
    };
    let flat = matcher.flat(key).ok_or(Reject::Unmatched)?;
    let quality_bad = lay
        .quality
        .is_some_and(|q| mapping.quality_bad.iter().any(|b| b == field(q)));
    Ok((meter, flat, ts, raw * factor, quality_bad))
}
