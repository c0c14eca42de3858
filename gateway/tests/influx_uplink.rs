//! The InfluxDB uplink against real servers started by the test (InfluxDB 1.x
//! for the v1 API, VictoriaMetrics for `/api/v2/write`) and a recording fake
//! for the exact v2 request, with faults: the server stopped and restarted,
//! a 400 for some lines, a 429 with Retry-After.

mod support;

use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{codec, Reading, SystemClock};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::influx::{Influxd, Victoria};
use support::{config_text, start_pile, Broker, Collector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Runs a gateway with `influx` as its `[influx]` table for the duration of
/// `during`, silences the pile, lets the uplinks catch up, then stops it;
/// returns every reading seen on MQTT (by seq).
async fn run_gateway<F>(
    gateway: &str,
    root: &Path,
    influx: &str,
    during: F,
) -> BTreeMap<u64, Reading>
where
    F: std::future::Future<Output = ()>,
{
    let broker = Broker::start().await;
    let (pile, device, _stop) = start_pile().await;
    let mut sub = Collector::connect(
        broker.port,
        &format!("t-{gateway}"),
        &[format!("gw/yard-t/{gateway}/#")],
    )
    .await;
    let text = config_text(
        broker.port,
        pile,
        gateway,
        &root.join("outbox"),
        "fsync_interval_ms = 100",
        "",
    ) + influx;
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    during.await;
    // No more readings: both uplinks catch up before the gateway stops, so
    // what MQTT saw is exactly what InfluxDB must hold.
    device.silence();
    tokio::time::sleep(Duration::from_secs(3)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), gw)
        .await
        .expect("run returns after shutdown")
        .unwrap()
        .unwrap();
    sub.collect_for(Duration::from_millis(500)).await;
    sub.distinct()
        .into_values()
        .filter_map(|s| codec::decode::<Reading>(&s.payload).ok())
        .map(|r| (r.seq, r))
        .collect()
}

/// Rows of InfluxDB by their `seq` field.
async fn rows_by_seq(
    influx: &Influxd,
    measurement: &str,
) -> BTreeMap<u64, serde_json::Map<String, serde_json::Value>> {
    influx
        .rows("gw", measurement)
        .await
        .into_iter()
        .map(|r| (r["seq"].as_u64().expect("seq field"), r))
        .collect()
}

fn assert_stored(r: &Reading, row: Option<&serde_json::Map<String, serde_json::Value>>) {
    let row = row.unwrap_or_else(|| panic!("reading seq {} is not in InfluxDB", r.seq));
    assert_eq!(
        row["time"].as_i64(),
        Some(r.ts.millis()),
        "timestamp of seq {}",
        r.seq
    );
    for (name, v) in &r.values {
        assert_eq!(row[name].as_f64(), Some(*v), "{name} of seq {}", r.seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_stopped_and_restarted_ends_with_every_point_stored() {
    support::init_logs();
    let mut influx = Influxd::start("gw").await;
    let root = tempfile::tempdir().unwrap();
    let table = format!(
        "[influx]\nurl = \"{}\"\napi = \"v1\"\ndb = \"gw\"\nbatch_max_wait_ms = 200\nretry_max_ms = 1000\n",
        influx.url()
    );
    let url = influx.url();
    let readings = {
        let influx_ref = &mut influx;
        run_gateway("gw-iv1", root.path(), &table, async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            influx_ref.stop();
            tokio::time::sleep(Duration::from_secs(2)).await;
            influx_ref.resume().await;
            tokio::time::sleep(Duration::from_secs(4)).await;
        })
        .await
    };
    assert!(readings.len() > 100, "{} readings", readings.len());
    let sockets = rows_by_seq(&influx, "charging_socket").await;
    let piles = rows_by_seq(&influx, "charging_pile").await;
    for r in readings.values() {
        let rows = if r.socket.is_some() { &sockets } else { &piles };
        assert_stored(r, rows.get(&r.seq));
    }
    assert_eq!(
        sockets.len() + piles.len(),
        readings.len(),
        "no extra points at {url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_refused_with_400_are_dead_lettered_and_the_rest_written() {
    support::init_logs();
    let influx = Influxd::start("gw").await;
    // A string field where the pile's readings write a float: InfluxDB
    // refuses exactly those lines (field type conflict, HTTP 400).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(
        influx
            .write(
                "gw",
                &format!("charging_pile,device=other total_power_w=\"text\" {now}\n")
            )
            .await,
        204
    );
    let root = tempfile::tempdir().unwrap();
    let dead = root.path().join("dead.lp");
    let table = format!(
        "[influx]\nurl = \"{}\"\napi = \"v1\"\ndb = \"gw\"\nbatch_max_wait_ms = 200\ndead_letter_file = \"{}\"\n",
        influx.url(),
        dead.display()
    );
    let readings = run_gateway(
        "gw-i400",
        root.path(),
        &table,
        tokio::time::sleep(Duration::from_secs(3)),
    )
    .await;

    let pile_readings: Vec<&Reading> = readings.values().filter(|r| r.socket.is_none()).collect();
    assert!(!pile_readings.is_empty());
    assert!(pile_readings
        .iter()
        .all(|r| r.values.contains_key("total_power_w")));
    let text = std::fs::read_to_string(&dead).expect("a dead-letter file");
    let buried: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        buried.len(),
        pile_readings.len(),
        "every pile line, nothing else:\n{text}"
    );
    assert!(
        buried.iter().all(|l| l.starts_with("charging_pile,")),
        "{text}"
    );
    assert!(
        text.contains("field type conflict"),
        "the server's message is kept:\n{text}"
    );

    let sockets = rows_by_seq(&influx, "charging_socket").await;
    for r in readings.values().filter(|r| r.socket.is_some()) {
        assert_stored(r, sockets.get(&r.seq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_write_api_stores_points_in_victoria_metrics() {
    support::init_logs();
    let vm = Victoria::start().await;
    let root = tempfile::tempdir().unwrap();
    let table = format!(
        "[influx]\nurl = \"{}\"\norg = \"district\"\nbucket = \"gridwatch\"\nbatch_max_wait_ms = 200\n",
        vm.url()
    );
    let readings = run_gateway(
        "gw-iv2",
        root.path(),
        &table,
        tokio::time::sleep(Duration::from_secs(3)),
    )
    .await;
    let socket1: BTreeMap<i64, f64> = readings
        .values()
        .filter(|r| r.socket == Some(1))
        .map(|r| (r.ts.millis(), r.value("voltage_v").unwrap()))
        .collect();
    assert!(socket1.len() > 10);
    let mut samples = Vec::new();
    for _ in 0..50 {
        samples = vm
            .export("{__name__=\"charging_socket_voltage_v\",device=\"pile-1\",socket=\"1\"}")
            .await;
        if samples.len() >= socket1.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored: BTreeMap<i64, f64> = samples.iter().map(|(_, v, t)| (*t, *v)).collect();
    assert_eq!(stored, socket1, "every socket-1 voltage with its timestamp");
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A fake InfluxDB: records requests; answers 429 (Retry-After: 1) to the
/// first, 400 to any body with a `socket=2` line, 204 otherwise.
async fn fake_influx() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for _ in 0..10_000 {
                    // Headers.
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let mut lines = head.lines();
                    let target = lines.next().unwrap_or_default().to_owned();
                    let headers: BTreeMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    buf.drain(..end + 4);
                    while buf.len() < len {
                        let mut chunk = [0u8; 65536];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let raw: Vec<u8> = buf.drain(..len).collect();
                    let body =
                        if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
                            let mut out = String::new();
                            flate2::read::GzDecoder::new(&raw[..])
                                .read_to_string(&mut out)
                                .unwrap();
                            out
                        } else {
                            String::from_utf8_lossy(&raw).to_string()
                        };
                    let first = {
                        let mut l = log.lock().unwrap();
                        l.push(Seen {
                            target,
                            headers,
                            body: body.clone(),
                        });
                        l.len() == 1
                    };
                    let answer = if first {
                        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n".to_owned()
                    } else if body.lines().any(|l| l.contains(",socket=2 ")) {
                        let msg =
                            r#"{"code":"invalid","message":"partial write: socket 2 refused"}"#;
                        format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{msg}", msg.len())
                    } else {
                        "HTTP/1.1 204 No Content\r\n\r\n".to_owned()
                    };
                    if s.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_request_carries_org_bucket_precision_token_and_gzip() {
    support::init_logs();
    let (port, seen) = fake_influx().await;
    let root = tempfile::tempdir().unwrap();
    let token = root.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let dead = root.path().join("dead.lp");
    let table = format!(
        "[influx]\nurl = \"http://127.0.0.1:{port}\"\norg = \"district 9\"\nbucket = \"gridwatch\"\n\
         token_file = \"{}\"\nbatch_max_wait_ms = 200\nretry_max_ms = 500\ndead_letter_file = \"{}\"\n",
        token.display(),
        dead.display()
    );
    let readings = run_gateway(
        "gw-irec",
        root.path(),
        &table,
        tokio::time::sleep(Duration::from_secs(3)),
    )
    .await;

    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{} requests", seen.len());
    for s in &seen {
        assert_eq!(
            s.target,
            "POST /api/v2/write?org=district+9&bucket=gridwatch&precision=ms HTTP/1.1"
        );
        assert_eq!(s.headers["authorization"], "Token s3cret-token");
        assert_eq!(s.headers["content-encoding"], "gzip");
        assert!(s.headers["content-type"].starts_with("text/plain"));
    }
    // The 429 was retried: the first body was sent again.
    assert_eq!(
        seen[1].body, seen[0].body,
        "the refused-for-now batch is retried as it was"
    );
    // Every line the server took or refused, once each at the end.
    let written: std::collections::BTreeSet<String> = seen[1..]
        .iter()
        .filter(|s| !s.body.lines().any(|l| l.contains(",socket=2 ")))
        .flat_map(|s| s.body.lines().map(str::to_owned))
        .collect();
    let dead_text = std::fs::read_to_string(&dead).unwrap();
    let buried: Vec<&str> = dead_text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        dead_text.contains("HTTP 400: partial write: socket 2 refused"),
        "{dead_text}"
    );
    for r in readings.values() {
        let line = r.to_line().unwrap();
        let line = line.trim_end();
        if r.socket == Some(2) {
            assert!(
                buried.contains(&line),
                "socket 2 reading {} dead-lettered",
                r.seq
            );
        } else {
            assert!(written.contains(line), "reading {} written", r.seq);
        }
    }
    assert_eq!(
        buried.len(),
        readings.values().filter(|r| r.socket == Some(2)).count()
    );
}
