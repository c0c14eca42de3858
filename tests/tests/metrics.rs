//! The Prometheus endpoint of a running gateway, scraped over HTTP: a
//! simulated SDM120 that answers and a unit that does not, behind one
//! Modbus TCP address, and a real Mosquitto.

use gridwatch_gateway::config::GatewayConfig;
use gridwatch_gateway::profile::ProfileLibrary;
use gridwatch_simulators::meter::{self, Behaviour, Control, MeterModel, SharedMeter};
use gridwatch_telemetry::SystemClock;
use gridwatch_tests::{free_port, Mosquitto, TempDir};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One scrape: status line and body.
fn scrape(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample named exactly `series` in `body`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_polls_errors_latency_outbox_and_uplinks() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let p = ProfileLibrary::built_in()
        .get("eastron-sdm120")
        .expect("built-in");
    let mut m = MeterModel::new(p, 3);
    m.step(3_600_000);
    let units: meter::Units = Arc::new(BTreeMap::from([(3u8, SharedMeter::new(m))]));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("bound").port();
    let stop_sim = CancellationToken::new();
    let sim = tokio::spawn(meter::serve(
        listener,
        units,
        Control::new(Behaviour::Normal),
        stop_sim.clone(),
    ));

    let dir = TempDir::new("metrics");
    let metrics_port = free_port();
    let mut text = format!(
        "[gateway]\nid = \"gw-m\"\nsite = \"yard-m\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n\
         [outbox]\ndir = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
        broker.port(),
        dir.path().display()
    );
    for unit in [3, 8] {
        text.push_str(&format!(
            "[[devices]]\nid = \"m{unit}\"\nprofile = \"eastron-sdm120\"\nprotocol = \"modbus_tcp\"\n\
             host = \"127.0.0.1\"\nport = {port}\nunit_id = {unit}\ntimeout_ms = 300\n\
             poll_interval_ms = 200\nretry_max_ms = 400\n"
        ));
    }
    let config = GatewayConfig::from_toml_str(&text, "metrics.toml").expect("valid config");
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    // Until the meter was polled a few times and the broker took the link.
    let mut body = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let got = tokio::task::spawn_blocking(move || {
            std::net::TcpStream::connect(("127.0.0.1", metrics_port))
                .ok()
                .map(|_| scrape(metrics_port, "/metrics"))
        })
        .await
        .expect("scrape task");
        let Some((status, b)) = got else { continue };
        assert_eq!(status, "HTTP/1.1 200 OK");
        body = b;
        let polls = value(&body, "gridwatch_device_polls_total{device=\"m3\"}").unwrap_or(0.0);
        let mqtt = value(&body, "gridwatch_uplink_up{uplink=\"mqtt\"}").unwrap_or(0.0);
        if polls >= 3.0 && mqtt == 1.0 {
            break;
        }
    }
    assert!(
        value(&body, "gridwatch_device_polls_total{device=\"m3\"}").unwrap_or(0.0) >= 3.0,
        "{body}"
    );
    assert_eq!(
        value(&body, "gridwatch_device_up{device=\"m3\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "gridwatch_device_up{device=\"m8\"}"),
        Some(0.0),
        "{body}"
    );
    let m8_polls = value(&body, "gridwatch_device_polls_total{device=\"m8\"}").unwrap_or(0.0);
    assert!(m8_polls >= 1.0, "{body}");
    assert_eq!(
        value(&body, "gridwatch_device_poll_errors_total{device=\"m8\"}"),
        Some(m8_polls),
        "every poll of the missing unit is an error: {body}"
    );
    assert!(
        value(
            &body,
            "gridwatch_device_poll_duration_seconds_count{device=\"m3\"}"
        )
        .unwrap_or(0.0)
            >= 3.0,
        "{body}"
    );
    assert_eq!(
        value(&body, "gridwatch_uplink_up{uplink=\"mqtt\"}"),
        Some(1.0),
        "{body}"
    );
    assert!(value(&body, "gridwatch_uplink_lag_records{uplink=\"mqtt\"}").is_some());
    assert!(value(&body, "gridwatch_outbox_pending_records").is_some());
    assert_eq!(
        value(&body, "gridwatch_outbox_dropped_records_total"),
        Some(0.0)
    );
    let (status, _) = tokio::task::spawn_blocking(move || scrape(metrics_port, "/other"))
        .await
        .expect("scrape task");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(20), gateway).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
    stop_sim.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), sim).await;
}
