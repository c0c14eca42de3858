//! The gateway's Modbus RTU bus against simulated piles on a pseudo-terminal
//! pair: values match the model, each misbehaviour gives the right device
//! event, and a misbehaving unit does not starve the other one on the line.
//!
//! Every wait is bounded in time; the line runs at 115 200 baud so a test
//! takes a second or two.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gridwatch_gateway::bus::modbus_rtu::{self, RtuBus};
use gridwatch_gateway::devices::modbus::{ModbusDevice, ModbusRtuDevice};
use gridwatch_gateway::devices::poller::{Poller, Schedule};
use gridwatch_gateway::devices::{Measurement, PollOutcome};
use gridwatch_gateway::status::Health;
use gridwatch_gateway::uplink::{self, Record};
use gridwatch_gateway::GatewayConfig;
use gridwatch_simulators::pile::{ChargerKind, PileConfig, PileModel, PileService, SharedPile};
use gridwatch_simulators::rtu::{self, Behaviour, LineControl, PtyLine};
use gridwatch_telemetry::{EventKind, SystemClock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const BAUD: u32 = 115_200;

/// Two piles, units 1 and 2, on one simulated line; returns its path.
struct Line {
    piles: BTreeMap<u8, SharedPile>,
    control: LineControl,
    config: GatewayConfig,
    stop: CancellationToken,
}

impl Drop for Line {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn pile(unit: u8) -> SharedPile {
    let mut model = PileModel::new(PileConfig {
        sockets: 4,
        seed: u64::from(unit),
        unit_id: unit,
        ..PileConfig::default()
    })
    .expect("valid pile");
    model.plug_in(1, ChargerKind::Lithium).expect("free socket");
    model.plug_in(3, ChargerKind::Lithium).expect("free socket");
    model.step(15 * 60_000);
    SharedPile::new(model)
}

fn config(path: &Path) -> GatewayConfig {
    let text = format!(
        r#"
[gateway]
id = "gw-rtu"
site = "yard"
[mqtt]
host = "127.0.0.1"
[[buses]]
id = "rs485"
port = "{}"
baud = {BAUD}
timeout_ms = 60
retries = 1
probe_interval_ms = 400
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_rtu"
bus = "rs485"
unit_id = 1
poll_interval_ms = 100
offline_after_failures = 2
retry_max_ms = 200
[[devices]]
id = "pile-2"
profile = "gridwatch-ebp12"
protocol = "modbus_rtu"
bus = "rs485"
unit_id = 2
poll_interval_ms = 100
offline_after_failures = 2
retry_max_ms = 200
"#,
        path.display()
    );
    GatewayConfig::from_toml_str(&text, "rtu-test").expect("valid config")
}

async fn start_line() -> Line {
    let line = PtyLine::open().expect("a pseudo-terminal pair");
    let config = config(line.path());
    let piles: BTreeMap<u8, SharedPile> = [1, 2].into_iter().map(|u| (u, pile(u))).collect();
    let peer = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let services: BTreeMap<u8, PileService> = piles
        .iter()
        .map(|(&u, p)| (u, PileService::new(p.clone(), u, peer)))
        .collect();
    let control = LineControl::default();
    let stop = CancellationToken::new();
    tokio::spawn(rtu::serve(
        line,
        BAUD,
        services,
        control.clone(),
        stop.clone(),
    ));
    Line {
        piles,
        control,
        config,
        stop,
    }
}

fn socket_values(ms: &[Measurement], socket: u16) -> &BTreeMap<String, f64> {
    &ms.iter()
        .find(|m| m.socket == Some(socket))
        .unwrap_or_else(|| panic!("no reading of socket {socket} in {ms:?}"))
        .values
}

#[tokio::test]
async fn two_piles_on_one_line_read_as_the_model_holds() {
    let line = start_line().await;
    let bus = modbus_rtu::spawn(&line.config.buses[0], line.stop.clone());
    for (i, unit) in [1u8, 2].into_iter().enumerate() {
        let d = &line.config.devices[i];
        let mut logic = ModbusDevice::new(d.profile.clone(), d.max_gap_registers);
        let mut client = bus.client(unit);
        let outcome = tokio::time::timeout(Duration::from_secs(5), logic.poll(&mut client))
            .await
            .expect("a poll ends within its timeouts");
        let PollOutcome::Answered {
            measurements,
            errors,
        } = outcome
        else {
            panic!("unit {unit} did not answer: {outcome:?}");
        };
        assert!(errors.is_empty(), "unit {unit}: {errors:?}");
        let pile = &line.piles[&unit];
        for socket in 1..=4u16 {
            let want = pile.with(|p| p.socket(socket)).expect("socket exists");
            let got = socket_values(&measurements, socket);
            assert!(
                (got["power_w"] - f64::from(want.power_w)).abs() <= 0.05,
                "unit {unit} socket {socket}: {got:?} vs {want:?}"
            );
            assert!((got["current_a"] - f64::from(want.current_a)).abs() <= 0.0005);
            assert!((got["temperature_c"] - f64::from(want.temperature_c)).abs() <= 0.05);
            assert!((got["energy_wh"] - f64::from(want.energy_wh)).abs() <= 0.05);
            assert_eq!(got["relay_on"], f64::from(u8::from(want.relay_on)));
        }
        assert!(
            socket_values(&measurements, 1)["power_w"] > 50.0,
            "socket 1 charges"
        );
        assert_eq!(
            socket_values(&measurements, 2)["power_w"],
            0.0,
            "socket 2 is idle"
        );
    }
    assert_eq!(
        line.control.bad_frames(),
        0,
        "the gateway's frames all had valid CRCs"
    );
}

#[tokio::test]
async fn a_coil_write_switches_the_relay() {
    let line = start_line().await;
    let bus = modbus_rtu::spawn(&line.config.buses[0], line.stop.clone());
    let client = bus.client(2);
    client.write_coil(0, false).await.expect("relay written");
    assert!(!line.piles[&2].with(|p| p.relay(1)).expect("socket 1"));
    assert!(
        line.piles[&1].with(|p| p.relay(1)).expect("socket 1"),
        "unit 1 untouched"
    );
    let past = client
        .write_coil(9, true)
        .await
        .expect_err("no coil 9 on a 4-socket pile");
    assert_eq!(past.to_string(), "exception 0x02 (illegal data address)");
}

/// Runs both devices' pollers for `run_for`, with unit 2 set to `behaviour`
/// after `after`; returns each device's records.
async fn poll_both(
    line: &Line,
    bus: &RtuBus,
    behaviour: Behaviour,
    run_for: Duration,
) -> BTreeMap<String, Vec<Record>> {
    line.control.set(2, behaviour);
    let (sender, mut records) = uplink::queue();
    let stop = CancellationToken::new();
    let health = Arc::new(Health::new(
        line.config.gateway.id.clone(),
        line.config.gateway.site.clone(),
        2,
    ));
    for (i, unit) in [1u8, 2].into_iter().enumerate() {
        let d = &line.config.devices[i];
        let device = ModbusRtuDevice::new(
            ModbusDevice::new(d.profile.clone(), d.max_gap_registers),
            bus.client(unit)
                .offline_after_failures(d.offline_after_failures),
        );
        let schedule = Schedule {
            poll_interval: d.poll_interval(),
            retry_max: d.retry_max(),
            offline_after_failures: d.offline_after_failures,
        };
        let poller = Poller::new(
            device,
            line.config.device_stamp(d, 1),
            schedule,
            Arc::new(SystemClock),
            health.clone(),
            sender.clone(),
        );
        tokio::spawn(poller.run(stop.clone()));
    }
    drop(sender);
    tokio::time::sleep(run_for).await;
    stop.cancel();
    collect(&mut records).await
}

async fn collect(records: &mut mpsc::Receiver<Record>) -> BTreeMap<String, Vec<Record>> {
    let mut by_device: BTreeMap<String, Vec<Record>> = BTreeMap::new();
    while let Ok(Some(r)) = tokio::time::timeout(Duration::from_secs(5), records.recv()).await {
        let device = r.device().as_str().to_owned();
        by_device.entry(device).or_default().push(r);
    }
    by_device
}

fn events(records: &[Record]) -> Vec<&EventKind> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Event(e) => Some(&e.kind),
            Record::Reading(_) | Record::Prepared { .. } => None,
        })
        .collect()
}

/// Polls of pile-1 that produced readings (one pile reading per poll).
fn polls(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| {
            matches!(r, Record::Reading(x) | Record::Prepared { reading: x, .. } if x.socket.is_none())
        })
        .count()
}

/// Each failure that hides the answer makes pile-2 go offline with a
/// reason that names it, while pile-1 keeps its schedule.
#[tokio::test]
async fn misbehaving_units_go_offline_without_starving_the_other() {
    let run = Duration::from_millis(1_500);
    for (behaviour, reason) in [
        (
            Behaviour::Silent,
            "no answer to holding registers 0..=4 within 60 ms",
        ),
        (Behaviour::CorruptCrc, "CRC mismatch"),
        (
            Behaviour::Truncate,
            "the response stopped after 7 of 15 bytes",
        ),
    ] {
        // A fresh line and bus each time: the bus remembers that unit 2 was
        // gone, and its reason, until a probe finds it again.
        let line = start_line().await;
        let bus = modbus_rtu::spawn(&line.config.buses[0], line.stop.clone());
        let by_device = poll_both(&line, &bus, behaviour, run).await;
        let two = events(&by_device["pile-2"]);
        let offline: Vec<_> = two
            .iter()
            .filter_map(|e| match e {
                EventKind::DeviceOffline { reason } => Some(reason),
                _ => None,
            })
            .collect();
        assert_eq!(
            offline.len(),
            1,
            "{behaviour:?}: one offline event, got {two:?}"
        );
        assert!(offline[0].contains(reason), "{behaviour:?}: {}", offline[0]);
        assert_eq!(
            polls(&by_device["pile-2"]),
            0,
            "{behaviour:?}: no readings from pile-2"
        );
        // 100 ms polls for 1.5 s: 15 at most; at least 12 despite pile-2.
        let one = polls(&by_device["pile-1"]);
        assert!(one >= 12, "{behaviour:?}: pile-1 polled only {one} times");
        assert!(events(&by_device["pile-1"]).is_empty());
    }
}

#[tokio::test]
async fn an_absent_unit_is_only_probed_and_comes_back_online() {
    let line = start_line().await;
    let bus = modbus_rtu::spawn(&line.config.buses[0], line.stop.clone());
    // Pollers restart in each phase; the bus keeps its view of unit 2.
    let before = line.control.stats(2).requests;
    let gone = poll_both(&line, &bus, Behaviour::Silent, Duration::from_millis(1_300)).await;
    let tried = line.control.stats(2).requests - before;
    // The first two polls (offline_after_failures = 2): 2 tries each; then
    // one probe per 400 ms: 4 + 3 at most (pile-2 polls every 100-200 ms;
    // without probing that would be ~20 requests).
    assert!(tried <= 7, "a silent unit got {tried} requests in 1.3 s");
    assert!(polls(&gone["pile-1"]) >= 10);

    // Fresh pollers: until the bus's next probe finds unit 2 again, their
    // polls fail at once (and may report it offline); then it is back.
    let back = poll_both(&line, &bus, Behaviour::Normal, Duration::from_millis(1_000)).await;
    let two = events(&back["pile-2"]);
    assert!(polls(&back["pile-2"]) >= 2, "pile-2 answers again: {two:?}");
    if two
        .iter()
        .any(|e| matches!(e, EventKind::DeviceOffline { .. }))
    {
        assert!(
            matches!(two.last(), Some(EventKind::DeviceOnline)),
            "{two:?}"
        );
    }
}

#[tokio::test]
async fn the_offline_device_is_reported_back_online_by_its_poller() {
    let line = start_line().await;
    let bus = modbus_rtu::spawn(&line.config.buses[0], line.stop.clone());
    line.control.set(2, Behaviour::Silent);
    let control = line.control.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        control.set(2, Behaviour::Normal);
    });
    let by_device = poll_both(&line, &bus, Behaviour::Silent, Duration::from_millis(2_000)).await;
    let two: Vec<_> = events(&by_device["pile-2"])
        .into_iter()
        .filter(|e| !matches!(e, EventKind::DeviceError { .. }))
        .collect();
    assert!(
        matches!(
            two.as_slice(),
            [EventKind::DeviceOffline { .. }, EventKind::DeviceOnline]
        ),
        "{two:?}"
    );
    assert!(polls(&by_device["pile-2"]) >= 3);
}

#[tokio::test]
async fn exceptions_noise_and_slowness_are_handled_as_answers() {
    let line = start_line().await;
    let bus = modbus_rtu::spawn(&line.config.buses[0], line.stop.clone());
    let by_device = poll_both(
        &line,
        &bus,
        Behaviour::Exception(0x04),
        Duration::from_millis(600),
    )
    .await;
    let two = events(&by_device["pile-2"]);
    assert!(
        two.iter().any(|e| matches!(e, EventKind::DeviceError { message } if message.contains("exception 0x04 (server device failure)"))),
        "{two:?}"
    );
    assert!(!two
        .iter()
        .any(|e| matches!(e, EventKind::DeviceOffline { .. })));

    let noisy = poll_both(
        &line,
        &bus,
        Behaviour::NoiseBefore,
        Duration::from_millis(600),
    )
    .await;
    assert!(
        polls(&noisy["pile-2"]) >= 4,
        "noise before the answer costs nothing"
    );
    assert!(
        events(&noisy["pile-2"]).is_empty(),
        "{:?}",
        events(&noisy["pile-2"])
    );

    // 20 ms late is within the 60 ms timeout: slow, but there. Its turns
    // alternate with pile-1's, so pile-1 waits at most one slow answer per
    // request and keeps (nearly) its 100 ms schedule.
    let slow = poll_both(
        &line,
        &bus,
        Behaviour::Slow(Duration::from_millis(20)),
        Duration::from_millis(1_000),
    )
    .await;
    assert!(polls(&slow["pile-2"]) >= 5);
    assert!(
        polls(&slow["pile-1"]) >= 8,
        "pile-1 polled {} times",
        polls(&slow["pile-1"])
    );
    assert!(events(&slow["pile-2"]).is_empty());
}

/// A Modbus RTU master nobody here wrote (pymodbus's serial client over
/// pyserial, both installed by scripts/test) reads the simulated line.
const PEER: &str = r#"
import json, sys
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient

port, want = sys.argv[1], json.loads(sys.argv[2])
# Parity "N": pyserial's parity setting is refused by a pseudo-terminal
# (EINVAL), and a pty carries bytes, not bits, so it changes nothing else.
c = ModbusSerialClient(port, framer=FramerType.RTU, baudrate=115200, bytesize=8,
                       parity="N", stopbits=1, timeout=2, retries=0)
assert c.connect(), "cannot open " + port
for unit, blocks in want.items():
    for start, words in blocks:
        r = c.read_holding_registers(start, count=len(words), slave=int(unit))
        assert not r.isError(), f"unit {unit} {start}+{len(words)}: {r}"
        assert r.registers == words, f"unit {unit} {start}: {r.registers} != {words}"
# An unmapped register: Illegal Data Address, and the line still works.
r = c.read_holding_registers(50, count=1, slave=1)
assert r.isError() and r.exception_code == 2, r
# Switch unit 2's socket 3 on through its relay coil.
assert not c.write_coil(2, True, slave=2).isError()
assert c.read_coils(0, count=4, slave=2).bits[:4] == [True, False, True, False]
c.close()
print("pymodbus RTU checks passed")
"#;

#[tokio::test]
async fn pymodbus_reads_the_rtu_line_and_values_match() {
    let line = start_line().await;
    let path = line.config.buses[0].port.clone();
    let piles = &line.piles;
    piles[&2].with(|p| p.set_relay(3, false)).expect("socket 3");

    // The pile block and sockets 1 and 3 of each unit, as the model holds them.
    let mut want = serde_json::Map::new();
    for (&unit, pile) in piles {
        let blocks: Vec<(u16, Vec<u16>)> = [(0, 5), (100, 13), (140, 13)]
            .into_iter()
            .map(|(start, n)| {
                (
                    start,
                    pile.with(|p| p.read_holding(start, n)).expect("mapped"),
                )
            })
            .collect();
        want.insert(unit.to_string(), serde_json::json!(blocks));
    }
    let run = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(PEER)
        .arg(&path)
        .arg(serde_json::Value::Object(want).to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the pymodbus client finishes within 60 s")
        .expect("python3 runs (install it, pymodbus==3.8.6 and pyserial)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "pymodbus or pyserial is missing: run `pip install pymodbus==3.8.6 pyserial` (scripts/test does)\n{stderr}"
    );
    assert!(
        out.status.success(),
        "pymodbus checks failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        piles[&2].with(|p| p.relay(3)).expect("socket 3"),
        "the coil write reached unit 2"
    );
    assert!(piles[&1].with(|p| p.relay(1)).expect("socket 1"));
}
