//! Downlink commands through a real Mosquitto to a pile's relay coil, and
//! the acks that come back, including the error acks.

mod support;

use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{GatewayState, SystemClock};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::Arc;
use std::time::Duration;
use support::{config_text, start_pile, Broker, Collector};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_command_switches_the_relay_coil_and_every_command_is_acked() {
    support::init_logs();
    let broker = Broker::start().await;
    let (pile_addr, pile, _stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let mut sub =
        Collector::connect(broker.port, "t-cmd", &["gw/yard-t/gw-cmd/#".to_owned()]).await;
    let text = config_text(
        broker.port,
        pile_addr,
        "gw-cmd",
        &root.path().join("outbox"),
        "",
        "",
    );
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    assert!(
        sub.collect_until(Duration::from_secs(15), |c| c
            .statuses
            .iter()
            .any(|s| s.state == GatewayState::Online))
            .await
    );
    // The subscription to commands follows the ConnAck closely.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut opts = MqttOptions::new("t-cmd-sender", "127.0.0.1", broker.port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let driver = tokio::spawn(async move {
        for _ in 0..100_000 {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let send = |device: &str, payload: &str| {
        let (client, topic, payload) = (
            client.clone(),
            format!("gw/yard-t/gw-cmd/cmd/{device}"),
            payload.to_owned(),
        );
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap()
        }
    };
    send("pile-1", r#"{"id":"c-1","action":"socket_off","socket":2}"#).await;
    send("ghost", r#"{"id":"c-2","action":"socket_off","socket":1}"#).await;
    send("pile-1", r#"{"id":"c-3","action":"explode"}"#).await;
    send("pile-1", r#"{"id":"c-4","action":"socket_on","socket":2}"#).await;
    assert!(
        sub.collect_until(Duration::from_secs(10), |c| c.acks.len() >= 4)
            .await,
        "four acks: {:?}",
        sub.acks
    );
    let ack = |id: &str| {
        sub.acks
            .iter()
            .find(|(_, a)| a["id"] == id)
            .unwrap_or_else(|| panic!("no ack for {id}: {:?}", sub.acks))
            .clone()
    };
    let (topic, a) = ack("c-1");
    assert_eq!(topic, "gw/yard-t/gw-cmd/cmd-ack/pile-1");
    assert_eq!(a["ok"], true);
    assert_eq!(a["result"], "socket 2 switched off");
    let (topic, a) = ack("c-2");
    assert_eq!(topic, "gw/yard-t/gw-cmd/cmd-ack/ghost");
    assert_eq!(a["ok"], false);
    assert!(
        a["error"].as_str().unwrap().contains("no device \"ghost\""),
        "{a}"
    );
    let (_, a) = ack("c-3");
    assert_eq!(a["ok"], false);
    assert!(
        a["error"].as_str().unwrap().contains("not a command"),
        "{a}"
    );
    let (_, a) = ack("c-4");
    assert_eq!(a["ok"], true);
    // Socket 2 is coil 1; it was switched off, then on again.
    assert_eq!(pile.coil(1), Some(true));
    assert_eq!(pile.coil(0), None, "no other relay was touched");

    driver.abort();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), gw)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
