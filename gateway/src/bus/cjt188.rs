//! A CJ/T 188 serial line (RS-485, or M-Bus behind a level converter)
//! shared by the water, gas and heat meters on it: one request at a time,
//! each answered (or timed out) before the next is sent.
//!
//! The line itself (opening, echoes, noise, timeouts) is shared with
//! DL/T 645 ([`super::framed_line`]); here is what is CJ/T 188's: its
//! frames, and which frame answers a request (from the meter, to the
//! function asked, of the meter type and address asked).

use super::framed_line::{FramedLine, Protocol};
use gridwatch_cjt188::{DecodeError, Frame, Receiver};

/// A CJ/T 188 line: one request at a time ([`super::framed_line`]).
pub type Cjt188Line = FramedLine<Cjt188>;

/// Why a request on a CJ/T 188 line got no usable answer.
pub type LineError = super::framed_line::LineError<DecodeError>;

/// CJ/T 188 frames on a [`FramedLine`].
pub struct Cjt188;

impl Protocol for Cjt188 {
    type Frame = Frame;
    type Receiver = Receiver;
    type DecodeError = DecodeError;
    const MAX_WIRE: usize = gridwatch_cjt188::MAX_FRAME_LEN + gridwatch_cjt188::MAX_PREAMBLE;

    fn receiver() -> Receiver {
        Receiver::new()
    }

    fn encode(frame: &Frame, lead: usize, out: &mut [u8]) -> std::io::Result<usize> {
        frame
            .encode(lead, out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }

    fn clear(receiver: &mut Receiver) {
        receiver.clear();
    }

    fn pending(receiver: &Receiver) -> &[u8] {
        receiver.pending()
    }

    fn push<'a>(receiver: &mut Receiver, bytes: &'a [u8]) -> &'a [u8] {
        receiver.push(bytes)
    }

    fn next_frame(receiver: &mut Receiver) -> Option<Result<Frame, DecodeError>> {
        receiver.next_frame()
    }

    fn why_cut_short(pending: &[u8]) -> Option<DecodeError> {
        gridwatch_cjt188::decode(pending)
            .err()
            .filter(|e| *e != DecodeError::Incomplete)
    }

    fn answers(request: &Frame, frame: &Frame) -> bool {
        answers(request, frame)
    }
}

/// Whether `frame` is the meter's answer to `request`.
fn answers(request: &Frame, frame: &Frame) -> bool {
    frame.control.from_meter()
        && frame.control.function() == request.control.function()
        && frame.meter_type.accepts(request.meter_type)
        && frame.address.accepts(&request.address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_cjt188::{Address, MeterData, MeterType, Request, Status, Valve};

    fn request(meter_type: MeterType, address: &str) -> Frame {
        Request {
            meter_type,
            address: Address::parse(address).unwrap(),
            ser: 7,
            command: gridwatch_cjt188::Command::ReadMeterData,
        }
        .frame()
    }

    fn answer(meter_type: MeterType, address: &str) -> Frame {
        let data = MeterData::Flow(gridwatch_cjt188::FlowData {
            current: gridwatch_cjt188::Reading::hundredths(100, gridwatch_cjt188::Unit::M3),
            settlement: gridwatch_cjt188::Reading::hundredths(100, gridwatch_cjt188::Unit::M3),
            time: gridwatch_cjt188::MeterTime {
                year: 2026,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
            },
            status: Status::new(Valve::Open, false),
        });
        Frame::meter_data_answer(meter_type, Address::parse(address).unwrap(), 7, &data).unwrap()
    }

    #[test]
    fn only_the_meter_asked_ends_a_request() {
        let asked = request(MeterType::COLD_WATER, "00000000000001");
        assert!(answers(
            &asked,
            &answer(MeterType::COLD_WATER, "00000000000001")
        ));
        assert!(!answers(&asked, &asked), "an echo of the request");
        assert!(!answers(
            &asked,
            &answer(MeterType::COLD_WATER, "00000000000002")
        ));
        assert!(!answers(&asked, &answer(MeterType::GAS, "00000000000001")));
        let any = request(MeterType::WILDCARD, "AAAAAAAAAAAAAA");
        assert!(answers(&any, &answer(MeterType::HEAT, "00000000000003")));
    }
}
