//! Valve commands to CJ/T 188 meters through the whole gateway: a command
//! on `gw/{site}/{gateway}/cmd/{device}` (Mosquitto, a client written
//! here) reaches the simulated meter on its pseudo-terminal line as the
//! standard's valve control, the meter's valve moves, the ack on
//! `…/cmd-ack/{device}` says so, and the next reading's `valve_state`
//! shows it. A stuck valve and an action the meter does not take get an
//! error ack that says why.

use gridwatch_cjt188::{Address, MeterType, Valve};
use gridwatch_gateway::command::Ack;
use gridwatch_gateway::config::GatewayConfig;
use gridwatch_simulators::cjt188::{Change, Line, Meter, PtyLine, SharedLine};
use gridwatch_simulators::dlt645::LineTiming;
use gridwatch_telemetry::{ManualClock, Reading, Timestamp};
use gridwatch_tests::{Mosquitto, Subscriber};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const WATER: &str = "00000000000001";
const GAS: &str = "00000000000002";

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

/// A publisher for commands, driven until dropped.
struct Publisher {
    client: rumqttc::AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn connect(port: u16) -> Self {
        let opts = rumqttc::MqttOptions::new("valve-operator", "127.0.0.1", port);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 16);
        let task = tokio::spawn(async move {
            loop {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { client, task }
    }

    async fn send(&self, device: &str, payload: &str) {
        self.client
            .publish(
                format!("gw/s/gw-1/cmd/{device}"),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload.as_bytes().to_vec(),
            )
            .await
            .expect("command queued");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The ack of command `id` for `device`.
async fn ack(sub: &mut Subscriber, device: &str, id: &str) -> Ack {
    let topic = format!("gw/s/gw-1/cmd-ack/{device}");
    for _ in 0..20 {
        let m = sub
            .next_matching(Duration::from_secs(10), |m| m.topic == topic)
            .await
            .unwrap_or_else(|| panic!("no ack for {id} on {topic} within 10 s"));
        let a: Ack = serde_json::from_slice(&m.payload).expect("ack parses");
        if a.id.as_deref() == Some(id) {
            return a;
        }
    }
    panic!("no ack for {id} among 20 on {topic}");
}

/// The next reading of `device` with `name` = `value`.
async fn reading_with(sub: &mut Subscriber, device: &str, name: &str, value: f64) -> Reading {
    let topic = format!("gw/s/gw-1/reading/{device}");
    for _ in 0..50 {
        let Some(m) = sub
            .next_matching(Duration::from_secs(10), |m| m.topic == topic)
            .await
        else {
            break;
        };
        let r: Reading = gridwatch_telemetry::codec::decode(&m.payload).expect("reading");
        if r.values.get(name) == Some(&value) {
            return r;
        }
    }
    panic!("no reading of {device} with {name} = {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valve_commands_reach_the_meter_and_are_acknowledged() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let clock = ManualClock::new(Timestamp(1_764_000_000_000));
    let shutdown = CancellationToken::new();
    let line: SharedLine = Arc::new(Mutex::new(Line::new(vec![
        Meter::new(MeterType::COLD_WATER, address(WATER), 321.5, 0.02),
        Meter::new(MeterType::GAS, address(GAS), 812.25, 0.05),
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
    let meter = |id: &str, t: &str, a: &str| {
        format!(
            "[[devices]]\nid = \"{id}\"\nprotocol = \"cjt188\"\nserial_port = \"{}\"\n\
             meter_type = \"{t}\"\nmeter_address = \"{a}\"\npoll_interval_ms = 200\n\
             timeout_ms = 300\n",
            pty.path().display()
        )
    };
    let toml = format!(
        "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n{}{}",
        broker.port(),
        meter("wm-101", "cold_water", WATER),
        meter("gm-101", "gas", GAS),
    );
    let config = GatewayConfig::from_toml_str(&toml, "gw.toml").unwrap();
    let mut sub = Subscriber::connect(
        broker.port(),
        "valve-watch",
        &["gw/s/gw-1/reading/#", "gw/s/gw-1/cmd-ack/#"],
    )
    .await;
    let gateway_stop = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(clock.clone()),
        gateway_stop.clone(),
    ));
    // Connected (and subscribed to its commands) once it publishes.
    let open = reading_with(&mut sub, "gm-101", "valve_state", 0.0).await;
    assert_eq!(open.meter_serial.as_deref(), Some(GAS));
    let operator = Publisher::connect(broker.port());
    let valve = |i: usize| line.lock().unwrap().meters()[i].valve;

    operator
        .send("gm-101", r#"{"id":"v-1","action":"valve_close"}"#)
        .await;
    let a = ack(&mut sub, "gm-101", "v-1").await;
    assert!(a.ok, "{a:?}");
    assert_eq!(
        a.result.as_deref(),
        Some("gm-101 (meter 00000000000002): valve closed")
    );
    assert_eq!(valve(1), Valve::Closed);
    assert_eq!(valve(0), Valve::Open, "only the meter addressed");
    reading_with(&mut sub, "gm-101", "valve_state", 1.0).await;

    operator
        .send("gm-101", r#"{"id":"v-2","action":"valve_open"}"#)
        .await;
    let a = ack(&mut sub, "gm-101", "v-2").await;
    assert!(a.ok, "{a:?}");
    assert_eq!(valve(1), Valve::Open);
    reading_with(&mut sub, "gm-101", "valve_state", 0.0).await;

    // A stuck valve: the meter refuses, and the ack says so.
    line.lock()
        .unwrap()
        .apply(Some(address(GAS)), Change::Valve(Valve::Abnormal));
    operator
        .send("gm-101", r#"{"id":"v-3","action":"valve_close"}"#)
        .await;
    let a = ack(&mut sub, "gm-101", "v-3").await;
    assert!(!a.ok, "{a:?}");
    let e = a.error.unwrap_or_default();
    assert!(e.contains("refused") && e.contains("stuck"), "{e}");

    // A meter that does not answer: the ack names the timeout.
    line.lock().unwrap().apply(
        Some(address(WATER)),
        Change::Behaviour(gridwatch_simulators::cjt188::Behaviour::Silent),
    );
    operator
        .send("wm-101", r#"{"id":"v-4","action":"valve_close"}"#)
        .await;
    let a = ack(&mut sub, "wm-101", "v-4").await;
    let e = a.error.unwrap_or_default();
    assert!(e.contains("did not answer") && e.contains("300 ms"), "{e}");
    assert_eq!(valve(0), Valve::Open);

    // Not a valve action.
    operator
        .send("wm-101", r#"{"id":"v-5","action":"socket_off","socket":1}"#)
        .await;
    let a = ack(&mut sub, "wm-101", "v-5").await;
    let e = a.error.unwrap_or_default();
    assert!(e.contains("valve_open, valve_close"), "{e}");

    gateway_stop.cancel();
    gateway.await.unwrap().unwrap();
    shutdown.cancel();
    pty.join().await.unwrap();
}
