//! Simulated CJ/T 188 water, gas and heat meters on a pseudo-terminal.
//!
//! Several meters share a bus, as they share an M-Bus or RS-485 pair in a
//! building. Their registers advance with time while their valves are open
//! ([`meter`]); each can be told to misbehave — answer abnormally, fall
//! silent, corrupt its checksum, cut its answer short, send noise first —
//! or to report a low battery or a closed valve, and to come back
//! ([`meter::Change`]). [`line`] is the protocol without I/O, [`pty`] puts
//! it on a pseudo-terminal pair, [`cli`] is `gridwatch-sim cjt188`.

pub mod cli;
pub mod line;
pub mod meter;
pub mod pty;

pub use line::Line;
pub use meter::{Behaviour, Change, Meter};
pub use pty::{PtyLine, SharedLine};

use gridwatch_cjt188::{Address, MeterType};

/// Carries out one stdin command, `<address|all> <word>` (for example
/// `00000000000002 silent`, `all normal`, `00000000000001 valve-closed`),
/// and says what changed.
pub fn command(line: &mut Line, text: &str) -> Result<String, String> {
    let mut words = text.split_whitespace();
    let (Some(who), Some(what), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "{text:?}: write <address|all> <behaviour>, e.g. \"00000000000001 silent\""
        ));
    };
    let change = Change::parse(what)?;
    let address = match who {
        "all" => None,
        a => Some(Address::parse(a).map_err(|e| format!("{a:?}: {e}"))?),
    };
    match line.apply(address, change) {
        0 => Err(format!("no meter {who} on this bus")),
        n => Ok(format!("{n} meter(s): {change:?}")),
    }
}

/// Parses a `--misbehave` argument, `<address|all>=<word>`, and applies it.
pub fn misbehave(line: &mut Line, arg: &str) -> Result<String, String> {
    let (who, what) = arg
        .split_once('=')
        .ok_or_else(|| format!("--misbehave {arg:?}: write ADDRESS=WORD or all=WORD"))?;
    command(line, &format!("{who} {what}")).map_err(|e| format!("--misbehave {arg:?}: {e}"))
}

/// Parses a `--meter` argument, `KIND:ADDRESS`: KIND is `water`,
/// `hot-water`, `gas`, `heat` or a type byte in hex (`10`-`49`), ADDRESS
/// the 14 digits on the meter. `index` spreads the starting registers.
pub fn parse_meter(arg: &str, index: usize) -> Result<Meter, String> {
    let (kind, address) = arg
        .split_once(':')
        .ok_or_else(|| format!("--meter {arg:?}: write KIND:ADDRESS, e.g. water:00000000000001"))?;
    let meter_type = match kind {
        "water" => MeterType::COLD_WATER,
        "hot-water" => MeterType::HOT_WATER,
        "gas" => MeterType::GAS,
        "heat" => MeterType::HEAT,
        hex => match u8::from_str_radix(hex, 16).map(MeterType) {
            Ok(t) if t.family().is_some() => t,
            _ => {
                return Err(format!(
                    "--meter {arg:?}: kind {kind:?} is not water, hot-water, gas, heat or a \
                     type byte 10-49"
                ))
            }
        },
    };
    let address = Address::parse(address).map_err(|e| format!("--meter {arg:?}: {e}"))?;
    if address.has_wildcard() {
        return Err(format!(
            "--meter {arg:?}: a meter's own address has no AA bytes"
        ));
    }
    // Plausible flats: water 0.02 m³/h on average, gas 0.05 m³/h, heat
    // 2 kW; registers spread so the meters are told apart.
    let n = index as f64;
    let (start, rate) = match meter_type.family() {
        Some(gridwatch_cjt188::MeterFamily::Heat) => (4000.0 + 500.0 * n, 2.0),
        Some(gridwatch_cjt188::MeterFamily::Gas) => (800.0 + 100.0 * n, 0.05),
        _ => (300.0 + 50.0 * n, 0.02),
    };
    Ok(Meter::new(meter_type, address, start, rate))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_cjt188::Valve;

    #[test]
    fn a_misspelt_behaviour_gets_the_word_meant() {
        let mut l = Line::new(vec![parse_meter("water:00000000000001", 0).unwrap()]);
        let e = command(&mut l, "all low-batery").unwrap_err();
        assert!(e.contains("did you mean \"low-battery\""), "{e}");
    }

    #[test]
    fn commands_change_the_named_meters() {
        let mut l = Line::new(vec![
            parse_meter("water:00000000000001", 0).unwrap(),
            parse_meter("gas:00000000000002", 1).unwrap(),
            parse_meter("20:00000000000003", 2).unwrap(),
        ]);
        assert_eq!(l.meters()[2].meter_type, MeterType::HEAT);
        assert!(command(&mut l, "00000000000002 silent").is_ok());
        assert_eq!(l.meters()[1].behaviour, Behaviour::Silent);
        assert_eq!(l.meters()[0].behaviour, Behaviour::Normal);
        assert!(command(&mut l, "all low-battery").is_ok());
        assert!(l.meters().iter().all(|m| m.battery_low));
        assert!(misbehave(&mut l, "00000000000001=valve-closed").is_ok());
        assert_eq!(l.meters()[0].valve, Valve::Closed);
        assert!(command(&mut l, "00000000000009 silent")
            .unwrap_err()
            .contains("no meter"));
        assert!(command(&mut l, "silent")
            .unwrap_err()
            .contains("<address|all>"));
        assert!(command(&mut l, "12 silent")
            .unwrap_err()
            .contains("14 digits"));
        assert!(misbehave(&mut l, "all")
            .unwrap_err()
            .contains("ADDRESS=WORD"));
        assert!(parse_meter("steam:00000000000001", 0)
            .unwrap_err()
            .contains("kind"));
        assert!(parse_meter("50:00000000000001", 0).is_err());
        assert!(parse_meter("water:AAAAAAAAAAAAAA", 0)
            .unwrap_err()
            .contains("AA"));
    }
}
