//! Simulated DL/T 645-2007 electricity meters on a pseudo-terminal.
//!
//! One or several meters share a line, as they share an RS-485 pair in a
//! building's meter box. Their values change plausibly with time
//! ([`meter`]); each can be told to misbehave — answer abnormally, fall
//! silent, corrupt its checksum, cut its answer short, or send noise
//! first — and to come back ([`meter::Behaviour`]). [`line`] is the
//! protocol without I/O, [`pty`] puts it on a pseudo-terminal pair.
//! `gridwatch-sim dlt645` runs it from the command line and reads
//! misbehaviour commands from stdin ([`command`]).

pub mod line;
pub mod meter;
pub mod pty;

pub use line::Line;
pub use meter::{Behaviour, Meter};
pub use pty::{LineTiming, PtyLine, SharedLine};

use gridwatch_dlt645::Address;

/// Carries out one stdin command, `<address|all> <behaviour>` (for example
/// `000000000002 silent`, `all normal`, `000000000001 abnormal:02`), and
/// says what changed.
pub fn command(line: &mut Line, text: &str) -> Result<String, String> {
    let mut words = text.split_whitespace();
    let (Some(who), Some(what), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "{text:?}: write <address|all> <behaviour>, e.g. \"000000000001 silent\""
        ));
    };
    let behaviour = Behaviour::parse(what)?;
    let address = match who {
        "all" => None,
        a => Some(Address::parse(a).map_err(|e| format!("{a:?}: {e}"))?),
    };
    match line.set_behaviour(address, behaviour) {
        0 => Err(format!("no meter {who} on this line")),
        n => Ok(format!("{n} meter(s) now {behaviour:?}")),
    }
}

/// Parses a `--meter` argument: `ADDRESS[:PHASES]`, e.g. `000000000001:3`.
pub fn parse_meter(arg: &str, index: usize) -> Result<Meter, String> {
    let (address, phases) = arg.split_once(':').unwrap_or((arg, "1"));
    let address = Address::parse(address).map_err(|e| format!("--meter {arg:?}: {e}"))?;
    let phases = match phases {
        "1" => 1,
        "3" => 3,
        p => return Err(format!("--meter {arg:?}: phases {p:?} must be 1 or 3")),
    };
    // Distinct, plausible starting points per meter.
    let n = index as f64;
    Ok(Meter::new(
        address,
        phases,
        1200.0 + 350.0 * n,
        3.0 + 1.5 * n,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_change_the_named_meters() {
        let mut l = Line::new(vec![
            parse_meter("000000000001", 0).unwrap(),
            parse_meter("000000000002:3", 1).unwrap(),
        ]);
        assert_eq!(l.meters()[1].phases, 3);
        assert!(command(&mut l, "000000000002 silent").is_ok());
        assert_eq!(l.meters()[1].behaviour, Behaviour::Silent);
        assert_eq!(l.meters()[0].behaviour, Behaviour::Normal);
        assert!(command(&mut l, "all truncated").is_ok());
        assert!(l
            .meters()
            .iter()
            .all(|m| m.behaviour == Behaviour::Truncated));
        assert!(command(&mut l, "000000000009 silent")
            .unwrap_err()
            .contains("no meter"));
        assert!(command(&mut l, "silent")
            .unwrap_err()
            .contains("<address|all>"));
        assert!(command(&mut l, "12 silent")
            .unwrap_err()
            .contains("12 digits"));
        assert!(parse_meter("000000000001:2", 0)
            .unwrap_err()
            .contains("1 or 3"));
    }

    #[test]
    fn a_misspelt_behaviour_gets_the_word_meant() {
        let mut l = Line::new(vec![parse_meter("000000000001", 0).unwrap()]);
        let e = command(&mut l, "all sillent").unwrap_err();
        assert!(e.contains("did you mean \"silent\""), "{e}");
        assert_eq!(l.meters()[0].behaviour, Behaviour::Normal);
    }
}
