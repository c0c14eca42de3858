//! Every value the gateway publishes equals what the device answered to that
//! poll: a real Mosquitto, the gateway in-process polling an in-test Modbus
//! TCP device of 100 holding registers (the `generic-holding` profile) every
//! 10 ms, and a device whose every register changes at every read and that
//! keeps what it served. Readings are matched to the read that produced
//! them by their first register, then compared register by register.
//!
//! Needs `mosquitto` (see `support`).

mod support;

use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{codec, Reading, SystemClock};
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{outbox_dir, Broker, Collector};
use tokio::net::TcpListener;
use tokio_modbus::prelude::{ExceptionCode, Request, Response};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_util::sync::CancellationToken;

const REGISTERS: u16 = 100;

/// Holding registers 0..100; read k (from 0) answers register r with
/// `(k * 7919 + r * 613) mod 65536`, so every value changes at every read
/// and register 0 tells which read a reading came from.
#[derive(Clone, Default)]
struct ChangingDevice {
    served: Arc<Mutex<Vec<Vec<u16>>>>,
}

fn value(read: u64, register: u16) -> u16 {
    ((read * 7919 + u64::from(register) * 613) & 0xFFFF) as u16
}

impl tokio_modbus::server::Service for ChangingDevice {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        ready(match req {
            Request::ReadHoldingRegisters(start, n) if start + n <= REGISTERS => {
                let mut served = self.served.lock().unwrap();
                let k = served.len() as u64;
                let all: Vec<u16> = (0..REGISTERS).map(|r| value(k, r)).collect();
                let answer = all[usize::from(start)..usize::from(start + n)].to_vec();
                served.push(all);
                Ok(Response::ReadHoldingRegisters(answer))
            }
            Request::ReadHoldingRegisters(..) => Err(ExceptionCode::IllegalDataAddress),
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

async fn serve(device: ChangingDevice, stop: CancellationToken) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let on_connected = move |stream, a| {
            let device = device.clone();
            async move { accept_tcp_connection(stream, a, move |_| Ok(Some(device.clone()))) }
        };
        let _ = Server::new(l)
            .serve_until(&on_connected, |_| {}, async move { stop.cancelled().await })
            .await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_value_equals_what_the_device_answered_to_that_poll() {
    support::init_logs();
    let broker = Broker::start().await;
    let device = ChangingDevice::default();
    let device_stop = CancellationToken::new();
    let addr = serve(device.clone(), device_stop.clone()).await;
    let root = tempfile::tempdir().unwrap();
    let config = GatewayConfig::from_toml_str(
        &format!(
            r#"
[gateway]
id = "gw-values"
site = "yard-t"
[mqtt]
host = "127.0.0.1"
port = {}
[outbox]
dir = "{}"
[[devices]]
id = "dev-1"
profile = "generic-holding"
protocol = "modbus_tcp"
host = "127.0.0.1"
port = {}
poll_interval_ms = 10
timeout_ms = 500
"#,
            broker.port,
            outbox_dir(&root).display(),
            addr.port()
        ),
        "test",
    )
    .unwrap();

    let mut readings = Collector::connect(
        broker.port,
        "t-values",
        &["gw/yard-t/gw-values/reading/dev-1".to_owned()],
    )
    .await;
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    // 10 ms polls: 100 readings take about a second (more on a busy machine).
    let got_enough = readings
        .collect_until(Duration::from_secs(20), |c| c.seen.len() >= 100)
        .await;
    shutdown.cancel();
    gw.await.unwrap().unwrap();
    readings.collect_for(Duration::from_millis(500)).await;
    device_stop.cancel();
    assert!(
        got_enough,
        "only {} readings within 20 s",
        readings.seen.len()
    );

    let served = device.served.lock().unwrap().clone();
    let mut reads_matched = Vec::new();
    for seen in &readings.seen {
        let r: Reading = codec::decode(&seen.payload).unwrap();
        assert_eq!(r.values.len(), usize::from(REGISTERS), "seq {}", r.seq);
        let first = r.value("reg0").expect("reg0 is published");
        let k = served
            .iter()
            .position(|regs| f64::from(regs[0]) == first)
            .unwrap_or_else(|| panic!("seq {}: reg0 = {first} was never served", r.seq));
        for (i, expected) in served[k].iter().enumerate() {
            assert_eq!(
                r.value(&format!("reg{i}")),
                Some(f64::from(*expected)),
                "seq {}, read {k}, register {i}",
                r.seq
            );
        }
        // Whole values go out as JSON integers, not as 21407.0.
        let json = std::str::from_utf8(&seen.payload).unwrap();
        assert!(
            json.contains(&format!("\"reg0\":{}", served[k][0]))
                && !json.contains(&format!("\"reg0\":{}.0", served[k][0])),
            "{json}"
        );
        reads_matched.push(k);
    }
    // One reading per read, in the order read, none skipped: every answered
    // poll before the shutdown reached the broker.
    let expected: Vec<usize> = (0..reads_matched.len()).collect();
    assert_eq!(
        reads_matched, expected,
        "readings map to reads out of order or with gaps"
    );
}
