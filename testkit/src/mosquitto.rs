//! A Mosquitto broker of the test's own: a child process on a free loopback
//! port, its log kept in memory, stopped on drop.

use crate::{free_port, require, terminate, wait_for_listener, Server, TempDir};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the broker is configured beyond a plain anonymous listener.
#[derive(Debug, Clone, Default)]
pub struct MosquittoOptions {
    /// Keep sessions and queued messages on disk, so they survive
    /// [`Mosquitto::stop`] and [`Mosquitto::resume`].
    pub persistence: bool,
    /// Extra lines for `mosquitto.conf` (limits, say).
    pub extra_conf: String,
}

/// A running broker (or one stopped to be resumed).
pub struct Mosquitto {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    options: MosquittoOptions,
    log: Arc<Mutex<String>>,
    dir: TempDir,
}

impl Mosquitto {
    /// A plain broker on a free port; `None` only when Mosquitto is missing
    /// and [`crate::ALLOW_MISSING`] is set (see [`require`]).
    pub fn start() -> Option<Self> {
        Self::start_with(MosquittoOptions::default())
    }

    /// A broker with `options` on a free port (five ports are tried, as a
    /// port can be taken between picking and binding).
    pub fn start_with(options: MosquittoOptions) -> Option<Self> {
        let bin = require(Server::Mosquitto)?;
        let mut why = String::new();
        for _ in 0..5 {
            match Self::spawn(bin.clone(), free_port(), options.clone()) {
                Ok(m) => return Some(m),
                Err(e) => why = e,
            }
        }
        panic!("mosquitto did not start on any of 5 free ports: {why}");
    }

    /// A broker with `options` on `port`, which the caller chose earlier (a
    /// client was pointed at it before it existed); `None` when it could not
    /// listen there (or is missing and allowed to be).
    pub fn start_on(port: u16, options: MosquittoOptions) -> Option<Self> {
        let bin = require(Server::Mosquitto)?;
        Self::spawn(bin, port, options).ok()
    }

    fn spawn(bin: PathBuf, port: u16, options: MosquittoOptions) -> Result<Self, String> {
        let mut m = Mosquitto {
            bin,
            child: None,
            port,
            options,
            log: Arc::default(),
            dir: TempDir::new("mosquitto"),
        };
        m.launch()?;
        Ok(m)
    }

    fn launch(&mut self) -> Result<(), String> {
        // Started as root, Mosquitto drops to its own user: let it write its
        // session database here.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o777));
        let conf = self.dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
             log_type information\nlog_type subscribe\n",
            self.port
        );
        if self.options.persistence {
            text.push_str(&format!(
                "persistence true\npersistence_location {}/\nmax_queued_messages 100000\n",
                self.dir.path().display()
            ));
        } else {
            text.push_str("persistence false\n");
        }
        text.push_str(&self.options.extra_conf);
        std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        // The log goes to a pipe, not a file (the broker's user could not
        // write into our directory), and to stderr, which is not
        // block-buffered.
        if let Some(out) = child.stderr.take() {
            let log = Arc::clone(&self.log);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        match wait_for_listener(&mut child, self.port, Duration::from_secs(10)) {
            Ok(()) => {
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "mosquitto on port {} {e}: {}",
                    self.port,
                    self.log()
                ))
            }
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Stops it with SIGTERM (a persistent broker saves its sessions) and
    /// waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Starts it again on the same port and data folder. The log starts
    /// afresh, so [`Mosquitto::wait_for_subscription`] sees only what the
    /// new process was asked.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
        if let Err(e) = self.launch() {
            panic!("mosquitto did not start again: {e}");
        }
    }

    /// Waits until the log shows `client_id` subscribing to `filter`.
    pub async fn wait_for_subscription(&self, client_id: &str, filter: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log
                .lines()
                .any(|l| l.contains(client_id) && l.contains(filter))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{client_id} did not subscribe to {filter} within {timeout:?}; broker log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
