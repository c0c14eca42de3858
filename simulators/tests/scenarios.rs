//! The test scenarios of config/test-scenarios/, run end to end by
//! `gridwatch-sim scenario run`: each simulator its own `gridwatch-sim pile`
//! or `rtu` process driven through its control endpoint, a real gateway
//! and analytics on the embedded broker. And a wrong expectation must fail
//! with a diff a person can read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gridwatch-sim"))
}

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/test-scenarios")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_test_scenario_passes() {
    let files: Vec<PathBuf> = std::fs::read_dir(folder())
        .expect("config/test-scenarios exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(files.len() >= 8, "{files:?}");
    let out = sim()
        .args(["scenario", "run"])
        .arg(folder())
        .output()
        .expect("gridwatch-sim runs");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let passed = said.lines().filter(|l| l.starts_with("PASSED ")).count();
    assert_eq!(passed, files.len(), "{said}");
    assert!(!said.contains("\n- "), "{said}");
}

/// An overcurrent scenario whose author expected residual current instead.
const WRONG: &str = r#"
name = "wrong on purpose"
speed = 30
duration_s = 90

[[simulators]]
id = "p1"
kind = "pile"
charging = [2]

[[timeline]]
at_s = 20
simulator = "p1"
command = "fault overcurrent socket=2"

[[expect]]
rule = "socket_residual_current"
device = "p1"
socket = 2
after_s = 20
within_s = 60
"#;

#[test]
fn a_wrong_expectation_fails_with_a_readable_diff() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("wrong.toml");
    std::fs::write(&file, WRONG).expect("written");
    let out = sim()
        .args(["scenario", "run"])
        .arg(&file)
        .output()
        .expect("gridwatch-sim runs");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("- socket_residual_current on yard-a/gw-a/p1#2: expected 20–80 s, not seen"),
        "{said}"
    );
    assert!(
        said.contains("+ socket_overcurrent on yard-a/gw-a/p1#2 at "),
        "{said}"
    );
    assert!(said.contains("FAILED wrong on purpose"), "{said}");
}

#[test]
fn a_scenario_that_cannot_run_says_why_and_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("typo.toml");
    std::fs::write(
        &file,
        WRONG.replace("fault overcurrent", "fault overcurent"),
    )
    .expect("written");
    for verb in ["check", "run"] {
        let out = sim()
            .args(["scenario", verb])
            .arg(&file)
            .output()
            .expect("gridwatch-sim runs");
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{verb}: {said}");
        assert!(
            said.contains(
                "timeline[0]: command: unknown fault \"overcurent\"; did you mean \"overcurrent\"?"
            ),
            "{verb}: {said}"
        );
    }
}
