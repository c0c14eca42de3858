//! A serial RFID reader: the port, opened in raw mode at the configured
//! speed, read without blocking a thread, lines decoded by [`line`].
//!
//! A USB-serial adapter that is unplugged, or a reader that loses power,
//! makes the port fail or vanish: the reader is then reported offline (a
//! `device_offline` event), and the port is opened again with backoff
//! until it is back (`device_online`). A line cut short by that is
//! reported like any bad line, with the port and line number.

use super::line::{Frame, LineDecoder, LineError};
use super::{RawSighting, SightingSink};
use crate::bus::serial::baud_rate;
use crate::net::{words, Backoff};
use gridwatch_telemetry::EventKind;
use nix::sys::termios::{self, SetArg};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Line speeds a serial reader may be configured with.
pub const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// Opens `port` without blocking and, when it is a terminal, sets raw mode
/// and `baud` (a FIFO or plain file is read as it is, for bench tests).
fn open(port: &Path, baud: u32) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(port)?;
    if let Ok(mut t) = termios::tcgetattr(&file) {
        termios::cfmakeraw(&mut t);
        if let Some(rate) = baud_rate(baud) {
            termios::cfsetspeed(&mut t, rate).map_err(std::io::Error::from)?;
        }
        termios::tcsetattr(&file, SetArg::TCSANOW, &t).map_err(std::io::Error::from)?;
    }
    Ok(file)
}

/// Registers the port with tokio's reactor for readiness.
fn watch(file: File) -> std::io::Result<AsyncFd<File>> {
    // SAFETY: the `File` owns its descriptor and the `AsyncFd` owns the
    // `File`, so the descriptor stays open (and is not reused) for as long
    // as it is registered — the I/O-safety condition of `register`.
    unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Reads the reader on `port` until `shutdown`, feeding `sink`.
pub async fn run(port: PathBuf, baud: u32, mut sink: SightingSink, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut decoder = LineDecoder::default();
    let mut online: Option<bool> = None;
    let name = port.display().to_string();
    loop {
        let reason = match open(&port, baud).and_then(watch) {
            Ok(fd) => {
                backoff.reset();
                sink.set_online(true);
                sink.listening();
                if online != Some(true) {
                    info!(reader = %sink.reader().id, "reading tags from {name} at {baud} baud");
                    if online == Some(false)
                        && !sink.device_event(EventKind::DeviceOnline, &shutdown).await
                    {
                        return;
                    }
                    online = Some(true);
                }
                match read_port(&fd, &name, &mut decoder, &mut sink, &shutdown).await {
                    Ok(()) => return,
                    Err(reason) => reason,
                }
            }
            Err(e) => format!("cannot open {name}: {e}"),
        };
        if decoder.reset() {
            let line = decoder.next_line();
            sink.malformed(&format!("{name} line {line}"), &LineError::NoChecksum);
        }
        sink.set_online(false);
        let delay = backoff.next_delay();
        if online != Some(false) {
            warn!(
                reader = %sink.reader().id,
                "tag reader {} is offline: {reason}; trying again, at most every {}",
                sink.reader().id,
                words(backoff.max())
            );
            if !sink
                .device_event(EventKind::DeviceOffline { reason }, &shutdown)
                .await
            {
                return;
            }
            online = Some(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Reads until the port fails (the reason) or `shutdown` (`Ok`).
async fn read_port(
    fd: &AsyncFd<File>,
    name: &str,
    decoder: &mut LineDecoder,
    sink: &mut SightingSink,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let mut buf = [0u8; 256];
    let mut frames = Vec::new();
    let mut silence = tokio::time::interval(super::mqtt::SILENCE_CHECK);
    silence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut guard = tokio::select! {
            g = fd.readable() => g.map_err(|e| format!("{name} failed: {e}"))?,
            _ = silence.tick() => {
                if !sink.check_silence(shutdown).await {
                    return Ok(());
                }
                continue;
            }
            _ = shutdown.cancelled() => return Ok(()),
        };
        let n = match guard.try_io(|f| f.get_ref().read(&mut buf)) {
            Err(_would_block) => continue,
            Ok(Ok(0)) => return Err(format!("{name} was closed")),
            Ok(Ok(n)) => n,
            // A pty whose other end went away, or an unplugged adapter, says EIO.
            Ok(Err(e)) => return Err(format!("{name} failed: {e}")),
        };
        if !sink.heard(shutdown).await {
            return Ok(());
        }
        frames.clear();
        decoder.feed(&buf[..n], &mut frames);
        for (line, frame) in frames.drain(..) {
            match frame {
                Ok(Frame::Heartbeat) => {}
                Ok(Frame::Tag { id, direction }) => {
                    let raw = RawSighting {
                        identity: id,
                        direction,
                        ts: None,
                    };
                    if !sink.sighting(raw, shutdown).await {
                        return Ok(());
                    }
                }
                Err(e) => sink.malformed(&format!("{name} line {line}"), &e),
            }
        }
    }
}
