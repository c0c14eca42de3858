//! `gridwatch-gateway selftest` as an installer runs it, against a
//! simulated charging pile (the Modbus TCP pile of `support`), a real
//! Mosquitto and a real InfluxDB 1.x: everything passes when everything
//! works, and a dead device, a wrong broker password, too little disk and
//! an unloadable config each give the right exit status and name the culprit.
//!
//! The clock check reads the host's `timedatectl`, which the test cannot
//! set: it is only required to be consistent with the exit status.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use support::influx::Influxd;
use support::tls::{make_secrets, tls_broker};
use support::{config_text, free_port, start_pile, Broker};

/// Whether the servers these tests start are installed: a test fails
/// without them unless GRIDWATCH_ALLOW_MISSING_SERVERS is set (then it is
/// skipped).
fn servers_present() -> bool {
    let missing: Vec<&str> = [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto_passwd",
        "/usr/bin/influxd",
        "/usr/bin/openssl",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("GRIDWATCH_ALLOW_MISSING_SERVERS").is_some(),
        "{missing:?} not installed; run scripts/test, or set GRIDWATCH_ALLOW_MISSING_SERVERS=1 to skip"
    );
    false
}

/// Exit status, standard output and standard error of one selftest run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The report line of `check`.
    fn line(&self, check: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.get(6..)
                    .is_some_and(|r| r.starts_with(&format!("{check} ")))
            })
            .unwrap_or_else(|| panic!("no {check} line in:\n{}{}", self.stdout, self.stderr))
    }
}

/// Runs `selftest -c config args…` off the async runtime, so the in-process
/// pile keeps answering.
async fn selftest(config: &Path, args: &[&str]) -> Run {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
            .arg("selftest")
            .arg("-c")
            .arg(&config)
            .args(&args)
            .output()
            .expect("run gridwatch-gateway selftest");
        Run {
            code: out.status.code().expect("an exit status"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Writes a config for one pile at `pile` and a broker at `broker_port`.
fn write_config(
    root: &Path,
    broker_port: u16,
    pile: SocketAddr,
    mqtt: &str,
    rest: &str,
) -> std::path::PathBuf {
    let text = config_text(broker_port, pile, "gw-st", &root.join("outbox"), "", mqtt) + rest;
    let path = root.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every check but the host's clock must pass; the exit status follows.
fn assert_all_pass(run: &Run) {
    for check in ["config", "device pile-1", "mqtt", "influx", "outbox"] {
        assert!(
            run.line(check).starts_with("PASS"),
            "{check}:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
    let clock_failed = run.line("clock").starts_with("FAIL");
    assert_eq!(run.code, i32::from(clock_failed), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_passes_with_a_live_pile_broker_and_influxdb_and_json_parses() {
    if !servers_present() {
        return;
    }
    let broker = Broker::start().await;
    let influx = Influxd::start("gw").await;
    let (pile, counter, _stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let influx_table = format!(
        "\n[influx]\nurl = \"{}\"\napi = \"v1\"\ndb = \"gw\"\n",
        influx.url()
    );
    let config = write_config(root.path(), broker.port, pile, "", &influx_table);

    let run = selftest(&config, &[]).await;
    assert_all_pass(&run);
    assert!(
        run.line("mqtt").contains("gw/yard-t/gw-st/selftest"),
        "{}",
        run.stdout
    );
    assert!(counter.polls() >= 1, "the pile was read");
    let rows = influx
        .query("SELECT * FROM gridwatch_selftest", Some("gw"))
        .await
        .to_string();
    assert!(rows.contains("gw-st"), "the test line is stored: {rows}");

    let run = selftest(&config, &["--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json is JSON");
    let checks = report.as_array().expect("an array");
    assert!(checks.len() >= 6, "{report}");
    for c in checks {
        assert!(c["check"].is_string() && c["detail"].is_string(), "{c}");
        assert!(
            ["PASS", "FAIL", "SKIP"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
    }
    let device = checks
        .iter()
        .find(|c| c["check"] == "device pile-1")
        .unwrap();
    assert_eq!(device["status"], "PASS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_device_fails_and_is_named_and_no_influx_is_a_skip() {
    if !servers_present() {
        return;
    }
    let broker = Broker::start().await;
    let nobody: SocketAddr = format!("127.0.0.1:{}", free_port().await).parse().unwrap();
    let root = tempfile::tempdir().unwrap();
    let config = write_config(root.path(), broker.port, nobody, "", "");
    let run = selftest(&config, &["--timeout-ms", "1000"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let line = run.line("device pile-1");
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains(&nobody.to_string()), "names where: {line}");
    assert!(run.line("mqtt").starts_with("PASS"), "{}", run.stdout);
    assert!(run.line("influx").starts_with("SKIP"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_broker_password_fails_and_names_the_broker() {
    if !servers_present() {
        return;
    }
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
    let (pile, _counter, _stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let wrong = root.path().join("wrong-password");
    std::fs::write(&wrong, "not-s3cret\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mqtt = |file: &Path| {
        format!(
            "ca_file = \"{}/ca.pem\"\nusername = \"gw-tls\"\npassword_file = \"{}\"",
            d.display(),
            file.display()
        )
    };

    let config = write_config(root.path(), broker.tls, pile, &mqtt(&wrong), "");
    let run = selftest(&config, &[]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let line = run.line("mqtt");
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(
        line.contains(&format!("broker 127.0.0.1:{}", broker.tls)),
        "{line}"
    );
    assert!(line.contains("refused"), "{line}");

    // The same broker with the right password passes: it was the password.
    let config = write_config(
        root.path(),
        broker.tls,
        pile,
        &mqtt(&d.join("gw-password")),
        "",
    );
    let run = selftest(&config, &[]).await;
    assert!(
        run.line("mqtt").starts_with("PASS"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_free_space_for_the_outbox_fails() {
    if !servers_present() {
        return;
    }
    let broker = Broker::start().await;
    let (pile, _counter, _stop) = start_pile().await;
    let root = tempfile::tempdir().unwrap();
    let config = write_config(root.path(), broker.port, pile, "", "");
    // More than any disk this test runs on: the "full disk".
    let run = selftest(&config, &["--min-free-mb", "1000000000"]).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let line = run.line("outbox");
    assert!(
        line.starts_with("FAIL") && line.contains("too little space"),
        "{line}"
    );
    // Selftest creates nothing: the outbox folder is still not there.
    assert!(!root.path().join("outbox").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_cannot_load_exits_2() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("gateway.toml");
    std::fs::write(&path, "[gateway]\nid = \"gw-1\"\n").unwrap();
    let run = selftest(&path, &["--json"]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json is JSON");
    assert_eq!(report[0]["check"], "config");
    assert_eq!(report[0]["status"], "FAIL");
}
