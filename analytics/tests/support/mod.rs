//! Test support: a real Mosquitto on a free loopback port, stopped on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the broker binary is expected.
pub const MOSQUITTO: &str = "/usr/sbin/mosquitto";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("gw-analytics-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Mosquitto process listening on 127.0.0.1:`port`.
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    log: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port, or returns `None` (after saying so)
    /// when Mosquitto is not installed.
    pub fn start() -> Option<Self> {
        if !Path::new(MOSQUITTO).exists() {
            // A missing broker fails the test; only an explicit choice skips it.
            assert!(
                std::env::var_os("GRIDWATCH_ALLOW_MISSING_SERVERS").is_some(),
                "{MOSQUITTO} is not installed (scripts/test installs it); set \
                 GRIDWATCH_ALLOW_MISSING_SERVERS=1 to skip real-broker tests on purpose"
            );
            println!("not run: {MOSQUITTO} is missing and GRIDWATCH_ALLOW_MISSING_SERVERS is set");
            return None;
        }
        for _ in 0..5 {
            let port = free_port();
            if let Some(m) = Self::start_on(port) {
                return Some(m);
            }
        }
        panic!("mosquitto did not start on any of 5 free ports");
    }

    /// Starts a broker on `port` (used to restart one where it was).
    pub fn start_on(port: u16) -> Option<Self> {
        let dir = TempDir::new("mosquitto");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
                 log_type information\nlog_type subscribe\n"
            ),
        )
        .expect("write mosquitto.conf");
        let mut child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto");
        // The log goes to a pipe, not a file: started as root, Mosquitto drops
        // to its own user and could not write into our scratch directory.
        // stderr, because Mosquitto's stdout is block-buffered into a pipe.
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(out) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self {
                    child: Some(child),
                    port,
                    log,
                    _dir: dir,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                return None; // port taken meanwhile; the caller tries another
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits until the broker's log shows `client_id` subscribing to `filter`.
    pub async fn wait_for_subscription(&self, client_id: &str, filter: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
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

    /// Stops the broker now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on now (the OS picks it; closed again at once).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// A reading of socket 3 of `pile-1` behind `gw-1` at `yard-a`: the socket
/// the tests drive over limits (5.5 A by default) or keep normal.
pub fn socket_reading(ts_ms: i64, seq: u64, current_a: f64) -> gridwatch_telemetry::Reading {
    let mut r = gridwatch_telemetry::Reading::new(
        gridwatch_telemetry::Timestamp(ts_ms),
        "gw-1",
        "pile-1",
        gridwatch_telemetry::DeviceKind::ChargingSocket,
        seq,
    );
    r.site = "yard-a".into();
    r.socket = Some(3);
    r.values.insert("current_a".into(), current_a);
    r
}

/// A test client subscribed to `alerts/#`, forwarding (topic, payload). It
/// may publish up to 64 MiB, so drills can send oversized messages with it.
pub async fn observer(
    port: u16,
    id: &str,
) -> (
    rumqttc::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_max_packet_size(64 << 20, 64 << 20);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 100);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    client
        .subscribe("alerts/#", rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("observer subscribed in time")
        .expect("observer task alive");
    (client, rx)
}
