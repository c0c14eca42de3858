//! The MQTT uplink over TLS (rustls, a CA file) with a user name and a
//! password file, against a real Mosquitto that refuses anonymous clients on
//! its TLS listener. Certificates are made by `openssl` for the test.

mod support;

use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{GatewayState, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use support::tls::{make_secrets, tls_broker, TlsBroker};
use support::{config_text, start_pile, Collector};
use tokio_util::sync::CancellationToken;

/// Runs a gateway against the TLS listener with `mqtt` settings and waits
/// for its online status and readings on the plain listener.
async fn delivers_over_tls(broker: &TlsBroker, gateway: &str, mqtt: &str) {
    let (pile, _p, _pile_stop) = start_pile().await;
    let mut sub = Collector::connect(
        broker.plain,
        &format!("t-{gateway}"),
        &[format!("gw/yard-t/{gateway}/#")],
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let text = config_text(
        broker.tls,
        pile,
        gateway,
        &root.path().join("outbox"),
        "",
        mqtt,
    );
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    let delivered = sub
        .collect_until(Duration::from_secs(15), |c| {
            c.statuses.iter().any(|s| s.state == GatewayState::Online) && c.seen.len() >= 10
        })
        .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), gw)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(delivered, "online status and readings over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uplink_connects_over_tls_with_a_password_and_delivers() {
    support::init_logs();
    let secrets = tempfile::tempdir().unwrap();
    let d = secrets.path();
    make_secrets(d);
    let broker = tls_broker(
        d,
        &format!(
            "allow_anonymous false\npassword_file {}/passwd",
            d.display()
        ),
    )
    .await;
    let mqtt = format!(
        "ca_file = \"{p}/ca.pem\"\nusername = \"gw-tls\"\npassword_file = \"{p}/gw-password\"",
        p = d.display()
    );
    delivers_over_tls(&broker, "gw-tls", &mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uplink_presents_its_client_certificate_when_the_broker_requires_one() {
    support::init_logs();
    let secrets = tempfile::tempdir().unwrap();
    let d = secrets.path();
    make_secrets(d);
    let broker = tls_broker(d, "allow_anonymous true\nrequire_certificate true").await;
    let mqtt = format!(
        "ca_file = \"{p}/ca.pem\"\nclient_cert_file = \"{p}/client.pem\"\nclient_key_file = \"{p}/client.key\"",
        p = d.display()
    );
    delivers_over_tls(&broker, "gw-mtls", &mqtt).await;
}
