//! `gridwatch-sim pile` as a script drives it: start-up `--fault` flags,
//! commands typed on stdin (answers on stdout, mistakes with the word
//! meant on stderr) and the same commands over `--control` TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the simulator however the test ends.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_pile_takes_faults_from_flags_stdin_and_its_control_endpoint() {
    let mut sim = Sim(Command::new(env!("CARGO_BIN_EXE_gridwatch-sim"))
        .args([
            "pile",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
        ])
        .args(["--sockets", "4", "--charging", "1,2", "--speed", "60"])
        .args(["--fault", "residual_current,socket=1,for=1h"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gridwatch-sim starts"));
    let mut out = BufReader::new(sim.0.stdout.take().expect("stdout"));
    let mut line = String::new();
    let mut control = None;
    // Bounded: the two lines come first, or the process ended (EOF).
    for _ in 0..2 {
        line.clear();
        out.read_line(&mut line).expect("stdout readable");
        if let Some(addr) = line.trim().strip_prefix("control endpoint on ") {
            control = Some(addr.to_string());
        }
    }
    let control = control.expect("the control endpoint is announced");

    let tcp = TcpStream::connect(&control).expect("control endpoint accepts");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answers = BufReader::new(tcp.try_clone().unwrap());
    let mut ask = |command: &str| {
        (&tcp).write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        answers.read_line(&mut answer).expect("one answer line");
        answer.trim().to_string()
    };
    let status = ask("status");
    assert!(
        status.starts_with("ok unit 1 at ") && status.contains("#1 Lithium [ResidualCurrent]"),
        "{status}"
    );
    assert_eq!(
        ask("fault overcurrent socket=2 for=30m"),
        "ok unit 1 socket 2: Overcurrent injected, for 1800 s (simulated)"
    );
    let wrong = ask("fault overcurent socket=2");
    assert!(
        wrong.starts_with("error unknown fault \"overcurent\"; did you mean \"overcurrent\"?"),
        "{wrong}"
    );
    assert!(ask("status").contains("#2 Lithium [Overcurrent]"));

    // The same language on stdin: answers on stdout, mistakes on stderr.
    // Lines are carried out in order, so once the second is answered the
    // first's error is on stderr.
    let mut stdin = sim.0.stdin.take().expect("stdin");
    stdin
        .write_all(b"plug socket=9\nclear all socket=2\n")
        .unwrap();
    stdin.flush().unwrap();
    line.clear();
    out.read_line(&mut line).expect("an answer on stdout");
    assert_eq!(line.trim(), "unit 1 socket 2: every fault cleared");
    assert!(!ask("status").contains("Overcurrent"));
    drop(stdin);
    let _ = sim.0.kill();
    let mut err = String::new();
    sim.0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("socket 9 does not exist; this pile has sockets 1 to 4"),
        "{err}"
    );
}
