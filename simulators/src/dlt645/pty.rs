//! The simulated line on a pseudo-terminal pair: the gateway opens the
//! slave's path (`/dev/pts/N`) exactly as it would open `/dev/ttyUSB0`.
//!
//! The simulator keeps the slave open itself, so the gateway can close and
//! reopen the port without the master seeing a hang-up. With `pace`, each
//! answer takes as long as it would on a real wire at the configured baud
//! rate (11 bits a byte: start, 8 data, even parity, stop).

use super::line::Line;
use gridwatch_dlt645::Receiver;
use gridwatch_telemetry::Clock;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// A line shared between the serving task and whoever sets misbehaviour.
pub type SharedLine = Arc<Mutex<Line>>;

/// How the simulated line behaves in time.
#[derive(Debug, Clone, Copy)]
pub struct LineTiming {
    /// Baud rate the answers are paced at.
    pub baud: u32,
    /// Whether to pace answers at `baud` (off: answer at once, for fast tests).
    pub pace: bool,
    /// Time a meter takes before it starts answering (the standard allows
    /// 20 ms to 500 ms).
    pub turnaround: Duration,
}

impl Default for LineTiming {
    fn default() -> Self {
        Self {
            baud: 2400,
            pace: true,
            turnaround: Duration::from_millis(20),
        }
    }
}

impl LineTiming {
    /// Time `bytes` take on the wire.
    pub fn wire_time(&self, bytes: usize) -> Duration {
        if !self.pace || self.baud == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(bytes as f64 * 11.0 / f64::from(self.baud))
    }
}

/// A running simulated line.
pub struct PtyLine {
    path: PathBuf,
    task: JoinHandle<io::Result<()>>,
}

impl PtyLine {
    /// Opens a pseudo-terminal pair and serves `line` on it until `shutdown`.
    /// Time for the meters' values comes from `clock`.
    pub fn open(
        line: SharedLine,
        clock: Arc<dyn Clock>,
        timing: LineTiming,
        shutdown: CancellationToken,
    ) -> io::Result<Self> {
        let (master, slave, path) = open_raw_pty()?;
        let task = tokio::spawn(serve(master, slave, line, clock, timing, shutdown));
        Ok(Self { path, task })
    }

    /// The path the gateway opens.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the serving task to end (after shutdown).
    pub async fn join(self) -> io::Result<()> {
        self.task.await.map_err(io::Error::other)?
    }
}

/// Opens a raw pseudo-terminal pair for a simulated serial line: the
/// master, non-blocking and registered with tokio, the slave (to keep open,
/// so the master never sees a hang-up when the gateway closes the port) and
/// the slave's path. Shared by the simulated meter lines.
pub(crate) fn open_raw_pty() -> io::Result<(AsyncFd<File>, OwnedFd, PathBuf)> {
    let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
    // No echo, no line editing: the slave carries bytes, not text.
    let mut t = tcgetattr(&pty.slave).map_err(io::Error::from)?;
    cfmakeraw(&mut t);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
    let path = nix::unistd::ttyname(&pty.slave).map_err(io::Error::from)?;
    let flags =
        OFlag::from_bits_truncate(fcntl(&pty.master, FcntlArg::F_GETFL).map_err(io::Error::from)?);
    fcntl(&pty.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(io::Error::from)?;
    // SAFETY: the `File` owns the master's descriptor and the `AsyncFd`
    // owns the `File`, so the descriptor stays open and is not reused
    // while it is registered: the I/O-safety condition of `register`.
    let master =
        unsafe { AsyncFd::register(File::from(pty.master)) }.map_err(|e| e.into_parts().1)?;
    Ok((master, pty.slave, path))
}

async fn serve(
    master: AsyncFd<File>,
    slave: OwnedFd,
    line: SharedLine,
    clock: Arc<dyn Clock>,
    timing: LineTiming,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut receiver = Receiver::new();
    serve_line(master, slave, timing, shutdown, move |bytes| {
        let mut answers = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = receiver.push(rest);
            while let Some(got) = receiver.next_frame() {
                let request = match got {
                    Ok(f) => f,
                    Err(e) => {
                        debug!("simulated line ignores a bad request: {e}");
                        continue;
                    }
                };
                let mut line = line.lock().unwrap_or_else(|p| p.into_inner());
                answers.extend(line.respond(&request, clock.now().millis()));
            }
        }
        answers
    })
    .await
}

/// Serves a simulated serial line on `master` until `shutdown`: `answer`
/// takes the bytes as they arrive and returns the answers they complete,
/// each written after the line's turnaround and wire time. The protocol
/// lives in `answer`; this part is shared by the simulated meter lines.
pub(crate) async fn serve_line(
    master: AsyncFd<File>,
    slave: OwnedFd,
    timing: LineTiming,
    shutdown: CancellationToken,
    mut answer: impl FnMut(&[u8]) -> Vec<Vec<u8>>,
) -> io::Result<()> {
    let _keep_open = slave;
    let mut buf = [0u8; 256];
    loop {
        let n = tokio::select! {
            n = read(&master, &mut buf) => n?,
            _ = shutdown.cancelled() => return Ok(()),
        };
        for bytes in answer(&buf[..n]) {
            let delay = timing.turnaround + timing.wire_time(bytes.len());
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
            if let Err(e) = write_all(&master, &bytes).await {
                warn!("simulated line could not write an answer: {e}");
            }
        }
    }
}

/// Reads what the gateway sent, waiting while nobody has the slave open.
async fn read(fd: &AsyncFd<File>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut guard = fd.readable().await?;
        match guard.try_io(|f| f.get_ref().read(buf)) {
            Ok(Ok(0)) => {
                // Nobody has the slave open right now; wait and look again.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

/// Writes an answer to the gateway.
async fn write_all(fd: &AsyncFd<File>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let mut guard = fd.writable().await?;
        match guard.try_io(|f| f.get_ref().write(bytes)) {
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
