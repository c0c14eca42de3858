//! Field drills against a real Mosquitto: one source with a wrong clock
//! (a gateway, or a reader's camera), one oversized message, impossible
//! values or invented devices must not blind or fool analytics.

mod support;

use gridwatch_analytics::AnalyticsConfig;
use gridwatch_telemetry::{codec, Alert, DeviceKind, Event, EventKind, Reading, Timestamp};
use rumqttc::{AsyncClient, QoS};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{observer, Mosquitto, TempDir};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// 2100-01-01T00:00:00Z.
const YEAR_2100: i64 = 4_102_444_800_000;

fn config(port: u16, client_id: &str, dead_letters: &Path, ingest: &str) -> AnalyticsConfig {
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"{client_id}\"\n\
         reconnect_min_ms = 100\nreconnect_max_ms = 500\n\
         [ingest]\ndead_letter_path = \"{}\"\n{ingest}",
        dead_letters.display()
    );
    AnalyticsConfig::from_toml_str(&text, "test.toml").expect("test config")
}

/// One drill's set-up: analytics running against a broker of its own, its
/// dead-letter file in a scratch directory, and a client that publishes
/// and sees every alert.
struct Drill {
    _broker: Mosquitto,
    _dir: TempDir,
    dead: PathBuf,
    client: AsyncClient,
    alerts: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    service: Service,
}

/// The running service and what stops it.
struct Service {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Service {
    /// Stops the service and checks it ended without an error.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("service stops")
            .expect("task")
            .expect("result");
    }
}

impl Drill {
    /// Starts the broker and analytics (`client_id` `analytics-{tag}`, extra
    /// `[ingest]` lines), waits until analytics subscribed to `filter`, and
    /// connects the test's client; `None` when Mosquitto is missing and
    /// allowed to be.
    async fn start(tag: &str, filter: &str, ingest: &str) -> Option<Drill> {
        let broker = Mosquitto::start()?;
        let port = broker.port();
        let dir = TempDir::new(&format!("drills-{tag}"));
        let dead = dir.path().join("dead-letters.jsonl");
        let client_id = format!("analytics-{tag}");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(gridwatch_analytics::run(
            config(port, &client_id, &dead, ingest),
            shutdown.clone(),
        ));
        broker
            .wait_for_subscription(&client_id, filter, Duration::from_secs(10))
            .await;
        let (client, alerts) = observer(port, &format!("{tag}-client")).await;
        Some(Drill {
            _broker: broker,
            _dir: dir,
            dead,
            client,
            alerts,
            service: Service { shutdown, task },
        })
    }
}

fn reading(ts_ms: i64, seq: u64, socket: u16, current_a: f64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts_ms),
        "gw-1",
        "pile-1",
        DeviceKind::ChargingSocket,
        seq,
    );
    r.site = "yard-a".into();
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

async fn alert_of_rule(rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>, rule: &str) -> Alert {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, payload) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {rule} alert within 20 s"))
            .expect("client alive");
        let a: Alert = codec::decode(&payload).expect("alert payload is a valid Alert");
        if a.rule == rule {
            return a;
        }
    }
}

/// A reading stamped in 2100 used to move analytics' event time for good:
/// the socket's next real overcurrent was discarded as out of order. Now it
/// is quarantined with one clock_skew alert, and the overcurrent is raised.
/// Then a 10 MiB message at QoS 1, which used to make analytics reconnect
/// in a loop: it is dead-lettered and the next overcurrent is still raised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_clock_and_an_oversized_message_do_not_blind_analytics() {
    let Some(Drill {
        _broker,
        _dir,
        dead,
        client,
        mut alerts,
        service,
    }) = Drill::start("drills", "gw/+/+/reading/+", "").await
    else {
        return;
    };
    let now = gridwatch_telemetry::Clock::now(&gridwatch_telemetry::SystemClock).0;

    // Normal charging, then one reading from 2100 on the same socket.
    for s in 0..5 {
        publish(&client, &reading(now - 60_000 + s * 1000, s as u64, 3, 2.5)).await;
    }
    publish(&client, &reading(YEAR_2100, 5, 3, 2.5)).await;
    let skew = alert_of_rule(&mut alerts, "clock_skew").await;
    assert_eq!(skew.entity, "yard-a/gw-1");
    // A real 7 A overcurrent afterwards, in today's time: raised.
    for s in 0..=10 {
        publish(
            &client,
            &reading(now - 40_000 + s * 1000, 10 + s as u64, 3, 7.0),
        )
        .await;
    }
    let over = alert_of_rule(&mut alerts, "socket_overcurrent").await;
    assert_eq!(over.entity, "yard-a/gw-1/pile-1#3");

    // 10 MiB at QoS 1 on a reading topic, then an overcurrent on socket 4.
    client
        .publish(
            "gw/yard-a/gw-1/reading/pile-1",
            QoS::AtLeastOnce,
            false,
            vec![b' '; 10 << 20],
        )
        .await
        .expect("publish the big message");
    for s in 0..=10 {
        publish(
            &client,
            &reading(now - 20_000 + s * 1000, 30 + s as u64, 4, 7.0),
        )
        .await;
    }
    let over4 = alert_of_rule(&mut alerts, "socket_overcurrent").await;
    assert_eq!(over4.entity, "yard-a/gw-1/pile-1#4");

    service.stop().await;
    let text = std::fs::read_to_string(&dead).expect("dead-letter file written");
    let line: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("one line")).expect("json");
    assert_eq!(line["topic"], "gw/yard-a/gw-1/reading/pile-1");
    assert_eq!(line["payload_bytes"], 10 << 20);
}

/// A sighting from a reader whose camera has a wrong clock, stamped `ts`.
fn sighting(gateway: &str, ts_ms: i64, seq: u64) -> Event {
    Event {
        schema: gridwatch_telemetry::SCHEMA_VERSION,
        ts: Timestamp(ts_ms),
        gateway: gateway.into(),
        site: "yard-a".into(),
        device: "lift-cam".into(),
        seq,
        kind: EventKind::Sighting {
            location: "lift_lobby".into(),
            identity: "p-7f3a9c".into(),
            direction: None,
        },
    }
}

async fn publish_event(client: &AsyncClient, e: &Event) {
    let topic = format!("gw/{}/{}/event/{}", e.site, e.gateway, e.device);
    client
        .publish(
            topic,
            QoS::AtLeastOnce,
            false,
            codec::encode(e).expect("encode"),
        )
        .await
        .expect("publish");
}

/// Readers' camera timestamps get the same trust as meters': a sighting
/// stamped in 2100 and one stamped 1970 (a camera whose clock was never
/// set) are quarantined, each raising one `clock_skew` alert for its
/// gateway (repeats raise none), and neither moves event time: a real
/// overcurrent afterwards, on another gateway, in today's time, is raised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sightings_from_a_camera_with_a_wrong_clock_are_quarantined() {
    let Some(Drill {
        _broker,
        _dir,
        dead: _,
        client,
        mut alerts,
        service,
    }) = Drill::start("camera", "gw/+/+/event/+", "").await
    else {
        return;
    };
    let now = gridwatch_telemetry::Clock::now(&gridwatch_telemetry::SystemClock).0;

    for seq in 1..=3 {
        publish_event(&client, &sighting("gw-cam", YEAR_2100 + seq as i64, seq)).await;
    }
    for seq in 1..=3 {
        publish_event(&client, &sighting("gw-cam-unset", 1_000 * seq as i64, seq)).await;
    }
    // Normal charging, then a 7 A overcurrent, on gw-1 in today's time.
    for s in 0..5 {
        publish(&client, &reading(now - 60_000 + s * 1000, s as u64, 3, 2.5)).await;
    }
    for s in 0..=10 {
        publish(
            &client,
            &reading(now - 40_000 + s * 1000, 10 + s as u64, 3, 7.0),
        )
        .await;
    }
    let mut skewed = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut overcurrent = None;
    while overcurrent.is_none() {
        let (_, payload) = tokio::time::timeout_at(deadline, alerts.recv())
            .await
            .unwrap_or_else(|_| panic!("no overcurrent within 20 s; clock_skew for {skewed:?}"))
            .expect("client alive");
        let a: Alert = codec::decode(&payload).expect("alert payload is a valid Alert");
        match a.rule.as_str() {
            "clock_skew" => skewed.push(a.entity),
            "socket_overcurrent" => overcurrent = Some(a),
            other => panic!("unexpected {other} alert on {}", a.entity),
        }
    }
    assert_eq!(
        overcurrent.map(|a| a.entity).as_deref(),
        Some("yard-a/gw-1/pile-1#3")
    );
    skewed.sort();
    assert_eq!(
        skewed,
        ["yard-a/gw-cam", "yard-a/gw-cam-unset"],
        "one clock_skew alert per camera gateway, raised before the overcurrent"
    );

    service.stop().await;
}

/// One reading with every value at 1.7e308 used to raise five false
/// alerts, two of them critical; 30,000 invented device ids grew memory
/// without bound. Now the impossible reading is kept out of the detectors
/// (and dead-lettered with the value named), devices past the gateway's
/// quota are refused, and a real overcurrent on a known socket is still
/// raised — and is the only alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_values_and_invented_devices_raise_nothing() {
    let Some(Drill {
        _broker,
        _dir,
        dead,
        client,
        mut alerts,
        service,
    }) = Drill::start(
        "values",
        "gw/+/+/reading/+",
        "max_entities_per_gateway = 8\n",
    )
    .await
    else {
        return;
    };
    let now = gridwatch_telemetry::Clock::now(&gridwatch_telemetry::SystemClock).0;

    // Sockets 5 and 6 charge normally; then socket 5 reports every value
    // at 1.7e308.
    for s in 0..5 {
        publish(&client, &reading(now - 90_000 + s * 1000, s as u64, 5, 2.5)).await;
        publish(&client, &reading(now - 90_000 + s * 1000, s as u64, 6, 2.5)).await;
    }
    let mut absurd = reading(now - 84_000, 5, 5, 1.7e308);
    for name in ["power_w", "temperature_c", "voltage_v", "energy_kwh"] {
        absurd.values.insert(name.into(), 1.7e308);
    }
    for s in 0..12 {
        absurd.ts = Timestamp(now - 84_000 + s * 1000);
        absurd.seq = 5 + s as u64;
        publish(&client, &absurd).await;
    }
    // 40 invented devices, each at 7 A: the first 6 fill the gateway's quota
    // of 8 (with sockets 5 and 6), the other 34 feed nothing.
    for d in 0..40u64 {
        let mut r = reading(now - 70_000, 1, 1, 7.0);
        r.device = format!("ghost-{d}").as_str().into();
        for s in 0..12 {
            r.ts = Timestamp(now - 70_000 + s * 1000);
            r.seq = 1 + s as u64;
            publish(&client, &r).await;
        }
    }
    // A real overcurrent on socket 6 of the known pile.
    for s in 0..=10 {
        publish(
            &client,
            &reading(now - 40_000 + s * 1000, 10 + s as u64, 6, 7.0),
        )
        .await;
    }
    // Alerts arrive in the order their readings were processed.
    let mut ghosts = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, payload) = tokio::time::timeout_at(deadline, alerts.recv())
            .await
            .expect("socket 6's overcurrent within 20 s")
            .expect("client alive");
        let a: Alert = codec::decode(&payload).expect("alert payload is a valid Alert");
        assert!(
            !a.entity.ends_with("#5"),
            "the impossible reading raised {}: {a:?}",
            a.rule
        );
        if a.entity == "yard-a/gw-1/pile-1#6" && a.rule == "socket_overcurrent" {
            break;
        }
        assert!(a.entity.contains("/ghost-"), "{a:?}");
        if a.rule != "socket_overcurrent" {
            continue;
        }
        ghosts.insert(a.entity);
    }
    assert_eq!(
        ghosts.len(),
        6,
        "only the quota's devices have state: {ghosts:?}"
    );

    service.stop().await;
    let text = std::fs::read_to_string(&dead).expect("dead-letter file written");
    assert!(
        text.lines()
            .any(|l| l.contains("outside the physically possible range")),
        "{text}"
    );
}
