//! Remote config against a real Mosquitto and the profile-driven meter
//! simulator (a pile at unit 1 and an SDM120 at unit 3 behind one Modbus TCP
//! address). The gateway runs under its supervisor, as `run` does, and gets
//! signed configs on `…/cmd/_config`:
//!
//! - one signed with another key is refused and acked as such;
//! - one whose meter has a wrong unit id is tried, fails its grace period
//!   and is rolled back, and the ack and the status say so;
//! - a good one is applied, acked, kept as `current`, and its new device's
//!   readings arrive; the same version pushed again is refused;
//! - started again from its local file, the gateway runs the kept config.

use gridwatch_gateway::config::GatewayConfig;
use gridwatch_gateway::remote::bundle::{self, Bundle};
use gridwatch_gateway::remote::store::Store;
use gridwatch_telemetry::{SystemClock, SCHEMA_VERSION};
use gridwatch_tests::meters::ServedMeters;
use gridwatch_tests::{Message, Mosquitto, Subscriber, TempDir};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "gw/yard-r/gw-rc";
/// Every wait is bounded; a trial takes the grace period plus a restart.
const WAIT: Duration = Duration::from_secs(30);

/// A gateway config polling `units` (unit id, device id, profile) at the
/// simulator's `port`, with `[remote]` on.
fn config_text(broker: u16, port: u16, dir: &Path, units: &[(u8, &str, &str)]) -> String {
    let mut text = format!(
        "[gateway]\nid = \"gw-rc\"\nsite = \"yard-r\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\nreconnect_max_ms = 500\n\
         [outbox]\ndir = \"{}\"\n\
         [remote]\npublic_key_file = \"{}\"\ndir = \"{}\"\ngrace_period_s = 3\n",
        dir.join("outbox").display(),
        dir.join("config-signing.pub").display(),
        dir.join("remote").display(),
    );
    for (unit, id, profile) in units {
        text.push_str(&format!(
            "[[devices]]\nid = \"{id}\"\nprofile = \"{profile}\"\nprotocol = \"modbus_tcp\"\n\
             host = \"127.0.0.1\"\nport = {port}\nunit_id = {unit}\ntimeout_ms = 300\n\
             poll_interval_ms = 300\nretry_max_ms = 600\n"
        ));
    }
    text
}

async fn push(broker: u16, payload: Vec<u8>) {
    let mut opts = rumqttc::MqttOptions::new("operator", "127.0.0.1", broker);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 8);
    client
        .publish(
            format!("{PREFIX}/cmd/_config"),
            rumqttc::QoS::AtLeastOnce,
            false,
            payload,
        )
        .await
        .expect("queue the publish");
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) = eventloop.poll().await
            {
                break;
            }
        }
    })
    .await;
    assert!(acked.is_ok(), "the broker took the signed config");
}

async fn next_ack(sub: &mut Subscriber) -> serde_json::Value {
    let m = sub
        .next_matching(WAIT, |m: &Message| m.topic.ends_with("/cmd-ack/_config"))
        .await
        .expect("an ack on cmd-ack/_config");
    serde_json::from_slice(&m.payload).expect("the ack is JSON")
}

/// The next online status whose `config.state` is `state`.
async fn status_with(sub: &mut Subscriber, state: &str) -> serde_json::Value {
    status_since(sub, state, 0).await
}

/// The next online status whose `config.state` is `state`, stamped at or
/// after `since` (ms since the epoch).
async fn status_since(sub: &mut Subscriber, state: &str, since: i64) -> serde_json::Value {
    let status = format!("{PREFIX}/status");
    let m = sub
        .next_matching(WAIT, |m: &Message| {
            m.topic == status
                && serde_json::from_slice::<serde_json::Value>(&m.payload).is_ok_and(|s| {
                    s["config"]["state"] == state
                        && s["state"] == "online"
                        && s["ts"].as_i64().is_some_and(|ts| ts >= since)
                })
        })
        .await
        .unwrap_or_else(|| panic!("a status with config state {state}"));
    serde_json::from_slice(&m.payload).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_configs_are_checked_tried_rolled_back_or_kept() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let meters = ServedMeters::start(&[(1, "gridwatch-ebp12"), (3, "eastron-sdm120")]).await;
    let port = meters.port;

    let dir = TempDir::new("remote-config");
    let (private, public) = bundle::key_pair([7; 32]);
    let (wrong_private, _) = bundle::key_pair([8; 32]);
    std::fs::write(dir.path().join("config-signing.pub"), public).expect("write key");
    let key = bundle::private_key(&private).expect("key");
    let wrong_key = bundle::private_key(&wrong_private).expect("key");
    let local = config_text(
        broker.port(),
        port,
        dir.path(),
        &[(1, "pile-1", "gridwatch-ebp12")],
    );
    let config = GatewayConfig::from_toml_str(&local, "local.toml").expect("valid config");

    let mut sub = Subscriber::connect(
        broker.port(),
        "watcher",
        &[
            &format!("{PREFIX}/cmd-ack/+"),
            &format!("{PREFIX}/status"),
            &format!("{PREFIX}/reading/+"),
        ],
    )
    .await;
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::supervisor::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    let first = status_with(&mut sub, "local").await;
    assert_eq!(first["config"]["version"], 0);

    // Signed with a key the gateway does not trust.
    let good_v2 = |units: &[(u8, &str, &str)]| Bundle {
        version: 2,
        config: config_text(broker.port(), port, dir.path(), units),
        profiles: BTreeMap::new(),
    };
    let both = [
        (1, "pile-1", "gridwatch-ebp12"),
        (3, "meter-3", "eastron-sdm120"),
    ];
    push(broker.port(), bundle::sign(&good_v2(&both), &wrong_key)).await;
    let ack = next_ack(&mut sub).await;
    assert_eq!(ack["ok"], false, "{ack}");
    assert_eq!(ack["schema"], SCHEMA_VERSION);
    let error = ack["error"].as_str().expect("error");
    assert!(error.contains("signature does not match"), "{error}");
    let refused = status_with(&mut sub, "refused").await;
    assert_eq!(refused["config"]["version"], 0, "still the local config");

    // The meter is at unit 3, not 9: tried, then rolled back.
    let wrong_unit = [
        (1, "pile-1", "gridwatch-ebp12"),
        (9, "meter-3", "eastron-sdm120"),
    ];
    push(broker.port(), bundle::sign(&good_v2(&wrong_unit), &key)).await;
    let ack = next_ack(&mut sub).await;
    assert_eq!(
        (ack["ok"].clone(), ack["id"].clone()),
        (false.into(), "2".into()),
        "{ack}"
    );
    let error = ack["error"].as_str().expect("error");
    assert!(
        error.contains("version 2 rolled back to version 0")
            && error.contains("meter-3 did not answer"),
        "{error}"
    );
    let rolled = status_with(&mut sub, "rolled_back").await;
    assert_eq!(rolled["config"]["version"], 0);
    assert!(rolled["config"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("meter-3")));
    let store = Store::open(&dir.path().join("remote")).expect("store");
    assert_eq!(store.current(), None, "a rolled-back config is not kept");

    // The right unit: applied, acked and kept; its readings arrive.
    push(broker.port(), bundle::sign(&good_v2(&both), &key)).await;
    let ack = next_ack(&mut sub).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert!(ack["result"]
        .as_str()
        .is_some_and(|r| r.contains("version 2 applied")));
    let applied = status_with(&mut sub, "applied").await;
    assert_eq!(applied["config"]["version"], 2);
    assert_eq!(applied["devices_total"], 2);
    assert_eq!(store.current().map(|c| c.version), Some(2));
    let reading = sub
        .next_matching(WAIT, |m: &Message| {
            m.topic == format!("{PREFIX}/reading/meter-3")
        })
        .await;
    assert!(reading.is_some(), "the new meter's readings arrive");

    // The same version again is a replay.
    push(broker.port(), bundle::sign(&good_v2(&both), &key)).await;
    let ack = next_ack(&mut sub).await;
    assert!(
        ack["error"]
            .as_str()
            .is_some_and(|e| e.contains("not newer than version 2")),
        "{ack}"
    );

    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, gateway).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the gateway stops cleanly: {stopped:?}"
    );

    // Started again from the local file, it runs the kept version 2.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let config = GatewayConfig::from_toml_str(&local, "local.toml").expect("valid config");
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::supervisor::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    let again = status_since(&mut sub, "applied", since).await;
    assert_eq!(
        (
            again["config"]["version"].clone(),
            again["devices_total"].clone()
        ),
        (2.into(), 2.into()),
        "{again}"
    );
    shutdown.cancel();
    let stopped = tokio::time::timeout(WAIT, gateway).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    meters.stop().await;
}
