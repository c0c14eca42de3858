//! A test CA and a Mosquitto with a TLS listener, for the tests of the
//! uplink and of `selftest` over TLS with a password. Certificates are made
//! by `openssl`; the broker's password file holds `gw-tls` / `s3cret`.

use super::free_port;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
pub fn make_secrets(dir: &Path) {
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
pub struct TlsBroker {
    child: std::process::Child,
    /// Plain MQTT, anonymous clients allowed.
    pub plain: u16,
    /// TLS, as `tls_settings` say.
    pub tls: u16,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn tls_broker(d: &Path, tls_settings: &str) -> TlsBroker {
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
    let mosquitto = gridwatch_testkit::require(gridwatch_testkit::Server::Mosquitto)
        .expect("mosquitto is missing; the TLS broker tests need it");
    let child = Command::new(&mosquitto)
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
