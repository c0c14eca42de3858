//! WeCom and DingTalk robot channels against a robot stand-in on a loopback
//! port: the payload each robot expects (markdown, Chinese title, the
//! case's link), DingTalk's signature checked with the secret the way
//! DingTalk checks it, rate limits retried, other errcodes counted as
//! failures once and never retried, and keys kept out of the log.

use base64::Engine;
use gridwatch_analytics::notify::channel::{ChannelStats, Notice, NoticeSender};
use gridwatch_analytics::notify::dingtalk::{self, DingtalkConfig};
use gridwatch_analytics::notify::robot_text::TextContext;
use gridwatch_analytics::notify::wecom::{self, WecomConfig};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One request the stand-in received.
struct Request {
    /// Path and query of the request line.
    target: String,
    body: Value,
}

/// A robot stand-in on 127.0.0.1: answers each request with the next
/// errcode of `answers` (HTTP 200, JSON, as the robots do) and hands the
/// request over.
async fn robot(answers: Vec<i64>) -> (String, mpsc::Receiver<Request>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        for code in answers {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let (head, body) = loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text[..i]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                        })
                        .and_then(|v| v.parse().ok())
                        .expect("a Content-Length header");
                    if got.len() >= i + 4 + len {
                        break (text[..i].to_owned(), got[i + 4..i + 4 + len].to_vec());
                    }
                }
                assert!(n > 0, "the client closed before the body was complete");
            };
            let target = head.split_whitespace().nth(1).unwrap().to_owned();
            assert!(head.starts_with("POST "), "{head}");
            let body: Value = serde_json::from_slice(&body).expect("a JSON body");
            let msg = if code == 0 { "ok" } else { "refused" };
            let answer = json!({"errcode": code, "errmsg": msg}).to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            s.write_all(reply.as_bytes()).await.unwrap();
            let _ = s.shutdown().await;
            let _ = tx.send(Request { target, body }).await;
        }
    });
    (base, rx)
}

fn text() -> TextContext {
    TextContext {
        zones: gridwatch_analytics::i18n::zones::SiteZones::uniform(480),
        dashboard_url: Some("https://grid.example.org".into()),
        max_bytes: 4096,
    }
}

/// A file holding `content`, kept for the test's life.
fn secret_file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "{content}").unwrap();
    f
}

/// A new critical overcurrent case, as the service sends it.
fn raised(case_id: i64) -> Notice {
    let body = json!({
        "event": "raised", "case_id": case_id, "escalation_level": 0, "recipients": [],
        "alert": {"rule": "socket_overcurrent", "severity": "critical", "site": "yard-a",
                  "entity": "yard-a/gw-01/pile-3#2", "ts": 1_795_216_080_000_i64}
    });
    Notice {
        case: case_id,
        at_ms: 1_795_216_080_000,
        body: body.to_string().into_bytes(),
    }
}

async fn next(rx: &mut mpsc::Receiver<Request>) -> Request {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the robot was called (hang guard, not a speed check)")
        .expect("the stand-in is running")
}

/// Waits until the channel has settled `n` notices (sent or failed).
async fn settled(sender: &NoticeSender, n: u64) -> ChannelStats {
    for _ in 0..3000 {
        let s = sender.stats();
        if s.sent + s.failed >= n {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the channel did not settle {n} notices: {:?}",
        sender.stats()
    );
}

fn query(target: &str, name: &str) -> Option<String> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn fast_wecom(base: &str, key: &tempfile::NamedTempFile) -> WecomConfig {
    WecomConfig {
        url: Some(format!("{base}/cgi-bin/webhook/send")),
        key_file: Some(key.path().to_owned()),
        retry_min_ms: 10,
        retry_max_ms: 20,
        ..WecomConfig::default()
    }
}

#[tokio::test]
async fn wecom_gets_markdown_in_chinese_with_the_case_link() {
    let (base, mut rx) = robot(vec![0]).await;
    let key = secret_file("wecom-key-123");
    let stop = CancellationToken::new();
    let sender = wecom::start(&fast_wecom(&base, &key), text(), &stop)
        .unwrap()
        .expect("a channel");
    sender.send(raised(42));
    let r = next(&mut rx).await;
    assert_eq!(r.target, "/cgi-bin/webhook/send?key=wecom-key-123");
    assert_eq!(r.body["msgtype"], "markdown");
    let content = r.body["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with("### 【严重】插座过流"), "{content}");
    assert!(content.contains("yard-a 小区"), "{content}");
    assert!(
        content.contains("2026-11-21 07:08（UTC+08:00）"),
        "{content}"
    );
    assert!(!content.contains('Z'), "no UTC `Z` time: {content}");
    assert!(
        content.contains("(https://grid.example.org/alerts/42)"),
        "{content}"
    );
    let s = settled(&sender, 1).await;
    assert_eq!((s.sent, s.failed, s.dropped), (1, 0, 0));
    stop.cancel();
}

#[tokio::test]
async fn dingtalk_signed_mode_carries_a_signature_the_secret_verifies() {
    let (base, mut rx) = robot(vec![0]).await;
    let token = secret_file("ding-token-9");
    let secret = secret_file("SEC0123456789abcdef");
    let config = DingtalkConfig {
        url: Some(format!("{base}/robot/send")),
        access_token_file: Some(token.path().to_owned()),
        secret_file: Some(secret.path().to_owned()),
        ..DingtalkConfig::default()
    };
    let stop = CancellationToken::new();
    let sender = dingtalk::start(&config, text(), &stop).unwrap().unwrap();
    sender.send(raised(7));
    let r = next(&mut rx).await;
    assert!(r.target.starts_with("/robot/send?"), "{}", r.target);
    assert_eq!(
        query(&r.target, "access_token").as_deref(),
        Some("ding-token-9")
    );
    // DingTalk's check: HMAC-SHA256 of "timestamp\nsecret" keyed with the
    // secret, base64, URL-encoded in the query.
    let timestamp = query(&r.target, "timestamp").expect("a timestamp");
    let sign = percent_decode(&query(&r.target, "sign").expect("a sign"));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"SEC0123456789abcdef").unwrap();
    mac.update(format!("{timestamp}\nSEC0123456789abcdef").as_bytes());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&sign)
        .expect("base64");
    mac.verify_slice(&decoded)
        .expect("the signature verifies with the secret");
    assert!(timestamp.parse::<i64>().unwrap() > 1_600_000_000_000);
    assert_eq!(r.body["msgtype"], "markdown");
    assert_eq!(r.body["markdown"]["title"], "【严重】插座过流");
    let text = r.body["markdown"]["text"].as_str().unwrap();
    assert!(
        text.contains("插座过流") && text.contains("/alerts/7)"),
        "{text}"
    );
    assert_eq!(settled(&sender, 1).await.sent, 1);
    stop.cancel();
}

#[tokio::test]
async fn a_rate_limited_message_is_retried_until_it_goes_through() {
    let (base, mut rx) = robot(vec![45009, 45009, 0]).await;
    let key = secret_file("k");
    let stop = CancellationToken::new();
    let sender = wecom::start(&fast_wecom(&base, &key), text(), &stop)
        .unwrap()
        .unwrap();
    sender.send(raised(3));
    for _ in 0..3 {
        let r = next(&mut rx).await;
        assert!(r.body["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("/alerts/3)"));
    }
    let s = settled(&sender, 1).await;
    assert_eq!((s.sent, s.failed), (1, 0), "retried, not failed");

    // DingTalk's rate-limit code, the same way.
    let (base, mut rx) = robot(vec![130101, 0]).await;
    let token = secret_file("t");
    let config = DingtalkConfig {
        url: Some(format!("{base}/robot/send")),
        access_token_file: Some(token.path().to_owned()),
        retry_min_ms: 10,
        retry_max_ms: 20,
        ..DingtalkConfig::default()
    };
    let sender = dingtalk::start(&config, text(), &stop).unwrap().unwrap();
    sender.send(raised(4));
    next(&mut rx).await;
    next(&mut rx).await;
    assert_eq!(settled(&sender, 1).await.sent, 1);
    stop.cancel();
}

/// Log lines the channel writes, for checking that no key shows.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refused_message_is_counted_failed_once_and_the_key_never_logged() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // 93000: invalid webhook URL (a wrong key); then a good answer for the
    // next message, which shows the first was not retried.
    let (base, mut rx) = robot(vec![93000, 0]).await;
    let key = secret_file("secret-key-xyz");
    let stop = CancellationToken::new();
    let sender = wecom::start(&fast_wecom(&base, &key), text(), &stop)
        .unwrap()
        .unwrap();
    sender.send(raised(1));
    let first = next(&mut rx).await;
    assert!(first.body["markdown"]["content"]
        .as_str()
        .unwrap()
        .contains("/alerts/1)"));
    let s = settled(&sender, 1).await;
    assert_eq!((s.sent, s.failed), (0, 1));
    sender.send(raised(2));
    let second = next(&mut rx).await;
    assert!(
        second.body["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("/alerts/2)"),
        "the refused message was not sent again"
    );
    let s = settled(&sender, 2).await;
    assert_eq!((s.sent, s.failed, s.dropped), (1, 1, 0));
    stop.cancel();

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("errcode 93000"), "{text}");
    assert_eq!(
        text.matches("errcode 93000").count(),
        1,
        "logged once: {text}"
    );
    assert!(!text.contains("secret-key-xyz"), "{text}");
}

#[test]
fn an_empty_secret_file_is_refused_at_start() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let token = secret_file("t");
        let empty = secret_file("   ");
        let config = DingtalkConfig {
            url: Some("https://oapi.dingtalk.com/robot/send".into()),
            access_token_file: Some(token.path().to_owned()),
            secret_file: Some(empty.path().to_owned()),
            ..DingtalkConfig::default()
        };
        let e = dingtalk::start(&config, text(), &CancellationToken::new()).expect_err("refused");
        assert!(e.to_string().contains("DingTalk robot secret"), "{e}");
    });
}

/// From the config file to the robot: `start_channels` takes the site's
/// offset from `[detect]` and the link from `[notify] dashboard_url`, and a
/// case the store opens reaches the robot through `Cases`.
#[tokio::test]
async fn a_case_opened_by_the_service_reaches_the_robot_in_the_sites_time() {
    use gridwatch_analytics::alerts::directory::Directory;
    use gridwatch_analytics::dispatch::Cases;
    use gridwatch_analytics::store::Store;
    use gridwatch_analytics::AnalyticsConfig;
    use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};

    let (base, mut rx) = robot(vec![0]).await;
    let key = secret_file("k9");
    let toml = format!(
        "[detect]\nutc_offset_min = 540\n\
         [notify]\ndashboard_url = \"https://grid.example.org/gw/\"\n\
         [notify.wecom]\nurl = \"{base}/cgi-bin/webhook/send\"\nkey_file = {:?}\n",
        key.path().display().to_string()
    );
    let config = AnalyticsConfig::from_toml_str(&toml, "analytics.toml").unwrap();
    let directory = Arc::new(Directory::default());
    let stop = CancellationToken::new();
    let channels =
        gridwatch_analytics::notify::start_channels(&config, directory.clone(), &stop).unwrap();
    assert_eq!(channels.len(), 1, "only the robot is configured");
    let robot_channel = channels[0].clone();
    let store = Store::open(&config.store).unwrap();
    let mut cases = Cases::new(store, directory, &config).with_channels(channels);
    let alert = Alert {
        schema: 1,
        id: "night_water_leak:s01/b02/0301:0".into(),
        rule: "night_water_leak".into(),
        entity: "s01/b02/0301".into(),
        cell: "cell-01".into(),
        site: "s01".into(),
        severity: Severity::Major,
        state: AlertState::Open,
        ts: Timestamp(0),
        title: "Night water".into(),
        summary: "water every night".into(),
        evidence: Evidence::default(),
    };
    assert!(cases.record(&alert));
    let r = next(&mut rx).await;
    let content = r.body["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with("### 【重要】夜间持续用水"), "{content}");
    assert!(content.contains("s01 小区 b02 栋 0301 室"), "{content}");
    assert!(
        content.contains("1970-01-01 09:00（UTC+09:00）"),
        "{content}"
    );
    assert!(
        content.contains("(https://grid.example.org/gw/alerts/1)"),
        "{content}"
    );
    assert_eq!(settled(&robot_channel, 1).await.sent, 1);
    assert!(cases
        .channel_stats()
        .starts_with("wecom 1 sent 0 failed 0 dropped"));
    stop.cancel();
}
