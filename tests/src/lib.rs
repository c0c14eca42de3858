//! Test support for Gridwatch's end-to-end tests: real servers started as
//! child processes on free loopback ports, stopped on drop, and a small MQTT
//! subscriber that collects what arrives.
//!
//! Servers bind ports picked by the OS (port 0 first, then handed over), never
//! a fixed port, so tests do not collide with each other or with a system
//! service on the standard port. Mosquitto, free ports and scratch
//! directories come from the test kit (`gridwatch-testkit`), which also holds
//! the one rule for a missing server.

pub mod meters;
pub mod packaging;
pub mod smtp;
pub mod webdriver;

pub use gridwatch_testkit::{free_port, wait_for_listener, Mosquitto, TempDir};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A message seen by a [`Subscriber`].
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic it arrived on.
    pub topic: String,
    /// Raw payload.
    pub payload: Vec<u8>,
    /// Whether the broker flagged it retained.
    pub retain: bool,
}

/// An MQTT client that subscribes to filters and collects every message.
pub struct Subscriber {
    rx: tokio::sync::mpsc::UnboundedReceiver<Message>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Connects to 127.0.0.1:`port`, subscribes to `filters` at QoS 1 and
    /// returns once the broker has acknowledged the subscriptions.
    pub async fn connect(port: u16, client_id: &str, filters: &[&str]) -> Subscriber {
        let mut opts = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(10));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 64);
        for f in filters {
            client
                .subscribe(*f, rumqttc::QoS::AtLeastOnce)
                .await
                .expect("queue subscribe");
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let want = filters.len();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut ready = Some(ready_tx);
            let mut acked = 0;
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        acked += 1;
                        if acked >= want {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(Message {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("broker acknowledged the subscriptions within 10 s")
            .expect("subscriber task alive");
        Subscriber { rx, task }
    }

    /// The next message whose topic satisfies `pred`, or `None` after `within`.
    pub async fn next_matching(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if pred(&m) => return Some(m),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Every message that arrives within `within`.
    pub async fn collect_for(&mut self, within: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(m);
        }
        out
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A pymodbus TCP server (a Modbus implementation nobody here wrote) in a
/// child process on a free loopback port, serving the words it was given;
/// stopped on drop. pymodbus is pinned and installed by `scripts/test`.
pub struct PyModbusServer {
    child: Child,
    port: u16,
}

/// The server script: argv[1] port, argv[2] a JSON list of points
/// `[table ("input"/"holding"), address, type ("u16", "i16", "i32", "f32"),
/// word order ("high_first"/"low_first"), value]`, which Python's `struct`
/// encodes (big-endian bytes), independently of the gateway's encoder. Unit
/// ids are not checked (any unit answers).
const PYMODBUS_SERVER: &str = r#"
import json, struct, sys
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartTcpServer

port = int(sys.argv[1])
points = json.loads(sys.argv[2])
fmt = {"u16": ">H", "i16": ">h", "i32": ">i", "f32": ">f"}
tables = {"input": {}, "holding": {}}
for table, addr, typ, order, value in points:
    v = value if typ == "f32" else int(value)
    b = struct.pack(fmt[typ], v)
    words = [int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)]
    if order == "low_first":
        words.reverse()
    for i, w in enumerate(words):
        tables[table][addr + i] = w
def block(words):
    values = [0] * (max(list(words) + [0]) + 1)
    for a, w in words.items():
        values[a] = w
    # pymodbus adds 1 to every request address before the lookup.
    return ModbusSequentialDataBlock(1, values)
slave = ModbusSlaveContext(ir=block(tables["input"]), hr=block(tables["holding"]))
StartTcpServer(ModbusServerContext(slaves=slave, single=True), address=("127.0.0.1", port))
"#;

impl PyModbusServer {
    /// Starts the server with `points` (see the script above) and waits until
    /// it accepts connections. Panics saying how to install pymodbus when it
    /// is missing.
    pub fn start(points: &serde_json::Value) -> PyModbusServer {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let mut child = Command::new("python3")
                .arg("-c")
                .arg(PYMODBUS_SERVER)
                .arg(port.to_string())
                .arg(points.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python3 runs (scripts/test installs it with pymodbus)");
            match wait_for_listener(&mut child, port, Duration::from_secs(15)) {
                Ok(()) => return PyModbusServer { child, port },
                Err(status) => {
                    let mut stderr = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        use std::io::Read;
                        let _ = e.read_to_string(&mut stderr);
                    }
                    assert!(
                        !stderr.contains("No module named 'pymodbus'"),
                        "pymodbus is missing: run `pip install pymodbus==3.8.6` (scripts/test does)"
                    );
                    last_err = format!("the pymodbus server {status}: {stderr}");
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start the pymodbus server: {last_err}");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PyModbusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a Python script that uses pymodbus's client with `args`, for at
/// most 60 s, and returns what it printed. Panics saying how to install
/// pymodbus when it is missing (scripts/test installs it, pinned).
pub async fn run_pymodbus_client(script: &str, args: &[String]) -> std::process::Output {
    let run = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the pymodbus client finishes within 60 s")
        .expect("python3 runs (scripts/test installs it with pymodbus)");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("No module named 'pymodbus'"),
        "pymodbus is missing: run `pip install pymodbus==3.8.6` (scripts/test does)"
    );
    out
}

/// Bytes written by code under test (a log subscriber, the demo's console),
/// readable by the test while that code still writes.
#[derive(Clone, Default)]
pub struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    /// What was written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer lock")).into_owned()
    }
}
