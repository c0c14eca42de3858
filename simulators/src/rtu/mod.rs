//! Modbus RTU slaves on a pseudo-terminal: an RS-485 line in a test.
//!
//! [`PtyLine::open`] makes a pseudo-terminal pair; the gateway (or mbpoll,
//! or pymodbus) opens [`PtyLine::path`] as if it were `/dev/ttyUSB0`, and
//! [`serve`] answers on the other end for any number of units, each a
//! [`tokio_modbus::server::Service`] (the simulated pile's
//! [`PileService`](crate::pile::PileService), a profile-driven meter, ...).
//!
//! A pty delivers bytes instantly, so the line's speed is enforced here: a
//! request's bytes are stamped with the times they would have taken on the
//! wire at the configured baud rate, the firmware's
//! [`FrameReceiver`](gridwatch_firmware::slave::rtu::FrameReceiver) ends the
//! frame after the 3.5-character silence, and the response is written only
//! once its own bytes would have been sent. A master polling this line can
//! therefore not go faster than a real one, which is what makes the bus
//! utilisation benchmark meaningful.
//!
//! Each unit can misbehave on demand through [`LineControl`]: exceptions,
//! silence, a broken CRC, a truncated frame, a slow answer, noise before the
//! answer; setting [`Behaviour::Normal`] again brings it back.

pub mod pdu;

use gridwatch_firmware::slave::rtu::{crc16, FrameReceiver};
use gridwatch_gateway::bus::modbus_rtu::{LineTiming, Pause};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Response, SlaveRequest};
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// How a unit answers, set per unit at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answers every request from its service.
    #[default]
    Normal,
    /// Answers every request with this exception code.
    Exception(u8),
    /// Never answers: a device switched off, unplugged or with a wrong address.
    Silent,
    /// Answers with the last CRC byte flipped.
    CorruptCrc,
    /// Sends only the first half of each answer.
    Truncate,
    /// Answers correctly, but only after this long.
    Slow(Duration),
    /// Sends two noise bytes right before each (correct) answer.
    NoiseBefore,
}

/// What happened on a line, per unit, for tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitStats {
    /// Valid frames addressed to the unit.
    pub requests: u64,
    /// Frames it answered (in any way but silence).
    pub answers: u64,
}

/// Modbus function codes that change a device: write single/multiple
/// coils and registers, mask write, read/write multiple.
const WRITE_FUNCTIONS: [u8; 6] = [0x05, 0x06, 0x0F, 0x10, 0x16, 0x17];

#[derive(Debug, Default)]
struct ControlState {
    behaviour: BTreeMap<u8, Behaviour>,
    stats: BTreeMap<u8, UnitStats>,
    bad_frames: u64,
    writes: u64,
    baud: BTreeMap<u8, u32>,
}

/// Changes how units misbehave and reads what the line saw; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LineControl(Arc<Mutex<ControlState>>);

impl LineControl {
    fn with<R>(&self, f: impl FnOnce(&mut ControlState) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// From the next request on, `unit` behaves as `behaviour`.
    pub fn set(&self, unit: u8, behaviour: Behaviour) {
        self.with(|s| s.behaviour.insert(unit, behaviour));
    }

    /// How `unit` behaves now.
    pub fn behaviour(&self, unit: u8) -> Behaviour {
        self.with(|s| s.behaviour.get(&unit).copied().unwrap_or_default())
    }

    /// What `unit` saw so far.
    pub fn stats(&self, unit: u8) -> UnitStats {
        self.with(|s| s.stats.get(&unit).copied().unwrap_or_default())
    }

    /// Frames dropped for a bad CRC or length (noise, collisions).
    pub fn bad_frames(&self) -> u64 {
        self.with(|s| s.bad_frames)
    }

    /// Valid write requests seen on the line, to any address (broadcasts
    /// included), whether or not a unit answered: a scan must send none.
    pub fn writes(&self) -> u64 {
        self.with(|s| s.writes)
    }

    /// `unit` was set to `baud`: it hears (and answers) only while the
    /// master's port is at that speed, as a meter set to another rate sees
    /// only garbage. Other units hear the master at any speed. The pty
    /// carries the master's speed but not its parity (Linux drops the
    /// parity bit of a pseudo-terminal), so parity cannot be told apart.
    pub fn set_baud(&self, unit: u8, baud: u32) {
        self.with(|s| s.baud.insert(unit, baud));
    }
}

/// A pseudo-terminal pair standing in for a serial line.
#[derive(Debug)]
pub struct PtyLine {
    master: SerialStream,
    /// Held open so the master never sees a hang-up while the gateway
    /// closes and reopens the port; nothing reads it.
    _slave: SerialStream,
    path: PathBuf,
}

impl PtyLine {
    /// Opens a new pair (in raw mode); the slave side is at [`Self::path`].
    pub fn open() -> io::Result<Self> {
        let (master, slave) = SerialStream::pair().map_err(io::Error::other)?;
        let path = slave
            .name()
            .map(PathBuf::from)
            .ok_or_else(|| io::Error::other("the pseudo-terminal has no name"))?;
        Ok(Self {
            master,
            _slave: slave,
            path,
        })
    }

    /// The device path a master opens (`/dev/pts/7`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serves `units` (unit address → service) on `line` at `baud` (11-bit
/// characters, as 8E1 or 8N2) until `shutdown`. Frames for other units and
/// broadcasts are ignored, as a real line's bystanders do.
pub async fn serve<S>(
    line: PtyLine,
    baud: u32,
    units: BTreeMap<u8, S>,
    control: LineControl,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    S: Service<Request = SlaveRequest<'static>, Response = Response>,
    S::Exception: Into<ExceptionCode>,
{
    let PtyLine {
        mut master,
        _slave,
        path,
    } = line;
    let timing = LineTiming::new(baud, 11);
    let char_us = timing.char_time.as_micros() as u64;
    let silence = timing.silence;
    let start = Instant::now();
    let micros = |t: Instant| t.duration_since(start).as_micros() as u64;
    let mut receiver = FrameReceiver::new(baud);
    let mut last_byte_us: Option<u64> = None;
    let mut buf = [0u8; 512];
    // The wire's timing is kept to microseconds, as the gateway keeps it.
    let mut pause = Pause::new();
    info!(
        "Modbus RTU units {:?} answer on {} at {baud} baud",
        units.keys().collect::<Vec<_>>(),
        path.display()
    );
    loop {
        // When the frame being received will have ended (its last byte's
        // wire time plus the silence).
        let frame_end = last_byte_us.map(|us| start + Duration::from_micros(us) + silence);
        let read = tokio::select! {
            r = master.read(&mut buf) => Some(r),
            _ = pause.until(frame_end.unwrap_or_else(Instant::now)), if frame_end.is_some() => None,
            _ = shutdown.cancelled() => break,
        };
        match read {
            Some(Ok(0)) => break,
            Some(Ok(n)) => {
                // Bytes read now were written at the earliest now, and each
                // ends one character after the one before it has left the
                // master's UART: the first ends one character after it was
                // read (counting it as already sent gave the master a
                // character for free).
                let mut t = micros(Instant::now()).max(last_byte_us.unwrap_or(0));
                for &b in &buf[..n] {
                    t += char_us;
                    receiver.push(b, t);
                }
                last_byte_us = Some(t);
                continue;
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
        let Some(end) = frame_end else { continue };
        last_byte_us = None;
        let Some(frame) = receiver.poll(micros(end)).map(<[u8]>::to_vec) else {
            continue;
        };
        // The speed the master's port is set to now (the pty's other end
        // reports it); unknown speeds do not silence anyone.
        let master_baud = master.baud_rate().ok();
        if let Some(reply) = answer(&units, &control, &frame, master_baud).await {
            // The reply starts after the silence: its first byte reaches the
            // master one character later, the rest once its last byte has
            // been sent (so a master sees the answer begin on time).
            // (A pty's write is delivered at once; no flush, which would be
            // a tcdrain per write.)
            if let Some((first, rest)) = reply.split_first() {
                pause.until(end + timing.wire_time(1)).await;
                master.write_all(&[*first]).await?;
                pause.until(end + timing.wire_time(reply.len())).await;
                master.write_all(rest).await?;
            }
        }
    }
    debug!("RTU line on {} stopped", path.display());
    Ok(())
}

/// The bytes to send for request `frame` (CRC included), if any.
async fn answer<S>(
    units: &BTreeMap<u8, S>,
    control: &LineControl,
    frame: &[u8],
    master_baud: Option<u32>,
) -> Option<Vec<u8>>
where
    S: Service<Request = SlaveRequest<'static>, Response = Response>,
    S::Exception: Into<ExceptionCode>,
{
    if frame.len() < 4 || {
        let (body, crc) = frame.split_at(frame.len() - 2);
        crc16(body) != u16::from_le_bytes([crc[0], crc[1]])
    } {
        control.with(|s| s.bad_frames += 1);
        return None;
    }
    let unit = frame[0];
    if WRITE_FUNCTIONS.contains(&frame[1]) {
        control.with(|s| s.writes += 1);
    }
    let service = units.get(&unit)?;
    let deaf = control
        .with(|s| s.baud.get(&unit).copied())
        .zip(master_baud)
        .is_some_and(|(own, master)| own != master);
    if deaf {
        // At another speed the unit would see only garbage.
        control.with(|s| s.bad_frames += 1);
        return None;
    }
    control.with(|s| s.stats.entry(unit).or_default().requests += 1);
    let pdu = &frame[1..frame.len() - 2];
    let function = pdu[0];
    let behaviour = control.behaviour(unit);
    let reply_pdu = match behaviour {
        Behaviour::Silent => return None,
        Behaviour::Exception(code) => vec![function | 0x80, code],
        _ => match pdu::decode_request(pdu) {
            Err(code) => pdu::encode_exception(function, code),
            Ok(request) => match service
                .call(SlaveRequest {
                    slave: unit,
                    request,
                })
                .await
            {
                Ok(response) => pdu::encode_response(&response)
                    .unwrap_or_else(|code| pdu::encode_exception(function, code)),
                Err(e) => pdu::encode_exception(function, e.into()),
            },
        },
    };
    if let Behaviour::Slow(delay) = behaviour {
        tokio::time::sleep(delay).await;
    }
    let mut reply = Vec::with_capacity(reply_pdu.len() + 5);
    if behaviour == Behaviour::NoiseBefore {
        reply.extend_from_slice(&[0x00, 0xFF]);
    }
    let body_start = reply.len();
    reply.push(unit);
    reply.extend_from_slice(&reply_pdu);
    let crc = crc16(&reply[body_start..]).to_le_bytes();
    reply.extend_from_slice(&crc);
    match behaviour {
        Behaviour::CorruptCrc => {
            if let Some(last) = reply.last_mut() {
                *last ^= 0x5A;
            }
        }
        Behaviour::Truncate => reply.truncate(reply.len() / 2),
        _ => {}
    }
    control.with(|s| s.stats.entry(unit).or_default().answers += 1);
    Some(reply)
}
