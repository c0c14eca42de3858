//! The kit's rule for a missing server, proved by running a test with the
//! server hidden: it fails, naming the server and how to install it; with
//! GRIDWATCH_ALLOW_MISSING_SERVERS set it passes and says it did not run.
//! And with the server present, the kit starts a real broker that accepts
//! connections.

use gridwatch_testkit::{Mosquitto, ALLOW_MISSING};
use std::net::TcpStream;
use std::process::Command;

/// Set in the child run, where Mosquitto is hidden.
const CHILD: &str = "GRIDWATCH_TESTKIT_CHILD";

#[test]
fn a_broker_of_its_own_accepts_connections() {
    let Some(broker) = Mosquitto::start() else {
        // Only in the child run with the variable set (or a run that set it).
        assert!(std::env::var_os(ALLOW_MISSING).is_some());
        return;
    };
    assert!(
        std::env::var_os(CHILD).is_none(),
        "the child run hides mosquitto"
    );
    TcpStream::connect(("127.0.0.1", broker.port())).expect("the broker listens");
}

/// Runs `a_broker_of_its_own_accepts_connections` in a child process of this
/// test binary, with mosquitto hidden behind a path that does not exist.
fn run_hidden(allow: bool) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("own test binary"));
    cmd.args([
        "--exact",
        "a_broker_of_its_own_accepts_connections",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env(
        "GRIDWATCH_MOSQUITTO",
        "/nonexistent/gridwatch-hidden/mosquitto",
    )
    .env_remove(ALLOW_MISSING);
    if allow {
        cmd.env(ALLOW_MISSING, "1");
    }
    let out = cmd.output().expect("run the child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_run_with_the_server_hidden_fails_and_says_what_to_install() {
    let (ok, text) = run_hidden(false);
    assert!(!ok, "the test passed without its server:\n{text}");
    assert!(
        text.contains("mosquitto is not installed")
            && text.contains("apt-get install -y mosquitto"),
        "{text}"
    );
    assert!(text.contains("1 failed"), "{text}");
}

#[test]
fn only_the_explicit_variable_turns_it_into_a_skip() {
    let (ok, text) = run_hidden(true);
    assert!(ok, "{text}");
    assert!(
        text.contains("not run: mosquitto is missing"),
        "the skip must say so: {text}"
    );
}
