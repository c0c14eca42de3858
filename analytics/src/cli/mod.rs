//! The `gridwatch-analytics` command line: `run`, `check`, `replay`,
//! `evaluate`, `summarize`, `explain` and `import`.
//!
//! Errors are one line on stderr. Exit codes: 0 success, 1 the service failed
//! at run time, 2 the command line or the config is wrong (so that systemd and
//! install scripts can tell "fix the file" from "look at the logs"). `import`
//! has its own, for scripts that load exports (see [`crate::import::cli`]).

use crate::config::AnalyticsConfig;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Gridwatch analytics: consumes readings from MQTT, runs the detectors and
/// publishes alerts to `alerts/{cell}/{severity}`.
#[derive(Debug, Parser)]
#[command(name = "gridwatch-analytics", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to the broker and process readings until SIGINT or SIGTERM.
    Run {
        /// The analytics config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Load and validate the config, print what it will do, and exit.
    Check {
        /// The analytics config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
        /// Print the effective config (defaults filled in) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the detectors over a recording (JSON lines of readings and events)
    /// as fast as possible and print what they raised.
    Replay {
        /// The recording (`gridwatch-sim district` writes recording.jsonl).
        recording: PathBuf,
        /// The analytics config; defaults if absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The register of flats and tags; else the config's `[register] path`;
        /// else register.json beside the recording.
        #[arg(long)]
        register: Option<PathBuf>,
        /// Write every alert as JSON lines here.
        #[arg(long)]
        alerts: Option<PathBuf>,
        /// Stop at the first unreadable line instead of counting and
        /// skipping it (the skipped lines are listed by number either way).
        #[arg(long)]
        strict: bool,
        /// Survive a kill -9: save the detectors' state here every
        /// `--checkpoint-every` records and resume from it when started
        /// again. `--alerts` becomes the alert log, written as alerts are
        /// raised (each line names the record it came after).
        #[arg(long, requires = "alerts", conflicts_with = "strict")]
        checkpoint: Option<PathBuf>,
        /// Records between two checkpoints.
        #[arg(long, default_value_t = 10_000)]
        checkpoint_every: u64,
    },
    /// Replay a recording and score the alerts against its ground truth:
    /// precision, recall, F1 and median time to detect per detector.
    Evaluate {
        /// The recording.
        recording: PathBuf,
        /// The ground truth; truth.json beside the recording if absent.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// The register; else the config's `[register] path`; else
        /// register.json beside the recording.
        #[arg(long)]
        register: Option<PathBuf>,
        /// The analytics config; defaults if absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Write the evaluation as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the evaluation as Markdown here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write one SVG chart per rule (`<rule>.svg`) into this directory.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Stop at the first unreadable line instead of counting and
        /// skipping it (the skipped lines are listed by number either way).
        #[arg(long)]
        strict: bool,
    },
    /// Summarise evaluations of one scenario over seeds (the JSON files of
    /// `evaluate --json`): per rule, mean (min–max) of precision, recall,
    /// F1 and time to detect, as Markdown tables.
    Summarize {
        /// The evaluation files, one per seed.
        #[arg(required = true)]
        evaluations: Vec<PathBuf>,
        /// Write the summary as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write one SVG chart per rule (`<rule>.svg`) into this directory.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Replay a recording and print, for one flat (or the flat of one
    /// meter), every decision of the charger-signature detector in local
    /// time with the numbers that decided it; for one charging socket,
    /// every change of the pile rules' conditions and sessions.
    #[command(group(clap::ArgGroup::new("entity").required(true).args(["flat", "meter", "socket"])))]
    Explain {
        /// The recording.
        recording: PathBuf,
        /// The flat, `site/building/unit` as alerts name it.
        #[arg(long)]
        flat: Option<String>,
        /// An electricity meter's device id; its flat is explained.
        #[arg(long)]
        meter: Option<String>,
        /// A charging socket, `site/gateway/device#N` as alerts name it;
        /// the pile rules are explained.
        #[arg(long)]
        socket: Option<String>,
        /// The analytics config; defaults if absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The register; else register.json beside the recording.
        #[arg(long)]
        register: Option<PathBuf>,
        /// Print the decisions as JSON (for tools) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Bulk import of utility exports (`import readings`).
    #[command(subcommand)]
    Import(crate::import::cli::ImportCommand),
    /// Run the utility-resolution rules (group rental from daily
    /// electricity and monthly water) over the readings imported from the
    /// utilities, and record what they find as cases.
    Assess {
        /// The analytics config: its store, register and directory.
        #[arg(long, short)]
        config: PathBuf,
        /// First local date of imported readings to read (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last local date (inclusive).
        #[arg(long)]
        to: String,
    },
    /// One analytics worker of a city: partitions of a NATS JetStream
    /// stream, leases, checkpoints and alerts in PostgreSQL (docs/scale.md).
    Worker(worker::WorkerArgs),
}

/// Exit code for a wrong command line or config.
pub use crate::toml_file::EXIT_CONFIG;

mod describe;
mod replay;
pub use describe::describe;
mod worker;
use replay::{replay_file, replay_inputs};

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `import` reports a wrong command line as 1, like a wrong mapping.
        Err(e) if e.use_stderr() && std::env::args().nth(1).as_deref() == Some("import") => {
            let _ = e.print();
            return ExitCode::from(crate::import::EXIT_USAGE);
        }
        Err(e) => e.exit(),
    };
    init_logging();
    match cli.command {
        Command::Check { config, json } => match AnalyticsConfig::load(&config) {
            Ok(c) => {
                // Everything `run` refuses before it starts, not only the file.
                if let Err(e) = crate::config::preflight::preflight(&c) {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(EXIT_CONFIG);
                }
                if json {
                    match serde_json::to_string_pretty(&c) {
                        Ok(text) => println!("{text}"),
                        Err(e) => {
                            eprintln!("error: cannot print the config as JSON: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                } else {
                    println!("{}: OK", config.display());
                    print!("{}", describe(&c));
                }
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Command::Replay {
            recording,
            config,
            register,
            alerts,
            strict,
            checkpoint,
            checkpoint_every,
        } => match (checkpoint, &alerts) {
            (Some(checkpoint), Some(alert_log)) => {
                let files = crate::resume::ResumeFiles {
                    checkpoint,
                    alert_log: alert_log.clone(),
                };
                let input = match replay_inputs(&recording, config.as_deref(), register.as_deref())
                {
                    Ok(i) => i,
                    Err(code) => return code,
                };
                match crate::resume::replay_resumable(
                    &input.0,
                    input.1,
                    input.2,
                    &files,
                    checkpoint_every,
                ) {
                    Ok(r) => {
                        print!("{}", r.describe(&files));
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {}: {e}", recording.display());
                        ExitCode::FAILURE
                    }
                }
            }
            _ => match replay_file(&recording, config.as_deref(), register.as_deref(), strict) {
                Ok((r, _)) => {
                    print!("{}", r.describe());
                    if let Some(path) = alerts {
                        let mut text = String::new();
                        for a in &r.alerts {
                            match serde_json::to_string(a) {
                                Ok(line) => {
                                    text.push_str(&line);
                                    text.push('\n');
                                }
                                Err(e) => {
                                    eprintln!("error: cannot encode alert {}: {e}", a.id);
                                    return ExitCode::FAILURE;
                                }
                            }
                        }
                        if let Err(e) = std::fs::write(&path, text) {
                            eprintln!("error: cannot write {}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            },
        },
        Command::Evaluate {
            recording,
            truth,
            register,
            config,
            json,
            markdown,
            svg,
            strict,
        } => {
            let truth_path = truth.unwrap_or_else(|| beside(&recording, "truth.json"));
            let truth: crate::evaluate::truth::GroundTruth =
                match read_json(&truth_path, "ground truth") {
                    Ok(t) => t,
                    Err(code) => return code,
                };
            let (r, reg) =
                match replay_file(&recording, config.as_deref(), register.as_deref(), strict) {
                    Ok(r) => r,
                    Err(code) => return code,
                };
            // Every case must name a flat of the register (when there is one)
            // or a device of the recording: a case on nothing is a silent miss.
            let flats = |f: &str| reg.flat(f).is_some();
            let flats: Option<&dyn Fn(&str) -> bool> = (reg.flat_count() > 0).then_some(&flats);
            if let Err(e) = truth.check_entities(flats, &r.devices) {
                eprintln!("error: ground truth {}: {e}", truth_path.display());
                return ExitCode::from(EXIT_CONFIG);
            }
            let e = crate::evaluate::evaluate(&truth, &r.alerts);
            print!("{}", r.describe());
            print!("{}", e.table());
            if let Some(path) = &markdown {
                if let Err(err) = std::fs::write(path, e.markdown()) {
                    eprintln!("error: cannot write {}: {err}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            let charts = e.rules.iter().map(|s| {
                let chart = crate::evaluate::svg::rule_chart(s, &e.scenario, e.seed);
                (s.rule.clone(), chart)
            });
            if let Some(code) = write_svgs(svg.as_deref(), charts) {
                return code;
            }
            write_json(json.as_deref(), &e)
        }
        Command::Summarize {
            evaluations,
            json,
            svg,
        } => {
            let mut evals = Vec::new();
            for path in &evaluations {
                match read_json(path, "evaluation") {
                    Ok(e) => evals.push(e),
                    Err(code) => return code,
                }
            }
            let summary = match crate::evaluate::summary::summarize(&evals) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            print!("{}", summary.markdown());
            let charts = summary.rules.iter().map(|r| {
                let chart =
                    crate::evaluate::svg::summary_chart(r, &summary.scenario, &summary.seeds);
                (r.rule.clone(), chart)
            });
            if let Some(code) = write_svgs(svg.as_deref(), charts) {
                return code;
            }
            write_json(json.as_deref(), &summary)
        }
        Command::Explain {
            recording,
            flat,
            meter,
            socket,
            config,
            register,
            json,
        } => {
            if let Some(socket) = socket {
                return crate::explain_socket::run_cli(
                    &recording,
                    &socket,
                    config.as_deref(),
                    json,
                );
            }
            let target = match (flat, meter) {
                (Some(f), _) => crate::explain::Target::Flat(f),
                (None, Some(m)) => crate::explain::Target::Meter(m),
                (None, None) => unreachable!("clap requires --flat, --meter or --socket"),
            };
            crate::explain::run_cli(
                &recording,
                &target,
                config.as_deref(),
                register.as_deref(),
                json,
            )
        }
        Command::Import(command) => ExitCode::from(crate::import::cli::run(command)),
        Command::Assess { config, from, to } => crate::assess::run_cli(&config, &from, &to),
        Command::Worker(args) => worker::run(args),
        Command::Run { config } => {
            let c = match AnalyticsConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let shutdown = CancellationToken::new();
            let result = runtime.block_on(async {
                tokio::spawn(stop_on_signal(shutdown.clone()));
                crate::run(c, shutdown).await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Reads a JSON input file (`what` names it in the one-line error, which
/// carries serde's line and column); a bad input exits 2.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
) -> Result<T, ExitCode> {
    std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| {
            eprintln!("error: cannot read {what} {}: {e}", path.display());
            ExitCode::from(EXIT_CONFIG)
        })
}

/// Writes an output as pretty JSON when a path was given; exit 1 if it
/// cannot be written.
fn write_json<T: serde::Serialize>(path: Option<&std::path::Path>, value: &T) -> ExitCode {
    let Some(path) = path else {
        return ExitCode::SUCCESS;
    };
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    match std::fs::write(path, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: cannot write {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes the charts when a directory was given; the exit code if that
/// failed.
fn write_svgs(
    dir: Option<&std::path::Path>,
    charts: impl IntoIterator<Item = (String, String)>,
) -> Option<ExitCode> {
    let dir = dir?;
    match crate::evaluate::svg::write_all(dir, charts) {
        Ok(_) => None,
        Err(err) => {
            eprintln!("error: cannot write charts into {}: {err}", dir.display());
            Some(ExitCode::FAILURE)
        }
    }
}

/// `name` in the directory of `file`.
fn beside(file: &std::path::Path, name: &str) -> PathBuf {
    file.parent()
        .unwrap_or(std::path::Path::new("."))
        .join(name)
}

fn config_error(e: &crate::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stopping on signal");
    shutdown.cancel();
}
