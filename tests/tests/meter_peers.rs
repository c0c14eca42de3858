//! Peer checks with a Modbus implementation nobody here wrote (pymodbus,
//! pinned and installed by `scripts/test`): the gateway reads a pymodbus
//! server whose words Python's `struct` encoded, and a pymodbus client reads
//! the profile-driven meter simulator and decodes the words itself. Both
//! sides must agree with ours on addresses, byte order and word order.

use gridwatch_gateway::bus::modbus_tcp::ModbusTcpBus;
use gridwatch_gateway::devices::modbus::ModbusDevice;
use gridwatch_gateway::devices::PollOutcome;
use gridwatch_gateway::profile::{Function, ProfileLibrary, ValueType, WordOrder};
use gridwatch_simulators::meter::{self, Behaviour, Control, MeterModel, SharedMeter};
use gridwatch_tests::{run_pymodbus_client, PyModbusServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The scripts' names for a table and a type: ours ("input", "holding",
/// "f32", "i32", ...), which the scripts know for the tables and types
/// these profiles use.
fn names(f: Function, t: ValueType) -> (String, String) {
    (f.to_string(), t.to_string())
}

fn order(w: WordOrder) -> &'static str {
    match w {
        WordOrder::HighFirst => "high_first",
        WordOrder::LowFirst => "low_first",
    }
}

#[tokio::test]
async fn the_gateway_reads_a_pymodbus_server_as_python_encoded_it() {
    let mut lib = ProfileLibrary::built_in();
    // SDM120: input registers, floats high word first. TUF-2000M: holding
    // registers, floats and longs low word first. One server holds both.
    for name in ["eastron-sdm120", "tuf-2000m"] {
        let p = lib.get(name).unwrap();
        let mut points = Vec::new();
        let mut expected = BTreeMap::new();
        for (i, r) in p.registers.iter().enumerate() {
            // Values an f32 holds exactly, and whole numbers for integers.
            let v = match r.value_type {
                ValueType::F32 => 100.25 + i as f64 * 3.5,
                _ => 1000.0 + i as f64,
            };
            let (table, type_name) = names(r.function, r.value_type);
            points.push(json!([table, r.address, type_name, order(r.word_order), v]));
            expected.insert(r.name.clone(), v * r.scale + r.offset);
        }
        let server = PyModbusServer::start(&Value::Array(points));
        let mut device = ModbusDevice::new(p.clone(), p.max_gap_registers);
        let mut bus = ModbusTcpBus::new("127.0.0.1", server.port(), 1, Duration::from_secs(3));
        match device.poll(&mut bus).await {
            PollOutcome::Answered {
                measurements,
                errors,
            } => {
                assert!(errors.is_empty(), "{name}: {errors:?}");
                assert_eq!(
                    measurements[0].clone().into_map().values,
                    expected,
                    "{name}"
                );
            }
            other => panic!("{name}: the pymodbus server did not answer: {other:?}"),
        }
        bus.close().await;
    }
}

/// The client script: argv[1] port, argv[2] JSON list of `[name, table,
/// address, type, word order]`; prints `{name: value}` decoded with `struct`.
const CLIENT: &str = r#"
import json, struct, sys
from pymodbus.client import ModbusTcpClient

port = int(sys.argv[1])
points = json.loads(sys.argv[2])
c = ModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
assert c.connect(), "cannot connect"
fmt = {"u16": ">H", "i16": ">h", "i32": ">i", "f32": ">f"}
out = {}
for name, table, addr, typ, order in points:
    n = struct.calcsize(fmt[typ]) // 2
    read = c.read_input_registers if table == "input" else c.read_holding_registers
    r = read(addr, count=n, slave=1)
    assert not r.isError(), f"{name} at {table} {addr}: {r}"
    words = list(r.registers)
    if order == "low_first":
        words.reverse()
    out[name] = struct.unpack(fmt[typ], b"".join(w.to_bytes(2, "big") for w in words))[0]
c.close()
print(json.dumps(out))
"#;

#[tokio::test]
async fn a_pymodbus_client_reads_the_meter_simulator() {
    let mut lib = ProfileLibrary::built_in();
    for name in ["eastron-sdm630", "tuf-2000m", "chint-dtsu666"] {
        let p = lib.get(name).unwrap();
        let mut model = MeterModel::new(p.clone(), 7);
        model.step(5_400_000);
        let want = model.reading(None);
        let units: meter::Units = Arc::new(BTreeMap::from([(1u8, SharedMeter::new(model))]));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let port = listener.local_addr().expect("bound").port();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(meter::serve(
            listener,
            units,
            Control::new(Behaviour::Normal),
            shutdown.clone(),
        ));
        let points: Vec<Value> = p
            .registers
            .iter()
            .filter(|r| r.is_emitted())
            .map(|r| {
                let (table, type_name) = names(r.function, r.value_type);
                json!([r.name, table, r.address, type_name, order(r.word_order)])
            })
            .collect();
        let out = run_pymodbus_client(
            CLIENT,
            &[port.to_string(), Value::Array(points).to_string()],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        let raw: BTreeMap<String, f64> =
            serde_json::from_slice(&out.stdout).expect("the client prints JSON");
        assert_eq!(raw.len(), want.len(), "{name}");
        for (value_name, raw_value) in raw {
            let r = p.register(&value_name).unwrap();
            let got = raw_value * r.scale + r.offset;
            let w = want[&value_name];
            // Python widens the f32 exactly (230.1999969...); we keep the
            // decimal the device meant (230.2): equal to f32 precision.
            assert!(
                (got - w).abs() <= w.abs() * 1e-6 + 1e-9,
                "{name}.{value_name}: pymodbus read {got}, the simulator meant {w}"
            );
        }
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    }
}
