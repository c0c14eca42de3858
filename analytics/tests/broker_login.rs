//! Analytics logs in to a real Mosquitto over TLS with a user name and a
//! password file, on a listener that refuses anonymous clients; the alert it
//! raises arrives. Certificates are made by `openssl` for the test.

mod support;

use gridwatch_analytics::AnalyticsConfig;
use gridwatch_telemetry::codec;
use rumqttc::QoS;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{free_port, observer, socket_reading};
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_764_000_000_000;

fn run(dir: &Path, program: &str, args: &str) {
    let out = Command::new(program)
        .args(args.split(' '))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{program} {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and Mosquitto's password file.
fn make_secrets(dir: &Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    for step in [
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=gw-test-ca",
        "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext",
    ] {
        run(dir, "openssl", step);
    }
    run(dir, "mosquitto_passwd", "-b -c passwd analytics s3cret");
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Mosquitto started as root reads its files as its own user.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Broker(std::process::Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_logs_in_over_tls_with_a_password_file() {
    let Some(mosquitto) = gridwatch_testkit::require(gridwatch_testkit::Server::Mosquitto) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    make_secrets(d);
    let (plain, tls) = (free_port(), free_port());
    std::fs::write(
        d.join("mosquitto.conf"),
        format!(
            "per_listener_settings true\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             listener {tls} 127.0.0.1\nallow_anonymous false\npassword_file {p}/passwd\n\
             cafile {p}/ca.pem\ncertfile {p}/server.pem\nkeyfile {p}/server.key\n",
            p = d.display()
        ),
    )
    .unwrap();
    let _broker = Broker(
        Command::new(&mosquitto)
            .arg("-c")
            .arg(d.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto"),
    );
    for port in [plain, tls] {
        let mut up = false;
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "mosquitto listens on {port}");
    }
    let secrets = tempfile::tempdir().unwrap();
    let pw = secrets.path().join("analytics.password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {tls}\nclient_id = \"analytics-tls\"\n\
         reconnect_min_ms = 100\nreconnect_max_ms = 500\n\
         ca_file = \"{}\"\nusername = \"analytics\"\npassword_file = \"{}\"\n\
         [cells]\ndefault = \"unassigned\"\n[[cells.sites]]\nsite = \"yard-a\"\ncell = \"cell-07\"\n",
        d.join("ca.pem").display(),
        pw.display()
    );
    let config = AnalyticsConfig::from_toml_str(&text, "test.toml").expect("config");
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(gridwatch_analytics::run_with_tap(
        config,
        shutdown.clone(),
        None,
    ));
    let (client, mut alerts) = observer(plain, "tls-observer").await;
    // Analytics subscribes once connected; until then readings are lost, so
    // each round is a fresh overcurrent episode until one alert comes back.
    let mut alert = None;
    for round in 0..30i64 {
        let start = T0 + round * 60_000;
        for s in 0..=10 {
            let r = socket_reading(start + s * 1000, (round * 11 + s) as u64, 7.0);
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
        if let Ok(Some(a)) = tokio::time::timeout(Duration::from_millis(500), alerts.recv()).await {
            alert = Some(a);
            break;
        }
    }
    let (topic, _) = alert.expect("analytics connected over TLS and raised an alert");
    assert_eq!(topic, "alerts/cell-07/critical");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .expect("service stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_password_file_others_can_read_stops_analytics_naming_it() {
    let secrets = tempfile::tempdir().unwrap();
    let pw = secrets.path().join("analytics.password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[mqtt]\nusername = \"analytics\"\npassword_file = \"{}\"\n",
        pw.display()
    );
    let config = AnalyticsConfig::from_toml_str(&text, "test.toml").expect("config");
    let e = gridwatch_analytics::run_with_tap(config, CancellationToken::new(), None)
        .await
        .expect_err("a loose password file is refused");
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&pw.display().to_string()) && msg.contains("0644"),
        "{msg}"
    );
}
