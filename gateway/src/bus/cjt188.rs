//! A CJ/T 188 serial line (RS-485, or M-Bus behind a level converter)
//! shared by the water, gas and heat meters on it: one request at a time,
//! each answered (or timed out) before the next is sent.
//!
//! The same shape as the DL/T 645 line ([`super::dlt645`]), with the other
//! protocol's frames. The port is opened on first use and reopened after any I/O error, so an
//! unplugged USB adapter shows as meters not answering until it is back.
//! Answers from other meters and echoes of the request (RS-485 adapters
//! with local echo) are skipped; only an answer from the meter asked, to
//! the function asked, ends a request.

use super::serial::{Parity, SerialPort};
use gridwatch_cjt188::{DecodeError, Frame, Receiver};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Why a request got no usable answer.
#[derive(Debug, Error)]
pub enum LineError {
    /// The port could not be opened.
    #[error("cannot open serial port {path}: {source}")]
    Open {
        /// The port.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Reading or writing failed; the port is reopened for the next request.
    #[error("serial port {path} failed: {source}")]
    Io {
        /// The port.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Nothing usable arrived in time.
    #[error("{}", timeout_words(*waited, *received, corrupt))]
    Timeout {
        /// Time waited after sending.
        waited: Duration,
        /// Bytes received meanwhile.
        received: usize,
        /// The first corrupt frame seen, if any.
        corrupt: Option<DecodeError>,
    },
}

fn timeout_words(waited: Duration, received: usize, corrupt: &Option<DecodeError>) -> String {
    let ms = waited.as_millis();
    match (received, corrupt) {
        (0, _) => format!("no answer within {ms} ms"),
        (_, Some(e)) => format!("no valid answer within {ms} ms: {e}"),
        (n, None) => format!("no complete answer within {ms} ms ({n} bytes received)"),
    }
}

struct State {
    port: Option<SerialPort>,
    receiver: Receiver,
}

/// One serial line and the lock that keeps its requests apart.
pub struct Cjt188Line {
    path: PathBuf,
    baud: u32,
    state: Mutex<State>,
}

impl Cjt188Line {
    /// The line on `path` at `baud`, 8E1. Nothing is opened yet.
    pub fn new(path: PathBuf, baud: u32) -> Self {
        Self {
            path,
            baud,
            state: Mutex::new(State {
                port: None,
                receiver: Receiver::new(),
            }),
        }
    }

    /// The port's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Time `bytes` take on the wire (11 bits each: start, 8 data, parity, stop).
    pub fn wire_time(&self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 11.0 / f64::from(self.baud.max(1)))
    }

    /// Sends `request` after `preamble` preamble (`FEH`) bytes and waits up to
    /// `timeout` (after the request has left the wire) for the answer of
    /// the meter it addresses. Waits its turn if another meter's request is
    /// on the line.
    pub async fn transact(
        &self,
        request: &Frame,
        preamble: usize,
        timeout: Duration,
    ) -> Result<Frame, LineError> {
        let mut state = self.state.lock().await;
        let result = self.exchange(&mut state, request, preamble, timeout).await;
        if matches!(result, Err(LineError::Io { .. })) {
            state.port = None;
        }
        result
    }

    async fn exchange(
        &self,
        state: &mut State,
        request: &Frame,
        preamble: usize,
        timeout: Duration,
    ) -> Result<Frame, LineError> {
        let io = |source| LineError::Io {
            path: self.path.clone(),
            source,
        };
        if state.port.is_none() {
            let port = SerialPort::open(&self.path, self.baud, Parity::Even).map_err(|source| {
                LineError::Open {
                    path: self.path.clone(),
                    source,
                }
            })?;
            state.port = Some(port);
        }
        let State { port, receiver } = state;
        let Some(port) = port.as_ref() else {
            unreachable!("opened above")
        };
        let mut wire = [0u8; gridwatch_cjt188::MAX_FRAME_LEN + gridwatch_cjt188::MAX_PREAMBLE];
        let n = request
            .encode(preamble, &mut wire)
            .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        port.discard_input().map_err(io)?;
        receiver.clear();
        port.write_all(&wire[..n]).await.map_err(io)?;
        let deadline = Instant::now() + self.wire_time(n) + timeout;
        let mut received = 0usize;
        // The first corrupt frame says most: resynchronising inside it
        // finds only fragments.
        let mut first_error = None;
        let mut buf = [0u8; 256];
        loop {
            if let Some(frame) = take_answer(receiver, request, &mut first_error) {
                return Ok(frame);
            }
            let read = tokio::time::timeout_at(deadline, port.read(&mut buf)).await;
            let Ok(read) = read else {
                if first_error.is_none() && !receiver.pending().is_empty() {
                    // Cut short: say how it ends.
                    first_error = gridwatch_cjt188::decode(receiver.pending())
                        .err()
                        .filter(|e| *e != DecodeError::Incomplete);
                }
                return Err(LineError::Timeout {
                    waited: timeout,
                    received,
                    corrupt: first_error,
                });
            };
            let got = read.map_err(io)?;
            received += got;
            let mut rest = &buf[..got];
            while !rest.is_empty() {
                rest = receiver.push(rest);
                if !rest.is_empty() {
                    // Full of a frame's worth of noise: take out what it holds.
                    if let Some(frame) = take_answer(receiver, request, &mut first_error) {
                        return Ok(frame);
                    }
                }
            }
        }
    }
}

/// Takes frames out of `receiver` until the answer to `request`, skipping
/// echoes and other meters' late answers and keeping the first corrupt one.
fn take_answer(
    receiver: &mut Receiver,
    request: &Frame,
    first_error: &mut Option<DecodeError>,
) -> Option<Frame> {
    while let Some(got) = receiver.next_frame() {
        match got {
            Ok(frame) if answers(request, &frame) => return Some(frame),
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    None
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
