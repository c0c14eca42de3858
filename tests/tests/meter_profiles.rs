//! Every built-in device profile, read by the gateway's Modbus TCP poller
//! through a real loopback socket, and by its Modbus RTU bus over a
//! pseudo-terminal line, from the profile-driven simulator, gives the values
//! the simulator meant; and the simulator's misbehaviour reaches the gateway
//! as the outcome a real fault would.

use gridwatch_gateway::bus::modbus_rtu;
use gridwatch_gateway::bus::modbus_tcp::{ModbusTcpBus, TcpLinks};
use gridwatch_gateway::config::SerialBusConfig;
use gridwatch_gateway::devices::modbus::ModbusDevice;
use gridwatch_gateway::devices::PollOutcome;
use gridwatch_gateway::profile::{ProfileLibrary, BUILT_IN};
use gridwatch_simulators::meter::{
    self, Behaviour, Control, MeterModel, MeterService, SharedMeter,
};
use gridwatch_simulators::rtu;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Sim {
    port: u16,
    units: meter::Units,
    control: Control,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Simulated devices by unit id, each of its profile (built-in model name).
fn devices(units: &[(u8, &str)]) -> meter::Units {
    Arc::new(
        units
            .iter()
            .map(|&(id, profile)| {
                let p = ProfileLibrary::built_in()
                    .get(profile)
                    .expect("built-in profile");
                let mut m = MeterModel::new(p, u64::from(id));
                // Some way into the day, so counters and waves are not at their start.
                m.step(3_600_000 + u64::from(id) * 1000);
                (id, SharedMeter::new(m))
            })
            .collect::<BTreeMap<_, _>>(),
    )
}

async fn start(profile: &str, unit_ids: &[u8]) -> Sim {
    let units = devices(&unit_ids.iter().map(|&id| (id, profile)).collect::<Vec<_>>());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("bound").port();
    let control = Control::new(Behaviour::Normal);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(meter::serve(
        listener,
        units.clone(),
        control.clone(),
        shutdown.clone(),
    ));
    Sim {
        port,
        units,
        control,
        shutdown,
        server,
    }
}

async fn stop(sim: Sim) {
    sim.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), sim.server)
        .await
        .expect("simulator stops when cancelled")
        .expect("no panic")
        .expect("clean end");
}

fn poller(profile: &str, port: u16, unit: u8, timeout_ms: u64) -> (ModbusDevice, ModbusTcpBus) {
    let p = ProfileLibrary::built_in()
        .get(profile)
        .expect("built-in profile");
    let gap = p.max_gap_registers;
    (
        ModbusDevice::new(p, gap),
        ModbusTcpBus::new("127.0.0.1", port, unit, Duration::from_millis(timeout_ms)),
    )
}

/// Checks that one poll of profile `name` got every block of values the
/// simulated device holds, decoded to exactly the values it meant.
fn assert_reads_as_simulated(
    name: &str,
    device: &ModbusDevice,
    outcome: PollOutcome,
    simulated: &SharedMeter,
) {
    let PollOutcome::Answered {
        measurements,
        errors,
    } = outcome
    else {
        panic!("{name}: no answer: {outcome:?}");
    };
    assert!(errors.is_empty(), "{name}: {errors:?}");
    let model = simulated.with(|m| m.clone());
    // Meters come decoded without a map (the gateway's hot path); compare maps.
    let measurements: Vec<_> = measurements.into_iter().map(|m| m.into_map()).collect();
    let blocks: Vec<Option<u16>> = measurements.iter().map(|m| m.socket).collect();
    let expected_blocks = 1 + device
        .profile()
        .channel
        .as_ref()
        .map_or(0, |c| c.max_count());
    assert_eq!(
        blocks.len(),
        usize::from(expected_blocks),
        "{name}: {blocks:?}"
    );
    for m in &measurements {
        let want = model.reading(m.socket);
        assert!(!want.is_empty(), "{name}: block {:?} has values", m.socket);
        assert_eq!(m.values, want, "{name} block {:?}", m.socket);
    }
}

#[tokio::test]
async fn every_profile_reads_through_a_socket_as_its_simulator_meant() {
    for (name, _) in BUILT_IN {
        let sim = start(name, &[1]).await;
        let (mut device, mut bus) = poller(name, sim.port, 1, 2000);
        let outcome = device.poll(&mut bus).await;
        assert_reads_as_simulated(name, &device, outcome, &sim.units[&1]);
        bus.close().await;
        stop(sim).await;
    }
}

#[tokio::test]
async fn every_profile_reads_over_one_rtu_line_as_its_simulator_meant() {
    const BAUD: u32 = 115_200;
    // One device of every built-in profile, units 1, 2, ... on one line.
    let on_line: Vec<(u8, &str)> = (1u8..).zip(BUILT_IN.iter().map(|(n, _)| *n)).collect();
    let units = devices(&on_line);
    let line = rtu::PtyLine::open().expect("a pseudo-terminal pair");
    let mut bus_config = SerialBusConfig::new("rs485", line.path());
    bus_config.baud = BAUD;
    bus_config.timeout_ms = 200;
    // Each unit's service answers from the shared map by the request's unit.
    let control = Control::new(Behaviour::Normal);
    let services: BTreeMap<u8, MeterService> = units
        .keys()
        .map(|&u| (u, MeterService::new(units.clone(), control.clone())))
        .collect();
    let line_control = rtu::LineControl::default();
    let stop = CancellationToken::new();
    let server = tokio::spawn(rtu::serve(
        line,
        BAUD,
        services,
        line_control.clone(),
        stop.clone(),
    ));
    let bus = modbus_rtu::spawn(&bus_config, stop.clone());

    // All devices poll at once, as the gateway's pollers do: the bus takes
    // their requests in turn, one at a time on the wire.
    let mut polls = tokio::task::JoinSet::new();
    for &(unit, name) in &on_line {
        let p = ProfileLibrary::built_in().get(name).expect("built-in");
        let mut device = ModbusDevice::new(p.clone(), p.max_gap_registers);
        let mut client = bus.client(unit);
        polls.spawn(async move {
            let outcome = tokio::time::timeout(Duration::from_secs(10), device.poll(&mut client))
                .await
                .unwrap_or_else(|_| panic!("{name}: the poll ends within its timeouts"));
            (unit, name, device, outcome)
        });
    }
    let mut polled = 0;
    while let Some(done) = polls.join_next().await {
        let (unit, name, device, outcome) = done.expect("no panic");
        assert_reads_as_simulated(name, &device, outcome, &units[&unit]);
        let stats = line_control.stats(unit);
        assert!(
            stats.requests >= 1 && stats.answers == stats.requests,
            "{name} (unit {unit}) answered on the line: {stats:?}"
        );
        polled += 1;
    }
    assert_eq!(polled, BUILT_IN.len());
    assert_eq!(
        line_control.bad_frames(),
        0,
        "the gateway's frames all had valid CRCs"
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the line stops when cancelled")
        .expect("no panic")
        .expect("clean end");
}

#[tokio::test]
async fn devices_behind_one_address_answer_by_unit_id() {
    let sim = start("eastron-sdm120", &[1, 2, 3]).await;
    for unit in [1u8, 3] {
        let (mut device, mut bus) = poller("eastron-sdm120", sim.port, unit, 2000);
        let PollOutcome::Answered { measurements, .. } = device.poll(&mut bus).await else {
            panic!("unit {unit} answers");
        };
        let want = sim.units[&unit].with(|m| m.reading(None));
        assert_eq!(
            measurements[0].clone().into_map().values,
            want,
            "unit {unit}"
        );
        bus.close().await;
    }
    let (mut device, mut bus) = poller("eastron-sdm120", sim.port, 9, 2000);
    let PollOutcome::Answered { errors, .. } = device.poll(&mut bus).await else {
        panic!("a missing unit still answers, with an exception");
    };
    assert!(
        errors.iter().all(|e| e.contains("0x0b")),
        "gateway target device failed to respond: {errors:?}"
    );
    stop(sim).await;
}

#[tokio::test]
async fn exceptions_silence_and_disappearance_reach_the_gateway() {
    let sim = start("tuf-2000m", &[1]).await;
    let (mut device, mut bus) = poller("tuf-2000m", sim.port, 1, 300);
    assert!(matches!(
        device.poll(&mut bus).await,
        PollOutcome::Answered { .. }
    ));

    sim.control.set(Behaviour::Exception(4));
    match device.poll(&mut bus).await {
        PollOutcome::Answered {
            measurements,
            errors,
        } => {
            assert!(measurements.is_empty());
            assert!(
                errors[0].contains("holding registers 0..=")
                    && errors[0].contains("exception 0x04 (server device failure)"),
                "{errors:?}"
            );
        }
        other => panic!("an exception is an answer: {other:?}"),
    }

    sim.control.set(Behaviour::Silent);
    match device.poll(&mut bus).await {
        PollOutcome::Unreachable(reason) => {
            assert!(reason.contains("no answer within 300 ms"), "{reason}")
        }
        other => panic!("silence is no answer: {other:?}"),
    }

    sim.control.set(Behaviour::Absent);
    // Give the server a moment to close the port.
    let mut refused = None;
    for _ in 0..20 {
        if let PollOutcome::Unreachable(r) = device.poll(&mut bus).await {
            if r.contains("refused") {
                refused = Some(r);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused.is_some(), "the port closes while absent");

    sim.control.set(Behaviour::Normal);
    let mut back = false;
    // The link waits a backoff (from 0.5 s) between connection attempts.
    for _ in 0..40 {
        if matches!(device.poll(&mut bus).await, PollOutcome::Answered { ref errors, .. } if errors.is_empty())
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the device answers again on the same port");
    bus.close().await;
    stop(sim).await;
}

#[tokio::test]
async fn devices_at_one_address_share_one_connection() {
    let sim = start("eastron-sdm630", &[1, 2, 3]).await;
    let mut links = TcpLinks::default();
    let p = ProfileLibrary::built_in().get("eastron-sdm630").unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for unit in 1u8..=3 {
        let link = links.get("127.0.0.1", sim.port);
        let mut bus = ModbusTcpBus::on(link, "127.0.0.1", sim.port, unit, Duration::from_secs(2));
        let mut device = ModbusDevice::new(p.clone(), p.max_gap_registers);
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            // Three polls each, concurrently: requests interleave on the link.
            for _ in 0..3 {
                outcomes.push(device.poll(&mut bus).await);
            }
            (unit, outcomes)
        });
    }
    assert_eq!(links.len(), 1);
    while let Some(done) = tasks.join_next().await {
        let (unit, outcomes) = done.expect("no panic");
        let want = sim.units[&unit].with(|m| m.reading(None));
        for o in outcomes {
            match o {
                PollOutcome::Answered {
                    measurements,
                    errors,
                } => {
                    assert!(errors.is_empty(), "unit {unit}: {errors:?}");
                    assert_eq!(
                        measurements[0].clone().into_map().values,
                        want,
                        "unit {unit} got its own values"
                    );
                }
                other => panic!("unit {unit}: {other:?}"),
            }
        }
    }
    assert_eq!(
        sim.control.connections(),
        1,
        "one connection for three devices"
    );
    stop(sim).await;
}
