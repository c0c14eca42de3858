//! `gridwatch-gateway selftest`: whether this gateway, as configured, can
//! work here and now. One line per check (PASS, FAIL or SKIP and the
//! reason), or a JSON array with `--json`; exit 0 when nothing failed, 1
//! when something did, 2 when the config cannot be loaded (as `check`).
//!
//! Checks: the config and what it needs on this host; one read of every
//! device (never a write); a QoS 1 publish the broker acknowledges; a line
//! InfluxDB stores (if configured); the outbox folder is writable with room
//! to spare; the clock is synchronised; with `--outputs`, each GPIO output
//! switches on for a moment.

mod local;
pub mod probe;
mod remote;

use crate::config::GatewayConfig;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// What `selftest` is asked to do, from its command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// A JSON array instead of lines.
    pub json: bool,
    /// Also switch the GPIO outputs.
    pub outputs: bool,
    /// Free space the outbox's file system must have, in MiB.
    pub min_free_mb: u64,
    /// Time each device, the broker and InfluxDB have to answer.
    pub timeout: Duration,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Works.
    Pass,
    /// Does not work: the gateway would lose or miss data.
    Fail,
    /// Not applicable here (nothing configured, tool or feature missing).
    Skip,
}

/// One line of the report: which check, its outcome and why.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `config`, `device <id>`, `mqtt`, `influx`, `outbox`, `clock`, `outputs`.
    pub check: String,
    /// Its outcome.
    pub status: Status,
    /// The reason in words, naming what was tried.
    pub detail: String,
}

impl Check {
    fn new(check: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: detail.into(),
        }
    }
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Pass, detail)
    }
    fn fail(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Fail, detail)
    }
    fn skip(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Skip, detail)
    }
}

/// Runs every check for the config at `path` and prints the report.
pub(super) fn run(path: &Path, options: &Options) -> ExitCode {
    let config = match GatewayConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            let checks = [Check::fail("config", e.to_string())];
            print(&checks, options.json);
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
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
    // As in `run`: rumqttc and reqwest each bring a rustls back end.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let checks = runtime.block_on(checks(&config, options));
    print(&checks, options.json);
    if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Every check in report order, for a config that loaded (tests and tools
/// call this without the command line).
pub async fn checks(config: &GatewayConfig, options: &Options) -> Vec<Check> {
    let problems = config.host_problems();
    let mut checks = vec![if problems.is_empty() {
        Check::pass(
            "config",
            format!(
                "{} is valid and this host has every file and port it names",
                config.origin
            ),
        )
    } else {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Check::fail("config", list.join("; "))
    }];
    if config.devices.is_empty() {
        checks.push(Check::skip("devices", "no [[devices]] are configured"));
    }
    checks.extend(probe::devices(config, options.timeout).await);
    checks.push(probe::broker(config, options.timeout).await);
    checks.push(probe::influx(config, options.timeout).await);
    checks.push(local::outbox(config, options.min_free_mb));
    checks.push(local::clock());
    checks.push(remote::remote(config));
    if options.outputs {
        checks.push(local::outputs(config).await);
    }
    checks
}

/// Prints the report: aligned lines, or one JSON array.
fn print(checks: &[Check], json: bool) {
    if json {
        match serde_json::to_string_pretty(checks) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot write the report as JSON: {e}"),
        }
        return;
    }
    print!("{}", text(checks));
}

/// The report as lines: `PASS  device pile-1  (…) answered 14 values in 3 ms`.
fn text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let status = match c.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        };
        out.push_str(&format!(
            "{status}  {:<width$}  {}\n",
            c.check,
            c.detail.replace('\n', " ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_aligned_and_json_uses_upper_case_status() {
        let checks = [
            Check::pass("config", "fine"),
            Check::fail("device pile-1", "did not answer"),
            Check::skip("influx", "none"),
        ];
        let t = text(&checks);
        assert!(t.contains("PASS  config         fine\n"), "{t}");
        assert!(t.contains("FAIL  device pile-1  did not answer\n"), "{t}");
        let v: serde_json::Value = serde_json::to_value(&checks).unwrap();
        assert_eq!(v[1]["status"], "FAIL");
        assert_eq!(v[2]["check"], "influx");
    }

    #[test]
    fn the_test_topic_sits_beside_the_status_topic() {
        let cfg = GatewayConfig::from_toml_str(
            "[gateway]\nid = \"gw-1\"\nsite = \"yard\"\n[mqtt]\nhost = \"h\"\n\
             [[devices]]\nid = \"m3\"\nprotocol = \"dlt645\"\nserial_port = \"/dev/ttyUSB0\"\n\
             meter_address = \"000000000002\"\nphases = 3\n",
            "gw.toml",
        )
        .unwrap();
        assert_eq!(probe::selftest_topic(&cfg), "gw/yard/gw-1/selftest");
    }
}
