//! Two whole analytics services on one PostgreSQL store, as two instances
//! of a city: both read the same readings from a real Mosquitto and raise
//! the same alert, which becomes one case with one raise in its trail; a
//! person acknowledges it through one instance's API and the other
//! instance serves it acknowledged.

mod support;

use gridwatch_analytics::alerts::directory::hex;
use gridwatch_analytics::store::{AlertFilter, Scope, Store};
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

fn config(
    port: u16,
    dir: &Path,
    instance: &str,
    pg: &gridwatch_testkit::Postgres,
) -> AnalyticsConfig {
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
    let password = dir.join("store-password");
    std::fs::write(&password, pg.password()).unwrap();
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nclient_id = \"{instance}\"\n\
         reconnect_min_ms = 100\nreconnect_max_ms = 500\n\
         [store]\nurl = \"{}\"\npassword_file = \"{}\"\n\
         [directory]\npath = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n",
        pg.url_without_password(),
        password.display(),
        directory.display(),
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
    let addr = tokio::time::timeout(Duration::from_secs(20), rx)
        .await
        .expect("the API starts within the bound")
        .unwrap();
    (addr, stop, task)
}

async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_make_one_case_and_share_its_handling() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let Some(pg) = gridwatch_testkit::Postgres::start() else {
        return;
    };
    let (dir_a, dir_b) = (TempDir::new("pg-service-a"), TempDir::new("pg-service-b"));
    let (a, stop_a, task_a) = start(config(broker.port(), dir_a.path(), "analytics-a", &pg)).await;
    let (b, stop_b, task_b) = start(config(broker.port(), dir_b.path(), "analytics-b", &pg)).await;
    for id in ["analytics-a", "analytics-b"] {
        broker
            .wait_for_subscription(id, "gw/+/+/reading/+", Duration::from_secs(10))
            .await;
    }
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("pub", "127.0.0.1", broker.port()), 50);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for s in 0..=10 {
        let r = support::socket_reading(T0 + s * 1000, s as u64, 7.0);
        client
            .publish(
                "gw/yard-a/gw-1/reading/pile-1",
                QoS::AtLeastOnce,
                false,
                codec::encode(&r).unwrap(),
            )
            .await
            .unwrap();
    }
    // Both instances record the alert; wait until both have.
    let store = Store::open_postgres(&pg.url()).unwrap();
    let mut episodes = Vec::new();
    for _ in 0..200 {
        episodes = store.episodes().unwrap();
        let (_, va) = http(a, "GET", "/api/v1/alerts").await;
        let (_, vb) = http(b, "GET", "/api/v1/alerts").await;
        if !episodes.is_empty() && va == vb && va.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(episodes.len(), 1, "{episodes:?}");
    let cases = store.list(&Scope::All, &AlertFilter::default()).unwrap();
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(
        (cases[0].rule.as_str(), cases[0].count),
        ("socket_overcurrent", 1)
    );
    let id = cases[0].id;
    let (status, v) = http(a, "POST", &format!("/api/v1/alerts/{id}/acknowledge")).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = http(b, "GET", &format!("/api/v1/alerts/{id}")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["alert"]["state"], "acknowledged");
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["raise", "acknowledge"],
        "one raise, whoever recorded it"
    );
    stop_a.cancel();
    stop_b.cancel();
    task_a.await.unwrap();
    task_b.await.unwrap();
}
