//! `gridwatch-sim scenario run FILE…`: test scenarios as files.
//!
//! A scenario names simulated devices (charging piles on Modbus TCP or as
//! RTU units on a pty, each its own `gridwatch-sim` process), a timeline
//! of commands sent to their control endpoints, and the alerts expected.
//! The runner brings up an embedded broker, a gateway with a generated
//! config and analytics (the same in-process pair the demo's yard uses,
//! [`crate::yard::spawn_gateway_and_analytics`]), plays the timeline at
//! the scenario's speed and compares the alerts that crossed the broker
//! with the expectations. Exit status: 0 every scenario passed, 1 one
//! failed its expectations, 2 one could not be run (bad file, a simulator
//! that did not start, a command refused).
//!
//! These are *test scenarios* (config/test-scenarios/); the district
//! scenarios of config/scenarios/ are something else: generators of a
//! synthetic district for `gridwatch-sim district`. docs/scenarios.md
//! describes the file format.

pub mod file;
mod run;
pub mod verdict;

pub use file::Scenario;
pub use verdict::{judge, SeenAlert, Verdict};

use std::io::Write;
use std::path::{Path, PathBuf};

/// `gridwatch-sim scenario …`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

/// What to do with scenario files.
#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Run scenario files (or every *.toml in a folder) and compare the
    /// alerts with the expectations; exit 0 all passed, 1 a scenario
    /// failed, 2 a scenario could not be run.
    Run {
        /// Scenario files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the generated configs, every command and alert as it comes.
        #[arg(long)]
        verbose: bool,
    },
    /// Check scenario files without running them (exit 0 or 2).
    Check {
        /// Scenario files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// How a scenario run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every expectation met, nothing unexpected.
    Passed,
    /// An expectation unmet or an unexpected alert.
    Failed,
    /// The scenario could not be run.
    Broken,
}

impl Outcome {
    /// The process exit status: 0, 1 or 2.
    pub fn code(self) -> u8 {
        match self {
            Self::Passed => 0,
            Self::Failed => 1,
            Self::Broken => 2,
        }
    }
}

/// The files named, folders expanded to their *.toml files (sorted).
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot list: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                anyhow::bail!("{}: no *.toml scenario files in this folder", p.display());
            }
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Runs the subcommand, printing to `out`; the worst outcome of all files.
pub async fn main(args: &Args, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let (paths, run, verbose) = match &args.command {
        Sub::Run { paths, verbose } => (paths, true, *verbose),
        Sub::Check { paths } => (paths, false, false),
    };
    let mut worst = Outcome::Passed;
    for path in files(paths)? {
        let outcome = if run {
            run_file(&path, &run::this_binary()?, verbose, out).await?
        } else {
            match Scenario::load(&path) {
                Ok(s) => {
                    writeln!(out, "{}: ok ({})", path.display(), s.name)?;
                    Outcome::Passed
                }
                Err(e) => {
                    writeln!(out, "{e:#}")?;
                    Outcome::Broken
                }
            }
        };
        worst = worst.max_with(outcome);
    }
    Ok(worst)
}

impl Outcome {
    fn max_with(self, other: Self) -> Self {
        if other.code() > self.code() {
            other
        } else {
            self
        }
    }
}

/// Loads, plays and judges one file, printing the verdict and the diff.
pub async fn run_file(
    path: &Path,
    sim_binary: &Path,
    verbose: bool,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let scenario = match Scenario::load(path) {
        Ok(s) => s,
        Err(e) => {
            writeln!(out, "BROKEN {e:#}")?;
            return Ok(Outcome::Broken);
        }
    };
    writeln!(
        out,
        "scenario {} ({}): {} s simulated at {}x",
        scenario.name,
        path.display(),
        scenario.duration(),
        scenario.speed
    )?;
    let wall = std::time::Instant::now();
    let played = match run::play(&scenario, sim_binary, verbose).await {
        Ok(p) => p,
        Err(e) => {
            writeln!(out, "BROKEN {}: {e:#}", path.display())?;
            return Ok(Outcome::Broken);
        }
    };
    for line in &played.log {
        writeln!(out, "{line}")?;
    }
    let verdict = judge(&scenario, &played.alerts);
    for line in &verdict.lines {
        writeln!(out, "{line}")?;
    }
    let (word, outcome) = if verdict.passed {
        ("PASSED", Outcome::Passed)
    } else {
        ("FAILED", Outcome::Failed)
    };
    writeln!(
        out,
        "{word} {} ({} alert(s) seen, {:.1} s wall clock)\n",
        scenario.name,
        played.alerts.len(),
        wall.elapsed().as_secs_f64()
    )?;
    Ok(outcome)
}
