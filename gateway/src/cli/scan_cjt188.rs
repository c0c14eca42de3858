//! `gridwatch-gateway scan --port DEV --protocol cjt188`: the CJ/T 188
//! meters on a serial line, found by wildcard address reads
//! ([`crate::scan::cjt188`]), listed for a person and, with `--append`,
//! written as `[[devices]]` tables. Reads only.

use crate::bus::cjt188::Cjt188Line;
use crate::bus::modbus_rtu::Parity;
use crate::devices::cjt188::{kind, BAUD_RATES, DEFAULT_BAUD};
use crate::scan::cjt188::{scan, FoundMeter};
use gridwatch_cjt188::{MeterFamily, MeterType, DEFAULT_PREAMBLE};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The config's `meter_type` word for a type byte (the hex byte when the
/// standard names no word for it).
fn type_word(t: MeterType) -> String {
    match t {
        MeterType::COLD_WATER => "cold_water".into(),
        MeterType::HOT_WATER => "hot_water".into(),
        MeterType::GAS => "gas".into(),
        MeterType::HEAT => "heat".into(),
        other => format!("{:02X}", other.0),
    }
}

/// The `[[devices]]` tables of the meters found on `port` at `baud`.
pub(super) fn device_tables(found: &[FoundMeter], port: &Path, baud: u32) -> String {
    let mut out = String::new();
    for m in found {
        let prefix = match m.meter_type.family() {
            Some(MeterFamily::Gas) => "gm",
            Some(MeterFamily::Heat) => "hm",
            Some(MeterFamily::Water) => "wm",
            // "Other meters" (40H-49H) are not read by the gateway.
            _ => continue,
        };
        out.push_str(&format!(
            "\n[[devices]]\nid = \"{prefix}-{address}\"\nprotocol = \"cjt188\"\n\
             serial_port = \"{port}\"\nbaud = {baud}\nmeter_type = \"{t}\"\n\
             meter_address = \"{address}\"\n# unit = \"...\"  (the flat this meter serves)\n",
            address = m.address,
            port = port
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\""),
            t = type_word(m.meter_type),
        ));
    }
    out
}

/// Scans the line on `port` and prints the meters found; appends them to
/// `append` if given. Exit 1 when no meter answered.
pub(super) fn run(
    port: &Path,
    bauds: &[u32],
    parities: &[Parity],
    timeout_ms: u64,
    append: Option<&Path>,
) -> ExitCode {
    let fail = |why: String| {
        eprintln!("error: {why}");
        ExitCode::from(super::EXIT_CONFIG)
    };
    if !parities.is_empty() {
        return fail("--parity: a CJ/T 188 line is always 8E1 (even parity)".into());
    }
    let baud = match bauds {
        [] => DEFAULT_BAUD,
        [b] if BAUD_RATES.contains(b) => *b,
        [b] => return fail(format!("--baud {b}: CJ/T 188 meters use {BAUD_RATES:?}")),
        _ => {
            return fail("--baud: give one rate for a CJ/T 188 line (meters on it share it)".into())
        }
    };
    if let Err(e) = std::fs::metadata(port) {
        return fail(format!("--port {}: {e}", port.display()));
    }
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
    eprintln!(
        "asking for CJ/T 188 meters on {} at {baud} baud 8E1 (address reads only; each empty \
         branch waits {timeout_ms} ms)",
        port.display()
    );
    let line = Cjt188Line::new(port.to_path_buf(), baud);
    let scanned = runtime.block_on(scan(
        &line,
        DEFAULT_PREAMBLE,
        Duration::from_millis(timeout_ms),
        |m| eprintln!("found meter {} (type {})", m.address, m.meter_type),
    ));
    let scanned = match scanned {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the scan of {} stopped: {e}", port.display());
            return ExitCode::FAILURE;
        }
    };
    let mut out = format!("{:<16}{:<6}{}\n", "address", "type", "reads as");
    for m in &scanned.meters {
        let reads_as =
            kind(m.meter_type).map_or("not read (other meter)".to_owned(), |k| k.to_string());
        out.push_str(&format!(
            "{:<16}{:<6}{reads_as}\n",
            m.address.to_string(),
            m.meter_type.to_string()
        ));
    }
    print!("{out}");
    println!(
        "{} meter(s) on {} ({} requests)",
        scanned.meters.len(),
        port.display(),
        scanned.asked
    );
    for a in &scanned.shared {
        eprintln!(
            "warning: more than one meter answers at address {a}; they cannot be told apart \
             until one is renumbered or moved to another line"
        );
    }
    if let Some(file) = append {
        let text = device_tables(&scanned.meters, port, baud);
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = written {
            eprintln!("error: cannot append to {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
        eprintln!(
            "appended {} meter(s) to {}; set each one's unit, then run `gridwatch-gateway check -c {}`",
            text.matches("\n[[devices]]").count(),
            file.display(),
            file.display()
        );
    }
    if scanned.meters.is_empty() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayConfig;
    use gridwatch_cjt188::Address;

    #[test]
    fn the_protocol_is_chosen_on_the_command_line() {
        use super::super::{Cli, Command};
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["gridwatch-gateway", "scan"].iter().chain(args)).map(|c| c.command)
        };
        let Ok(Some(Command::Scan { protocol, .. })) =
            parse(&["--port", "/dev/ttyUSB1", "--protocol", "cjt188"])
        else {
            panic!("scan --protocol cjt188 parses")
        };
        assert_eq!(protocol.as_deref(), Some("cjt188"));
        let Ok(Some(Command::Scan { protocol, .. })) = parse(&["--port", "/dev/ttyUSB1"]) else {
            panic!("scan --port parses")
        };
        assert_eq!(protocol, None, "Modbus RTU unless told");
        assert!(parse(&["--port", "/dev/ttyUSB1", "--protocol", "mbus"]).is_err());
    }

    #[test]
    fn bad_line_settings_are_refused_before_the_port_is_opened() {
        // A path that exists: only the settings can be refused.
        let port = Path::new("/dev/null");
        for (bauds, parities) in [
            (&[2400u32][..], &[Parity::None][..]),
            (&[9000][..], &[][..]),
            (&[2400, 9600][..], &[][..]),
        ] {
            assert_eq!(
                run(port, bauds, parities, 100, None),
                ExitCode::from(super::super::EXIT_CONFIG)
            );
        }
    }

    #[test]
    fn appended_tables_are_a_valid_config() {
        let found = [
            FoundMeter {
                address: Address::parse("00000000000001").unwrap(),
                meter_type: MeterType::COLD_WATER,
            },
            FoundMeter {
                address: Address::parse("00000000000002").unwrap(),
                meter_type: MeterType(0x31),
            },
            FoundMeter {
                address: Address::parse("00000000000009").unwrap(),
                meter_type: MeterType(0x40),
            },
        ];
        let text = format!(
            "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n{}",
            device_tables(&found, Path::new("/dev/ttyUSB1"), 2400)
        );
        let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
        let ids: Vec<&str> = config.devices.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["wm-00000000000001", "gm-00000000000002"]);
    }
}
