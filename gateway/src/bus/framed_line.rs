//! A serial line shared by the meters on it, for the framed meter protocols
//! (DL/T 645 and CJ/T 188): one request at a time, each answered (or timed
//! out) before the next is sent. Both protocols wait for their answer the
//! same way; [`Protocol`] is what differs (frames, the receiver that finds
//! them in noise, which frame answers which request).
//!
//! The port is opened on first use and reopened after any I/O error, so an
//! unplugged USB adapter shows as meters not answering until it is back.
//! Answers from other meters and echoes of the request (RS-485 adapters
//! with local echo) are skipped; only an answer from the meter asked, to
//! the function asked, ends a request.

use super::serial::{Parity, SerialPort};
use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// One framed meter protocol, as the shared line needs it.
pub trait Protocol: Send + Sync + 'static {
    /// A frame, request or answer.
    type Frame: Send;
    /// Finds frames in the bytes of a noisy line.
    type Receiver: Send;
    /// Why bytes are not a frame.
    type DecodeError: Debug + Display + Send;
    /// The longest request on the wire, lead-in bytes included.
    const MAX_WIRE: usize;
    /// An empty receiver.
    fn receiver() -> Self::Receiver;
    /// Writes `frame` after `lead` lead-in bytes into `out`; its length.
    fn encode(frame: &Self::Frame, lead: usize, out: &mut [u8]) -> std::io::Result<usize>;
    /// Forgets whatever the receiver holds.
    fn clear(receiver: &mut Self::Receiver);
    /// Bytes held that are not yet a frame.
    fn pending(receiver: &Self::Receiver) -> &[u8];
    /// Takes bytes in; returns those that did not fit.
    fn push<'a>(receiver: &mut Self::Receiver, bytes: &'a [u8]) -> &'a [u8];
    /// The next frame (or corrupt frame) held.
    fn next_frame(receiver: &mut Self::Receiver) -> Option<Result<Self::Frame, Self::DecodeError>>;
    /// Why `pending` bytes left at a timeout are not a frame, unless they
    /// are merely incomplete.
    fn why_cut_short(pending: &[u8]) -> Option<Self::DecodeError>;
    /// Whether `frame` is the meter's answer to `request`.
    fn answers(request: &Self::Frame, frame: &Self::Frame) -> bool;
}

/// Why a request got no usable answer.
#[derive(Debug, Error)]
pub enum LineError<E: Debug + Display> {
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
        corrupt: Option<E>,
    },
}

fn timeout_words<E: Display>(waited: Duration, received: usize, corrupt: &Option<E>) -> String {
    let ms = waited.as_millis();
    match (received, corrupt) {
        (0, _) => format!("no answer within {ms} ms"),
        (_, Some(e)) => format!("no valid answer within {ms} ms: {e}"),
        (n, None) => format!("no complete answer within {ms} ms ({n} bytes received)"),
    }
}

struct State<P: Protocol> {
    port: Option<SerialPort>,
    receiver: P::Receiver,
    wire: Vec<u8>,
}

/// One serial line and the lock that keeps its requests apart.
pub struct FramedLine<P: Protocol> {
    path: PathBuf,
    baud: u32,
    state: Mutex<State<P>>,
}

impl<P: Protocol> FramedLine<P> {
    /// The line on `path` at `baud`, 8E1. Nothing is opened yet.
    pub fn new(path: PathBuf, baud: u32) -> Self {
        Self {
            path,
            baud,
            state: Mutex::new(State {
                port: None,
                receiver: P::receiver(),
                wire: vec![0; P::MAX_WIRE],
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

    /// Sends `request` after `lead` lead-in bytes (DL/T 645's wake-up,
    /// CJ/T 188's preamble) and waits up to
    /// `timeout` (after the request has left the wire) for the answer of
    /// the meter it addresses. Waits its turn if another meter's request is
    /// on the line.
    pub async fn transact(
        &self,
        request: &P::Frame,
        lead: usize,
        timeout: Duration,
    ) -> Result<P::Frame, LineError<P::DecodeError>> {
        let mut state = self.state.lock().await;
        let result = self.exchange(&mut state, request, lead, timeout).await;
        if matches!(result, Err(LineError::Io { .. })) {
            state.port = None;
        }
        result
    }

    async fn exchange(
        &self,
        state: &mut State<P>,
        request: &P::Frame,
        lead: usize,
        timeout: Duration,
    ) -> Result<P::Frame, LineError<P::DecodeError>> {
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
        let State {
            port,
            receiver,
            wire,
        } = state;
        let Some(port) = port.as_ref() else {
            unreachable!("opened above")
        };
        let n = P::encode(request, lead, wire).map_err(io)?;
        port.discard_input().map_err(io)?;
        P::clear(receiver);
        port.write_all(&wire[..n]).await.map_err(io)?;
        let deadline = Instant::now() + self.wire_time(n) + timeout;
        let mut received = 0usize;
        // The first corrupt frame says most: resynchronising inside it
        // finds only fragments.
        let mut first_error = None;
        let mut buf = [0u8; 256];
        loop {
            if let Some(frame) = take_answer::<P>(receiver, request, &mut first_error) {
                return Ok(frame);
            }
            let read = tokio::time::timeout_at(deadline, port.read(&mut buf)).await;
            let Ok(read) = read else {
                if first_error.is_none() && !P::pending(receiver).is_empty() {
                    // Cut short: say how it ends.
                    first_error = P::why_cut_short(P::pending(receiver));
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
                rest = P::push(receiver, rest);
                if !rest.is_empty() {
                    // Full of a frame's worth of noise: take out what it holds.
                    if let Some(frame) = take_answer::<P>(receiver, request, &mut first_error) {
                        return Ok(frame);
                    }
                }
            }
        }
    }
}

/// Takes frames out of `receiver` until the answer to `request`, skipping
/// echoes and other meters' late answers and keeping the first corrupt one.
fn take_answer<P: Protocol>(
    receiver: &mut P::Receiver,
    request: &P::Frame,
    first_error: &mut Option<P::DecodeError>,
) -> Option<P::Frame> {
    while let Some(got) = P::next_frame(receiver) {
        match got {
            Ok(frame) if P::answers(request, &frame) => return Some(frame),
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    None
}
