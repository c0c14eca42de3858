//! The test kit: what every Gridwatch test that needs a real server uses to
//! get one, so that all of them follow one rule.
//!
//! - A server is started as a child process of the test, on a port the OS
//!   picked ([`free_port`]), with its files in a [`TempDir`], and stopped
//!   when the handle is dropped. Tests never use the system's service on
//!   the standard port.
//! - A missing server **fails** the test with a message saying how to
//!   install it. Only an explicit choice, the environment variable
//!   [`ALLOW_MISSING`], turns that into a skip that says "not run";
//!   `scripts/test` never sets it. [`require`] applies the rule;
//!   `testkit/tests/missing_server.rs` proves both halves by running a test
//!   with the server hidden.
//! - Where a binary is looked for is written once ([`Server::candidates`]),
//!   and an environment variable per server can point elsewhere.
//!
//! ```no_run
//! let Some(broker) = gridwatch_testkit::Mosquitto::start() else {
//!     return; // GRIDWATCH_ALLOW_MISSING_SERVERS was set and it is missing
//! };
//! let port = broker.port();
//! # let _ = port;
//! ```
//!
//! A PostgreSQL server of its own (`initdb` into a temporary directory,
//! one database, run as the `postgres` user when the test runs as root):
//!
//! ```no_run
//! let Some(pg) = gridwatch_testkit::Postgres::start() else { return };
//! let url = pg.url(); // postgres://gridwatch:<password>@127.0.0.1:<port>/gridwatch
//! # let _ = url;
//! ```

mod mosquitto;
mod nats;
mod postgres;
mod server;

pub use mosquitto::{Mosquitto, MosquittoOptions};
pub use nats::{
    nats_server_candidates, require_nats_server, NatsOptions, NatsServer, NATS_SERVER_VAR,
};
pub use postgres::{Postgres, PG_DATABASE, PG_USER};
pub use server::{require, Server, ALLOW_MISSING};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago (the OS picked it for port 0).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    l.local_addr().expect("local addr").port()
}

/// A fresh, empty directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates the directory, named after `tag` so leftovers are recognisable.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "gridwatch-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits until `child` accepts connections on loopback `port`. `Err` says
/// why not: it exited (with its status) or the time ran out.
pub fn wait_for_listener(child: &mut Child, port: u16, within: Duration) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("did not listen within {} s", within.as_secs()))
}

/// Sends SIGTERM to `child` (a server saves its state on it) and waits at
/// most 10 s, then kills it.
pub fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
