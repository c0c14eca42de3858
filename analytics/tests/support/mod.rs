//! Test support: the kit's real Mosquitto on a free loopback port, stopped
//! on drop, and the readings and observer the broker tests share.

// Each test binary uses its own part of the support module.
#![allow(dead_code, unused_imports)]

pub use gridwatch_testkit::{free_port, Mosquitto, TempDir};
use std::time::Duration;

/// A reading of socket 3 of `pile-1` behind `gw-1` at `yard-a`: the socket
/// the tests drive over limits (5.5 A by default) or keep normal.
pub fn socket_reading(ts_ms: i64, seq: u64, current_a: f64) -> gridwatch_telemetry::Reading {
    let mut r = gridwatch_telemetry::Reading::new(
        gridwatch_telemetry::Timestamp(ts_ms),
        "gw-1",
        "pile-1",
        gridwatch_telemetry::DeviceKind::ChargingSocket,
        seq,
    );
    r.site = "yard-a".into();
    r.socket = Some(3);
    r.values.insert("current_a".into(), current_a);
    r
}

/// A test client subscribed to `alerts/#`, forwarding (topic, payload). It
/// may publish up to 64 MiB, so drills can send oversized messages with it.
pub async fn observer(
    port: u16,
    id: &str,
) -> (
    rumqttc::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let mut opts = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    opts.set_max_packet_size(64 << 20, 64 << 20);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 100);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    client
        .subscribe("alerts/#", rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .expect("observer subscribed in time")
        .expect("observer task alive");
    (client, rx)
}

/// An office's files in `dir` for the command-line tools: `register`
/// saved as register.json, a directory routing site `yard-a` to cell
/// `cell-07`, and analytics.toml naming them and the store alerts.db.
/// Returns the config's path.
pub fn office_config(
    dir: &std::path::Path,
    register: &gridwatch_analytics::register::RegisterFile,
) -> std::path::PathBuf {
    register.save(&dir.join("register.json")).unwrap();
    std::fs::write(
        dir.join("directory.toml"),
        "[[cells]]\nid = \"cell-07\"\non_duty = []\n[[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n",
    )
    .unwrap();
    let config = dir.join("analytics.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[register]\npath = \"{}\"\n[directory]\npath = \"{}\"\n",
            dir.join("alerts.db").display(),
            dir.join("register.json").display(),
            dir.join("directory.toml").display()
        ),
    )
    .unwrap();
    config
}

/// One HTTP/1.1 request to the service on `addr`, as a phone or a script
/// sends it (with `bearer`'s token when given), over a connection of its
/// own; the status and the body as text.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}
