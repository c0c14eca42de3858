//! `gridwatch-analytics import tips`: the 12345 hotline's export of
//! fire-hazard calls, each a tip-off case in the same loop as the public
//! page's (docs/tips.md). A mapping file names the export's columns and
//! maps the hotline's categories to hazards; the analytics config gives the
//! store, the register (to place each call on a flat) and the directory
//! (to route it to the flat's grid cell). A call already imported (same
//! ticket) is left as it is, so re-importing an export changes nothing.
//! Rows that cannot be used are counted by reason and written with their
//! line to the reject file.

use super::register_export::write_reject_line;
use super::{row, source, Column, Encoding, ImportError, MappingError, EXIT_OK, EXIT_REJECTED};
use crate::alerts::route::CellRouter;
use crate::config::AnalyticsConfig;
use crate::register::Register;
use crate::store::Store;
use crate::tips::{self, Channel, Hazard, NewTip};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

/// `import tips`.
#[derive(Debug, Args)]
pub struct TipsArgs {
    /// The hotline export's mapping file (TOML, see config/imports/).
    #[arg(long)]
    pub mapping: PathBuf,
    /// The analytics config: its store, register and directory are used.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Write every rejected row here (TSV: file, line, reason, text).
    #[arg(long)]
    pub reject: Option<PathBuf>,
    /// The exports (CSV, plain or gzip).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// A hotline export's mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TipsMapping {
    /// The file's character encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// The field separator, one character.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// How the call's time is written (`%Y-%m-%d %H:%M`, …).
    pub time_format: String,
    /// The export's local time (default +08:00).
    #[serde(default = "china")]
    pub utc_offset: String,
    /// Where each field is.
    pub columns: TipsColumns,
    /// The hotline's categories and the hazard each means; a category not
    /// listed is `other`.
    #[serde(default)]
    pub kinds: BTreeMap<String, Hazard>,
}

fn comma() -> String {
    ",".into()
}

fn china() -> String {
    "+08:00".into()
}

/// The `[columns]` table; all but `contact` and `text` required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TipsColumns {
    /// The ticket number (工单编号): the call's identity.
    pub ticket: Column,
    /// When the call was taken.
    pub time: Column,
    /// The address the caller gave.
    pub address: Column,
    /// The hotline's category.
    pub kind: Column,
    /// What the caller said.
    pub text: Option<Column>,
    /// The caller's number: kept for the office only.
    pub contact: Option<Column>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TipsSummary {
    /// Data rows read.
    pub rows: u64,
    /// New cases (or tips joined to an open case of the flat).
    pub new: u64,
    /// Calls imported before.
    pub unchanged: u64,
    /// Rows rejected, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
}

/// Runs `import tips`; returns the exit code.
pub fn run(a: &TipsArgs) -> u8 {
    match try_run(a) {
        Ok(s) => {
            let reasons: Vec<String> = s.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let rejected: u64 = s.rejected.values().sum();
            println!(
                "hotline calls: {} rows, {} new, {} imported before, {} rejected{}",
                s.rows,
                s.new,
                s.unchanged,
                rejected,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                }
            );
            if rejected > 0 {
                EXIT_REJECTED
            } else {
                EXIT_OK
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn usage(what: String) -> ImportError {
    ImportError::Mapping(MappingError::Invalid {
        path: "import tips".into(),
        reason: what,
    })
}

fn try_run(a: &TipsArgs) -> Result<TipsSummary, ImportError> {
    let name = a.mapping.display().to_string();
    let text = std::fs::read_to_string(&a.mapping).map_err(|source| MappingError::Read {
        path: name.clone(),
        source,
    })?;
    let mapping: TipsMapping = toml::from_str(&text).map_err(|source| MappingError::Parse {
        path: name.clone(),
        source,
    })?;
    let format =
        row::TimeFormat::compile(&mapping.time_format).map_err(|reason| MappingError::Invalid {
            path: name.clone(),
            reason,
        })?;
    let offset_s =
        row::parse_offset(&mapping.utc_offset).map_err(|reason| MappingError::Invalid {
            path: name.clone(),
            reason,
        })?;
    if mapping.delimiter.len() != 1 {
        return Err(usage(format!(
            "{name}: delimiter must be one ASCII character"
        )));
    }
    let mut config = AnalyticsConfig::load(&a.config).map_err(|e| usage(e.to_string()))?;
    let directory = match &config.directory.path {
        Some(p) => {
            crate::alerts::directory::Directory::load(p).map_err(|e| usage(e.to_string()))?
        }
        None => crate::alerts::directory::Directory::default(),
    };
    directory.route_into(&mut config.cells).map_err(usage)?;
    let router = CellRouter::new(&config.cells);
    let register = match &config.register.path {
        Some(p) => Register::load(p)?,
        None => {
            return Err(usage(
                "the config has no [register] path: calls cannot be placed on flats".into(),
            ))
        }
    };
    let store = Store::open(&config.store)?;
    let io = |p: &Path| {
        let file = p.display().to_string();
        move |source| ImportError::Io { file, source }
    };
    let mut reject_file = match &a.reject {
        Some(p) => {
            let mut f = BufWriter::new(std::fs::File::create(p).map_err(io(p))?);
            writeln!(f, "file\tline\treason\ttext").map_err(io(p))?;
            Some(f)
        }
        None => None,
    };
    let mut summary = TipsSummary::default();
    let delim = mapping.delimiter.as_bytes()[0];
    for path in &a.files {
        let file = path.display().to_string();
        let mut export = source::open(path).map_err(io(path))?;
        let (mut buf, mut ranges, mut line) = (Vec::new(), Vec::new(), 0u64);
        let mut header: Option<Vec<String>> = None;
        loop {
            buf.clear();
            if export.lines.read_until(b'\n', &mut buf).map_err(io(path))? == 0 {
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
            let mut bad = |why: &'static str, text: &str| -> Result<(), ImportError> {
                *summary.rejected.entry(why).or_default() += 1;
                match reject_file.as_mut() {
                    Some(f) => write_reject_line(f, &file, line, why, text).map_err(io(path)),
                    None => {
                        eprintln!("{file}:{line}: {why}");
                        Ok(())
                    }
                }
            };
            let Some(text) = text else {
                summary.rows += 1;
                bad("encoding", &String::from_utf8_lossy(bytes))?;
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let complete = row::split(&text, delim, &mut ranges);
            let fields: Vec<&str> = ranges.iter().map(|&(s, e)| text[s..e].trim()).collect();
            let Some(h) = &header else {
                header = Some(fields.iter().map(|f| (*f).to_owned()).collect());
                continue;
            };
            summary.rows += 1;
            let col = |c: &Column| -> Option<&str> {
                let i = match c {
                    Column::Number(n) => n.checked_sub(1)?,
                    Column::Name(n) => h.iter().position(|x| x == n)?,
                };
                fields.get(i).copied()
            };
            let c = &mapping.columns;
            let (Some(ticket), Some(time), Some(address), Some(kind)) =
                (col(&c.ticket), col(&c.time), col(&c.address), col(&c.kind))
            else {
                bad("columns", &text)?;
                continue;
            };
            if !complete || ticket.is_empty() {
                bad("columns", &text)?;
                continue;
            }
            let Some(at) = format.parse(time, offset_s) else {
                bad("timestamp", &text)?;
                continue;
            };
            let receipt = format!("12345-{ticket}");
            if store.tip_exists(&receipt)? {
                summary.unchanged += 1;
                continue;
            }
            let hazard = mapping.kinds.get(kind).copied().unwrap_or(Hazard::Other);
            let (flat, cell) = match register.flat_by_address(address) {
                Some(f) => {
                    let site = f.split('/').next().unwrap_or_default();
                    (f.to_owned(), router.cell_for(site).to_owned())
                }
                None => match &config.alerts.tips.unplaced_cell {
                    Some(cell) => (format!("unplaced/tips/{receipt}"), cell.clone()),
                    None => {
                        bad("unmatched", &text)?;
                        continue;
                    }
                },
            };
            let tip = NewTip {
                channel: Channel::Hotline,
                hazard,
                flat,
                place: address.chars().take(200).collect(),
                text: c
                    .text
                    .as_ref()
                    .and_then(col)
                    .unwrap_or_default()
                    .chars()
                    .take(tips::MAX_TEXT)
                    .collect(),
                contact: c
                    .contact
                    .as_ref()
                    .and_then(col)
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned),
                at: gridwatch_telemetry::Timestamp(at),
            };
            let backing = store.active_sensor_cases(&tip.flat)?;
            let alert = tips::alert_of(&tip, &receipt, &cell, !backing.is_empty());
            store.add_tip(&tip, &receipt, &alert, &config.alerts, None)?;
            summary.new += 1;
        }
    }
    if let (Some(f), Some(p)) = (reject_file.as_mut(), &a.reject) {
        f.flush().map_err(io(p))?;
    }
    Ok(summary)
}
