//! The whole chain over real loopback sockets: simulated pile (Modbus TCP) →
//! gateway → MQTT broker → analytics → alert, seen by an outside subscriber.
//!
//! Each scenario runs against the embedded broker (rumqttd, what the demo
//! uses) and against a real Mosquitto process started on a free port, so the
//! gateway and analytics are proven against a broker nobody here wrote.

use gridwatch_simulators::broker::EmbeddedBroker;
use gridwatch_simulators::pile::Fault;
use gridwatch_simulators::yard::{Yard, YardOptions};
use gridwatch_telemetry::{codec, Alert, GatewayState, Reading, Severity, Status};
use gridwatch_tests::{Mosquitto, Subscriber};
use std::net::SocketAddr;
use std::time::Duration;

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rumqttd=off")),
        )
        .with_test_writer()
        .try_init();
}

fn alerts_of(messages: &[gridwatch_tests::Message]) -> Vec<Alert> {
    messages
        .iter()
        .filter(|m| m.topic.starts_with("alerts/"))
        .map(|m| codec::decode::<Alert>(&m.payload).expect("alert payload decodes"))
        .collect()
}

/// Waits until the gateway has published a reading of the faulted socket,
/// so the fault is injected into a chain that is demonstrably running.
async fn wait_for_socket_reading(sub: &mut Subscriber, socket: u16) -> Reading {
    let m = sub
        .next_matching(Duration::from_secs(20), |m| {
            m.topic.contains("/reading/")
                && codec::decode::<Reading>(&m.payload).is_ok_and(|r| r.socket == Some(socket))
        })
        .await
        .expect("a reading of the socket within 20 s");
    codec::decode(&m.payload).unwrap()
}

async fn fault_raises_alert_for_that_socket_only(broker: SocketAddr, tag: &str) {
    let mut opts = YardOptions::new(broker);
    opts.gateway = format!("gw-{tag}");
    opts.site = format!("site-{tag}");
    opts.cell = format!("cell-{tag}");
    let mut sub = Subscriber::connect(
        broker.port(),
        &format!("test-sub-{tag}"),
        &["alerts/#", &format!("gw/{}/+/reading/+", opts.site)],
    )
    .await;
    let yard = Yard::start(&opts).await.expect("yard starts");

    let before = wait_for_socket_reading(&mut sub, 2).await;
    assert!(
        before.value("current_a").unwrap() < 5.5,
        "socket 2 charges normally before the fault: {before:?}"
    );
    // A few polls without a fault: nothing may be raised.
    let quiet = sub.collect_for(Duration::from_secs(3)).await;
    assert!(
        alerts_of(&quiet).is_empty(),
        "no alert before the fault: {:?}",
        alerts_of(&quiet)
    );

    yard.inject(2, Fault::Overcurrent).unwrap();
    let first = sub
        .next_matching(Duration::from_secs(30), |m| m.topic.starts_with("alerts/"))
        .await
        .expect("an alert within 30 s of the fault");
    let mut alerts = alerts_of(&[first]);
    alerts.extend(alerts_of(&sub.collect_for(Duration::from_secs(3)).await));
    yard.stop().await.expect("yard stops cleanly");

    let entity = format!("{}/{}/{}#2", opts.site, opts.gateway, opts.device);
    assert!(
        alerts.iter().any(|a| a.rule == "socket_overcurrent"),
        "an overcurrent alert: {alerts:#?}"
    );
    for a in &alerts {
        assert_eq!(a.entity, entity, "only the faulted socket alerts: {a:#?}");
        // 7 A is ~1.6 kW: also more than a compliant e-bike charger draws
        // (600 W), which the session rules report as a major alert.
        let expected = match a.rule.as_str() {
            "socket_overcurrent" | "socket_overpower" => Severity::Critical,
            "socket_nonstandard_charger" => Severity::Major,
            other => panic!("unexpected rule {other}: {a:#?}"),
        };
        assert_eq!(a.cell, opts.cell);
        assert_eq!(a.severity, expected, "{a:#?}");
    }
    let oc = alerts
        .iter()
        .find(|a| a.rule == "socket_overcurrent")
        .unwrap();
    assert!(
        oc.evidence.values.values().any(|v| *v > 6.5),
        "evidence holds the measured ~7 A: {oc:#?}"
    );
    assert_eq!(oc.evidence.thresholds.get("overcurrent_a"), Some(&5.5));
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.rule == "socket_overcurrent")
            .count(),
        1,
        "one alert per episode"
    );
}

async fn no_fault_no_alert(broker: SocketAddr, tag: &str) {
    let mut opts = YardOptions::new(broker);
    opts.gateway = format!("gw-{tag}");
    opts.site = format!("site-{tag}");
    let mut sub = Subscriber::connect(
        broker.port(),
        &format!("test-sub-{tag}"),
        &["alerts/#", &format!("gw/{}/+/reading/+", opts.site)],
    )
    .await;
    let yard = Yard::start(&opts).await.expect("yard starts");
    wait_for_socket_reading(&mut sub, 2).await;
    // 10 s of wall time at 30x is five simulated minutes of three bikes charging.
    let seen = sub.collect_for(Duration::from_secs(10)).await;
    yard.stop().await.expect("yard stops cleanly");
    let readings = seen
        .iter()
        .filter(|m| m.topic.contains("/reading/"))
        .count();
    assert!(
        readings >= 30,
        "the chain was running: {readings} readings in 10 s"
    );
    assert!(
        alerts_of(&seen).is_empty(),
        "no alert without a fault: {:#?}",
        alerts_of(&seen)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_fault_raises_alert() {
    init_logs();
    let broker = EmbeddedBroker::start().unwrap();
    fault_raises_alert_for_that_socket_only(broker.addr(), "emb-fault").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_without_fault_stays_quiet() {
    init_logs();
    let broker = EmbeddedBroker::start().unwrap();
    no_fault_no_alert(broker.addr(), "emb-quiet").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_fault_raises_alert() {
    init_logs();
    let Some(m) = Mosquitto::start() else {
        return;
    };
    fault_raises_alert_for_that_socket_only(
        SocketAddr::from(([127, 0, 0, 1], m.port())),
        "mq-fault",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_without_fault_stays_quiet() {
    init_logs();
    let Some(m) = Mosquitto::start() else {
        return;
    };
    no_fault_no_alert(SocketAddr::from(([127, 0, 0, 1], m.port())), "mq-quiet").await;
}

/// The retained status says online while the gateway runs and offline after
/// a clean stop, and a late subscriber still sees it (retained).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_retained_status_follows_the_gateway() {
    init_logs();
    let Some(m) = Mosquitto::start() else {
        return;
    };
    let broker = SocketAddr::from(([127, 0, 0, 1], m.port()));
    let mut opts = YardOptions::new(broker);
    opts.gateway = "gw-status".into();
    opts.site = "site-status".into();
    let topic = format!("gw/{}/{}/status", opts.site, opts.gateway);
    let yard = Yard::start(&opts).await.unwrap();

    let mut late = Subscriber::connect(m.port(), "late-1", &[&topic]).await;
    let online = late
        .next_matching(Duration::from_secs(15), |_| true)
        .await
        .expect("a status within 15 s");
    let status: Status = codec::decode(&online.payload).unwrap();
    assert_eq!(status.state, GatewayState::Online);
    assert!(online.retain || status.state == GatewayState::Online);

    yard.stop().await.unwrap();
    let mut after = Subscriber::connect(m.port(), "late-2", &[&topic]).await;
    let last = after
        .next_matching(Duration::from_secs(10), |_| true)
        .await
        .expect("the retained status after stop");
    assert!(last.retain, "status is retained");
    let status: Status = codec::decode(&last.payload).unwrap();
    assert_eq!(status.state, GatewayState::Offline);
}
