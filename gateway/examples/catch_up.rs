//! Whole-process catch-up figures for docs/BENCHMARKS.md: an outbox holding
//! a 10-minute outage at 1,000 readings/s (600,000 readings) is drained by
//! the MQTT uplink into a real Mosquitto, or by the InfluxDB uplink into a
//! real InfluxDB 1.x, each started here on a free loopback port. Prints the
//! time to drain and the peak RSS of this process.
//!
//! ```sh
//! cargo run --release -p gridwatch-gateway --example catch_up -- mqtt 600000
//! cargo run --release -p gridwatch-gateway --example catch_up -- influx 600000
//! ```

use gridwatch_gateway::outbox::writer::OutboxHandle;
use gridwatch_gateway::outbox::Outbox;
use gridwatch_gateway::status::Health;
use gridwatch_gateway::uplink::influx::{self, InfluxUplink};
use gridwatch_gateway::uplink::mqtt::{self, MqttUplink};
use gridwatch_gateway::uplink::Record;
use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{DeviceKind, Reading, SystemClock, Timestamp};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn wait_port(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("mqtt", String::as_str).to_owned();
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(600_000);
    let tmp = tempfile::tempdir()?;
    let _ = std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let dir = tmp.path().join("outbox");
    let port = free_port();
    let server = match which.as_str() {
        "mqtt" => {
            let conf = tmp.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
            )?;
            Command::new("/usr/sbin/mosquitto")
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?
        }
        _ => {
            let d = tmp.path().display();
            let conf = tmp.path().join("influxdb.conf");
            std::fs::write(
                &conf,
                format!(
                    "reporting-disabled = true\nbind-address = \"127.0.0.1:{}\"\n[meta]\n  dir = \"{d}/meta\"\n\
                     [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                     [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n\
                     [monitor]\n  store-enabled = false\n",
                    free_port()
                ),
            )?;
            Command::new("/usr/bin/influxd")
                .arg("-config")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?
        }
    };
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);
    wait_port(port);

    let config = GatewayConfig::from_toml_str(
        &format!(
            r#"
[gateway]
id = "gw-bench"
site = "yard-b"
[mqtt]
host = "127.0.0.1"
port = {port}
max_publish_per_s = 1000000
[outbox]
dir = "{}"
[influx]
url = "http://127.0.0.1:{port}"
api = "v1"
db = "bench"
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
"#,
            dir.display()
        ),
        "bench",
    )?;
    if which != "mqtt" {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/query"))
            .form(&[("q", "CREATE DATABASE bench")])
            .send()
            .await?;
    }

    // The outage: n readings, 12 sockets polled every 12 ms.
    let name = if which == "mqtt" {
        mqtt::NAME
    } else {
        influx::NAME
    };
    let (mut outbox, _) = Outbox::open(config.outbox.options(dir.clone()), &[name])?;
    let t0 = 1_764_000_000_000i64;
    for seq in 0..n {
        let mut r = Reading::new(
            Timestamp(t0 + (seq / 12) as i64 * 12),
            "gw-bench",
            "pile-1",
            DeviceKind::ChargingSocket,
            seq,
        );
        r.socket = Some((seq % 12) as u16 + 1);
        for (k, v) in [
            ("voltage_v", 230.1),
            ("current_a", 2.5),
            ("power_w", 575.2),
            ("energy_wh", 1234.5),
            ("temperature_c", 31.0),
            ("state", 2.0),
        ] {
            r.values.insert(k.into(), v);
        }
        outbox.append(&Record::Reading(r).to_payload()?, Some(("pile-1", seq)), 0)?;
    }
    outbox.commit()?;
    let handle = OutboxHandle::new(outbox);
    let health = Arc::new(Health::new("gw-bench".into(), "yard-b".into(), 1));
    let stop = CancellationToken::new();
    let rss_before = peak_rss_mib();
    let start = Instant::now();
    let task = if which == "mqtt" {
        let u = MqttUplink::new(&config, Arc::new(SystemClock), health, handle.clone())?;
        tokio::spawn(u.run(stop.clone()))
    } else {
        let i = config.influx.clone().expect("influx table");
        let u = InfluxUplink::new(&i, handle.clone(), &dir)?;
        tokio::spawn(u.run(stop.clone()))
    };
    let deadline = start + Duration::from_secs(1800);
    while handle.cursor(name).unwrap_or(0) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    stop.cancel();
    let _ = task.await;
    println!(
        "{which}: drained {} of {n} readings in {:.1} s ({:.0} readings/s); peak RSS {:.1} MiB (after filling the outbox: {:.1} MiB)",
        handle.cursor(name).unwrap_or(0),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        peak_rss_mib(),
        rss_before
    );
    Ok(())
}
