//! MQTT readers across a restart of the building's local broker: the
//! gateway reconnects and subscribes again (its session there is clean), so
//! sightings flow again without a gateway restart.

mod support;

use gridwatch_gateway::pseudonym::{IdentityKind, SiteKey};
use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{codec, Event, EventKind, SystemClock};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::Arc;
use std::time::Duration;
use support::{Broker, Collector};
use tokio_util::sync::CancellationToken;

const KEY: &str = "local broker restart test key";

/// A camera: publishes `{"plate": ...}` on `cam/1` (QoS 1), reconnecting by itself.
fn camera(port: u16) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut opts = MqttOptions::new("camera-1", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let task = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    (client, task)
}

/// Publishes a read of `plate` every 300 ms until the uplink shows its
/// sighting (at most `within`).
async fn read_until_seen(
    camera: &AsyncClient,
    uplink: &mut Collector,
    plate: &str,
    within: Duration,
) -> bool {
    let want = SiteKey::from_bytes(KEY.as_bytes().to_vec())
        .expect("key")
        .pseudonym(IdentityKind::Plate, plate);
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        let _ = camera
            .publish(
                "cam/1",
                QoS::AtLeastOnce,
                false,
                format!(r#"{{"plate":"{plate}"}}"#),
            )
            .await;
        uplink.collect_for(Duration::from_millis(300)).await;
        let seen = uplink.seen.iter().any(|s| {
            codec::decode::<Event>(&s.payload).is_ok_and(
                |e| matches!(&e.kind, EventKind::Sighting { identity, .. } if *identity == want),
            )
        });
        if seen {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_resume_after_the_local_broker_restarts() {
    support::init_logs();
    let mut local = Broker::start().await;
    let uplink = Broker::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("site.key");
    std::fs::write(&key, KEY).expect("key");
    let text = format!(
        r#"
[gateway]
id = "gw-r"
site = "yard-r"
[mqtt]
host = "127.0.0.1"
port = {}
[outbox]
dir = "{}"
[local_mqtt]
host = "127.0.0.1"
port = {}
[pseudonym]
site_key_file = "{}"
[[readers]]
id = "cam-1"
protocol = "mqtt"
topic = "cam/+"
location = "stairwell"
identity_kind = "plate"
[readers.json]
identity = "plate"
"#,
        uplink.port,
        dir.path().join("outbox").display(),
        local.port,
        key.display()
    );
    let cfg = GatewayConfig::from_toml_str(&text, "readers-broker").expect("valid");
    let mut collector = Collector::connect(uplink.port, "uplink-watch", &["gw/#".into()]).await;
    let (camera, camera_task) = camera(local.port);
    let stop = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::run(
        cfg,
        Arc::new(SystemClock),
        stop.clone(),
    ));

    assert!(
        read_until_seen(&camera, &mut collector, "AB1001", Duration::from_secs(15)).await,
        "a sighting before the restart"
    );
    local.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    local.resume().await;
    assert!(
        read_until_seen(&camera, &mut collector, "AB2002", Duration::from_secs(30)).await,
        "a sighting after the local broker restarted"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(20), gateway)
        .await
        .expect("stops within 20 s")
        .expect("no panic")
        .expect("clean stop");
    camera_task.abort();
}
