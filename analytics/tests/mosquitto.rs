//! Analytics against a real Mosquitto: readings in over MQTT, alerts out on
//! `alerts/{cell}/{severity}`.

mod support;

use gridwatch_analytics::{render_alert, AnalyticsConfig};
use gridwatch_telemetry::{codec, Alert, DeviceKind, Reading, Severity, Timestamp};
use rumqttc::{AsyncClient, QoS};
use std::time::Duration;
use support::{observer, Mosquitto};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_764_000_000_000;
const FILTER: &str = "gw/+/+/reading/+";

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "gridwatch_analytics=debug",
        ))
        .with_test_writer()
        .try_init();
}

fn config(port: u16, client_id: &str) -> AnalyticsConfig {
    let text = format!(
        r#"
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "{client_id}"
reconnect_min_ms = 100
reconnect_max_ms = 500

[cells]
default = "unassigned"

[[cells.sites]]
site = "yard-a"
cell = "cell-07"
"#
    );
    AnalyticsConfig::from_toml_str(&text, "test.toml").expect("test config")
}

fn reading(site: &str, socket: u16, at_s: i64, current_a: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(T0 + at_s * 1000),
        "gw-1",
        "pile-1",
        DeviceKind::ChargingSocket,
        at_s as u64,
    );
    r.site = site.into();
    r.socket = Some(socket);
    r.values.insert("current_a".into(), current_a);
    r.values.insert("state".into(), 2.0);
    r
}

async fn publish(client: &AsyncClient, r: &Reading) {
    let topic = format!("gw/{}/{}/reading/{}", r.site, r.gateway, r.device);
    client
        .publish(
            topic,
            QoS::AtLeastOnce,
            false,
            codec::encode(r).expect("encode"),
        )
        .await
        .expect("publish");
}

/// Stops the service and checks it ended cleanly, in bounded time.
async fn stop(shutdown: CancellationToken, service: tokio::task::JoinHandle<anyhow::Result<()>>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .expect("service stops on shutdown")
        .expect("service task")
        .expect("service result");
}

async fn next_alert(
    rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    within: Duration,
) -> Option<(String, Alert)> {
    let (topic, payload) = tokio::time::timeout(within, rx.recv()).await.ok()??;
    let alert: Alert = codec::decode(&payload).expect("alert payload is a valid Alert");
    Some((topic, alert))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overcurrent_over_a_real_broker_raises_exactly_one_alert() {
    init_logs();
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let port = broker.port();
    let shutdown = CancellationToken::new();
    let (tap_tx, mut tap_rx) = mpsc::channel(16);
    let service = tokio::spawn(gridwatch_analytics::run_with_tap(
        config(port, "analytics-under-test"),
        shutdown.clone(),
        Some(tap_tx),
    ));
    broker
        .wait_for_subscription("analytics-under-test", FILTER, Duration::from_secs(10))
        .await;
    let (client, mut alerts) = observer(port, "test-observer").await;

    // Garbage first: it must be logged and skipped, not stop the service.
    client
        .publish(
            "gw/yard-a/gw-1/reading/pile-1",
            QoS::AtLeastOnce,
            false,
            b"{not json".to_vec(),
        )
        .await
        .expect("publish garbage");
    // Normal charging on socket 4 for a minute: nothing.
    for s in 0..=60 {
        publish(&client, &reading("yard-a", 4, s, 2.5)).await;
    }
    // 7 A on socket 3 for 10 s: one alert, to yard-a's cell.
    for s in 0..=10 {
        publish(&client, &reading("yard-a", 3, 100 + s, 7.0)).await;
    }
    // A sentinel on an unmapped site: when its alert arrives, everything
    // published before it has been processed.
    for s in 0..=6 {
        publish(&client, &reading("yard-z", 1, 200 + s, 8.0)).await;
    }

    let (topic, alert) = next_alert(&mut alerts, Duration::from_secs(15))
        .await
        .expect("an alert");
    assert_eq!(topic, "alerts/cell-07/critical");
    assert_eq!(alert.rule, "socket_overcurrent");
    assert_eq!(alert.entity, "yard-a/gw-1/pile-1#3");
    assert_eq!(alert.cell, "cell-07");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(
        alert.id,
        format!("socket_overcurrent:yard-a/gw-1/pile-1#3:{}", T0 + 100_000)
    );
    let ev = &alert.evidence;
    assert_eq!(ev.values["peak"], 7.0);
    assert_eq!(ev.values["mean"], 7.0);
    assert_eq!(ev.values["duration_s"], 5.0);
    assert_eq!(ev.thresholds["overcurrent_a"], 5.5);
    assert_eq!(ev.thresholds["persistence_s"], 5.0);
    assert_eq!(ev.series.as_deref(), Some("current_a"));
    assert_eq!(ev.samples.len(), 6);
    assert_eq!(
        (ev.window_start, ev.window_end),
        (Timestamp(T0 + 100_000), Timestamp(T0 + 105_000))
    );

    let (topic, sentinel) = next_alert(&mut alerts, Duration::from_secs(15))
        .await
        .expect("the sentinel alert");
    assert_eq!(topic, "alerts/unassigned/critical");
    assert_eq!(sentinel.entity, "yard-z/gw-1/pile-1#1");

    // Nothing else: not a second alert for socket 3, none for socket 4.
    assert!(next_alert(&mut alerts, Duration::from_millis(1500))
        .await
        .is_none());

    let tapped = tap_rx.recv().await.expect("tap got the alert");
    assert_eq!(tapped, alert);
    println!("{}", render_alert(&tapped));

    stop(shutdown, service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_analytics_subscribes_again() {
    init_logs();
    let Some(mut broker) = Mosquitto::start() else {
        return;
    };
    let port = broker.port();
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(gridwatch_analytics::run(
        config(port, "analytics-restart"),
        shutdown.clone(),
    ));
    broker
        .wait_for_subscription("analytics-restart", FILTER, Duration::from_secs(10))
        .await;

    // The broker restarts without persistence: the session and the
    // subscription are gone, and analytics must make them again.
    broker.stop();
    let broker =
        Mosquitto::start_on(port, Default::default()).expect("mosquitto restarts on the same port");
    broker
        .wait_for_subscription("analytics-restart", FILTER, Duration::from_secs(15))
        .await;

    let (client, mut alerts) = observer(port, "test-observer-2").await;
    for s in 0..=6 {
        publish(&client, &reading("yard-a", 2, s, 6.5)).await;
    }
    let (topic, alert) = next_alert(&mut alerts, Duration::from_secs(15))
        .await
        .expect("an alert after the restart");
    assert_eq!(topic, "alerts/cell-07/critical");
    assert_eq!(alert.entity, "yard-a/gw-1/pile-1#2");

    stop(shutdown, service).await;
}

/// A lift sighting published by a gateway's reader reaches the service on
/// the event topic, and the register in `[register] path` ties the tag to
/// its owner's flat: the alert names the flat, not the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lift_sighting_over_the_broker_names_the_flat_of_the_register() {
    init_logs();
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let register = dir.path().join("register.json");
    std::fs::write(
        &register,
        r#"{"flats": [{"flat": "yard-a/b1/0301", "occupants": 2}],
            "tags": [{"identity": "hmac-of-tag-1", "flat": "yard-a/b1/0301"}]}"#,
    )
    .expect("write register");
    let mut config = config(broker.port(), "analytics-sightings");
    config.register.path = Some(register);
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(gridwatch_analytics::run_with_tap(
        config,
        shutdown.clone(),
        None,
    ));
    broker
        .wait_for_subscription(
            "analytics-sightings",
            "gw/+/+/event/+",
            Duration::from_secs(10),
        )
        .await;
    let (client, mut alerts) = observer(broker.port(), "sightings-observer").await;
    let sighting = |identity: &str, seq: u64| gridwatch_telemetry::Event {
        schema: gridwatch_telemetry::SCHEMA_VERSION,
        ts: Timestamp(T0 + seq as i64 * 60_000),
        gateway: "gw-1".into(),
        site: "yard-a".into(),
        device: "reader-lift".into(),
        seq,
        kind: gridwatch_telemetry::EventKind::Sighting {
            location: "lift_lobby".into(),
            identity: identity.into(),
            direction: None,
        },
    };
    for (identity, seq) in [("hmac-of-tag-1", 1), ("hmac-unknown", 2)] {
        client
            .publish(
                "gw/yard-a/gw-1/event/reader-lift",
                QoS::AtLeastOnce,
                false,
                codec::encode(&sighting(identity, seq)).expect("encode"),
            )
            .await
            .expect("publish sighting");
    }
    let mut got = Vec::new();
    while let Some((_, a)) = next_alert(&mut alerts, Duration::from_secs(10)).await {
        got.push((a.rule.clone(), a.entity.clone()));
        if got.len() == 2 {
            break;
        }
    }
    assert_eq!(
        got,
        [
            ("indoor_sighting".to_owned(), "yard-a/b1/0301".to_owned()),
            // A tag the register does not know is still a bike indoors,
            // named by the reader that saw it.
            (
                "indoor_sighting".to_owned(),
                "yard-a/gw-1/reader-lift".to_owned()
            ),
        ]
    );
    stop(shutdown, service).await;
}

/// A register that cannot be read stops the start with the file's name,
/// before anything connects.
#[tokio::test]
async fn a_missing_register_stops_the_start_and_names_the_file() {
    let mut config = config(1, "analytics-no-register");
    config.register.path = Some("/nonexistent/gridwatch/register.json".into());
    let e = gridwatch_analytics::run_with_tap(config, CancellationToken::new(), None)
        .await
        .expect_err("a missing register is an error")
        .to_string();
    assert!(e.contains("/nonexistent/gridwatch/register.json"), "{e}");
}
