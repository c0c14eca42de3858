//! Finding a DL/T 645-2007 meter on a serial line: the read-address request
//! (`13H` to the wildcard address `AAAAAAAAAAAA`) at each usual baud rate,
//! then a read of its energy register and of phase B's voltage (which only
//! a three-phase meter has) to confirm and describe it.
//!
//! Every meter on the line answers the wildcard read, so on a line with
//! several meters the answers collide: this finds the meter of a line with
//! one (wire each new meter alone while scanning, or read its address off
//! its nameplate). Nothing is ever written to the meter.

use crate::bus::dlt645::{Dlt645Line, LineError};
use gridwatch_dlt645::{Address, Answer, DataId, Frame};
use std::path::Path;
use std::time::Duration;

/// Baud rates tried when none are given: the standard's default first,
/// then what meters are commonly set to.
pub const USUAL_BAUDS: [u32; 4] = [2400, 1200, 4800, 9600];
/// `FEH` wake-up bytes sent before each request.
const WAKE_UP: usize = 4;

/// The meter found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Its 12-digit address.
    pub address: Address,
    /// The baud rate it answered at.
    pub baud: u32,
    /// 1 or 3 phases (3 when it answers for phase B's voltage).
    pub phases: u8,
    /// Forward active energy, kWh, if it answered for it.
    pub energy_kwh: Option<f64>,
    /// Phase A voltage, V, if it answered for it.
    pub voltage_v: Option<f64>,
}

/// What was seen at each baud rate that gave no meter, for the person
/// scanning (garbled bytes point at a wrong baud rate or swapped A/B).
pub type Notes = Vec<String>;

/// Tries each of `bauds` (the usual ones when empty) on `port` and returns
/// the first meter that answers, with what happened at the others. `Err`
/// when the port cannot be opened.
pub async fn scan_dlt645(
    port: &Path,
    bauds: &[u32],
    timeout: Duration,
) -> Result<(Option<Found>, Notes), String> {
    let bauds = if bauds.is_empty() {
        &USUAL_BAUDS[..]
    } else {
        bauds
    };
    let mut notes = Vec::new();
    for &baud in bauds {
        let line = Dlt645Line::new(port.to_owned(), baud);
        let answer = match line
            .transact(&Frame::read_address(), WAKE_UP, timeout)
            .await
        {
            Ok(frame) => frame,
            Err(e @ LineError::Open { .. }) => return Err(e.to_string()),
            Err(e) => {
                notes.push(format!("{baud} baud: {e}"));
                continue;
            }
        };
        let address = match answer.answer() {
            Ok(Answer::Address(a)) => a,
            Ok(other) => {
                notes.push(format!(
                    "{baud} baud: an answer that is not an address ({other:?})"
                ));
                continue;
            }
            Err(e) => {
                notes.push(format!("{baud} baud: {e}"));
                continue;
            }
        };
        let read = |di: DataId| {
            let line = &line;
            async move {
                let frame = line
                    .transact(&Frame::read(address, di), WAKE_UP, timeout)
                    .await
                    .ok()?;
                match frame.answer().ok()? {
                    Answer::Data { di: got, value, .. } if got == di => {
                        di.format()?.decode(value).ok().map(|v| v.to_f64())
                    }
                    _ => None,
                }
            }
        };
        let energy_kwh = read(DataId::FORWARD_ACTIVE_ENERGY).await;
        let voltage_v = read(DataId::VOLTAGE_A).await;
        let phases = if read(DataId::VOLTAGE_A.phase(2)).await.is_some() {
            3
        } else {
            1
        };
        return Ok((
            Some(Found {
                address,
                baud,
                phases,
                energy_kwh,
                voltage_v,
            }),
            notes,
        ));
    }
    Ok((None, notes))
}

/// The table printed for `found`.
pub fn table(found: &Found, port: &Path) -> String {
    let value = |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v} {unit}"));
    format!(
        "{:<16} {:<14} {:<8} {:<7} {:<16} {}\n{:<16} {:<14} {:<8} {:<7} {:<16} {}\n",
        "PORT",
        "ADDRESS",
        "BAUD",
        "PHASES",
        "ENERGY",
        "VOLTAGE A",
        port.display(),
        found.address.to_string(),
        found.baud,
        found.phases,
        value(found.energy_kwh, "kWh"),
        value(found.voltage_v, "V"),
    )
}

/// The `[[devices]]` table that polls `found` on `port`.
pub fn device_table(found: &Found, port: &Path) -> String {
    format!(
        "\n[[devices]]\nid = \"meter-{addr}\"\nprotocol = \"dlt645\"\nserial_port = \"{port}\"\n\
         baud = {baud}\nmeter_address = \"{addr}\"\nphases = {phases}\n",
        addr = found.address,
        port = port.display(),
        baud = found.baud,
        phases = found.phases,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_table_is_a_config_the_gateway_takes() {
        let found = Found {
            address: Address::parse("000000000042").unwrap(),
            baud: 2400,
            phases: 3,
            energy_kwh: Some(12.5),
            voltage_v: None,
        };
        let text = format!(
            "[gateway]\nid = \"gw\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n{}",
            device_table(&found, Path::new("/dev/ttyUSB1"))
        );
        let config = crate::config::GatewayConfig::from_toml_str(&text, "t")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.devices[0].id.as_str(), "meter-000000000042");
        let t = table(&found, Path::new("/dev/ttyUSB1"));
        assert!(t.contains("000000000042") && t.contains("12.5 kWh"), "{t}");
    }
}
