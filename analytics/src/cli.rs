//! The `gridwatch-analytics` command line: `run` and `check`.
//!
//! Errors are one line on stderr. Exit codes: 0 success, 1 the service failed
//! at run time, 2 the command line or the config is wrong (so that systemd and
//! install scripts can tell "fix the file" from "look at the logs").

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
}

/// Exit code for a wrong command line or config.
pub const EXIT_CONFIG: u8 = 2;

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Check { config, json } => match AnalyticsConfig::load(&config) {
            Ok(c) => {
                if let Some(path) = &c.directory.path {
                    if let Err(e) = crate::alerts::directory::Directory::load(path) {
                        return config_error(&e);
                    }
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

fn config_error(e: &crate::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

/// What a config will do, in a few lines for the person who wrote it.
pub fn describe(c: &AnalyticsConfig) -> String {
    let m = &c.mqtt;
    let s = &c.detect.socket_safety;
    let mut out = format!(
        "  broker    {} as {} ({} session), readings from {}/+/+/reading/+\n",
        m.broker(),
        m.client_id,
        if m.clean_session {
            "clean"
        } else {
            "persistent"
        },
        m.topic_prefix
    );
    out += &format!(
        "  cells     {} site(s) mapped, others go to {:?}\n",
        c.cells.sites.len(),
        c.cells.default
    );
    if s.enabled {
        out += &format!(
            "  sockets   overcurrent > {} A or overpower > {} W for {} s; over-temperature > {} °C for {} s \
             rising > {} °C/min; clear below × {} for {} s; gap {} s\n",
            s.overcurrent_a,
            s.overpower_w,
            s.persistence_s,
            s.overtemp_c,
            s.overtemp_persistence_s,
            s.overtemp_rise_c_per_min,
            s.clear_ratio,
            s.clear_s,
            s.max_gap_s
        );
    } else {
        out += "  sockets   socket_safety detector disabled\n";
    }
    out += &describe_handling(c);
    out
}

/// The store, directory, API and webhook lines of [`describe`].
fn describe_handling(c: &AnalyticsConfig) -> String {
    let a = &c.alerts.ack_within;
    let mut out = format!(
        "  alerts    escalate if not acknowledged within {} s (critical), {} s (major), {} s (minor); \
         cool-down {} s; re-check {} s after resolution\n",
        a.critical_s, a.major_s, a.minor_s, c.alerts.cooldown_s, c.alerts.recheck_after_s
    );
    out += &match &c.store.path {
        Some(p) => format!("  store     SQLite file {}\n", p.display()),
        None => {
            "  store     in memory (set [store] path to keep alerts across restarts)\n".to_owned()
        }
    };
    out += &match &c.directory.path {
        Some(p) => format!("  directory {}\n", p.display()),
        None => "  directory none: routing from [cells] only, no API users\n".to_owned(),
    };
    out += &match c.api.listen {
        Some(addr) => format!("  api       http://{addr}/ (dashboard) and /api/v1\n"),
        None => "  api       off\n".to_owned(),
    };
    if let Some(url) = &c.notify.webhook.url {
        out += &format!("  webhook   {url}\n");
    }
    out
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
