//! `scan --port`: the devices on an RS-485 line wired to the gateway, at
//! whichever baud rate and parity each one was set to.
//!
//! A line setting is tried by opening the port at it and asking every unit
//! id, exactly as [`scan_tcp`](super::scan_tcp) does behind an address
//! (same reads, same [`judge`](super::judge)); then the port is closed and
//! the next setting tried. Every id is asked at every setting: a device
//! set to another baud rate can sit at any id, so no sweep stops early.
//! A unit id already found is not asked again at a later setting: one id
//! names one device on a line, and a device that tolerates a wrong parity
//! would otherwise be listed twice.

use super::{candidates, identify, Found};
use crate::bus::modbus_rtu::{self, Parity, SerialBusConfig};
use crate::profile::Profile;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The baud rates tried when `--baud` names none, most common first.
pub const USUAL_BAUDS: [u32; 6] = [9600, 19200, 4800, 38400, 115200, 2400];
/// The parities tried when `--parity` names none: the Modbus default first.
pub const USUAL_PARITIES: [Parity; 3] = [Parity::Even, Parity::None, Parity::Odd];

/// One baud rate and parity of a serial line (8 data bits, 1 stop bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSetting {
    /// Bits per second.
    pub baud: u32,
    /// Parity bit of each character.
    pub parity: Parity,
}

impl LineSetting {
    /// `9600 8E1`, as installers write it.
    pub fn describe(&self) -> String {
        format!("{} 8{}1", self.baud, parity_letter(self.parity))
    }
}

/// `E`, `N` or `O`.
pub fn parity_letter(parity: Parity) -> char {
    match parity {
        Parity::None => 'N',
        Parity::Even => 'E',
        Parity::Odd => 'O',
    }
}

/// `"E"`, `"n"`, `"even"`, `"none"`, ... as a parity.
pub fn parse_parity(text: &str) -> Result<Parity, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "e" | "even" => Ok(Parity::Even),
        "n" | "none" => Ok(Parity::None),
        "o" | "odd" => Ok(Parity::Odd),
        _ => Err(format!("{text:?} is not a parity (E, N or O)")),
    }
}

/// What a scan found on a line: each unit with the setting it answered at.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundOnLine {
    /// The setting the unit answered at.
    pub setting: LineSetting,
    /// The unit and its profile.
    pub found: Found,
}

/// Scans `units` on the serial port `port` at each of `settings` in turn
/// against `profiles`, each read allowed `timeout`. Only reads are sent.
pub async fn scan_rtu(
    port: &Path,
    settings: &[LineSetting],
    units: RangeInclusive<u8>,
    profiles: &[Arc<Profile>],
    timeout: Duration,
) -> Vec<FoundOnLine> {
    let candidates = candidates(profiles);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for &setting in settings {
        let mut bus = SerialBusConfig::new("scan", port);
        bus.baud = setting.baud;
        bus.parity = setting.parity;
        bus.timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
        bus.retries = 0;
        let stop = CancellationToken::new();
        let (line, task) = modbus_rtu::spawn_joinable(&bus, stop.clone());
        for unit_id in units.clone() {
            if seen.contains(&unit_id) {
                continue;
            }
            // Never "offline": a unit that stays silent on one profile's
            // registers is still asked for the next profile's.
            let mut client = line.client(unit_id).offline_after_failures(u32::MAX);
            if let Some(found) = identify(&mut client, unit_id, &candidates).await {
                seen.insert(unit_id);
                out.push(FoundOnLine { setting, found });
            }
        }
        // The port is opened exclusively: let it close before the next setting.
        stop.cancel();
        drop(line);
        let _ = task.await;
    }
    out
}

/// A `[[buses]]` table and `[[devices]]` tables for the units matched with
/// at least `min_confidence`. One serial port is one bus at one setting:
/// the bus takes the setting most matched units answered at, and a unit
/// found at another setting is written as a comment saying to set it to
/// the bus's (or give it its own port) and scan again.
pub fn bus_tables(found: &[FoundOnLine], port: &Path, min_confidence: f64) -> String {
    let matched: Vec<(&FoundOnLine, &super::Judgement)> = found
        .iter()
        .filter_map(|f| {
            let j = f.found.best.as_ref()?;
            (j.confidence >= min_confidence).then_some((f, j))
        })
        .collect();
    let count = |s: LineSetting| matched.iter().filter(|(f, _)| f.setting == s).count();
    // The most common setting; the first found of equals.
    let Some(setting) = matched
        .iter()
        .map(|(f, _)| f.setting)
        .rev()
        .max_by_key(|&s| count(s))
    else {
        return String::new();
    };
    let bus_id = format!(
        "rs485-{}-8{}1",
        setting.baud,
        parity_letter(setting.parity).to_ascii_lowercase()
    );
    let parity = match setting.parity {
        Parity::None => "none",
        Parity::Even => "even",
        Parity::Odd => "odd",
    };
    let mut out = format!(
        "\n# found by `gridwatch-gateway scan`\n[[buses]]\nid = \"{bus_id}\"\n\
         port = \"{}\"\nbaud = {}\nparity = \"{parity}\"\n",
        port.display(),
        setting.baud
    );
    for (f, j) in &matched {
        let unit = f.found.unit_id;
        let table = format!(
            "[[devices]]\nid = \"{}-{unit}\"\nprofile = \"{}\"\nprotocol = \"modbus_rtu\"\n\
             bus = \"{bus_id}\"\nunit_id = {unit}\n",
            j.model, j.model
        );
        if f.setting == setting {
            let _ = write!(
                out,
                "\n# found by `gridwatch-gateway scan` ({:.0} % sure)\n{table}",
                j.confidence * 100.0
            );
        } else {
            let _ = write!(
                out,
                "\n# found by `gridwatch-gateway scan` at {}, not {}: set the device to {} \
                 (or give it its own port), scan again, then uncomment\n",
                f.setting.describe(),
                setting.describe(),
                setting.describe()
            );
            for line in table.lines() {
                let _ = writeln!(out, "# {line}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Judgement;

    #[test]
    fn parities_read_as_installers_write_them() {
        assert_eq!(parse_parity("E"), Ok(Parity::Even));
        assert_eq!(parse_parity("none"), Ok(Parity::None));
        assert_eq!(parse_parity(" o "), Ok(Parity::Odd));
        assert!(parse_parity("X").unwrap_err().contains("E, N or O"));
    }

    #[test]
    fn the_bus_takes_the_setting_most_units_answered_at() {
        let at = |baud, parity, unit_id| FoundOnLine {
            setting: LineSetting { baud, parity },
            found: Found {
                unit_id,
                best: Some(Judgement {
                    model: "eastron-sdm120".into(),
                    confidence: 0.8,
                    registers: 20,
                }),
            },
        };
        let found = [
            at(9600, Parity::Even, 1),
            at(9600, Parity::Even, 3),
            at(19200, Parity::None, 5),
        ];
        let text = bus_tables(&found, Path::new("/dev/ttyUSB0"), 0.5);
        assert_eq!(text.matches("[[buses]]").count(), 1, "{text}");
        assert!(text.contains(
            "id = \"rs485-9600-8e1\"\nport = \"/dev/ttyUSB0\"\nbaud = 9600\nparity = \"even\""
        ));
        assert!(text.contains("\nbus = \"rs485-9600-8e1\"\nunit_id = 3\n"));
        assert!(text.contains("at 19200 8N1, not 9600 8E1"), "{text}");
        assert!(text.contains("# unit_id = 5\n"), "{text}");
        assert_eq!(text.matches("\nunit_id").count(), 2, "{text}");
    }
}
