//! The `gridwatch-gateway` command line.
//!
//! `run` (the default) starts the daemon; `check` validates a config and the
//! profiles it uses and prints what the gateway would do; `watch` shows live
//! values while wiring. Errors print as one
//! sentence naming file, line and field; a config error exits with status 2
//! (so a systemd unit or an install script can tell it from a crash), any
//! other failure with 1.

mod check;
pub mod credentials;
mod provision;
mod reach;
mod readers;
mod remote;
mod scan;
mod scan_cjt188;
mod scan_dlt645;
pub mod selftest;
mod watch;

use crate::config::{ConfigError, GatewayConfig};
use clap::{Parser, Subcommand};
use gridwatch_telemetry::SystemClock;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Where a packaged gateway keeps its config.
pub const DEFAULT_CONFIG: &str = "/etc/gridwatch/gateway.toml";

/// Exit status for a config that cannot be used.
pub const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "gridwatch-gateway",
    version,
    about = "Polls a building's charging piles and meters and streams readings to MQTT",
    long_about = "Polls a building's charging piles and meters and streams readings to MQTT.\n\n\
                  Without a command, runs the gateway (same as `run`)."
)]
struct Cli {
    /// Gateway config file.
    #[arg(short, long, global = true, default_value = DEFAULT_CONFIG, value_name = "FILE")]
    config: PathBuf,
    /// More log output (-v: gateway debug, -vv: everything debug, -vvv: trace).
    /// RUST_LOG, when set, takes precedence.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway until SIGINT or SIGTERM (the default command).
    Run,
    /// Validate the config and every profile it uses, and print a summary.
    Check {
        /// Print the summary as JSON, for tools.
        #[arg(long)]
        json: bool,
        /// Check the config only, not this host's files and serial ports
        /// (for a config written on another machine).
        #[arg(long)]
        config_only: bool,
    },
    /// Find the Modbus devices behind a Modbus TCP address (a meter, or a
    /// TCP-to-RS-485 gateway) or on an RS-485 line (`--port`): asks each
    /// unit id with short timeouts (on a line, at each baud rate and
    /// parity), reads only, and matches each answering unit to a built-in
    /// profile. With `--protocol cjt188`, lists the CJ/T 188 meters on
    /// the line (`--port`) by wildcard address reads; with `--protocol
    /// dlt645`, finds the one DL/T 645 meter on the line by its broadcast
    /// address.
    Scan {
        /// The address, e.g. 192.168.1.20:502.
        #[arg(
            long,
            value_name = "HOST:PORT",
            required_unless_present = "port",
            conflicts_with = "port"
        )]
        host: Option<String>,
        /// The serial port of an RS-485 line, e.g. /dev/ttyUSB0 (Modbus RTU).
        #[arg(long, value_name = "DEVICE")]
        port: Option<PathBuf>,
        /// What the line at --port speaks [default: modbus]. `dlt645` sends
        /// the read-address request to AAAAAAAAAAAA at each baud rate
        /// [default: 2400,1200,4800,9600] and finds one meter per line;
        /// `cjt188` narrows a wildcard read down to every meter on the line.
        #[arg(long, value_parser = ["modbus", "cjt188", "dlt645"], requires = "port")]
        protocol: Option<String>,
        /// Baud rates to try on a line, e.g. 9600 or 9600,19200
        /// [default: 9600,19200,4800,38400,115200,2400].
        #[arg(long, value_delimiter = ',', value_parser = scan::baud, requires = "port")]
        baud: Vec<u32>,
        /// Parities to try on a line, e.g. E or E,N [default: E,N,O].
        #[arg(long, value_delimiter = ',', value_parser = crate::scan::rtu::parse_parity, requires = "port")]
        parity: Vec<crate::bus::modbus_rtu::Parity>,
        /// Unit ids to ask, e.g. 1-20 or 5.
        #[arg(long, default_value = "1-247", value_parser = scan::units)]
        units: std::ops::RangeInclusive<u8>,
        /// Time each unit has to answer one read [default: 200 over TCP,
        /// 100 on a line].
        #[arg(long)]
        timeout_ms: Option<u64>,
        /// Append the matched devices (as [[devices]] tables, and
        /// [[buses]] for a line) to this config.
        #[arg(long, value_name = "CONFIG")]
        append: Option<PathBuf>,
    },
    /// Check that this gateway works here: every device answers a read, the
    /// broker and InfluxDB accept a test write, the outbox has room, the
    /// clock is synchronised. One PASS/FAIL/SKIP line per check; exit 1 if
    /// any failed, 2 if the config cannot be loaded.
    Selftest {
        /// Print a JSON array of {check, status, detail}, for tools.
        #[arg(long)]
        json: bool,
        /// Also switch each GPIO output on for a moment (needs the rpi build).
        #[arg(long)]
        outputs: bool,
        /// Free space the outbox's file system must have, in MiB.
        #[arg(long, default_value_t = 100, value_name = "MIB")]
        min_free_mb: u64,
        /// Time each device, the broker and InfluxDB have to answer.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Show the live values of one device or all while wiring: redrawn in
    /// place on a terminal, one plain line per device when piped. Exit 0 when
    /// every device answered in the last round, 1 when one did not, 2 when
    /// the config cannot be used or names no such device.
    Watch {
        /// Only this device (its id in the config).
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
        /// Time between rounds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Stop after this many rounds (1: read once, for scripts);
        /// without it, until Ctrl-C.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Time each device has to answer one poll.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Print the pseudonyms of tag ids or plates (one per line on standard
    /// input, or as arguments), keyed with the site key: how the e-bike
    /// register for analytics is made without sending raw identities.
    Pseudonym {
        /// `tag` or `plate`: how they are normalised before hashing.
        #[arg(long, value_parser = ["tag", "plate"], default_value = "tag")]
        kind: String,
        /// The site key file; default: [pseudonym] site_key_file of the config.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Identities; without any, lines of standard input.
        identities: Vec<String>,
    },
    /// Make this gateway's broker login: writes a random password to
    /// DIR/<gateway>.mqtt-password (mode 0600) and prints the Mosquitto
    /// password-file entry and ACL lines (docs/security.md).
    Credentials {
        /// Site id (first topic level after the prefix).
        #[arg(long)]
        site: String,
        /// Gateway id.
        #[arg(long)]
        gateway: String,
        /// Folder for the password file.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Topic prefix the gateway publishes under.
        #[arg(long, default_value = gridwatch_telemetry::topic::DEFAULT_PREFIX)]
        prefix: String,
        /// Replace an existing password file.
        #[arg(long)]
        force: bool,
    },
    /// Make the key pair that signs remote configs: the private key stays
    /// with the operator, the public key goes to each gateway's [remote].
    ConfigKeygen(remote::KeygenArgs),
    /// Check a config (and profiles) and sign it at a version, for
    /// publishing to the gateway's cmd/_config topic.
    ConfigSign(remote::SignArgs),
    /// Make a new gateway's identity and secrets (broker password, site
    /// key; mode 0600) and the config that uses them; prints the broker's
    /// password-file entry and ACL lines.
    Provision(provision::ProvisionArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match cli.command.unwrap_or(Command::Run) {
        Command::Check { json, config_only } => match GatewayConfig::load(&cli.config) {
            Ok(config) => {
                let problems = if config_only {
                    Vec::new()
                } else {
                    config.host_problems()
                };
                if problems.is_empty() {
                    check::print(&config, json);
                    return ExitCode::SUCCESS;
                }
                for p in &problems {
                    eprintln!("error: {p}");
                }
                ExitCode::from(EXIT_CONFIG)
            }
            Err(e) => config_failure(&e),
        },
        Command::Scan {
            host,
            port,
            baud,
            parity,
            units,
            timeout_ms,
            append,
            protocol,
        } => match (host, port) {
            (Some(_), _) if protocol.is_some() => {
                eprintln!("error: --protocol is for a serial line (--port), not --host");
                ExitCode::from(EXIT_CONFIG)
            }
            (None, Some(_)) if protocol.as_deref() == Some("dlt645") && !parity.is_empty() => {
                eprintln!("error: --parity does not apply to DL/T 645, whose lines are 8E1");
                ExitCode::from(EXIT_CONFIG)
            }
            (None, Some(port)) if protocol.as_deref() == Some("dlt645") => {
                scan_dlt645::run(&port, &baud, timeout_ms.unwrap_or(500), append.as_deref())
            }
            (None, Some(port)) if protocol.as_deref() == Some("cjt188") => scan_cjt188::run(
                &port,
                &baud,
                &parity,
                timeout_ms.unwrap_or(200),
                append.as_deref(),
            ),
            (Some(host), _) => {
                scan::run(&host, units, timeout_ms.unwrap_or(200), append.as_deref())
            }
            (None, Some(port)) => scan::run_rtu(
                &port,
                &baud,
                &parity,
                units,
                timeout_ms.unwrap_or(100),
                append.as_deref(),
            ),
            (None, None) => {
                eprintln!("error: scan needs --host HOST:PORT or --port DEVICE");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Selftest {
            json,
            outputs,
            min_free_mb,
            timeout_ms,
        } => selftest::run(
            &cli.config,
            &selftest::Options {
                json,
                outputs,
                min_free_mb,
                timeout: std::time::Duration::from_millis(timeout_ms),
            },
        ),
        Command::Watch {
            device,
            interval_ms,
            count,
            timeout_ms,
        } => watch::run(
            &cli.config,
            &watch::Options {
                device,
                interval: std::time::Duration::from_millis(interval_ms),
                count,
                timeout: std::time::Duration::from_millis(timeout_ms),
            },
        ),
        Command::Pseudonym {
            kind,
            key_file,
            identities,
        } => pseudonym(&cli.config, &kind, key_file, &identities),
        Command::Credentials {
            site,
            gateway,
            out,
            prefix,
            force,
        } => match credentials::create(&site, &gateway, &prefix, &out, force) {
            Ok(c) => {
                println!(
                    "password file: {} (mode 0600; copy it to the gateway and name it in [mqtt] password_file, with username = \"{}\")\n\n\
                     add to the broker's password_file:\n{}\n\n\
                     ACL lines (the shipped gridwatch.acl patterns grant exactly these already):\n{}",
                    c.password_file.display(),
                    c.username,
                    c.passwd_entry,
                    c.acl
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::ConfigKeygen(args) => remote::keygen(&args),
        Command::ConfigSign(args) => remote::sign(&args),
        Command::Provision(args) => provision::run(&args),
        Command::Run => {
            let config = match GatewayConfig::load(&cli.config) {
                Ok(c) => c,
                Err(e) => return config_failure(&e),
            };
            if let Some(e) = config.missing_files().first() {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            for p in config.host_problems() {
                // A serial adapter may appear after the gateway starts.
                tracing::warn!("{p}; the gateway keeps trying");
            }
            // One thread: a reading costs microseconds of CPU between waits
            // for devices and the broker, so a second worker only adds
            // cross-thread wake-ups (futex calls) at every hand-off from
            // poller to outbox to uplink. What blocks (the outbox's fsync)
            // runs on tokio's blocking threads; the RS-485 line's silences
            // are timed on a timerfd on this thread (`modbus_rtu::Pause`).
            // See docs/BENCHMARKS.md.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run_until_signal(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn pseudonym(
    config: &std::path::Path,
    kind: &str,
    key_file: Option<PathBuf>,
    identities: &[String],
) -> ExitCode {
    let kind = if kind == "plate" {
        crate::pseudonym::IdentityKind::Plate
    } else {
        crate::pseudonym::IdentityKind::Tag
    };
    let key_file = match key_file {
        Some(k) => k,
        None => match GatewayConfig::load(config).map(|c| c.site_key_file) {
            Ok(Some(k)) => k,
            Ok(None) => {
                eprintln!(
                    "error: {} has no [pseudonym] site_key_file; pass --key-file",
                    config.display()
                );
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(e) => return config_failure(&e),
        },
    };
    let key = match crate::pseudonym::SiteKey::load(&key_file) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let stdout = std::io::stdout();
    let result = if identities.is_empty() {
        readers::pseudonymise_lines(&key, kind, std::io::stdin().lock(), stdout.lock())
    } else {
        let text = identities.join("\n");
        readers::pseudonymise_lines(&key, kind, text.as_bytes(), stdout.lock())
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_CONFIG)
}

async fn run_until_signal(config: GatewayConfig) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop requested");
        signals.cancel();
    });
    crate::supervisor::run(config, Arc::new(SystemClock), shutdown).await
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "info,gridwatch_gateway=debug",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not for journald or files.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_run() {
        let cli = Cli::try_parse_from(["gridwatch-gateway", "--config", "x.toml"]).unwrap();
        assert!(cli.command.is_none());
        let cli =
            Cli::try_parse_from(["gridwatch-gateway", "check", "-c", "x.toml", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Check {
                json: true,
                config_only: false
            })
        ));
    }
}
