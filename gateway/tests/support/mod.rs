//! Real servers and fakes for the gateway's fault tests: a Mosquitto that
//! keeps its sessions on disk and can be stopped and started again on the
//! same port, a fake charging pile that counts its polls, and a subscriber
//! with a persistent session that collects everything.

#![allow(dead_code)]

use gridwatch_telemetry::{codec, Event, Reading};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_modbus::prelude::{ExceptionCode, Request, Response};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_util::sync::CancellationToken;

pub use gridwatch_testkit::terminate;
use gridwatch_testkit::{Mosquitto, MosquittoOptions};

pub mod influx;
pub mod tls;

/// Logs to the test's output (`RUST_LOG` to see more).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A loopback port that was free a moment ago.
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Mosquitto on its own port with `persistence true`: sessions and their
/// queued messages survive a stop with SIGTERM and a start again. The
/// process is the test kit's; the gateway's broker tests do not skip when
/// it is missing.
pub struct Broker {
    inner: Mosquitto,
    pub port: u16,
}

fn persistent() -> MosquittoOptions {
    MosquittoOptions {
        persistence: true,
        ..MosquittoOptions::default()
    }
}

impl Broker {
    /// Starts it on a free port and waits until it accepts connections.
    pub async fn start() -> Broker {
        let inner = Mosquitto::start_with(persistent())
            .expect("mosquitto is missing; the gateway's broker tests need it");
        let port = inner.port();
        Broker { inner, port }
    }

    /// Starts it on `port`, which the caller chose earlier (to test a
    /// client that was pointed at a broker before the broker existed).
    pub async fn start_on(port: u16) -> Broker {
        let inner = Mosquitto::start_on(port, persistent())
            .unwrap_or_else(|| panic!("mosquitto did not start on port {port}"));
        Broker { inner, port }
    }

    /// Starts it again on the same port and data folder.
    pub async fn resume(&mut self) {
        self.inner.resume();
    }

    /// Stops it with SIGTERM (it saves its sessions) and waits for the exit.
    pub fn stop(&mut self) {
        self.inner.stop();
    }
}

/// Holding registers of a fake two-socket pile; counts its polls.
#[derive(Clone)]
pub struct Pile {
    registers: Arc<Mutex<BTreeMap<u16, u16>>>,
    coils: Arc<Mutex<BTreeMap<u16, bool>>>,
    polls: Arc<AtomicU64>,
    silent: Arc<std::sync::atomic::AtomicBool>,
}

impl Pile {
    fn new() -> Pile {
        let mut m = BTreeMap::new();
        for (i, w) in [1u16, 2, 0, 500, 0].iter().enumerate() {
            m.insert(i as u16, *w);
        }
        for a in 100..140 {
            m.insert(a, 0);
        }
        m.insert(101, 2301);
        Pile {
            registers: Arc::new(Mutex::new(m)),
            coils: Arc::new(Mutex::new(BTreeMap::new())),
            silent: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            polls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// From now on, refuses every read (Modbus exception 0x06, busy): the
    /// gateway keeps polling but produces no more readings.
    pub fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// The last value written to coil `address`, if any.
    pub fn coil(&self, address: u16) -> Option<bool> {
        self.coils.lock().unwrap().get(&address).copied()
    }

    /// Polls answered so far (reads of the device-level registers).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::SeqCst)
    }
}

impl tokio_modbus::server::Service for Pile {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let m = self.registers.lock().unwrap();
        ready(match req {
            Request::ReadHoldingRegisters(..) if self.silent.load(Ordering::SeqCst) => {
                Err(ExceptionCode::ServerDeviceBusy)
            }
            Request::ReadHoldingRegisters(start, n) => {
                if start == 0 {
                    self.polls.fetch_add(1, Ordering::SeqCst);
                }
                (0..n)
                    .map(|i| m.get(&(start + i)).copied())
                    .collect::<Option<Vec<_>>>()
                    .map(Response::ReadHoldingRegisters)
                    .ok_or(ExceptionCode::IllegalDataAddress)
            }
            Request::WriteSingleCoil(address, on) if address < 12 => {
                self.coils.lock().unwrap().insert(address, on);
                Ok(Response::WriteSingleCoil(address, on))
            }
            Request::WriteSingleCoil(..) => Err(ExceptionCode::IllegalDataAddress),
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

/// Serves a fake pile on a free port until the token is cancelled.
pub async fn start_pile() -> (SocketAddr, Pile, CancellationToken) {
    start_pile_on("127.0.0.1:0".parse().unwrap()).await
}

/// A pile on `addr`: a port the test chose, to start the pile after the
/// gateway that polls it.
pub async fn start_pile_on(addr: SocketAddr) -> (SocketAddr, Pile, CancellationToken) {
    let l = TcpListener::bind(addr).await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let pile = Pile::new();
    let served = pile.clone();
    tokio::spawn(async move {
        let on_connected = move |stream, a| {
            let pile = served.clone();
            async move { accept_tcp_connection(stream, a, move |_| Ok(Some(pile.clone()))) }
        };
        let _ = Server::new(l)
            .serve_until(
                &on_connected,
                |_| {},
                async move { stopped.cancelled().await },
            )
            .await;
    });
    (addr, pile, stop)
}

/// What a subscriber saw of one device message.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub seq: u64,
    pub ts: i64,
    pub payload: Vec<u8>,
}

/// A subscriber with a persistent session (the broker queues for it while
/// it or the broker is away) that decodes every reading and event.
pub struct Collector {
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
    pub seen: Vec<Seen>,
    pub statuses: Vec<gridwatch_telemetry::Status>,
    /// Command acks: (topic, JSON).
    pub acks: Vec<(String, serde_json::Value)>,
}

impl Collector {
    /// Connects as `id`, subscribes to `filters` and waits for the SubAck.
    pub async fn connect(port: u16, id: &str, filters: &[String]) -> Collector {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_clean_session(false);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        for f in filters {
            client.subscribe(f, QoS::AtLeastOnce).await.unwrap();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("SubAck within 10 s")
            .unwrap();
        Collector {
            rx,
            task,
            seen: Vec::new(),
            statuses: Vec::new(),
            acks: Vec::new(),
        }
    }

    /// Takes what arrived within `within`, decoding it (panics on a payload
    /// that is not a valid message: nothing corrupt may be served).
    pub async fn collect_for(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some((topic, payload))) =
            tokio::time::timeout_at(deadline, self.rx.recv()).await
        {
            self.take(&topic, payload);
        }
    }

    /// Collects until `done(self)` or `within` passes; returns whether done.
    pub async fn collect_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&Collector) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((topic, payload))) => self.take(&topic, payload),
                _ => return false,
            }
        }
        true
    }

    fn take(&mut self, topic: &str, payload: Vec<u8>) {
        if topic.contains("/cmd-ack/") {
            self.acks.push((
                topic.to_owned(),
                serde_json::from_slice(&payload).expect("an ack is JSON"),
            ));
        } else if topic.ends_with("/status") {
            self.statuses
                .push(codec::decode(&payload).expect("status decodes"));
        } else if topic.contains("/reading/") {
            let r: Reading = codec::decode(&payload)
                .unwrap_or_else(|e| panic!("a corrupt reading was served: {e}"));
            self.seen.push(Seen {
                seq: r.seq,
                ts: r.ts.millis(),
                payload,
            });
        } else if topic.contains("/event/") {
            let e: Event = codec::decode(&payload)
                .unwrap_or_else(|e| panic!("a corrupt event was served: {e}"));
            self.seen.push(Seen {
                seq: e.seq,
                ts: e.ts.millis(),
                payload,
            });
        }
    }

    /// Distinct sequence numbers seen, checking that a repeated one repeats
    /// the same message.
    pub fn distinct(&self) -> BTreeMap<u64, Seen> {
        let mut out: BTreeMap<u64, Seen> = BTreeMap::new();
        for s in &self.seen {
            if let Some(before) = out.get(&s.seq) {
                assert_eq!(
                    before.payload, s.payload,
                    "seq {} was used for two different messages",
                    s.seq
                );
            }
            out.insert(s.seq, s.clone());
        }
        out
    }

    /// Messages seen more than once.
    pub fn duplicates(&self) -> usize {
        self.seen.len() - self.distinct().len()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway config for one pile with an outbox in `outbox`.
pub fn config_text(
    broker_port: u16,
    pile: SocketAddr,
    gateway: &str,
    outbox: &Path,
    extra_outbox: &str,
    extra_mqtt: &str,
) -> String {
    format!(
        r#"
[gateway]
id = "{gateway}"
site = "yard-t"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
keep_alive_s = 5
reconnect_max_ms = 1000
{extra_mqtt}
[outbox]
dir = "{}"
{extra_outbox}
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
port = {}
poll_interval_ms = 50
timeout_ms = 500
"#,
        outbox.display(),
        pile.port()
    )
}

/// The folder of a test's outbox.
pub fn outbox_dir(root: &tempfile::TempDir) -> PathBuf {
    root.path().join("outbox")
}
