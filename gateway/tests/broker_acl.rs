//! The shipped Mosquitto configuration (`config/mosquitto/gridwatch.conf` and
//! `gridwatch.acl.example`) against a real Mosquitto, with gateway logins
//! made by `gridwatch-gateway credentials`: anonymous clients are refused,
//! a gateway writes only below its own topic (its `selftest` topic included)
//! and reads only its own `cmd`, analytics reads `gw/#` and alone writes
//! `alerts/#`.
//!
//! Mosquitto drops a publish the ACL refuses without telling an MQTT 3.1.1
//! client, so absence is shown by order, not by waiting: each forged message
//! is followed by an allowed marker from the same client, and the observer
//! (subscribed to `#`) must see the marker with nothing forged before it.
//! The TLS listener itself is covered by `mqtt_tls.rs`; here its port serves
//! plain MQTT so the ACL can be tested without certificates.

mod support;

use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::free_port;
use tokio::sync::mpsc;

/// Guard against a hung broker; never reached when the test passes.
const GUARD: Duration = Duration::from_secs(15);

struct Broker(std::process::Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The shipped config with test ports and paths, no TLS files, no
/// persistence and its log on stderr; everything else as shipped.
fn adapt_conf(dir: &Path, main: u16, local: u16) -> String {
    let d = dir.display();
    repo_file("config/mosquitto/gridwatch.conf")
        .lines()
        .filter(|l| {
            ![
                "cafile",
                "certfile",
                "keyfile",
                "tls_version",
                "persistence_location",
                "log_",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| match l {
            "listener 8883" => format!("listener {main} 127.0.0.1"),
            "listener 1883 127.0.0.1" => format!("listener {local} 127.0.0.1"),
            "persistence true" => "persistence false".into(),
            l => l
                .replace("/etc/mosquitto/gridwatch.passwd", &format!("{d}/passwd"))
                .replace("/etc/mosquitto/gridwatch.acl", &format!("{d}/acl")),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\nlog_dest stderr\n"
}

/// Runs `gridwatch-gateway credentials` and returns (password, passwd entry).
fn credentials(out: &Path, site: &str, gateway: &str) -> (String, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
        .args(["credentials", "--site", site, "--gateway", gateway, "--out"])
        .arg(out)
        .output()
        .expect("run gridwatch-gateway credentials");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let entry = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{site}/{gateway}:$7$")))
        .unwrap_or_else(|| panic!("no password entry in:\n{stdout}"))
        .to_owned();
    let pw_file = out.join(format!("{gateway}.mqtt-password"));
    let pw = gridwatch_telemetry::secret::read_secret_file("pw", &pw_file).unwrap();
    (pw, entry)
}

/// Connects; on success returns the client and every incoming packet.
async fn connect(
    port: u16,
    id: &str,
    login: Option<(&str, &str)>,
) -> Result<(AsyncClient, mpsc::UnboundedReceiver<Packet>), ConnectionError> {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(o, 100);
    let first = tokio::time::timeout(GUARD, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the broker answers the connection");
    first?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = eventloop.poll().await {
            if let Event::Incoming(p) = ev {
                if tx.send(p).is_err() {
                    break;
                }
            }
        }
    });
    Ok((client, rx))
}

/// Incoming publishes up to and including the one on `marker`, as topics.
async fn topics_until(rx: &mut mpsc::UnboundedReceiver<Packet>, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    tokio::time::timeout(GUARD, async {
        while let Some(p) = rx.recv().await {
            if let Packet::Publish(p) = p {
                seen.push(p.topic.clone());
                if p.topic == marker {
                    return;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{marker} did not arrive; got {seen:?}"));
    seen
}

/// The return codes of the next SUBACK.
async fn suback(rx: &mut mpsc::UnboundedReceiver<Packet>) -> Vec<SubscribeReasonCode> {
    tokio::time::timeout(GUARD, async {
        loop {
            if let Some(Packet::SubAck(s)) = rx.recv().await {
                return s.return_codes;
            }
        }
    })
    .await
    .expect("a SUBACK")
}

#[tokio::test]
async fn the_shipped_acl_keeps_every_client_to_its_own_topics() {
    let Some(mosquitto) = gridwatch_testkit::require(gridwatch_testkit::Server::Mosquitto) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Mosquitto started as root reads its files as its own user.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secrets = dir.join("secrets");
    let (pw_a, entry_a) = credentials(&secrets, "yard-a", "gw-1");
    let (pw_b, entry_b) = credentials(&secrets, "yard-a", "gw-2");
    let salt = [7u8; 12];
    let entry = |user: &str| {
        gridwatch_gateway::cli::credentials::passwd_entry(user, &format!("{user}-pw"), &salt, 101)
    };
    let kept = [entry_a, entry("analytics"), entry("observer")].join("\n") + "\n";
    let passwd = format!("{kept}{entry_b}\n");
    std::fs::write(dir.join("passwd"), passwd).unwrap();
    // The test's observer reads and writes everything (to send commands).
    let acl = repo_file("config/mosquitto/gridwatch.acl.example")
        + "\nuser observer\ntopic readwrite #\n";
    std::fs::write(dir.join("acl"), acl).unwrap();
    for f in ["passwd", "acl"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (main, local) = (free_port().await, free_port().await);
    std::fs::write(dir.join("mosquitto.conf"), adapt_conf(dir, main, local)).unwrap();
    let broker = Broker(
        Command::new(&mosquitto)
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto"),
    );
    for port in [main, local] {
        let mut up = false;
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "mosquitto listens on {port}");
    }

    // Anonymous clients and wrong passwords are refused on both listeners.
    for port in [main, local] {
        let anon = connect(port, "anon", None).await;
        assert!(
            matches!(anon, Err(ConnectionError::ConnectionRefused(_))),
            "{:?}",
            anon.err()
        );
        let wrong = connect(port, "wrong", Some(("yard-a/gw-1", "guess"))).await;
        assert!(
            matches!(wrong, Err(ConnectionError::ConnectionRefused(_))),
            "{:?}",
            wrong.err()
        );
    }

    let (observer, mut seen) = connect(main, "observer", Some(("observer", "observer-pw")))
        .await
        .unwrap();
    observer.subscribe("#", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(
        suback(&mut seen).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (analytics, mut an_in) = connect(local, "analytics", Some(("analytics", "analytics-pw")))
        .await
        .unwrap();
    analytics.subscribe("gw/#", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(
        suback(&mut an_in).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    // Gateway A logs in with the generated password; forges, then a marker.
    let (gw_a, mut a_in) = connect(main, "gw-1", Some(("yard-a/gw-1", &pw_a)))
        .await
        .unwrap();
    let forged = [
        "gw/yard-a/gw-2/reading/pile-1",
        "gw/yard-a/gw-2/status",
        "gw/yard-b/gw-1/reading/pile-1",
        "alerts/cell-07/critical",
        "gw/yard-a/gw-1/cmd/pile-1",
    ];
    for t in forged {
        gw_a.publish(t, QoS::AtLeastOnce, t.ends_with("status"), "forged")
            .await
            .unwrap();
    }
    let own = "gw/yard-a/gw-1/reading/pile-1";
    gw_a.publish(own, QoS::AtLeastOnce, false, "ok")
        .await
        .unwrap();
    assert_eq!(
        topics_until(&mut seen, own).await,
        [own],
        "the observer saw a forgery"
    );
    assert_eq!(
        topics_until(&mut an_in, own).await,
        [own],
        "analytics reads gw/#"
    );

    // `selftest` publishes on the gateway's own `…/selftest`, and only there.
    let own_selftest = "gw/yard-a/gw-1/selftest";
    for t in ["gw/yard-a/gw-2/selftest", own_selftest] {
        gw_a.publish(t, QoS::AtLeastOnce, false, "{}")
            .await
            .unwrap();
    }
    assert_eq!(topics_until(&mut seen, own_selftest).await, [own_selftest]);

    // A may read its own commands, not another gateway's. Mosquitto 2.0.11
    // grants the subscription but checks `read` on every delivery, so the
    // proof is what arrives.
    gw_a.subscribe("gw/yard-a/gw-2/cmd/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    suback(&mut a_in).await;
    gw_a.subscribe("gw/yard-a/gw-1/cmd/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(
        suback(&mut a_in).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (other_cmd, own_cmd) = ("gw/yard-a/gw-2/cmd/pile-1", "gw/yard-a/gw-1/cmd/pile-1");
    observer
        .publish(other_cmd, QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    observer
        .publish(own_cmd, QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    assert_eq!(topics_until(&mut a_in, own_cmd).await, [own_cmd]);

    // Analytics alone writes alerts (A's attempt above never arrived).
    let alert = "alerts/cell-07/critical";
    analytics
        .publish(alert, QoS::AtLeastOnce, false, "{}")
        .await
        .unwrap();
    let after_marker = topics_until(&mut seen, alert).await;
    assert_eq!(after_marker, [other_cmd, own_cmd, alert]);

    // Revoking: B's line leaves the password file, a reload cuts B off and
    // keeps it out; A stays connected.
    let b_login = Some(("yard-a/gw-2", pw_b.as_str()));
    let (_gw_b, mut b_in) = connect(main, "gw-2", b_login).await.unwrap();
    std::fs::write(dir.join("passwd"), kept).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &broker.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success(), "kill -HUP mosquitto");
    tokio::time::timeout(GUARD, async { while b_in.recv().await.is_some() {} })
        .await
        .expect("the reload disconnects the revoked gateway");
    let again = connect(main, "gw-2", b_login).await;
    assert!(
        matches!(again, Err(ConnectionError::ConnectionRefused(_))),
        "{:?}",
        again.err()
    );
    gw_a.publish(own, QoS::AtLeastOnce, false, "still")
        .await
        .unwrap();
    assert_eq!(topics_until(&mut seen, own).await, [own]);
}
