//! `check` refuses what `run` refuses: files the config names that do not
//! load or disagree with it, not only the config file itself.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;
use support::TempDir;

fn bin(cmd: &str, config: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
        .arg(cmd)
        .arg("--config")
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the binary");
    // `run` must refuse before it connects anywhere; a run that keeps going
    // is killed after the bound and the assertions below fail on it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

fn write_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("analytics.toml");
    std::fs::write(
        &path,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = 1\n\
             [[cells.sites]]\nsite = \"yard-a\"\ncell = \"cell-07\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// Runs `check` and `run` on `config`: both refuse it with exit 2 and the
/// same message containing `needle`.
fn both_refuse(config: &Path, needle: &str) {
    let check = bin("check", config);
    let run = bin("run", config);
    let check_err = String::from_utf8_lossy(&check.stderr);
    let run_err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(check.status.code(), Some(2), "check: {check_err}");
    assert!(check_err.contains(needle), "check: {check_err}");
    assert!(!run.status.success(), "run accepted it: {run_err}");
    assert!(run_err.contains(needle), "run: {run_err}");
}

#[test]
fn check_refuses_a_site_in_two_cells() {
    let dir = TempDir::new("preflight-cells");
    let directory = dir.path().join("directory.toml");
    std::fs::write(
        &directory,
        "[[cells]]\nid = \"cell-08\"\non_duty = []\n[[sites]]\nid = \"yard-a\"\ncell = \"cell-08\"\n",
    )
    .unwrap();
    let config = write_config(
        dir.path(),
        &format!("[directory]\npath = \"{}\"\n", directory.display()),
    );
    both_refuse(&config, "site \"yard-a\" is in cell \"cell-07\" in [cells]");
    // The same directory with the site in the same cell passes.
    std::fs::write(
        &directory,
        "[[cells]]\nid = \"cell-07\"\non_duty = []\n[[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n",
    )
    .unwrap();
    let ok = bin("check", &config);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn check_refuses_a_missing_register_and_an_empty_webhook_secret() {
    let dir = TempDir::new("preflight-files");
    let missing = dir.path().join("register.json");
    let config = write_config(
        dir.path(),
        &format!("[register]\npath = \"{}\"\n", missing.display()),
    );
    both_refuse(&config, "register.json");

    let secret = dir.path().join("webhook.secret");
    std::fs::write(&secret, "\n \nkey\n").unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[notify.webhook]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_file = \"{}\"\n",
            secret.display()
        ),
    );
    both_refuse(&config, "webhook secret file");
}

#[test]
fn check_and_run_refuse_a_loose_or_empty_mqtt_password_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("preflight-mqtt-password");
    let pw = dir.path().join("mqtt.password");
    let config = dir.path().join("analytics.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = 1\nusername = \"analytics\"\npassword_file = \"{}\"\n\
             [[cells.sites]]\nsite = \"yard-a\"\ncell = \"cell-07\"\n",
            pw.display()
        ),
    )
    .unwrap();
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    both_refuse(&config, "has mode 0644");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&pw, "\n").unwrap();
    both_refuse(&config, "mqtt.password is empty");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let ok = bin("check", &config);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
