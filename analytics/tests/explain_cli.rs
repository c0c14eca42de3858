//! `gridwatch-analytics explain --socket` as a person or a script runs it:
//! the trace in words or JSON, and exit status 2 for a socket the recording
//! does not have.

use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
use std::process::Command;

fn recording(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for (i, amps) in [1.0, 6.5, 6.6, 1.0].iter().enumerate() {
        let mut r = Reading::new(
            Timestamp(1_772_380_800_000 + i as i64 * 10_000),
            "gw-yard",
            "pile-1",
            DeviceKind::ChargingSocket,
            i as u64,
        );
        r.site = "yard-a".into();
        r.socket = Some(2);
        r.values.insert("current_a".into(), *amps);
        text += &format!("{{\"reading\":{}}}\n", serde_json::to_string(&r).unwrap());
    }
    let p = dir.join("recording.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

fn explain(rec: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
        .arg("explain")
        .arg(rec)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_socket_is_explained_in_words_and_json_and_an_unknown_one_is_exit_2() {
    let dir = gridwatch_testkit::TempDir::new("explain-cli");
    let rec = recording(dir.path());
    let (code, text) = explain(&rec, &["--socket", "yard-a/gw-yard/pile-1#2"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("socket_overcurrent: ALERT"), "{text}");
    assert!(text.contains("2026-03-02 00:00"), "local time: {text}");
    let (code, json) = explain(&rec, &["--socket", "yard-a/gw-yard/pile-1#2", "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["steps"].as_array().is_some_and(|s| !s.is_empty()), "{v}");
    let (code, text) = explain(&rec, &["--socket", "yard-a/gw-yard/pile-1#9"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("site/gateway/device#N"), "{text}");
}
