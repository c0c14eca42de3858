//! Polling against a real Modbus TCP server in the test process.

use super::*;
use crate::config::GatewayConfig;
use crate::devices::poller::{Poller, Schedule};
use crate::outbox::{self, Record};
use crate::profile::ProfileLibrary;
use crate::status::Health;
use gridwatch_telemetry::{DeviceKind, EventKind, ManualClock, Timestamp};
use std::collections::BTreeMap;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_modbus::prelude::{ExceptionCode, Request, Response};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_util::sync::CancellationToken;

/// Holding registers of a fake device: only the addresses present are
/// mapped; a read touching any other is an Illegal Data Address, as on the
/// simulated pile.
#[derive(Clone, Default)]
struct FakeRegisters(Arc<Mutex<BTreeMap<u16, u16>>>);

impl FakeRegisters {
    fn set(&self, addr: u16, words: &[u16]) {
        let mut map = self.0.lock().unwrap();
        for (i, w) in words.iter().enumerate() {
            map.insert(addr + i as u16, *w);
        }
    }
}

impl tokio_modbus::server::Service for FakeRegisters {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let map = self.0.lock().unwrap();
        ready(match req {
            Request::ReadHoldingRegisters(start, count) => (0..count)
                .map(|i| map.get(&(start + i)).copied())
                .collect::<Option<Vec<u16>>>()
                .map(Response::ReadHoldingRegisters)
                .ok_or(ExceptionCode::IllegalDataAddress),
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

/// Serves `regs` on `listener` until the returned token is cancelled.
fn serve(listener: TcpListener, regs: FakeRegisters) -> CancellationToken {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let server = Server::new(listener);
        let on_connected = move |stream, addr| {
            let regs = regs.clone();
            async move { accept_tcp_connection(stream, addr, move |_| Ok(Some(regs.clone()))) }
        };
        let _ = server
            .serve_until(
                &on_connected,
                |_| {},
                async move { stopped.cancelled().await },
            )
            .await;
    });
    stop
}

/// A pile with `sockets` sockets: socket 1 charging, the others idle.
fn pile(sockets: u16) -> FakeRegisters {
    let regs = FakeRegisters::default();
    regs.set(0, &[1, sockets, 0, 1234, 0]);
    for n in 1..=sockets {
        let base = 100 + (n - 1) * 20;
        regs.set(base, &[0; 20]);
    }
    // Socket 1: charging at 230.1 V, 1.234 A, 6553.8 W, 12.5 Wh, -5.5 °C,
    // relay on, no fault, 3600 s, 4 mA.
    regs.set(
        100,
        &[
            2,
            2301,
            1234,
            0x0001,
            0x0002,
            0,
            125,
            (-55i16) as u16,
            1,
            0,
            0,
            3600,
            4,
        ],
    );
    regs
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

fn ebp12() -> ModbusDevice {
    let p = ProfileLibrary::built_in().get("gridwatch-ebp12").unwrap();
    ModbusDevice::new(p, 8)
}

fn bus(addr: SocketAddr) -> ModbusTcpBus {
    ModbusTcpBus::new("127.0.0.1", addr.port(), 1, Duration::from_millis(500))
}

#[tokio::test]
async fn a_pile_poll_yields_one_pile_and_one_reading_per_socket() {
    let (l, addr) = listener().await;
    let _server = serve(l, pile(2)).drop_guard();
    let outcome = ebp12().poll(&mut bus(addr)).await;
    let PollOutcome::Answered {
        measurements,
        errors,
    } = outcome
    else {
        panic!("device did not answer: {outcome:?}");
    };
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(measurements.len(), 3);

    let pile = &measurements[0];
    assert_eq!((pile.kind, pile.socket), (DeviceKind::ChargingPile, None));
    assert_eq!(
        pile.values,
        BTreeMap::from([
            ("fault_bits".to_owned(), 0.0),
            ("socket_count".to_owned(), 2.0),
            ("total_power_w".to_owned(), 123.4),
        ])
    );

    let s1 = &measurements[1];
    assert_eq!((s1.kind, s1.socket), (DeviceKind::ChargingSocket, Some(1)));
    let expected = [
        ("state", 2.0),
        ("voltage_v", 230.1),
        ("current_a", 1.234),
        ("power_w", 6553.8),
        ("energy_wh", 12.5),
        ("temperature_c", -5.5),
        ("relay_on", 1.0),
        ("fault_code", 0.0),
        ("session_s", 3600.0),
        ("residual_ma", 4.0),
    ];
    assert_eq!(
        s1.values,
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>()
    );
    assert_eq!(measurements[2].socket, Some(2));
    assert_eq!(measurements[2].values["state"], 0.0);
}

#[tokio::test]
async fn a_modbus_exception_is_reported_with_its_register_range() {
    let (l, addr) = listener().await;
    let regs = pile(2);
    regs.set(1, &[3]); // claims three sockets, serves two
    let _server = serve(l, regs).drop_guard();
    let PollOutcome::Answered {
        measurements,
        errors,
    } = ebp12().poll(&mut bus(addr)).await
    else {
        panic!("device did not answer");
    };
    assert_eq!(
        errors,
        vec!["reading holding registers 100..=152 failed: exception 0x02 (illegal data address)"]
    );
    assert_eq!(measurements.len(), 1, "the pile reading still goes out");
}

#[tokio::test]
async fn an_unknown_map_version_decodes_nothing() {
    let (l, addr) = listener().await;
    let regs = pile(1);
    regs.set(0, &[2]);
    let _server = serve(l, regs).drop_guard();
    let PollOutcome::Answered {
        measurements,
        errors,
    } = ebp12().poll(&mut bus(addr)).await
    else {
        panic!("device did not answer");
    };
    assert!(measurements.is_empty());
    assert!(errors[0].contains("map_version reads 2"), "{errors:?}");
}

#[tokio::test]
async fn more_sockets_than_the_profile_allows_are_clamped_and_reported() {
    let (l, addr) = listener().await;
    let regs = pile(12);
    regs.set(1, &[40]);
    let _server = serve(l, regs).drop_guard();
    let PollOutcome::Answered {
        measurements,
        errors,
    } = ebp12().poll(&mut bus(addr)).await
    else {
        panic!("device did not answer");
    };
    assert_eq!(measurements.len(), 13);
    assert!(
        errors[0].contains("covers at most 12 sockets"),
        "{errors:?}"
    );
}

const CONFIG: &str = r#"
[gateway]
id = "gw-1"
site = "yard-a"
building = "b1"
[mqtt]
host = "127.0.0.1"
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
port = PORT
poll_interval_ms = 50
timeout_ms = 200
retry_max_ms = 100
offline_after_failures = 2
"#;

struct Running {
    records: mpsc::Receiver<Record>,
    health: Arc<Health>,
    _stop: tokio_util::sync::DropGuard,
}

fn start_poller(port: u16, clock: ManualClock) -> Running {
    start_reporting_poller(port, clock, None)
}

fn start_reporting_poller(
    port: u16,
    clock: ManualClock,
    report: Option<crate::devices::report::ReportPolicy>,
) -> Running {
    let cfg =
        GatewayConfig::from_toml_str(&CONFIG.replace("PORT", &port.to_string()), "test").unwrap();
    let d = &cfg.devices[0];
    let device = ModbusTcpDevice::new(
        ModbusDevice::new(d.profile.clone(), d.max_gap_registers),
        ModbusTcpBus::new("127.0.0.1", port, 1, d.timeout()),
        1,
    );
    let health = Arc::new(Health::new(
        cfg.gateway.id.clone(),
        cfg.gateway.site.clone(),
        1,
    ));
    let (sender, records) = outbox::queue();
    let poller = Poller::new(
        device,
        cfg.device_stamp(d, 100),
        Schedule {
            poll_interval: d.poll_interval(),
            retry_max: d.retry_max(),
            offline_after_failures: d.offline_after_failures,
        },
        Arc::new(clock),
        health.clone(),
        sender,
    )
    .with_report(report);
    let stop = CancellationToken::new();
    tokio::spawn(poller.run(stop.clone()));
    Running {
        records,
        health,
        _stop: stop.drop_guard(),
    }
}

async fn next(records: &mut mpsc::Receiver<Record>) -> Record {
    tokio::time::timeout(Duration::from_secs(5), records.recv())
        .await
        .expect("no record within 5 s")
        .expect("queue closed")
}

#[tokio::test]
async fn the_poller_stamps_readings_with_identity_clock_and_sequence() {
    let (l, addr) = listener().await;
    let _server = serve(l, pile(2)).drop_guard();
    let clock = ManualClock::new(Timestamp(1_764_000_000_000));
    let mut run = start_poller(addr.port(), clock.clone());

    let mut readings = Vec::new();
    for _ in 0..3 {
        match next(&mut run.records).await {
            Record::Reading(r) => readings.push(r),
            Record::Event(e) => panic!("unexpected event {e:?}"),
            Record::Prepared { reading, .. } => panic!("a pile reading was prepared: {reading:?}"),
        }
    }
    assert_eq!(
        readings.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![100, 101, 102]
    );
    for r in &readings {
        assert_eq!(r.ts, Timestamp(1_764_000_000_000));
        assert!(!r.clock_unsynced, "a 2025 stamp is trusted");
        assert_eq!((r.gateway.as_str(), r.site.as_str()), ("gw-1", "yard-a"));
        assert_eq!(
            (r.device.as_str(), r.building.as_deref()),
            ("pile-1", Some("b1"))
        );
    }
    assert_eq!(readings[0].kind, DeviceKind::ChargingPile);
    assert_eq!(readings[2].socket, Some(2));
    assert_eq!(readings[1].value("voltage_v"), Some(230.1));
    assert_eq!(run.health.devices_online(), 1);

    // The next poll is stamped with the clock's new time.
    clock.advance(1000);
    let later = loop {
        if let Record::Reading(r) = next(&mut run.records).await {
            if r.ts == Timestamp(1_764_000_001_000) {
                break r;
            }
        }
    };
    assert!(later.seq > 102);
}

#[tokio::test]
async fn an_unreachable_device_goes_offline_once_and_comes_back() {
    // A port with nothing listening: bind, note it, close.
    let (l, addr) = listener().await;
    drop(l);
    let mut run = start_poller(addr.port(), ManualClock::new(Timestamp(5)));

    let Record::Event(offline) = next(&mut run.records).await else {
        panic!("expected an event first");
    };
    match &offline.kind {
        EventKind::DeviceOffline { reason } => {
            assert!(reason.contains("connection refused"), "{reason}");
            assert!(reason.contains("2 polls in a row"), "{reason}");
        }
        other => panic!("expected device_offline, got {other:?}"),
    }
    assert_eq!(offline.device.as_str(), "pile-1");

    // It keeps retrying without repeating the event...
    let quiet = tokio::time::timeout(Duration::from_millis(400), run.records.recv()).await;
    assert!(quiet.is_err(), "no second offline event: {quiet:?}");

    // ...and reports the recovery once the device listens.
    let l = TcpListener::bind(addr).await.unwrap();
    let _server = serve(l, pile(1)).drop_guard();
    let Record::Event(online) = next(&mut run.records).await else {
        panic!("expected device_online before readings");
    };
    assert_eq!(online.kind, EventKind::DeviceOnline);
    assert_eq!(online.seq, offline.seq + 1);
    assert!(matches!(next(&mut run.records).await, Record::Reading(_)));
    assert_eq!(run.health.devices_online(), 1);
}

#[tokio::test]
async fn report_by_exception_holds_flat_readings_back_until_the_silence_runs_out() {
    let (l, addr) = listener().await;
    let regs = pile(1);
    let _server = serve(l, regs.clone()).drop_guard();
    let clock = ManualClock::new(Timestamp(1_000));
    let policy = crate::devices::report::ReportPolicy {
        max_silence_ms: 10_000,
        deadbands: [("voltage_v".to_owned(), 1.0)].into_iter().collect(),
    };
    let mut run = start_reporting_poller(addr.port(), clock.clone(), Some(policy));

    // The first poll goes out whole: the pile and its socket.
    let first: Vec<Option<u16>> = [next(&mut run.records).await, next(&mut run.records).await]
        .into_iter()
        .map(|r| match r {
            Record::Reading(r) => r.socket,
            Record::Event(e) => panic!("unexpected event {e:?}"),
            Record::Prepared { reading, .. } => panic!("a pile reading was prepared: {reading:?}"),
        })
        .collect();
    assert_eq!(first, [None, Some(1)]);
    // Polls every 50 ms with the same values: nothing for a while.
    let quiet = tokio::time::timeout(Duration::from_millis(400), run.records.recv()).await;
    assert!(quiet.is_err(), "flat readings are held back: {quiet:?}");

    // 0.9 V is inside the 1 V deadband; 1.4 V is not, and only the socket moved.
    regs.set(101, &[2310]);
    let quiet = tokio::time::timeout(Duration::from_millis(300), run.records.recv()).await;
    assert!(quiet.is_err(), "inside the deadband: {quiet:?}");
    regs.set(101, &[2315]);
    match next(&mut run.records).await {
        Record::Reading(r) => {
            assert_eq!(r.socket, Some(1));
            assert_eq!(r.value("voltage_v"), Some(231.5));
            assert_eq!(r.value("current_a"), Some(1.234), "readings go out whole");
        }
        Record::Event(e) => panic!("unexpected event {e:?}"),
        Record::Prepared { reading, .. } => panic!("a pile reading was prepared: {reading:?}"),
    }

    // After max_silence_ms both blocks go out again, unchanged.
    clock.advance(10_000);
    let mut sockets = Vec::new();
    for _ in 0..2 {
        match next(&mut run.records).await {
            Record::Reading(r) => {
                assert_eq!(r.ts, Timestamp(11_000));
                sockets.push(r.socket);
            }
            Record::Event(e) => panic!("unexpected event {e:?}"),
            Record::Prepared { reading, .. } => panic!("a pile reading was prepared: {reading:?}"),
        }
    }
    sockets.sort();
    assert_eq!(sockets, [None, Some(1)]);
}

#[tokio::test]
async fn a_reading_stamped_by_a_clock_still_in_1970_is_marked_unsynced() {
    let (l, addr) = listener().await;
    let _server = serve(l, pile(2)).drop_guard();
    let mut run = start_poller(addr.port(), ManualClock::new(Timestamp(5_000)));
    let r = loop {
        if let Record::Reading(r) = next(&mut run.records).await {
            break r;
        }
    };
    assert_eq!(r.ts, Timestamp(5_000));
    assert!(r.clock_unsynced, "{r:?}");
}
