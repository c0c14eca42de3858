//! A DL/T 645 serial line shared by the meters on it: one request at a
//! time, each answered (or timed out) before the next is sent.
//!
//! The line itself (opening, echoes, noise, timeouts) is shared with
//! CJ/T 188 ([`super::framed_line`]); here is what is DL/T 645's: its
//! frames, and which frame answers a request (from the meter, to the
//! function asked, from the address asked).

use super::framed_line::{FramedLine, Protocol};
use gridwatch_dlt645::{DecodeError, Frame, Receiver};

/// A DL/T 645 line: one request at a time ([`super::framed_line`]).
pub type Dlt645Line = FramedLine<Dlt645>;

/// Why a request on a DL/T 645 line got no usable answer.
pub type LineError = super::framed_line::LineError<DecodeError>;

/// DL/T 645-2007 frames on a [`FramedLine`].
pub struct Dlt645;

impl Protocol for Dlt645 {
    type Frame = Frame;
    type Receiver = Receiver;
    type DecodeError = DecodeError;
    const MAX_WIRE: usize = gridwatch_dlt645::MAX_FRAME_LEN + gridwatch_dlt645::MAX_WAKE_UP;

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
        gridwatch_dlt645::decode(pending)
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
        && frame.address.accepts(&request.address)
}
