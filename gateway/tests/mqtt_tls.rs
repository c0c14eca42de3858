//! The MQTT uplink over TLS (rustls, a CA file) with a user name and a
//! password file, against a real Mosquitto that refuses anonymous clients on
//! its TLS listener. Certificates are made by `openssl` for the test.

mod support;

use gridwatch_gateway::GatewayConfig;
use gridwatch_telemetry::{GatewayState, SystemClock};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::{config_text, free_port, start_pile, Collector};
use tokio_util::sync::CancellationToken;

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a password file.
fn make_secrets(dir: &Path) {
    run(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=gridwatch-test-ca",
        ],
    );
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for step in [
        "req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=gw-tls",
        "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext",
    ] {
        run(dir, "openssl", &step.split(' ').collect::<Vec<_>>());
    }
    run(
        dir,
        "mosquitto_passwd",
        &["-b", "-c", "passwd", "gw-tls", "s3cret"],
    );
    std::fs::write(dir.join("gw-password"), "s3cret\n").unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Mosquitto (its own user) reads the rest; the gateway refuses a password
    // file that others can read.
    for own in ["gw-password", "client.key"] {
        std::fs::set_permissions(dir.join(own), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Mosquitto with a plain listener (for the test's subscriber) and a TLS
/// listener configured by `tls_settings`; killed on drop.
struct TlsBroker {
    child: std::process::Child,
    plain: u16,
    tls: u16,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tls_broker(d: &Path, tls_settings: &str) -> TlsBroker {
    let (plain, tls) = (free_port().await, free_port().await);
    let conf = d.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             listener {tls} 127.0.0.1\n{tls_settings}\n\
             cafile {p}/ca.pem\ncertfile {p}/server.pem\nkeyfile {p}/server.key\n",
            p = d.display()
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = TlsBroker { child, plain, tls };
    for port in [plain, tls] {
        let mut up = false;
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "mosquitto listens on {port}");
    }
    broker
}

/// Runs a gateway against the TLS listener with `mqtt` settings and waits
/// for its online status and readings on the plain listener.
async fn delivers_over_tls(broker: &TlsBroker, gateway: &str, mqtt: &str) {
    let (pile, _p, _pile_stop) = start_pile().await;
    let mut sub = Collector::connect(
        broker.plain,
        &format!("t-{gateway}"),
        &[format!("gw/yard-t/{gateway}/#")],
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let text = config_text(
        broker.tls,
        pile,
        gateway,
        &root.path().join("outbox"),
        "",
        mqtt,
    );
    let config = GatewayConfig::from_toml_str(&text, "test").unwrap();
    let shutdown = CancellationToken::new();
    let gw = tokio::spawn(gridwatch_gateway::run(
        config,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    let delivered = sub
        .collect_until(Duration::from_secs(15), |c| {
            c.statuses.iter().any(|s| s.state == GatewayState::Online) && c.seen.len() >= 10
        })
        .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), gw)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(delivered, "online status and readings over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uplink_connects_over_tls_with_a_password_and_delivers() {
    support::init_logs();
    let secrets = tempfile::tempdir().unwrap();
    let d = secrets.path();
    make_secrets(d);
    let broker = tls_broker(
        d,
        &format!(
            "allow_anonymous false\npassword_file {}/passwd",
            d.display()
        ),
    )
    .await;
    let mqtt = format!(
        "ca_file = \"{p}/ca.pem\"\nusername = \"gw-tls\"\npassword_file = \"{p}/gw-password\"",
        p = d.display()
    );
    delivers_over_tls(&broker, "gw-tls", &mqtt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_uplink_presents_its_client_certificate_when_the_broker_requires_one() {
    support::init_logs();
    let secrets = tempfile::tempdir().unwrap();
    let d = secrets.path();
    make_secrets(d);
    let broker = tls_broker(d, "allow_anonymous true\nrequire_certificate true").await;
    let mqtt = format!(
        "ca_file = \"{p}/ca.pem\"\nclient_cert_file = \"{p}/client.pem\"\nclient_key_file = \"{p}/client.key\"",
        p = d.display()
    );
    delivers_over_tls(&broker, "gw-mtls", &mqtt).await;
}
