//! The service's case handling end to end without a broker: alerts go into
//! the store, notices go to a real webhook receiver on a loopback port, and
//! an alert nobody acknowledges escalates to the backups as event time
//! passes — never by the wall clock.

use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::dispatch::Cases;
use gridwatch_analytics::lifecycle::{InhibitRule, InhibitScope};
use gridwatch_analytics::notify::webhook::{self, Endpoint, WebhookConfig};
use gridwatch_analytics::store::{Scope, Store};
use gridwatch_analytics::AnalyticsConfig;
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn directory() -> Directory {
    let h = |t: &str| hex(&Sha256::digest(t.as_bytes()));
    let text = format!(
        "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\nbackups = [\"zhao\"]\n\
         [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
         [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n\
         [[users]]\nname = \"zhao\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n",
        h("w"),
        h("z")
    );
    Directory::from_toml_str(&text, "directory.toml").unwrap()
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

/// Accepts `n` posts, answers 204, and hands back each JSON body.
async fn receiver(n: usize) -> (String, mpsc::Receiver<Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notices", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        for _ in 0..n {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            for _ in 0..1000 {
                let k = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got).into_owned();
                let Some(i) = text.find("\r\n\r\n") else {
                    if k == 0 {
                        break;
                    }
                    continue;
                };
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap();
                if got.len() >= i + 4 + len {
                    let _ = tx
                        .send(serde_json::from_slice(&got[i + 4..]).unwrap())
                        .await;
                    break;
                }
                if k == 0 {
                    break;
                }
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
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

/// A webhook channel to `url` with the test key.
fn webhook_to(url: &str, stop: &CancellationToken) -> webhook::WebhookSender {
    webhook::spawn(
        WebhookConfig::default(),
        Endpoint::parse(url).unwrap(),
        b"k".to_vec(),
        stop.clone(),
    )
}

#[tokio::test]
async fn a_new_case_notifies_on_duty_staff_and_escalates_to_backups_in_event_time() {
    let (url, mut rx) = receiver(2).await;
    let stop = CancellationToken::new();
    let sender = webhook_to(&url, &stop);
    let store = Store::open_in_memory().unwrap();
    let config = AnalyticsConfig::default(); // critical: acknowledge within 600 s
    let mut cases =
        Cases::new(store.clone(), Arc::new(directory()), &config).with_webhook(Some(sender));

    let t0 = 1_764_000_000_000;
    assert!(cases.record(&alert(t0)));
    cases.tick(Timestamp(t0));
    let raised = next(&mut rx).await;
    assert_eq!(raised["event"], "raised");
    assert_eq!(raised["recipients"], serde_json::json!(["wang"]));
    assert_eq!(raised["alert"]["rule"], "socket_overcurrent");

    // A repeat folds silently; readings 9 minutes on do not escalate yet.
    assert!(cases.record(&alert(t0 + 60_000)));
    cases.tick(Timestamp(t0 + 9 * 60_000));
    assert_eq!(store.get(&Scope::All, 1).unwrap().escalation_level, 0);

    cases.tick(Timestamp(t0 + 10 * 60_000));
    let escalated = next(&mut rx).await;
    assert_eq!(escalated["event"], "escalated");
    assert_eq!(escalated["escalation_level"], 1);
    assert_eq!(escalated["recipients"], serde_json::json!(["zhao"]));
    assert_eq!(escalated["case"]["count"], 2);
    let trail = store.audit(&Scope::All, 1).unwrap();
    assert_eq!(trail.last().unwrap().action, "escalate");
    stop.cancel();
}

#[tokio::test]
async fn with_grouping_a_burst_in_one_cell_is_one_notice() {
    let (url, mut rx) = receiver(1).await;
    let stop = CancellationToken::new();
    let sender = webhook_to(&url, &stop);
    let mut config = AnalyticsConfig::default();
    config.notify.group.wait_s = 30;
    config.notify.group.interval_s = 300;
    let store = Store::open_in_memory().unwrap();
    let mut cases = Cases::new(store, Arc::new(directory()), &config).with_webhook(Some(sender));
    let t0 = 1_764_000_000_000;
    let mut second = alert(t0 + 5_000);
    second.entity = "yard-a/gw-1/pile-1#4".into();
    second.id = "socket_overcurrent:yard-a/gw-1/pile-1#4:0".into();
    for (a, at) in [(alert(t0), t0), (second, t0 + 5_000)] {
        assert!(cases.record(&a));
        cases.tick(Timestamp(at));
    }
    cases.tick(Timestamp(t0 + 29_000));
    assert!(
        rx.try_recv().is_err(),
        "nothing before the group wait is over"
    );
    cases.tick(Timestamp(t0 + 30_000));
    let group = next(&mut rx).await;
    assert_eq!(group["event"], "group");
    assert_eq!(group["group"], "cell-07");
    let ids: Vec<i64> = group["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["case_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2]);
    stop.cancel();
}

#[tokio::test]
async fn an_inhibited_symptom_is_neither_published_nor_notified() {
    let (url, mut rx) = receiver(2).await;
    let stop = CancellationToken::new();
    let sender = webhook_to(&url, &stop);
    let mut config = AnalyticsConfig::default();
    config.alerts.inhibit = vec![InhibitRule {
        source_rule: "socket_overcurrent".into(),
        target_rules: vec!["socket_overpower".into()],
        equal: InhibitScope::Entity,
    }];
    let store = Store::open_in_memory().unwrap();
    let mut cases =
        Cases::new(store.clone(), Arc::new(directory()), &config).with_webhook(Some(sender));
    let t0 = 1_764_000_000_000;
    assert!(cases.record(&alert(t0)), "the cause goes out");
    let mut symptom = alert(t0);
    symptom.rule = "socket_overpower".into();
    symptom.id = format!("socket_overpower:{}:{t0}", symptom.entity);
    assert!(
        !cases.record(&symptom),
        "the symptom is not published on MQTT"
    );
    // A third alert elsewhere proves the webhook is alive and ordered.
    let mut elsewhere = alert(t0 + 1);
    elsewhere.entity = "yard-a/gw-1/pile-1#9".into();
    elsewhere.id = "socket_overcurrent:yard-a/gw-1/pile-1#9:1".into();
    assert!(cases.record(&elsewhere));
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    assert_eq!(first["alert"]["rule"], "socket_overcurrent");
    assert_eq!(
        second["alert"]["entity"], "yard-a/gw-1/pile-1#9",
        "no notice for the inhibited symptom came in between"
    );
    assert_eq!(store.get(&Scope::All, 2).unwrap().inhibited_by, Some(1));
    stop.cancel();
}
