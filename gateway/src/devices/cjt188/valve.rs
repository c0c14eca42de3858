//! Valve commands for CJ/T 188 meters: `valve_open` and `valve_close` on a
//! meter's command topic become the standard's valve control (write data,
//! control `04H`, DI `A017H`, `55H` open / `99H` close), sent on the
//! meter's line between polls, and the meter's answer becomes the ack.
//!
//! A valve is not profile data (the standard fixes the request), so these
//! two actions are offered to every CJ/T 188 meter; one without a valve
//! answers abnormally and the ack says so. The answer's status word says
//! where the valve ended up: only a valve reported in the state asked for
//! is success. A meter that reports no status gets the benefit of the
//! doubt: the next reading's `valve_state` tells.
//!
//! [`command`] and [`outcome`] are pure; [`set_valve`] does the exchange.

use crate::bus::cjt188::Cjt188Line;
use gridwatch_cjt188::{Address, Answer, Command, Frame, MeterType, Request, Valve, ValveCommand};
use std::time::Duration;

/// The actions a CJ/T 188 meter takes on its command topic.
pub const ACTIONS: [&str; 2] = ["valve_open", "valve_close"];

/// The valve command of an action, or `None` for another action.
pub fn command(action: &str) -> Option<ValveCommand> {
    match action {
        "valve_open" => Some(ValveCommand::Open),
        "valve_close" => Some(ValveCommand::Close),
        _ => None,
    }
}

fn word(v: Valve) -> &'static str {
    match v {
        Valve::Open => "open",
        Valve::Closed => "closed",
        Valve::Abnormal => "abnormal (stuck or unknown)",
    }
}

/// What the meter's `answer` to `asked` means for the ack: what was done,
/// or why not.
pub fn outcome(asked: ValveCommand, answer: &Frame) -> Result<String, String> {
    let want = match asked {
        ValveCommand::Open => Valve::Open,
        ValveCommand::Close => Valve::Closed,
    };
    match answer
        .answer()
        .map_err(|e| format!("its answer is unusable: {e}"))?
    {
        Answer::Valve {
            status: Some(st), ..
        } if st.valve() == want => Ok(format!("valve {}", word(want))),
        Answer::Valve {
            status: Some(st), ..
        } => Err(format!(
            "it took the command but reports its valve {} (status {:02X} {:02X})",
            word(st.valve()),
            st.0[0],
            st.0[1]
        )),
        Answer::Valve { status: None, .. } => Ok(format!(
            "valve {} asked; the meter sent no status, its next reading's valve_state tells",
            if want == Valve::Open { "open" } else { "close" }
        )),
        Answer::Abnormal {
            status: Some(st), ..
        } => Err(format!(
            "it refused (abnormal answer, status {:02X} {:02X}: valve {})",
            st.0[0],
            st.0[1],
            word(st.valve())
        )),
        Answer::Abnormal { status: None, .. } => {
            Err("it refused (abnormal answer without a status)".to_owned())
        }
        other => Err(format!("it answered something else: {other:?}")),
    }
}

/// Sends valve command `asked` (with sequence number `ser`) to the meter of
/// `meter_type` at `address` on `line`, after `preamble` `FEH` bytes,
/// waiting up to `timeout`; the result as [`outcome`] says it.
pub async fn set_valve(
    line: &Cjt188Line,
    meter_type: MeterType,
    address: Address,
    preamble: usize,
    timeout: Duration,
    ser: u8,
    asked: ValveCommand,
) -> Result<String, String> {
    let request = Request {
        meter_type,
        address,
        ser,
        command: Command::Valve(asked),
    }
    .frame();
    let answer = line
        .transact(&request, preamble, timeout)
        .await
        .map_err(|e| format!("it did not answer: {e}"))?;
    outcome(asked, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_cjt188::{decode, Function, Status};

    fn meter() -> Address {
        Address::parse("78330011223344").unwrap()
    }

    #[test]
    fn actions_name_the_two_valve_commands() {
        assert_eq!(command("valve_open"), Some(ValveCommand::Open));
        assert_eq!(command("valve_close"), Some(ValveCommand::Close));
        assert_eq!(command("socket_off"), None);
        assert!(ACTIONS.iter().all(|a| command(a).is_some()));
    }

    /// Answers as a meter sends them, byte by byte: `84H` with DI `A017H`,
    /// SER and the status word (valve closed: ST0 01H).
    #[test]
    fn a_closed_valve_is_success_and_an_open_one_is_not() {
        let closed = [
            0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x84, 0x05, 0x17, 0xA0, 0x01,
            0x01, 0x00, 0x0F, 0x16,
        ];
        let (f, _) = decode(&closed).unwrap();
        assert_eq!(outcome(ValveCommand::Close, &f), Ok("valve closed".into()));
        let e = outcome(ValveCommand::Open, &f).unwrap_err();
        assert!(e.contains("reports its valve closed (status 01 00)"), "{e}");
    }

    #[test]
    fn a_refusal_a_stuck_valve_and_no_status_read_as_they_are() {
        let stuck = Frame::abnormal_answer(
            MeterType::GAS,
            meter(),
            Function::WriteData,
            1,
            Status::new(Valve::Abnormal, false),
        );
        let e = outcome(ValveCommand::Close, &stuck).unwrap_err();
        assert!(e.contains("refused") && e.contains("stuck"), "{e}");
        let bare = Frame::new(
            MeterType::GAS,
            meter(),
            gridwatch_cjt188::Control(0x84),
            &[0x17, 0xA0, 1],
        )
        .unwrap();
        let done = outcome(ValveCommand::Open, &bare).unwrap();
        assert!(done.contains("valve_state"), "{done}");
        let request = Request {
            meter_type: MeterType::GAS,
            address: meter(),
            ser: 1,
            command: Command::Valve(ValveCommand::Open),
        };
        let e = outcome(ValveCommand::Open, &request.frame()).unwrap_err();
        assert!(e.contains("unusable"), "{e}");
    }
}
