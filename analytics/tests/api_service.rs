//! The whole service against a real Mosquitto: readings in over MQTT, a case
//! in the SQLite store, handled over the HTTP API on a real socket, and
//! still there after the service restarts on the same file, its chart
//! drawn from the history saved beside the checkpoint.

mod support;

use gridwatch_analytics::alerts::directory::hex;
use gridwatch_analytics::{run_with, AnalyticsConfig, RunOptions};
use gridwatch_telemetry::codec;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::{Mosquitto, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_764_000_000_000;
const TOKEN: &str = "token-of-wang";

fn config(port: u16, dir: &Path) -> AnalyticsConfig {
    let directory = dir.join("directory.toml");
    std::fs::write(
        &directory,
        format!(
            "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n\
             [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
             [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n",
            hex(&Sha256::digest(TOKEN.as_bytes()))
        ),
    )
    .unwrap();
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"analytics-api-test\"\n\
         reconnect_min_ms = 100\nreconnect_max_ms = 500\n\
         [store]\npath = \"{}\"\n[directory]\npath = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [checkpoint]\npath = \"{}\"\n",
        dir.join("alerts.db").display(),
        directory.display(),
        dir.join("state.ckpt").display()
    );
    AnalyticsConfig::from_toml_str(&text, "test.toml").unwrap()
}

async fn start(
    config: AnalyticsConfig,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let options = RunOptions {
        api_ready: Some(tx),
        ..RunOptions::default()
    };
    let s = stop.clone();
    let task = tokio::spawn(async move {
        run_with(config, s, options).await.expect("service runs");
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the API starts within the bound")
        .unwrap();
    (addr, stop, task)
}

async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let (status, body) = http_text(addr, method, path).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn http_text(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_from_mqtt_is_handled_over_the_api_and_survives_a_restart() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = TempDir::new("api-service");
    let (addr, stop, task) = start(config(broker.port(), dir.path())).await;
    broker
        .wait_for_subscription(
            "analytics-api-test",
            "gw/+/+/reading/+",
            Duration::from_secs(10),
        )
        .await;

    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("pub", "127.0.0.1", broker.port()), 50);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for s in 0..=10 {
        let r = support::socket_reading(T0 + s * 1000, s as u64, 7.0);
        let payload = codec::encode(&r).unwrap();
        client
            .publish(
                "gw/yard-a/gw-1/reading/pile-1",
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }

    let mut cases = Value::Null;
    for _ in 0..200 {
        let (status, v) = http(addr, "GET", "/api/v1/alerts").await;
        assert_eq!(status, 200);
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            cases = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let case = &cases[0];
    assert_eq!(case["rule"], "socket_overcurrent", "{cases}");
    assert_eq!(case["cell"], "cell-07");
    let id = case["id"].as_i64().unwrap();
    let (status, v) = http(addr, "POST", &format!("/api/v1/alerts/{id}/acknowledge")).await;
    assert_eq!(status, 200, "{v}");
    let (_, page) = http_text(addr, "GET", &format!("/alerts/{id}")).await;
    assert!(
        page.contains("class=\"limit\""),
        "the socket's history with its limit: {page}"
    );
    stop.cancel();
    task.await.unwrap();
    assert!(
        dir.path().join("state.ckpt.history").exists(),
        "the chart history is saved beside the checkpoint on shutdown"
    );

    let (addr, stop, task) = start(config(broker.port(), dir.path())).await;
    let (_, page) = http_text(addr, "GET", &format!("/alerts/{id}")).await;
    assert!(
        page.contains("class=\"limit\""),
        "after a restart the chart is drawn from the restored history: {page}"
    );
    let (status, v) = http(addr, "GET", &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["alert"]["state"], "acknowledged");
    assert_eq!(v["alert"]["acknowledged_by"], "wang");
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["raise", "acknowledge"]);
    stop.cancel();
    task.await.unwrap();
}
