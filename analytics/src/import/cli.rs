//! `gridwatch-analytics import …`: the command line of the importer, its
//! progress line and its summary. Exit codes are [`super::EXIT_OK`] (every
//! row imported), [`super::EXIT_USAGE`] (command line, mapping, register or
//! header wrong), [`super::EXIT_REJECTED`] (finished, some rows rejected)
//! and [`super::EXIT_IO`] (a file or the store failed).

use super::{generate, ImportError, Mapping, Matcher, Progress, Rejected, Summary};
use crate::store::Store;
use clap::{Args, Subcommand};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to import.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import utility meter exports (CSV or gzip) described by a mapping
    /// file into the analytics store; see docs/import.md.
    Readings(ReadingsArgs),
    /// Merge the rental-housing platform's export of flats (occupants,
    /// businesses, landlords, cells) into the register, keeping its
    /// history; see docs/import.md.
    Register(super::register_cli::RegisterArgs),
    /// Import the 12345 hotline's export of fire-hazard calls as tip-off
    /// cases; see docs/tips.md.
    Tips(super::tips_cli::TipsArgs),
    /// Write a synthetic daily export and its register (benchmark, tests).
    #[command(hide = true)]
    Generate(GenerateArgs),
}

/// `import readings`.
#[derive(Debug, Args)]
pub struct ReadingsArgs {
    /// The source's mapping file (TOML, see config/imports/).
    #[arg(long)]
    pub mapping: PathBuf,
    /// The register whose `meters` tie rows to flats.
    #[arg(long)]
    pub register: PathBuf,
    /// Write every rejected row here (TSV: file, line, reason, text).
    #[arg(long)]
    pub reject: Option<PathBuf>,
    /// The analytics store (SQLite); without it the rows are checked and
    /// matched in memory and nothing is kept (a dry run).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// The exports.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `import generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Days of readings.
    #[arg(long)]
    pub days: u32,
    /// Accounts.
    #[arg(long)]
    pub accounts: u32,
    /// The export to write (gzip if it ends in .gz).
    #[arg(long)]
    pub out: PathBuf,
    /// The register to write; `<name>.register.json` beside --out if absent.
    #[arg(long)]
    pub register: Option<PathBuf>,
    /// Share of malformed rows.
    #[arg(long, default_value_t = 0.0)]
    pub bad_rate: f64,
    /// Share of rows whose meter the register lacks.
    #[arg(long, default_value_t = 0.0)]
    pub unmatched_rate: f64,
    /// The random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs an `import` subcommand; returns the exit code.
pub fn run(command: ImportCommand) -> u8 {
    match command {
        ImportCommand::Readings(args) => readings(args),
        ImportCommand::Register(args) => super::register_cli::run(&args),
        ImportCommand::Tips(args) => super::tips_cli::run(&args),
        ImportCommand::Generate(args) => generate_cmd(args),
    }
}

fn generate_cmd(a: GenerateArgs) -> u8 {
    let register = a
        .register
        .unwrap_or_else(|| generate::register_beside(&a.out));
    let spec = generate::Spec {
        days: a.days,
        accounts: a.accounts,
        first_day: gridwatch_telemetry::time::days_from_civil(2026, 1, 1),
        bad_rate: a.bad_rate,
        unmatched_rate: a.unmatched_rate,
        seed: a.seed,
    };
    match generate::generate(&spec, &a.out, &register) {
        Ok(w) => {
            println!(
                "wrote {} rows ({} malformed, {} unmatched) to {}; register {}",
                w.rows,
                w.malformed,
                w.unmatched,
                a.out.display(),
                register.display()
            );
            super::EXIT_OK
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", a.out.display());
            super::EXIT_IO
        }
    }
}

/// How many rejects are shown on stderr when there is no reject file.
const SHOWN_REJECTS: u64 = 10;

fn readings(a: ReadingsArgs) -> u8 {
    match try_readings(&a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn try_readings(a: &ReadingsArgs) -> Result<u8, ImportError> {
    let mapping = Mapping::load(&a.mapping)?;
    // Streamed into a compact index: no parsed entry of a city's register
    // is kept while the rows go by.
    let matcher = Matcher::load(&a.register, mapping.match_by)?;
    if matcher.is_empty() {
        eprintln!(
            "warning: register {} has no meters with a {:?} key; every row will be unmatched",
            a.register.display(),
            mapping.match_by
        );
    }
    if let Some(first) = matcher.conflicts().first() {
        eprintln!(
            "warning: register {} gives {} key(s) to two flats (first: {first:?}); the later entry is used",
            a.register.display(),
            matcher.conflicts().len()
        );
    }
    let store = match &a.db {
        Some(p) => Store::open_file(p)?,
        None => Store::open_in_memory()?,
    };
    let io = |file: &PathBuf| {
        let file = file.display().to_string();
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
    let mut shown = 0u64;
    let mut on_reject = |r: &Rejected<'_>| match reject_file.as_mut() {
        Some(f) => super::write_reject(f, r),
        None => {
            shown += 1;
            if shown <= SHOWN_REJECTS {
                eprintln!(
                    "{}:{}: {}: {}",
                    r.file,
                    r.line,
                    r.reason.as_str(),
                    r.text.trim_end()
                );
            }
            Ok(())
        }
    };
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut last = started;
    let mut on_progress = |p: &Progress<'_>| {
        if !terminal || last.elapsed() < Duration::from_millis(500) {
            return;
        }
        last = Instant::now();
        let pct = (100 * p.bytes).checked_div(p.size).unwrap_or(100);
        let rate = p.rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{}: {pct:>3} %, {} rows, {:.0} rows/s   ",
            p.file.display(),
            p.rows,
            rate
        );
    };
    let result = super::import(
        &store,
        &mapping,
        &matcher,
        &a.files,
        &mut on_reject,
        &mut on_progress,
    );
    if terminal {
        eprintln!();
    }
    let summary = result?;
    if let (Some(f), Some(p)) = (reject_file.as_mut(), &a.reject) {
        f.flush().map_err(io(p))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({ "summary": summary, "seconds": seconds, "rejected_total": summary.rejected_total() });
        println!("{v}");
    } else {
        print!("{}", describe(&summary, seconds, a));
    }
    // Which rules can judge data this coarse, so nobody expects alerts a
    // daily export cannot give (docs/detection.md).
    eprintln!("note: {}", resolution_note(&mapping));
    if a.reject.is_none() && shown > SHOWN_REJECTS {
        eprintln!(
            "… and {} more rejected rows (give --reject FILE to keep them all)",
            shown - SHOWN_REJECTS
        );
    }
    Ok(summary.exit_code())
}

/// What the rules can make of a source at its resolution, read from its
/// time format: no hour means daily registers, no day monthly ones.
pub fn resolution_note(mapping: &Mapping) -> String {
    let f = &mapping.timestamp.format;
    let kind = mapping.kind.as_str();
    let minute_rules = "group_rental, indoor_charging_*, night_water_leak, three_in_one and the \
                        meter-health rules need a gateway's minutes and hours and do not judge it";
    match (f.contains("%H"), f.contains("%d"), kind) {
        (true, _, _) => format!(
            "{kind} readings with times of day; `assess` judges them with \
             group_rental_utility (it reads the first register of each day); {minute_rules}"
        ),
        (false, true, "gas") => {
            format!("daily gas readings: no rule judges gas at this resolution; {minute_rules}")
        }
        (false, true, _) => format!(
            "daily {kind} readings: `assess` judges them with group_rental_utility \
             (daily electricity with monthly or daily water); {minute_rules}"
        ),
        (false, false, "water") => format!(
            "monthly water readings: `assess` judges them with group_rental_utility \
             (with daily electricity); {minute_rules}"
        ),
        (false, false, _) => format!(
            "monthly {kind} readings: too coarse for any rule (group_rental_utility needs \
             daily electricity); kept for the record"
        ),
    }
}

/// The summary for a person.
fn describe(s: &Summary, seconds: f64, a: &ReadingsArgs) -> String {
    let rate = s.rows as f64 / seconds.max(1e-3);
    let mut out = format!(
        "imported {} file(s) in {seconds:.1} s ({rate:.0} rows/s){}\n",
        s.files,
        if a.db.is_none() {
            ", dry run: nothing kept (no --db)"
        } else {
            ""
        }
    );
    out += &format!("  rows read   {:>12}\n", s.rows);
    out += &format!("  stored      {:>12}\n", s.stored);
    out += &format!("  unchanged   {:>12}\n", s.unchanged);
    out += &format!("  corrected   {:>12}\n", s.corrected);
    out += &format!(
        "  bad quality {:>12} (stored with the utility's flag)\n",
        s.quality_bad
    );
    let reasons: Vec<String> = s.rejected.iter().map(|(r, n)| format!("{r} {n}")).collect();
    out += &format!(
        "  rejected    {:>12}{}\n",
        s.rejected_total(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    if let Some(p) = &a.reject {
        out += &format!("  reject file {}\n", p.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(file: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config/imports")
            .join(file);
        resolution_note(&Mapping::load(&p).unwrap())
    }

    #[test]
    fn each_shipped_source_is_told_which_rules_can_judge_it() {
        assert!(
            note("sgcc-daily.toml").starts_with("daily electricity readings: `assess` judges them")
        );
        assert!(note("sgcc-15min.toml").contains("times of day"));
        assert!(note("water-monthly.toml").starts_with("monthly water readings: `assess`"));
        assert!(note("gas-daily.toml").starts_with("daily gas readings: no rule"));
        for f in ["sgcc-daily.toml", "water-monthly.toml"] {
            assert!(note(f).contains("do not judge it"), "{f}");
        }
    }
}
