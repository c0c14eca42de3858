//! One export file through a mapping: find the columns in its header, then
//! each line → a stored reading or a counted, written reject.

use super::{
    row, source, Column, Encoding, ImportError, Mapping, MappingError, MatchBy, Matcher, Progress,
    Reject, Rejected, Summary,
};
use crate::store::imported::{ImportWriter, ImportedRow, Put, ValueKind};
use std::io::BufRead;
use std::path::Path;

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
pub(super) fn import_file(
    w: &mut ImportWriter<'_>,
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
        if line_no.is_multiple_of(65_536) {
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
            if layout.is_none() {
                return Err(ImportError::Header {
                    file: name.clone(),
                    column: "(header)".into(),
                    found: format!("bytes that are not {:?} text", mapping.encoding),
                });
            }
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
