//! `gridwatch_gateway::run` against a real Mosquitto broker and an in-test
//! Modbus TCP pile: readings and the retained status reach the broker, the
//! clean shutdown leaves `offline`, a vanished gateway is marked offline by
//! its last will, and a broker that starts late is found by the reconnect.
//!
//! Needs `mosquitto` (Debian package `mosquitto`, which scripts/test
//! installs); the broker and the fake pile come from `support`.

mod support;

use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{
    codec, DeviceKind, GatewayState, ManualClock, Reading, Status, Timestamp,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::{free_port, start_pile, start_pile_on, Broker};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn config(broker_port: u16, pile: SocketAddr, gateway: &str) -> GatewayConfig {
    GatewayConfig::from_toml_str(
        &format!(
            r#"
[gateway]
id = "{gateway}"
site = "yard-t"
[mqtt]
host = "127.0.0.1"
port = {broker_port}
keep_alive_s = 5
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
port = {}
poll_interval_ms = 200
timeout_ms = 500
"#,
            pile.port()
        ),
        "test",
    )
    .unwrap()
}

/// Subscribes to `filter` and forwards (topic, payload) of every publish.
async fn subscribe(
    port: u16,
    filter: &str,
    id: &str,
) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    rx
}

async fn status_until(
    rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    state: GatewayState,
    wait: Duration,
) -> Status {
    tokio::time::timeout(wait, async {
        loop {
            let (_, payload) = rx.recv().await.expect("subscriber ended");
            let s: Status = codec::decode(&payload).unwrap();
            if s.state == state {
                return s;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {state:?} status within {wait:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_and_status_reach_the_broker_and_shutdown_leaves_offline() {
    let broker = Broker::start().await;
    let (pile, _, _pile_stop) = start_pile().await;

    let mut status = subscribe(broker.port, "gw/yard-t/gw-it/status", "t-status").await;
    let mut readings = subscribe(broker.port, "gw/yard-t/gw-it/reading/+", "t-readings").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let clock = ManualClock::new(Timestamp(1_764_000_000_000));
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config(broker.port, pile, "gw-it"),
        Arc::new(clock),
        shutdown.clone(),
    ));

    let online = status_until(&mut status, GatewayState::Online, Duration::from_secs(10)).await;
    assert_eq!(
        (online.gateway.as_str(), online.devices_total),
        ("gw-it", 1)
    );

    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), readings.recv())
            .await
            .expect("no reading within 10 s")
            .unwrap();
        assert_eq!(topic, "gw/yard-t/gw-it/reading/pile-1");
        let r: Reading = codec::decode(&payload).unwrap();
        assert_eq!(r.ts, Timestamp(1_764_000_000_000));
        if r.socket == Some(1) {
            assert_eq!(r.value("voltage_v"), Some(230.1));
        }
        kinds.push((r.kind, r.socket));
    }
    assert_eq!(
        &kinds[..3],
        &[
            (DeviceKind::ChargingPile, None),
            (DeviceKind::ChargingSocket, Some(1)),
            (DeviceKind::ChargingSocket, Some(2))
        ]
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), gw)
        .await
        .expect("run did not return after shutdown")
        .unwrap()
        .unwrap();

    // A late subscriber sees the retained offline status.
    let mut late = subscribe(broker.port, "gw/yard-t/gw-it/status", "t-late").await;
    let offline = status_until(&mut late, GatewayState::Offline, Duration::from_secs(5)).await;
    assert_eq!(offline.devices_online, 0);
}

/// The drill: the retained status said `devices_online: 0` for good, because
/// it was published only on connect, before the devices answered. Here the
/// pile starts only after the gateway connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retained_status_follows_a_device_that_comes_online_later() {
    let broker = Broker::start().await;
    let pile: SocketAddr = format!("127.0.0.1:{}", free_port().await).parse().unwrap();
    let mut status = subscribe(broker.port, "gw/yard-t/gw-late/status", "l-status").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config(broker.port, pile, "gw-late"),
        Arc::new(gridwatch_telemetry::SystemClock),
        shutdown.clone(),
    ));
    let first = status_until(&mut status, GatewayState::Online, Duration::from_secs(10)).await;
    assert_eq!(first.devices_online, 0, "nothing listens on {pile} yet");

    let (_, _, _pile_stop) = start_pile_on(pile).await;
    let mut late = subscribe(broker.port, "gw/yard-t/gw-late/status", "l-late").await;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let s = status_until(&mut late, GatewayState::Online, Duration::from_secs(30)).await;
            if s.devices_online == 1 {
                break;
            }
        }
    })
    .await
    .expect("a retained online status with the pile online");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_gateway_is_marked_offline_by_its_last_will() {
    let broker = Broker::start().await;
    let (pile, _, _pile_stop) = start_pile().await;
    let mut status = subscribe(broker.port, "gw/yard-t/gw-will/status", "w-status").await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The gateway runs on its own runtime; dropping that runtime drops every
    // socket without an MQTT DISCONNECT, as a crash or power cut would.
    let cfg = config(broker.port, pile, "gw-will");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.spawn(gridwatch_gateway::run(
        cfg,
        Arc::new(gridwatch_telemetry::SystemClock),
        CancellationToken::new(),
    ));
    status_until(&mut status, GatewayState::Online, Duration::from_secs(10)).await;
    rt.shutdown_background();

    let will = status_until(&mut status, GatewayState::Offline, Duration::from_secs(10)).await;
    assert_eq!(will.gateway.as_str(), "gw-will");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_starts_late_is_found_by_reconnecting() {
    let port = free_port().await;
    let (pile, _, _pile_stop) = start_pile().await;
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config(port, pile, "gw-late"),
        Arc::new(gridwatch_telemetry::SystemClock),
        shutdown.clone(),
    ));
    // Let it fail a couple of times first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _broker = Broker::start_on(port).await;
    let mut status = subscribe(port, "gw/yard-t/gw-late/status", "l-status").await;
    status_until(&mut status, GatewayState::Online, Duration::from_secs(15)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), gw)
        .await
        .expect("run did not return after shutdown")
        .unwrap()
        .unwrap();
}
