//! The `gridwatch-analytics` binary: `check` on the shipped example and on
//! broken files, exit codes and one-line errors; `replay --checkpoint`
//! resuming instead of raising again.

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::TempDir;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
}

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/analytics.example.toml")
}

#[test]
fn the_example_config_loads_and_documents_the_defaults() {
    let config =
        gridwatch_analytics::AnalyticsConfig::load(example()).expect("example config loads");
    assert_eq!(config.cells.sites.len(), 2);
    assert_eq!(
        config.detect.socket_safety,
        Default::default(),
        "the example documents the defaults"
    );
}

#[test]
fn check_accepts_the_example() {
    let out = bin()
        .arg("check")
        .arg("--config")
        .arg(example())
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("OK") && stdout.contains("5.5 A"),
        "{stdout}"
    );
}

#[test]
fn check_json_prints_the_effective_config() {
    let out = bin()
        .args(["check", "--json", "--config"])
        .arg(example())
        .output()
        .expect("run binary");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["detect"]["socket_safety"]["overcurrent_a"], 5.5);
}

#[test]
fn a_bad_config_exits_2_with_one_line_naming_file_line_and_field() {
    let dir = TempDir::new("cli");
    let path = dir.path().join("analytics.toml");
    std::fs::write(
        &path,
        "[detect.socket_safety]\npersistence_s = 5\nclear_ratio = 0\n",
    )
    .unwrap();
    for cmd in ["check", "run"] {
        let out = bin()
            .arg(cmd)
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run binary");
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{}:3:1: detect.socket_safety.clear_ratio",
                path.display()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn a_missing_config_exits_2() {
    let out = bin()
        .args(["check", "--config", "/nonexistent/analytics.toml"])
        .output()
        .expect("run binary");
    assert_eq!(out.status.code(), Some(2));
}

/// `summarize` averages `evaluate --json` files over seeds and refuses a
/// file that is not one, naming it.
#[test]
fn summarize_prints_the_spread_over_seeds_and_names_a_bad_file() {
    use gridwatch_analytics::evaluate::{evaluate, truth::GroundTruth};
    let dir = TempDir::new("summarize");
    let mut files = Vec::new();
    for (seed, precision) in [(1u64, 0.5), (2, 1.0)] {
        let mut e = evaluate(&GroundTruth::default(), &[]);
        e.scenario = "default".into();
        e.seed = seed;
        e.rules[0].precision = Some(precision);
        let path = dir.path().join(format!("evaluation-{seed}.json"));
        std::fs::write(&path, serde_json::to_vec(&e).unwrap()).unwrap();
        files.push(path);
    }
    let out = bin().arg("summarize").args(&files).output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seeds 1, 2"), "{stdout}");
    assert!(
        stdout.contains("| `group_rental` | flat | 0.75 (0.50–1.00) |"),
        "{stdout}"
    );
    let bad = dir.path().join("truth.json");
    std::fs::write(&bad, "{\"not\": \"an evaluation\"}").unwrap();
    let out = bin()
        .arg("summarize")
        .arg(&files[0])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
}

/// A recording of one socket: 2.5 A, then 7 A for 11 s (one overcurrent).
fn overcurrent_recording(dir: &std::path::Path) -> PathBuf {
    use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
    let mut text = String::new();
    for s in 0..30u64 {
        let mut r = Reading::new(
            Timestamp(1_764_000_000_000 + s as i64 * 1000),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            s + 1,
        );
        r.site = "yard-a".into();
        r.socket = Some(3);
        r.values
            .insert("current_a".into(), if s < 10 { 2.5 } else { 7.0 });
        r.values.insert("state".into(), 2.0);
        let line = serde_json::json!({ "reading": r });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let path = dir.join("recording.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn replay_with_a_checkpoint_resumes_instead_of_raising_again() {
    let dir = TempDir::new("cli-resume");
    let recording = overcurrent_recording(dir.path());
    let log = dir.path().join("alerts.jsonl");
    let ck = dir.path().join("replay.ckpt");
    let run = || {
        bin()
            .arg("replay")
            .arg(&recording)
            .arg("--alerts")
            .arg(&log)
            .arg("--checkpoint")
            .arg(&ck)
            .args(["--checkpoint-every", "7"])
            .output()
            .unwrap()
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(out.contains("started from the first record"), "{out}");
    assert!(out.contains("30 records read, 1 alerts"), "{out}");
    let alerts = std::fs::read_to_string(&log).unwrap();
    assert_eq!(alerts.lines().count(), 1, "{alerts}");
    assert!(alerts.contains("socket_overcurrent"), "{alerts}");
    // Run again on the same files: resumed at the end, nothing raised twice.
    let second = run();
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{out}");
    assert!(out.contains("resumed after record 30"), "{out}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), alerts);
    // --checkpoint needs --alerts (the alert log).
    let bad = bin()
        .arg("replay")
        .arg(&recording)
        .arg("--checkpoint")
        .arg(&ck)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--alerts"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
