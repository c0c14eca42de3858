//! A nats-server of the test's own: JetStream in a [`TempDir`], on a free
//! loopback port, optionally with an MQTT listener and subject mappings,
//! stopped on drop.
//!
//! A missing `nats-server` fails the test with how to install it, unless
//! [`crate::ALLOW_MISSING`] is set — the rule [`crate::require`] applies to
//! the other servers (kept here so that this file is the only one the NATS
//! server adds to the kit).

use crate::{free_port, terminate, wait_for_listener, TempDir, ALLOW_MISSING};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable that points to another `nats-server` binary.
pub const NATS_SERVER_VAR: &str = "GRIDWATCH_NATS_SERVER";

/// How the server is configured beyond plain JetStream.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Also listen for MQTT clients on a free port ([`NatsServer::mqtt_port`]).
    pub mqtt: bool,
    /// Account subject mappings, `(from, to)`, written into the server's
    /// `mappings` block as they are (`{{partition(4,1)}}` and all).
    pub mappings: Vec<(String, String)>,
}

/// A running nats-server.
pub struct NatsServer {
    child: Child,
    port: u16,
    mqtt_port: Option<u16>,
    dir: TempDir,
}

/// Where `nats-server` is looked for, in order.
pub fn nats_server_candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os(NATS_SERVER_VAR) {
        return vec![PathBuf::from(p)];
    }
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

/// The `nats-server` binary, or a panic saying how to install it; `None`
/// (after printing that the test did not run) when it is missing and
/// [`ALLOW_MISSING`] is set.
pub fn require_nats_server() -> Option<PathBuf> {
    let candidates = nats_server_candidates();
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return Some(p.clone());
    }
    let looked = candidates
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        std::env::var_os(ALLOW_MISSING).is_some(),
        "nats-server is not installed (looked in {looked}); scripts/test installs it \
         (apt-get install -y nats-server); set {ALLOW_MISSING}=1 to skip tests that need it on purpose"
    );
    println!("not run: nats-server is missing and {ALLOW_MISSING} is set");
    None
}

impl NatsServer {
    /// A server with JetStream (and what `options` add) on free ports; `None`
    /// only when nats-server is missing and that is allowed. Five port picks
    /// are tried, as a port can be taken between picking and binding.
    pub fn start(options: NatsOptions) -> Option<Self> {
        let bin = require_nats_server()?;
        let mut why = String::new();
        for _ in 0..5 {
            match Self::spawn(&bin, &options) {
                Ok(s) => return Some(s),
                Err(e) => why = e,
            }
        }
        panic!("nats-server did not start on any of 5 free ports: {why}");
    }

    fn spawn(bin: &std::path::Path, options: &NatsOptions) -> Result<Self, String> {
        let dir = TempDir::new("nats");
        let port = free_port();
        let mqtt_port = options.mqtt.then(free_port);
        let conf = config_text(&dir, port, mqtt_port, &options.mappings);
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("writing nats.conf: {e}"))?;
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{} does not start: {e}", bin.display()))?;
        let ready = wait_for_listener(&mut child, port, Duration::from_secs(20)).and_then(|()| {
            match mqtt_port {
                Some(m) => wait_for_listener(&mut child, m, Duration::from_secs(20)),
                None => Ok(()),
            }
        });
        if let Err(e) = ready {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut log);
            }
            return Err(format!("nats-server {e}: {log}"));
        }
        // The log goes to a file (below); nothing more comes on stderr.
        drop(child.stderr.take());
        Ok(Self {
            child,
            port,
            mqtt_port,
            dir,
        })
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The MQTT port, when [`NatsOptions::mqtt`] asked for one.
    pub fn mqtt_port(&self) -> Option<u16> {
        self.mqtt_port
    }

    /// The server's log so far (for a failing assertion's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The server's config: JetStream in `dir`, the log in a file, a
/// `server_name` (MQTT needs one), MQTT and mappings when asked for.
fn config_text(
    dir: &TempDir,
    port: u16,
    mqtt_port: Option<u16>,
    mappings: &[(String, String)],
) -> String {
    let d = dir.path().display();
    let mut conf = format!(
        "server_name: gridwatch-test-{port}\nlisten: 127.0.0.1:{port}\nlog_file: \"{d}/nats.log\"\n\
         jetstream {{\n  store_dir: \"{d}/js\"\n  max_memory_store: 64M\n  max_file_store: 1G\n}}\n"
    );
    if let Some(m) = mqtt_port {
        conf += &format!("mqtt {{\n  listen: 127.0.0.1:{m}\n}}\n");
    }
    if !mappings.is_empty() {
        conf += "mappings = {\n";
        for (from, to) in mappings {
            conf += &format!("  \"{from}\": \"{to}\"\n");
        }
        conf += "}\n";
    }
    conf
}
