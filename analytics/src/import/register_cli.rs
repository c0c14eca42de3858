//! The command line of `import register`: reads the register, merges the
//! exports into it as of `--since`, writes it back atomically (unless
//! `--dry-run`) and prints a summary. Exit codes as for `import readings`.

use super::register_export::{merge, write_reject_line, RegisterMapping, RegisterSummary};
use super::{ImportError, EXIT_OK, EXIT_REJECTED, EXIT_USAGE};
use crate::register::{dates, RegisterFile};
use clap::Args;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// `import register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The platform export's mapping file (TOML, see config/imports/).
    #[arg(long)]
    pub mapping: PathBuf,
    /// The register file to merge into (created if absent).
    #[arg(long)]
    pub register: PathBuf,
    /// The local date the export describes (YYYY-MM-DD): changed flats get
    /// an entry in force from that day.
    #[arg(long)]
    pub since: String,
    /// Write every rejected row here (TSV: file, line, reason, text).
    #[arg(long)]
    pub reject: Option<PathBuf>,
    /// Check and count only; the register file is not written.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// The exports (CSV, plain or gzip).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `import register`; returns the exit code.
pub fn run(a: &RegisterArgs) -> u8 {
    if dates::parse_date(&a.since).is_none() {
        eprintln!("error: --since {:?} is not a date (YYYY-MM-DD)", a.since);
        return EXIT_USAGE;
    }
    match try_run(a) {
        Ok(s) => {
            print_summary(a, &s);
            if s.rejected_total() > 0 {
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

fn try_run(a: &RegisterArgs) -> Result<RegisterSummary, ImportError> {
    let mapping = RegisterMapping::load(&a.mapping)?;
    let mut register = if a.register.exists() {
        RegisterFile::load(&a.register)?
    } else {
        RegisterFile::default()
    };
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
    let mut shown = 0;
    let mut on_reject =
        |file: &str, line: u64, why: &'static str, text: &str| match reject_file.as_mut() {
            Some(f) => write_reject_line(f, file, line, why, text),
            None => {
                shown += 1;
                if shown <= 10 {
                    eprintln!("{file}:{line}: {why}: {}", text.trim_end());
                }
                Ok(())
            }
        };
    let files: Vec<&Path> = a.files.iter().map(PathBuf::as_path).collect();
    let summary = merge(&mut register, &mapping, &a.since, &files, &mut on_reject)?;
    if let (Some(f), Some(p)) = (reject_file.as_mut(), &a.reject) {
        f.flush().map_err(io(p))?;
    }
    if !a.dry_run && summary.added + summary.changed + summary.corrected > 0 {
        register
            .save(&a.register)
            .map_err(|source| ImportError::Io {
                file: a.register.display().to_string(),
                source,
            })?;
    }
    Ok(summary)
}

fn print_summary(a: &RegisterArgs, s: &RegisterSummary) {
    if a.json {
        match serde_json::to_string(s) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("error: cannot print the summary: {e}"),
        }
        return;
    }
    let reasons: Vec<String> = s.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "register {} as of {}{}",
        a.register.display(),
        a.since,
        if a.dry_run {
            " (dry run: not written)"
        } else {
            ""
        }
    );
    println!("  rows read      {:>8}", s.rows);
    println!("  flats added    {:>8}", s.added);
    println!(
        "  changed        {:>8} (a new entry from {})",
        s.changed, a.since
    );
    println!(
        "  corrected      {:>8} (the entry of {} replaced)",
        s.corrected, a.since
    );
    println!("  unchanged      {:>8}", s.unchanged);
    if s.rejected_total() > 0 {
        println!(
            "  rejected       {:>8} ({})",
            s.rejected_total(),
            reasons.join(", ")
        );
    }
    if let Some(r) = &a.reject {
        println!("  reject file    {}", r.display());
    }
}
