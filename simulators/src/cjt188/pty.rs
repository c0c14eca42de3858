//! The simulated bus on a pseudo-terminal pair: the gateway opens the
//! slave's path (`/dev/pts/N`) exactly as it would open `/dev/ttyUSB0`.
//! The pseudo-terminal itself and the answer pacing are the DL/T 645
//! simulator's ([`crate::dlt645::pty`]); only the protocol differs.

use super::line::Line;
use crate::dlt645::pty::{open_raw_pty, serve_line};
use crate::dlt645::LineTiming;
use gridwatch_cjt188::Receiver;
use gridwatch_telemetry::Clock;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// A bus shared between the serving task and whoever sets misbehaviour.
pub type SharedLine = Arc<Mutex<Line>>;

/// A running simulated bus.
pub struct PtyLine {
    path: PathBuf,
    task: JoinHandle<io::Result<()>>,
}

impl PtyLine {
    /// Opens a pseudo-terminal pair and serves `line` on it until
    /// `shutdown`. Time for the meters' registers comes from `clock`.
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
                match got {
                    Ok(request) => {
                        let mut line = line.lock().unwrap_or_else(|p| p.into_inner());
                        answers.extend(line.respond(&request, clock.now().millis()));
                    }
                    Err(e) => debug!("simulated CJ/T 188 bus ignores a bad request: {e}"),
                }
            }
        }
        answers
    })
    .await
}
