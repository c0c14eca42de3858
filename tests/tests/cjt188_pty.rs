//! The gateway reads simulated CJ/T 188 water, gas and heat meters over a
//! real pseudo-terminal (`gridwatch-sim cjt188`'s bus): the values it
//! reports match what the meters hold, a register wrapping past its eight
//! digits is use, and each kind of misbehaviour becomes the device event
//! (or value) an operator expects.

use gridwatch_cjt188::{Address, MeterType};
use gridwatch_gateway::bus::cjt188::Cjt188Line;
use gridwatch_gateway::config::{GatewayConfig, Transport};
use gridwatch_gateway::devices::cjt188::Cjt188Device;
use gridwatch_gateway::devices::poller::{Poller, Schedule};
use gridwatch_gateway::devices::{Device, PollOutcome};
use gridwatch_gateway::status::Health;
use gridwatch_gateway::uplink::{self, Record};
use gridwatch_simulators::cjt188::{Change, Line, Meter, PtyLine, SharedLine};
use gridwatch_simulators::dlt645::LineTiming;
use gridwatch_telemetry::{DeviceKind, EventKind, ManualClock, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_764_000_000_000;
const WATER: &str = "00000000000001";
const GAS: &str = "00000000000002";
const HEAT: &str = "00000000000003";

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

/// A water meter, a gas meter one hour from wrapping past 999999.99 m³,
/// and a heat meter, on one unpaced line.
fn start_line(clock: &ManualClock, shutdown: &CancellationToken) -> (SharedLine, PtyLine) {
    let line: SharedLine = Arc::new(Mutex::new(Line::new(vec![
        Meter::new(MeterType::COLD_WATER, address(WATER), 321.5, 0.02),
        Meter::new(MeterType::GAS, address(GAS), 999_999.0, 2.0),
        Meter::new(MeterType::HEAT, address(HEAT), 4_500.0, 2.0),
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

/// What meter `i` of `line` holds at `t`.
fn held(line: &SharedLine, i: usize, t: i64) -> f64 {
    line.lock().unwrap().meters_mut()[i].register_at(t)
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
    let serial = Arc::new(Cjt188Line::new(pty.path().to_owned(), 2400));
    let timeout = Duration::from_millis(500);
    let device =
        |t: MeterType, a: &str| Cjt188Device::new(serial.clone(), t, address(a), 4, timeout, None);
    let mut water = device(MeterType::COLD_WATER, WATER);
    let mut gas = device(MeterType::GAS, GAS);
    let mut heat = device(MeterType::HEAT, HEAT);
    assert!(water.address().contains("meter 00000000000001 (type 10H)"));

    // All three polled at once: the shared line takes turns.
    let (w, g, h) = tokio::join!(water.poll(), gas.poll(), heat.poll());
    let (w, g, h) = (values(w), values(g), values(h));
    close(w["volume_m3"], held(&line, 0, T0), 0.01, "water volume_m3");
    assert_eq!(w["valve_state"], 0.0);
    assert_eq!(w["battery_low"], 0.0);
    assert!(
        !w.contains_key("flow_l"),
        "no interval before a second poll"
    );
    close(g["volume_m3"], 999_999.0, 0.01, "gas volume_m3");
    close(h["heat_kwh"], held(&line, 2, T0), 0.01, "heat_kwh");
    close(h["heat_power_kw"], 2.0, 0.01, "heat_power_kw");
    close(h["supply_temperature_c"], 55.0, 0.01, "supply");
    close(h["return_temperature_c"], 40.0, 0.01, "return");
    assert!(h["flow_rate_m3_h"] > 0.0, "{h:?}");
    assert_eq!(line.lock().unwrap().answered, 3);

    // An hour later: water used 20 L; the gas register wrapped from
    // 999999.00 through 999999.99 to 1.00, which is 2 m³ of use.
    clock.advance(3_600_000);
    let (w, g, h) = tokio::join!(water.poll(), gas.poll(), heat.poll());
    let (w, g, h) = (values(w), values(g), values(h));
    let t1 = T0 + 3_600_000;
    close(w["volume_m3"], held(&line, 0, t1), 0.01, "water volume_m3");
    close(w["flow_l"], 20.0, 10.0, "water flow_l");
    close(
        g["volume_m3"],
        held(&line, 1, t1),
        0.01,
        "gas after the wrap",
    );
    assert!(g["volume_m3"] < 2.0, "{g:?}");
    close(g["use_m3"], 2.0, 0.02, "gas use across the wrap");
    close(h["heat_use_kwh"], 2.0, 0.02, "heat_use_kwh");

    shutdown.cancel();
    pty.join().await.unwrap();
}

/// Runs a poller for the water meter (through the config, as the daemon
/// does) and hands back its records.
fn start_poller(
    port: &std::path::Path,
    clock: &ManualClock,
    shutdown: &CancellationToken,
) -> mpsc::Receiver<Record> {
    let toml = format!(
        "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n\
         [[devices]]\nid = \"wm-1\"\nprotocol = \"cjt188\"\nserial_port = \"{}\"\n\
         meter_type = \"cold_water\"\nmeter_address = \"{WATER}\"\npoll_interval_ms = 100\n\
         timeout_ms = 150\nretry_max_ms = 200\noffline_after_failures = 2\n",
        port.display()
    );
    let config = GatewayConfig::from_toml_str(&toml, "test").unwrap();
    let d = &config.devices[0];
    let Transport::Cjt188 {
        serial_port,
        baud,
        meter_type,
        address,
        preamble,
        ..
    } = &d.transport
    else {
        panic!("{:?}", d.transport)
    };
    let line = Arc::new(Cjt188Line::new(serial_port.clone(), *baud));
    let meter = Cjt188Device::new(
        line,
        *meter_type,
        *address,
        usize::from(*preamble),
        d.timeout(),
        None,
    );
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
async fn next<T>(records: &mut mpsc::Receiver<Record>, pick: impl Fn(Record) -> Option<T>) -> T {
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

async fn next_event(records: &mut mpsc::Receiver<Record>) -> EventKind {
    next(records, |r| match r {
        Record::Event(e) => Some(e.kind),
        Record::Reading(_) | Record::Prepared { .. } => None,
    })
    .await
}

/// The next reading whose `name` is `value`, passing over the others.
async fn reading_with(records: &mut mpsc::Receiver<Record>, name: &'static str, value: f64) {
    next(records, move |r| match r {
        Record::Reading(r) if r.value(name) == Some(value) => Some(()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn misbehaviour_becomes_device_events_and_values() {
    let clock = ManualClock::new(Timestamp(T0));
    let shutdown = CancellationToken::new();
    let (line, pty) = start_line(&clock, &shutdown);
    let mut records = start_poller(pty.path(), &clock, &shutdown);
    let set = |word: &str| {
        let change = Change::parse(word).unwrap();
        line.lock().unwrap().apply(Some(address(WATER)), change);
    };

    let first = next(&mut records, |r| match r {
        Record::Reading(r) => Some(r),
        Record::Event(_) | Record::Prepared { .. } => None,
    })
    .await;
    assert_eq!(first.kind, DeviceKind::WaterMeter);
    assert_eq!(first.meter_serial.as_deref(), Some(WATER));

    // Valve and battery travel as values.
    set("valve-closed");
    reading_with(&mut records, "valve_state", 1.0).await;
    set("low-battery");
    reading_with(&mut records, "battery_low", 1.0).await;

    // Gone from the line, then back.
    set("silent");
    let EventKind::DeviceOffline { reason } = next_event(&mut records).await else {
        panic!("expected device_offline")
    };
    assert!(reason.contains("no answer within 150 ms"), "{reason}");
    assert!(reason.contains("no answer to 2 polls in a row"), "{reason}");
    set("normal");
    assert_eq!(next_event(&mut records).await, EventKind::DeviceOnline);

    // Abnormal answers: the meter is there but refuses; reported once.
    set("abnormal");
    let EventKind::DeviceError { message } = next_event(&mut records).await else {
        panic!("expected device_error")
    };
    assert!(message.contains("answered abnormally"), "{message}");

    // Corrupt answers count as no answer, and say why.
    set("bad-checksum");
    let EventKind::DeviceOffline { reason } = next_event(&mut records).await else {
        panic!("expected device_offline")
    };
    assert!(reason.contains("checksum"), "{reason}");
    set("noise");
    assert_eq!(next_event(&mut records).await, EventKind::DeviceOnline);
    set("truncated");
    let EventKind::DeviceOffline { reason } = next_event(&mut records).await else {
        panic!("expected device_offline")
    };
    assert!(reason.contains("no complete answer"), "{reason}");

    shutdown.cancel();
    pty.join().await.unwrap();
}

/// The whole gateway (config text → daemon → MQTT) with the three meters
/// sharing one pty line, against a Mosquitto nobody here wrote: each
/// meter's reading arrives under its device id with the meter's values,
/// kind and serial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_publishes_water_gas_and_heat_meters_sharing_a_line() {
    let Some(broker) = gridwatch_tests::Mosquitto::start() else {
        return;
    };
    let clock = ManualClock::new(Timestamp(T0));
    let shutdown = CancellationToken::new();
    let (line, pty) = start_line(&clock, &shutdown);
    let meter = |id: &str, t: &str, address: &str| {
        format!(
            "[[devices]]\nid = \"{id}\"\nprotocol = \"cjt188\"\nserial_port = \"{}\"\n\
             meter_type = \"{t}\"\nmeter_address = \"{address}\"\npoll_interval_ms = 200\n\
             timeout_ms = 300\n",
            pty.path().display()
        )
    };
    let toml = format!(
        "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n{}{}{}",
        broker.port(),
        meter("wm-101", "cold_water", WATER),
        meter("gm-101", "gas", GAS),
        meter("hm-101", "heat", HEAT),
    );
    let config = GatewayConfig::from_toml_str(&toml, "gw.toml").unwrap();
    let mut sub = gridwatch_tests::Subscriber::connect(
        broker.port(),
        "cjt188-watch",
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
        seen.insert(r.device.as_str().to_owned(), r);
        if seen.len() == 3 {
            break;
        }
    }
    gateway_stop.cancel();
    gateway.await.unwrap().unwrap();
    shutdown.cancel();
    pty.join().await.unwrap();
    assert_eq!(seen.len(), 3, "readings from all three meters: {seen:?}");
    let wm = &seen["wm-101"];
    assert_eq!(wm.kind, DeviceKind::WaterMeter);
    assert_eq!(wm.meter_serial.as_deref(), Some(WATER));
    close(wm.values["volume_m3"], held(&line, 0, T0), 0.01, "wm-101");
    let gm = &seen["gm-101"];
    assert_eq!(gm.kind, DeviceKind::GasMeter);
    close(gm.values["volume_m3"], held(&line, 1, T0), 0.01, "gm-101");
    let hm = &seen["hm-101"];
    assert_eq!(hm.kind, DeviceKind::HeatMeter);
    assert_eq!(hm.meter_serial.as_deref(), Some(HEAT));
    close(hm.values["heat_kwh"], held(&line, 2, T0), 0.01, "hm-101");
    close(hm.values["heat_power_kw"], 2.0, 0.01, "hm-101 power");
}
