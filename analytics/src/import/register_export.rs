//! `gridwatch-analytics import register`: merges the rental-housing
//! platform's CSV export of flats (standard address, registered occupants,
//! businesses, landlords and sublandlords, grid cell, community, street,
//! town) into the register file, as of the export's date.
//!
//! The register keeps history: a flat whose facts differ from the entry in
//! force on that date gets a new entry from that date on; the same facts
//! change nothing (re-importing an export is idempotent); a second export
//! of the same date replaces that date's entry (a correction). Flats absent
//! from an export are kept: exports may be partial (one street's). Every
//! row that cannot be used is counted by reason and written with its line
//! to the reject file. The file is written whole and atomically, so the
//! running service, which re-reads it when it changes, never sees half of
//! it.

use super::{row, source, Column, Encoding, ImportError, MappingError};
use crate::register::{dates, FlatEntry, RegisterFile};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;

/// A platform export's mapping file (examples in `config/imports/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterMapping {
    /// The file's character encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// The field separator, one character.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Values of the business column that mean yes.
    #[serde(default = "yes_values")]
    pub yes: Vec<String>,
    /// Where each field is, by header name or 1-based number.
    pub columns: RegisterColumns,
}

fn comma() -> String {
    ",".into()
}

fn yes_values() -> Vec<String> {
    ["是", "有", "1", "Y", "y", "yes", "true"]
        .map(str::to_owned)
        .to_vec()
}

/// The `[columns]` table. `occupants` and one of `flat` or `address` are
/// required.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterColumns {
    /// The flat as Gridwatch names it, `site/building/unit`.
    pub flat: Option<Column>,
    /// The standard address, matched to a flat through the register.
    pub address: Option<Column>,
    /// Registered occupants.
    pub occupants: Option<Column>,
    /// A registered business.
    pub business: Option<Column>,
    /// Floor area, m².
    pub area_m2: Option<Column>,
    /// The landlord's platform id.
    pub landlord: Option<Column>,
    /// The sublandlord's (二房东) platform id.
    pub sublandlord: Option<Column>,
    /// The grid cell.
    pub cell: Option<Column>,
    /// The community or village.
    pub community: Option<Column>,
    /// The street.
    pub street: Option<Column>,
    /// The town.
    pub town: Option<Column>,
}

impl RegisterMapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: origin.clone(),
            source,
        })?;
        let m: Self = toml::from_str(&text).map_err(|source| MappingError::Parse {
            path: origin.clone(),
            source,
        })?;
        let invalid = |reason: &str| MappingError::Invalid {
            path: origin.clone(),
            reason: reason.to_owned(),
        };
        if m.columns.occupants.is_none() {
            return Err(invalid("[columns] needs occupants"));
        }
        if m.columns.flat.is_none() && m.columns.address.is_none() {
            return Err(invalid(
                "[columns] needs flat or address, to know which flat a row is",
            ));
        }
        if m.delimiter.len() != 1 {
            return Err(invalid("delimiter must be one ASCII character"));
        }
        Ok(m)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RegisterSummary {
    /// Data rows read.
    pub rows: u64,
    /// Flats the register did not have.
    pub added: u64,
    /// Flats whose facts changed: a new entry from the export's date.
    pub changed: u64,
    /// Flats whose entry of that date was replaced (a corrected export).
    pub corrected: u64,
    /// Flats as registered already.
    pub unchanged: u64,
    /// Rows rejected, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
}

impl RegisterSummary {
    /// Rows rejected for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Where the mapped columns are in one file.
type Layout = HashMap<&'static str, usize>;

fn layout(m: &RegisterMapping, header: &[&str], file: &str) -> Result<Layout, ImportError> {
    let c = &m.columns;
    let named = [
        ("flat", &c.flat),
        ("address", &c.address),
        ("occupants", &c.occupants),
        ("business", &c.business),
        ("area_m2", &c.area_m2),
        ("landlord", &c.landlord),
        ("sublandlord", &c.sublandlord),
        ("cell", &c.cell),
        ("community", &c.community),
        ("street", &c.street),
        ("town", &c.town),
    ];
    let mut out = Layout::new();
    for (field, column) in named {
        let Some(column) = column else { continue };
        let at = match column {
            Column::Number(n) => n.saturating_sub(1),
            Column::Name(name) => {
                header
                    .iter()
                    .position(|h| h == name)
                    .ok_or_else(|| ImportError::Header {
                        file: file.to_owned(),
                        column: name.clone(),
                        found: header.join(", "),
                    })?
            }
        };
        out.insert(field, at);
    }
    Ok(out)
}

/// Merges `files` into `register` as of local date `since` (`YYYY-MM-DD`,
/// already checked). `reject` gets each unusable row: file, line, reason,
/// text.
pub fn merge(
    register: &mut RegisterFile,
    mapping: &RegisterMapping,
    since: &str,
    files: &[&Path],
    reject: &mut dyn FnMut(&str, u64, &'static str, &str) -> std::io::Result<()>,
) -> Result<RegisterSummary, ImportError> {
    let day = dates::parse_date(since);
    let by_address: HashMap<String, String> = register
        .meters
        .iter()
        .filter_map(|m| Some((m.address.clone()?, m.flat.clone())))
        .chain(
            register
                .flats
                .iter()
                .filter_map(|f| Some((f.address.clone()?, f.flat.clone()))),
        )
        .collect();
    let mut summary = RegisterSummary::default();
    let mut seen: HashSet<String> = HashSet::new();
    let delim = mapping.delimiter.as_bytes()[0];
    for path in files {
        let name = path.display().to_string();
        let io = |source| ImportError::Io {
            file: name.clone(),
            source,
        };
        let mut export = source::open(path).map_err(io)?;
        let mut lay: Option<Layout> = None;
        let (mut buf, mut ranges, mut line) = (Vec::new(), Vec::new(), 0u64);
        loop {
            buf.clear();
            if export.lines.read_until(b'\n', &mut buf).map_err(io)? == 0 {
                break;
            }
            line += 1;
            let bytes = buf.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&buf);
            let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            let text = match mapping.encoding {
                Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(Into::into),
                Encoding::Gbk => {
                    encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes)
                }
            };
            let Some(text) = text else {
                summary.rows += 1;
                let lossy = String::from_utf8_lossy(bytes);
                bad(&mut summary, reject, &name, line, "encoding", &lossy).map_err(io)?;
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let complete = row::split(&text, delim, &mut ranges);
            let fields: Vec<&str> = ranges.iter().map(|&(a, b)| &text[a..b]).collect();
            let Some(l) = &lay else {
                lay = Some(layout(mapping, &fields, &name)?);
                continue;
            };
            summary.rows += 1;
            let entry = match parse(l, &fields, complete, mapping, &by_address, since) {
                Ok(e) => e,
                Err(why) => {
                    bad(&mut summary, reject, &name, line, why, &text).map_err(io)?;
                    continue;
                }
            };
            if !seen.insert(entry.flat.clone()) {
                // The same flat twice in one import: which row is right
                // is not ours to guess.
                bad(&mut summary, reject, &name, line, "duplicate", &text).map_err(io)?;
                continue;
            }
            apply(register, entry, day, &mut summary);
        }
    }
    Ok(summary)
}

fn bad(
    summary: &mut RegisterSummary,
    reject: &mut dyn FnMut(&str, u64, &'static str, &str) -> std::io::Result<()>,
    file: &str,
    line: u64,
    why: &'static str,
    text: &str,
) -> std::io::Result<()> {
    *summary.rejected.entry(why).or_default() += 1;
    reject(file, line, why, text)
}

fn parse(
    lay: &Layout,
    fields: &[&str],
    complete: bool,
    m: &RegisterMapping,
    by_address: &HashMap<String, String>,
    since: &str,
) -> Result<FlatEntry, &'static str> {
    if !complete {
        return Err("quote");
    }
    let get = |f: &str| -> Result<Option<&str>, &'static str> {
        match lay.get(f) {
            None => Ok(None),
            Some(&i) => fields.get(i).map(|v| Some(v.trim())).ok_or("columns"),
        }
    };
    let text = |f: &str| -> Result<Option<String>, &'static str> {
        Ok(get(f)?.filter(|v| !v.is_empty()).map(str::to_owned))
    };
    let address = text("address")?;
    let flat = match (text("flat")?, &address) {
        (Some(f), _) => {
            if f.split('/').count() != 3 || f.split('/').any(str::is_empty) {
                return Err("flat");
            }
            f
        }
        (None, Some(a)) => by_address.get(a).cloned().ok_or("unmatched")?,
        (None, None) => return Err("unmatched"),
    };
    let occupants: u8 = get("occupants")?
        .and_then(|v| v.parse().ok())
        .ok_or("occupants")?;
    let area_m2 = match get("area_m2")? {
        None | Some("") => 0.0,
        Some(v) => v
            .parse::<f32>()
            .ok()
            .filter(|a| a.is_finite() && *a >= 0.0)
            .ok_or("area")?,
    };
    let business = get("business")?.is_some_and(|v| m.yes.iter().any(|y| y == v));
    Ok(FlatEntry {
        flat,
        occupants,
        area_m2,
        business,
        since: Some(since.to_owned()),
        address,
        landlord: text("landlord")?,
        sublandlord: text("sublandlord")?,
        cell: text("cell")?,
        community: text("community")?,
        street: text("street")?,
        town: text("town")?,
    })
}

/// Adds `entry` to the register's history of its flat.
fn apply(register: &mut RegisterFile, entry: FlatEntry, day: Option<i32>, s: &mut RegisterSummary) {
    let entry_day = |e: &FlatEntry| e.since.as_deref().and_then(dates::parse_date);
    let same_date = register
        .flats
        .iter()
        .position(|e| e.flat == entry.flat && entry_day(e) == day);
    let in_force = register
        .flats
        .iter()
        .filter(|e| e.flat == entry.flat)
        .filter(|e| entry_day(e).is_none_or(|d| Some(d) <= day))
        .max_by_key(|e| entry_day(e).unwrap_or(i32::MIN));
    match (same_date, in_force) {
        (_, Some(e)) if e.same_facts(&entry) => s.unchanged += 1,
        (Some(i), _) => {
            register.flats[i] = entry;
            s.corrected += 1;
        }
        (None, Some(_)) => {
            register.flats.push(entry);
            s.changed += 1;
        }
        (None, None) => {
            let known = register.flats.iter().any(|e| e.flat == entry.flat);
            register.flats.push(entry);
            if known {
                s.changed += 1;
            } else {
                s.added += 1;
            }
        }
    }
}

/// `file`, `line`, `reason`, `text` as one TSV line (tabs and newlines in
/// the text escaped).
pub fn write_reject_line(
    out: &mut dyn Write,
    file: &str,
    line: u64,
    why: &str,
    text: &str,
) -> std::io::Result<()> {
    let text = text
        .trim_end_matches(['\r', '\n'])
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n");
    writeln!(out, "{file}\t{line}\t{why}\t{text}")
}

#[cfg(test)]
#[path = "register_export_tests.rs"]
mod tests;
