//! When the alert store fails (here: its tables are dropped under a file
//! store, as a corrupted or replaced database would), the webhook still
//! receives every alert, marked `"stored": false` with the store's error,
//! the failure is counted, and one `alert_store_failed` alert per failure
//! episode says so on every channel and MQTT.

use gridwatch_analytics::alerts::directory::Directory;
use gridwatch_analytics::dispatch::Cases;
use gridwatch_analytics::notify::webhook::{self, Endpoint, WebhookConfig};
use gridwatch_analytics::store::Store;
use gridwatch_analytics::AnalyticsConfig;
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn directory() -> Directory {
    let text = "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n\
         [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
         [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"\
         0000000000000000000000000000000000000000000000000000000000000000\"\n";
    Directory::from_toml_str(text, "directory.toml").unwrap()
}

fn alert(ts: i64) -> Alert {
    Alert {
        schema: 1,
        id: format!("socket_overcurrent:yard-a/gw-1/pile-1#3:{ts}"),
        rule: "socket_overcurrent".into(),
        entity: "yard-a/gw-1/pile-1#3".into(),
        cell: "cell-07".into(),
        site: "yard-a".into(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(ts),
        title: "Overcurrent on socket 3".into(),
        summary: "7 A".into(),
        evidence: Evidence::default(),
    }
}

/// A webhook receiver on a loopback port: answers 204 to every POST and
/// hands back each JSON body.
async fn receiver() -> (String, mpsc::Receiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notices", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let body = loop {
                let k = s.read(&mut buf).await.unwrap_or(0);
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if got.len() >= i + 4 + len {
                        break Some(got[i + 4..i + 4 + len].to_vec());
                    }
                }
                if k == 0 {
                    break None;
                }
            };
            let _ = s
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .await;
            if let Some(b) = body {
                let _ = tx.send(serde_json::from_slice(&b).unwrap()).await;
            }
        }
    });
    (url, rx)
}

async fn next(rx: &mut mpsc::Receiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a notice arrives within the bound")
        .unwrap()
}

#[tokio::test]
async fn the_webhook_gets_the_alert_when_the_store_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.sqlite");
    let store = Store::open_file(&path).unwrap();
    let (url, mut rx) = receiver().await;
    let stop = CancellationToken::new();
    let sender = webhook::spawn(
        WebhookConfig::default(),
        Endpoint::parse(&url).unwrap(),
        b"k".to_vec(),
        stop.clone(),
    );
    let config = AnalyticsConfig::default();
    let mut cases = Cases::new(store, Arc::new(directory()), &config).with_webhook(Some(sender));

    // Stored normally first: a case number, no `stored` mark.
    let t0 = 1_764_000_000_000;
    assert!(cases.record(&alert(t0)));
    let stored = next(&mut rx).await;
    assert_eq!(stored["case_id"], 1);
    assert!(stored.get("stored").is_none(), "{stored}");

    // The database loses its tables under the running service.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE audit; DROP TABLE alerts;")
        .unwrap();

    let other = Alert {
        entity: "yard-a/gw-1/pile-2#1".into(),
        id: format!("socket_overcurrent:yard-a/gw-1/pile-2#1:{}", t0 + 1_000),
        ..alert(t0 + 1_000)
    };
    assert!(
        cases.record(&other),
        "the alert still goes out on MQTT (record says publish)"
    );
    let notice = next(&mut rx).await;
    assert_eq!(notice["event"], "raised");
    assert_eq!(notice["stored"], false);
    assert_eq!(notice["case_id"], Value::Null);
    assert_eq!(notice["alert"]["entity"], "yard-a/gw-1/pile-2#1");
    assert_eq!(notice["recipients"], serde_json::json!(["wang"]));
    let why = notice["store_error"].as_str().unwrap();
    assert!(why.contains("no such table"), "{why}");
    assert_eq!(cases.store_failures(), 1);

    // The first failure raises one alert about the store itself, on the
    // webhook and (through the service) on MQTT.
    let health = cases
        .take_store_alert()
        .expect("the first failure raises the store's alert");
    assert_eq!(health.rule, "alert_store_failed");
    assert_eq!(health.severity, Severity::Critical);
    assert_eq!(health.cell, "cell-07");
    assert!(
        health.summary.contains("no such table"),
        "{}",
        health.summary
    );
    let notice = next(&mut rx).await;
    assert_eq!(notice["alert"]["rule"], "alert_store_failed");
    assert_eq!(notice["stored"], false);
    assert_eq!(notice["recipients"], serde_json::json!(["wang"]));

    // A second failure in the same episode: the alert goes out, counted,
    // and no second store alert.
    let third = Alert {
        entity: "yard-a/gw-1/pile-3#2".into(),
        id: format!("socket_overcurrent:yard-a/gw-1/pile-3#2:{}", t0 + 2_000),
        ..alert(t0 + 2_000)
    };
    assert!(cases.record(&third));
    let notice = next(&mut rx).await;
    assert_eq!(notice["alert"]["entity"], "yard-a/gw-1/pile-3#2");
    assert_eq!(notice["stored"], false);
    assert_eq!(cases.store_failures(), 2);
    assert!(
        cases.take_store_alert().is_none(),
        "one store alert per episode"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "no further notice"
    );
    stop.cancel();
}
