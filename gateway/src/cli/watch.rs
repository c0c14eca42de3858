//! `gridwatch-gateway watch`: the live values of one device or all, for an
//! installer at the wiring cabinet. On a terminal the screen is redrawn in
//! place each round; piped, every device's poll is one plain line (local
//! time, device, `ok` and `name=value` pairs, or `error` and why), so a
//! script can grep it. Reads only, through the same drivers as `run`.
//!
//! Exit status: 0 when every watched device answered in the last round,
//! 1 when one did not, 2 when the config cannot be used or names no such
//! device. `--count 1` is a one-shot read for scripts.

use super::reach::Wires;
use crate::config::{DeviceConfig, GatewayConfig};
use crate::devices::PollOutcome;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// What `watch` was asked for on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only this device (its id in the config); all when `None`.
    pub device: Option<String>,
    /// Time from the start of one round to the start of the next.
    pub interval: Duration,
    /// Stop after this many rounds; run until Ctrl-C when `None`.
    pub count: Option<u64>,
    /// Time each device has to answer one poll.
    pub timeout: Duration,
}

/// A device's values by block (`None`: the device; `Some(n)`: socket n).
pub(crate) type Blocks = Vec<(Option<u16>, BTreeMap<String, f64>)>;

/// One device's answer in one round.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Device id.
    pub id: String,
    /// Profile model and where it is (`eastron-sdm120, 10.0.3.20:502 unit 7`).
    pub what: String,
    /// Values by block (`None`: the device; `Some(n)`: socket n), or why not.
    pub outcome: Result<Blocks, String>,
    /// How long the poll took.
    pub took: Duration,
}

/// Runs `watch` for the config at `path`; see the module for the exit status.
pub(super) fn run(path: &Path, options: &Options) -> ExitCode {
    let config = match GatewayConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let devices = match chosen(&config, options.device.as_deref()) {
        Ok(d) => d,
        Err(why) => {
            eprintln!("error: {}: {why}", path.display());
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
    let terminal = std::io::stdout().is_terminal();
    let all_answered = runtime.block_on(rounds(&config, &devices, options, terminal));
    if all_answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The devices to watch: the one named, or all. `Err` says why none.
fn chosen<'c>(
    config: &'c GatewayConfig,
    device: Option<&str>,
) -> Result<Vec<&'c DeviceConfig>, String> {
    let all: Vec<&DeviceConfig> = config.devices.iter().collect();
    match device {
        None if all.is_empty() => Err("the config has no [[devices]] to watch".into()),
        None => Ok(all),
        Some(name) => match all.iter().find(|d| d.id.as_str() == name) {
            Some(d) => Ok(vec![*d]),
            None => Err(format!(
                "no device {name:?} in the config; it has: {}",
                if all.is_empty() {
                    "none".to_owned()
                } else {
                    all.iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        },
    }
}

/// Polls and prints round after round; true when every device answered
/// in the last round (Ctrl-C ends the current wait, not a poll).
async fn rounds(
    config: &GatewayConfig,
    devices: &[&DeviceConfig],
    options: &Options,
    terminal: bool,
) -> bool {
    let mut wires = Wires::new(config, CancellationToken::new());
    let mut opened = Vec::new();
    for d in devices {
        opened.push((*d, wires.open(d, options.timeout)));
    }
    let mut round = 0u64;
    let all_answered = loop {
        round += 1;
        let started = Instant::now();
        let mut rows = Vec::new();
        for (d, device) in &mut opened {
            let what = format!("{}, {}", d.profile.model, d.transport.describe());
            let t = Instant::now();
            let outcome = match device {
                Err(why) => Err(why.clone()),
                Ok(device) => match tokio::time::timeout(options.timeout, device.poll()).await {
                    Err(_) => Err(format!(
                        "no answer within {}",
                        crate::net::words(options.timeout)
                    )),
                    Ok(outcome) => answered(outcome),
                },
            };
            rows.push(Row {
                id: d.id.as_str().to_owned(),
                what,
                outcome,
                took: t.elapsed(),
            });
        }
        let answered_all = rows.iter().all(|r| r.outcome.is_ok());
        let now = local_time(SystemTime::now());
        let text = if terminal {
            // Home, clear to the end: the table is redrawn in place.
            format!(
                "\x1b[H\x1b[J{}",
                frame(&config.gateway.id.to_string(), &now, options, &rows)
            )
        } else {
            lines(&now, &rows)
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            // The reader went away (`watch | head`): nothing more to show.
            break answered_all;
        }
        drop(out);
        if options.count.is_some_and(|n| round >= n) {
            break answered_all;
        }
        let wait = options.interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => break answered_all,
        }
    };
    for (_, device) in &mut opened {
        if let Ok(device) = device {
            device.close().await;
        }
    }
    all_answered
}

/// A poll's values by block, or why the device did not (fully) answer.
fn answered(outcome: PollOutcome) -> Result<Blocks, String> {
    match outcome {
        PollOutcome::Unreachable(why) => Err(format!("did not answer: {why}")),
        PollOutcome::Answered {
            measurements,
            errors,
        } => match errors.first() {
            Some(first) => Err(format!(
                "answered, but with {} problem(s), first: {first}",
                errors.len()
            )),
            None => Ok(measurements
                .into_iter()
                .map(|m| (m.socket, m.values))
                .collect()),
        },
    }
}

/// A value as a person reads it: no float noise, no trailing zeros.
fn number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// `id` or `id#socket`, as the readings' topics name a block.
fn block_name(id: &str, block: Option<u16>) -> String {
    match block {
        None => id.to_owned(),
        Some(s) => format!("{id}#{s}"),
    }
}

/// The piped form: one line per device and block.
pub(crate) fn lines(now: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows {
        match &r.outcome {
            Err(why) => {
                let _ = writeln!(out, "{now} {} error {why}", r.id);
            }
            Ok(blocks) => {
                for (block, values) in blocks {
                    let _ = write!(out, "{now} {} ok", block_name(&r.id, *block));
                    for (k, v) in values {
                        let _ = write!(out, " {k}={}", number(*v));
                    }
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// The terminal form: a heading, then each device with its values in columns.
pub(crate) fn frame(gateway: &str, now: &str, options: &Options, rows: &[Row]) -> String {
    let mut out = format!(
        "gateway {gateway}: live values at {now} (every {}; Ctrl-C to stop)\n",
        crate::net::words(options.interval)
    );
    for r in rows {
        out.push('\n');
        match &r.outcome {
            Err(why) => {
                let _ = writeln!(out, "{}  ({})  ERROR  {why}", r.id, r.what);
            }
            Ok(blocks) => {
                let _ = writeln!(
                    out,
                    "{}  ({})  ok in {} ms",
                    r.id,
                    r.what,
                    r.took.as_millis()
                );
                for (block, values) in blocks {
                    if let Some(s) = block {
                        let _ = writeln!(out, "  socket {s}");
                    }
                    let cells: Vec<String> = values
                        .iter()
                        .map(|(k, v)| format!("{k} {:>10}", number(*v)))
                        .collect();
                    for row in cells.chunks(3) {
                        let _ = writeln!(
                            out,
                            "    {}",
                            row.iter()
                                .map(|c| format!("{c:<36}"))
                                .collect::<String>()
                                .trim_end()
                        );
                    }
                }
            }
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` in the host's time zone (TZ, /etc/localtime).
fn local_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let time = libc::time_t::try_from(secs).unwrap_or(0);
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack
    // (glibc reads TZ and the zone file itself).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if !ok {
        return format!("{secs} s after 1970 (UTC)");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                id: "meter-1".into(),
                what: "eastron-sdm120, 127.0.0.1:5020 unit 1".into(),
                outcome: Ok(vec![(
                    None,
                    BTreeMap::from([
                        ("voltage_v".to_owned(), 230.10000000000002),
                        ("current_a".to_owned(), 1.5),
                    ]),
                )]),
                took: Duration::from_millis(12),
            },
            Row {
                id: "pile-1".into(),
                what: "gridwatch-ebp12, 127.0.0.1:5021 unit 1".into(),
                outcome: Err("did not answer: connection refused".into()),
                took: Duration::from_millis(3),
            },
        ]
    }

    #[test]
    fn piped_lines_are_one_per_device_with_name_value_pairs() {
        assert_eq!(
            lines("2026-12-06 13:15:02", &rows()),
            "2026-12-06 13:15:02 meter-1 ok current_a=1.5 voltage_v=230.1\n\
             2026-12-06 13:15:02 pile-1 error did not answer: connection refused\n"
        );
    }

    #[test]
    fn sockets_are_named_as_in_the_topics() {
        let r = Row {
            id: "pile-1".into(),
            what: String::new(),
            outcome: Ok(vec![(
                Some(2),
                BTreeMap::from([("power_w".to_owned(), 0.0)]),
            )]),
            took: Duration::ZERO,
        };
        assert_eq!(lines("t", &[r]), "t pile-1#2 ok power_w=0\n");
    }

    #[test]
    fn the_terminal_frame_shows_values_and_errors() {
        let options = Options {
            device: None,
            interval: Duration::from_secs(1),
            count: None,
            timeout: Duration::from_secs(1),
        };
        let f = frame("gw-1", "2026-12-06 13:15:02", &options, &rows());
        assert!(f.starts_with("gateway gw-1: live values at 2026-12-06 13:15:02"));
        assert!(f.contains("meter-1  (eastron-sdm120, 127.0.0.1:5020 unit 1)  ok in 12 ms"));
        assert!(f.contains("voltage_v      230.1"), "{f}");
        assert!(
            f.contains("pile-1  (gridwatch-ebp12, 127.0.0.1:5021 unit 1)  ERROR  did not answer")
        );
        assert!(!f.contains('\x1b'), "escape codes are added by the caller");
    }

    #[test]
    fn numbers_lose_float_noise_and_trailing_zeros() {
        assert_eq!(number(230.10000000000002), "230.1");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(0.000125), "0.000125");
    }

    #[test]
    fn a_named_device_must_exist() {
        let config = GatewayConfig::from_toml_str(
            r#"
[gateway]
id = "gw-1"
site = "s"
[mqtt]
host = "127.0.0.1"
[[devices]]
id = "meter-1"
profile = "eastron-sdm120"
protocol = "modbus_tcp"
host = "127.0.0.1"
"#,
            "test",
        )
        .unwrap();
        assert_eq!(chosen(&config, None).unwrap().len(), 1);
        assert_eq!(chosen(&config, Some("meter-1")).unwrap().len(), 1);
        let e = chosen(&config, Some("meter-2")).unwrap_err();
        assert!(
            e.contains("no device \"meter-2\"") && e.contains("meter-1"),
            "{e}"
        );
    }
}
