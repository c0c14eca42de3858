//! `gridwatch-gateway watch` as a script uses it, against the simulated
//! charging pile of `support` (Modbus TCP): piped output is one plain line
//! per device block with the pile's values, and the exit status tells a
//! live device (0) from a dead one (1) and an unusable config or unknown
//! device (2).

mod support;

use std::path::Path;
use std::process::Command;
use support::{config_text, free_port, start_pile};

/// Runs `watch -c config args…` off the async runtime (the in-process pile
/// keeps answering) and returns (exit status, stdout, stderr).
async fn watch(config: &Path, args: &[&str]) -> (i32, String, String) {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_gridwatch-gateway"))
            .arg("watch")
            .arg("-c")
            .arg(&config)
            .args(&args)
            .output()
            .expect("run gridwatch-gateway watch");
        (
            out.status.code().expect("an exit status"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("watch ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_watch_prints_the_piles_values_and_exit_codes_say_what_failed() {
    let (pile, polls, stop) = start_pile().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let broker = free_port().await; // never contacted by watch
    std::fs::write(
        &config,
        config_text(broker, pile, "gw-watch", &dir.path().join("outbox"), "", ""),
    )
    .unwrap();

    let (code, out, err) = watch(&config, &["--count", "2", "--interval-ms", "100"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let device_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some("pile-1"))
        .collect();
    assert_eq!(device_lines.len(), 2, "one device line per round:\n{out}");
    assert!(
        device_lines
            .iter()
            .all(|l| l.split(' ').nth(3) == Some("ok")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains(" pile-1#1 ok ")),
        "socket blocks are named as in the topics:\n{out}"
    );
    assert!(!out.contains('\x1b'), "no escape codes when piped:\n{out}");
    assert!(polls.polls() >= 2, "the pile was polled each round");

    let (code, _, err) = watch(&config, &["--device", "pile-9", "--count", "1"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no device \"pile-9\"") && err.contains("pile-1"),
        "{err}"
    );

    stop.cancel();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (code, out, err) = watch(
        &config,
        &["--device", "pile-1", "--count", "1", "--timeout-ms", "1000"],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.lines().any(|l| l.contains(" pile-1 error ")),
        "the dead pile is named:\n{out}"
    );

    std::fs::write(&config, "[gateway]\nid = \"gw\"\n").unwrap();
    let (code, _, err) = watch(&config, &["--count", "1"]).await;
    assert_eq!(code, 2, "{err}");
}
