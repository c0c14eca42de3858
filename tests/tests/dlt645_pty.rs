//! The gateway reads simulated DL/T 645 meters over a real pseudo-terminal:
//! the values it reports match what the meters hold, meters sharing one
//! line are served one request at a time, and each kind of misbehaviour
//! becomes the device event an operator expects.

use gridwatch_dlt645::{Address, ErrorWord};
use gridwatch_gateway::bus::dlt645::Dlt645Line;
use gridwatch_gateway::config::{GatewayConfig, Transport};
use gridwatch_gateway::devices::dlt645::Dlt645Device;
use gridwatch_gateway::devices::poller::{Poller, Schedule};
use gridwatch_gateway::devices::{Device, PollOutcome};
use gridwatch_gateway::status::Health;
use gridwatch_gateway::uplink::{self, Record};
use gridwatch_simulators::dlt645::{Behaviour, Line, LineTiming, Meter, PtyLine, SharedLine};
use gridwatch_telemetry::{EventKind, ManualClock, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_764_000_000_000;

fn address(n: u64) -> Address {
    Address::parse(&format!("{n:012}")).unwrap()
}

/// Meter 1 single-phase, meter 2 three-phase, on one unpaced line.
fn start_line(clock: &ManualClock, shutdown: &CancellationToken) -> (SharedLine, PtyLine) {
    let line: SharedLine = Arc::new(Mutex::new(Line::new(vec![
        Meter::new(address(1), 1, 1234.56, 4.0),
        Meter::new(address(2), 3, 98_765.43, 6.0),
    ])));
    let timing = LineTiming {
        pace: false,
        turnaround: Duration::from_millis(2),
        ..LineTiming::default()
    };
    let pty = PtyLine::open(
        line.clone(),
        Arc::new(clock.clone()),
        timing,
        shutdown.clone(),
    )
    .expect("a pseudo-terminal pair");
    (line, pty)
}

fn values(outcome: PollOutcome) -> BTreeMap<String, f64> {
    match outcome {
        PollOutcome::Answered {
            mut measurements,
            errors,
        } => {
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(measurements.len(), 1);
            measurements.remove(0).values
        }
        PollOutcome::Unreachable(why) => panic!("meter unreachable: {why}"),
    }
}

fn close(got: f64, want: f64, step: f64, name: &str) {
    assert!(
        (got - want).abs() <= step / 2.0 + 1e-9,
        "{name}: read {got}, the meter holds {want}"
    );
}

#[tokio::test]
async fn values_read_over_a_pty_match_the_meters() {
    let clock = ManualClock::new(Timestamp(T0));
    let shutdown = CancellationToken::new();
    let (line, pty) = start_line(&clock, &shutdown);
    let serial = Arc::new(Dlt645Line::new(pty.path().to_owned(), 2400));
    let timeout = Duration::from_millis(500);
    let mut one = Dlt645Device::new(serial.clone(), address(1), 1, 4, timeout);
    let mut three = Dlt645Device::new(serial.clone(), address(2), 3, 4, timeout);
    assert!(
        one.address().ends_with("meter 000000000001"),
        "{}",
        one.address()
    );

    // Both meters polled at once: the shared line takes turns.
    let (a, b) = tokio::join!(one.poll(), three.poll());
    let (a, b) = (values(a), values(b));
    let meters: Vec<Meter> = line.lock().unwrap().meters().to_vec();
    let (m1, m3) = (&meters[0], &meters[1]);
    assert_eq!(a.len(), 7, "{a:?}");
    close(a["voltage_v"], m1.voltage_v(T0, 1), 0.1, "voltage_v");
    close(a["current_a"], m1.current_a(T0, 1), 0.001, "current_a");
    close(a["power_w"], m1.power_kw(T0, 1) * 1000.0, 0.1, "power_w");
    close(
        a["power_factor"],
        m1.power_factor(T0, 1),
        0.001,
        "power_factor",
    );
    close(a["frequency_hz"], m1.frequency_hz(T0), 0.01, "frequency_hz");
    close(a["import_energy_kwh"], 1234.56, 0.01, "import_energy_kwh");
    assert_eq!(a["export_energy_kwh"], 0.0);

    assert_eq!(b.len(), 17, "{b:?}");
    for p in 1..=3u8 {
        close(
            b[&format!("voltage_l{p}_v")],
            m3.voltage_v(T0, p),
            0.1,
            "voltage",
        );
        close(
            b[&format!("current_l{p}_a")],
            m3.current_a(T0, p),
            0.001,
            "current",
        );
        close(
            b[&format!("power_l{p}_w")],
            m3.power_kw(T0, p) * 1000.0,
            0.1,
            "power",
        );
    }
    close(b["power_w"], m3.total_power_kw(T0) * 1000.0, 0.1, "power_w");
    close(b["import_energy_kwh"], 98_765.43, 0.01, "import_energy_kwh");
    assert_eq!(line.lock().unwrap().answered, 24);

    // The energy register integrates: an hour later it has grown by the
    // meter's power (the values are frozen between polls, the clock is not).
    clock.advance(3_600_000);
    let later = values(one.poll().await);
    let grown = later["import_energy_kwh"] - a["import_energy_kwh"];
    close(grown, m1.power_kw(T0 + 3_600_000, 1), 0.02, "energy growth");

    shutdown.cancel();
    pty.join().await.unwrap();
}

/// Runs a poller for meter 1 and hands back its records.
fn start_poller(
    port: &std::path::Path,
    clock: &ManualClock,
    shutdown: &CancellationToken,
) -> mpsc::Receiver<Record> {
    let toml = format!(
        "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n\
         [[devices]]\nid = \"meter-1\"\nprotocol = \"dlt645\"\nserial_port = \"{}\"\n\
         meter_address = \"000000000001\"\npoll_interval_ms = 100\ntimeout_ms = 150\n\
         retry_max_ms = 200\noffline_after_failures = 2\n",
        port.display()
    );
    let config = GatewayConfig::from_toml_str(&toml, "test").unwrap();
    let d = &config.devices[0];
    let Transport::Dlt645 {
        serial_port,
        baud,
        address,
        phases,
        wake_up,
    } = &d.transport
    else {
        panic!("{:?}", d.transport)
    };
    let line = Arc::new(Dlt645Line::new(serial_port.clone(), *baud));
    let meter = Dlt645Device::new(line, *address, *phases, usize::from(*wake_up), d.timeout());
    let (sender, records) = uplink::queue();
    let poller = Poller::new(
        meter,
        config.device_stamp(d, 1),
        Schedule {
            poll_interval: d.poll_interval(),
            retry_max: d.retry_max(),
            offline_after_failures: d.offline_after_failures,
        },
        Arc::new(clock.clone()),
        Arc::new(Health::new(
            config.gateway.id.clone(),
            config.gateway.site.clone(),
            1,
        )),
        sender,
    );
    tokio::spawn(poller.run(shutdown.clone()));
    records
}

/// The first record `pick` takes, passing over the others; fails after 5 s.
async fn next<T>(records: &mut mpsc::Receiver<Record>, pick: fn(Record) -> Option<T>) -> T {
    let wait = async {
        loop {
            match records.recv().await {
                Some(record) => {
                    if let Some(t) = pick(record) {
                        return t;
                    }
                }
                None => panic!("the poller stopped"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("a record within 5 s")
}

/// The next event, passing over readings.
async fn next_event(records: &mut mpsc::Receiver<Record>) -> EventKind {
    next(records, |r| match r {
        Record::Event(e) => Some(e.kind),
        Record::Reading(_) | Record::Prepared { .. } => None,
    })
    .await
}

/// The next reading's values, passing over events.
async fn next_reading(records: &mut mpsc::Receiver<Record>) -> BTreeMap<String, f64> {
    next(records, |r| match r {
        Record::Reading(r) => Some(r.values),
        Record::Event(_) | Record::Prepared { .. } => None,
    })
    .await
}

#[tokio::test]
async fn misbehaviour_becomes_device_events() {
    let clock = ManualClock::new(Timestamp(T0));
    let shutdown = CancellationToken::new();
    let (line, pty) = start_line(&clock, &shutdown);
    let mut records = start_poller(pty.path(), &clock, &shutdown);
    let set = |b: Behaviour| {
        line.lock().unwrap().set_behaviour(Some(address(1)), b);
    };

    let first = next_reading(&mut records).await;
    assert!(first.contains_key("voltage_v"), "{first:?}");

    // Gone from the line, then back.
    set(Behaviour::Silent);
    let EventKind::DeviceOffline { reason } = next_event(&mut records).await else {
        panic!("expected device_offline")
    };
    assert!(reason.contains("no answer within 150 ms"), "{reason}");
    assert!(reason.contains("no answer to 2 polls in a row"), "{reason}");
    set(Behaviour::Normal);
    assert_eq!(next_event(&mut records).await, EventKind::DeviceOnline);

    // Abnormal answers: the meter is there but refuses; reported once.
    set(Behaviour::Abnormal(ErrorWord(ErrorWord::UNAUTHORISED)));
    let EventKind::DeviceError { message } = next_event(&mut records).await else {
        panic!("expected device_error")
    };
    assert_eq!(
        message,
        "all 7 values: the meter answered wrong password or not authorised (ERR 04H)"
    );

    // Corrupt answers count as no answer, and say why.
    set(Behaviour::BadChecksum);
    let EventKind::DeviceOffline { reason } = next_event(&mut records).await else {
        panic!("expected device_offline")
    };
    assert!(reason.contains("checksum"), "{reason}");
    set(Behaviour::Normal);
    assert_eq!(next_event(&mut records).await, EventKind::DeviceOnline);

    set(Behaviour::Truncated);
    let EventKind::DeviceOffline { reason } = next_event(&mut records).await else {
        panic!("expected device_offline")
    };
    assert!(reason.contains("no complete answer"), "{reason}");

    // Noise before each answer is not a fault at all.
    set(Behaviour::Noise);
    assert_eq!(next_event(&mut records).await, EventKind::DeviceOnline);
    let noisy = next_reading(&mut records).await;
    assert_eq!(noisy.len(), 7, "{noisy:?}");

    shutdown.cancel();
    pty.join().await.unwrap();
}

/// The whole gateway (config file text → daemon → MQTT) with two meters
/// sharing one pty line, against a Mosquitto nobody here wrote: both
/// meters' readings arrive under their device ids with their own values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_publishes_meters_sharing_a_line() {
    let Some(broker) = gridwatch_tests::Mosquitto::start() else {
        return;
    };
    let clock = ManualClock::new(Timestamp(T0));
    let shutdown = CancellationToken::new();
    let (_line, pty) = start_line(&clock, &shutdown);
    let meter = |id: &str, address: &str, phases: u8| {
        format!(
            "[[devices]]\nid = \"{id}\"\nprotocol = \"dlt645\"\nserial_port = \"{}\"\n\
             meter_address = \"{address}\"\nphases = {phases}\npoll_interval_ms = 200\ntimeout_ms = 300\n",
            pty.path().display()
        )
    };
    let toml = format!(
        "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n{}{}",
        broker.port(),
        meter("flat-101", "000000000001", 1),
        meter("shop-1", "000000000002", 3)
    );
    let config = GatewayConfig::from_toml_str(&toml, "gw.toml").unwrap();
    let mut sub = gridwatch_tests::Subscriber::connect(
        broker.port(),
        "dlt645-watch",
        &["gw/s/gw-1/reading/#"],
    )
    .await;
    let gateway_stop = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(clock.clone()),
        gateway_stop.clone(),
    ));
    let mut seen = BTreeMap::new();
    for _ in 0..50 {
        let Some(m) = sub.next_matching(Duration::from_secs(10), |_| true).await else {
            break;
        };
        let r: gridwatch_telemetry::Reading = gridwatch_telemetry::codec::decode(&m.payload)
            .unwrap_or_else(|e| panic!("{}: {e}", m.topic));
        seen.insert(r.device.as_str().to_owned(), r.values);
        if seen.len() == 2 {
            break;
        }
    }
    gateway_stop.cancel();
    gateway.await.unwrap().unwrap();
    shutdown.cancel();
    pty.join().await.unwrap();
    assert_eq!(seen.len(), 2, "readings from both meters: {seen:?}");
    close(
        seen["flat-101"]["import_energy_kwh"],
        1234.56,
        0.01,
        "flat-101 energy",
    );
    close(
        seen["shop-1"]["import_energy_kwh"],
        98_765.43,
        0.01,
        "shop-1 energy",
    );
    assert_eq!(seen["shop-1"].len(), 17);
}
