//! A real SMTP server for the e-mail channel's tests: Python's aiosmtpd
//! (installed by scripts/test with pip) with TLS and a login, on a free
//! loopback port, killed on drop. Every accepted message lands in a
//! directory as a `.eml` file, headed by what the server saw (envelope,
//! login, TLS) so a test can check the session as well as the content.
//!
//! Certificates are made with `openssl` by [`tls_certificates`]: a test CA
//! and a server certificate for 127.0.0.1 signed by it.

use crate::{free_port, TempDir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server script, written next to the messages when the server starts.
const SCRIPT: &str = include_str!("smtp_sink.py");

/// Whether Python can import aiosmtpd.
pub fn aiosmtpd_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Files made by [`tls_certificates`].
pub struct Certificates {
    /// The CA the client must trust.
    pub ca: PathBuf,
    /// The server's certificate (for IP 127.0.0.1) and key.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Makes a test CA and a server certificate for 127.0.0.1 in `dir`.
pub fn tls_certificates(dir: &Path) -> Certificates {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    for step in [
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=gridwatch-test-ca",
        "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext",
    ] {
        let out = Command::new("openssl")
            .args(step.split(' '))
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(
            out.status.success(),
            "openssl {step} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Certificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// How the server wants TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connect, STARTTLS required before anything else.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// A running aiosmtpd.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl SmtpSink {
    /// Starts the server on `port` (0: a free one) and waits until it
    /// listens; it accepts only `user` with `password`.
    pub fn start(
        port: u16,
        tls: SmtpTls,
        certs: &Certificates,
        user: &str,
        password: &str,
    ) -> SmtpSink {
        assert!(
            aiosmtpd_installed(),
            "Python's aiosmtpd is not installed; run scripts/test, which installs it (pip install aiosmtpd)"
        );
        let port = if port == 0 { free_port() } else { port };
        let dir = TempDir::new("smtp");
        let script = dir.path().join("smtp_sink.py");
        std::fs::write(&script, SCRIPT).unwrap();
        let out = dir.path().join("mail");
        std::fs::create_dir_all(&out).unwrap();
        let mode = match tls {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Implicit => "implicit",
        };
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", &port.to_string(), "--mode", mode])
            .args(["--user", user, "--password", password])
            .arg("--cert")
            .arg(&certs.cert)
            .arg("--key")
            .arg(&certs.key)
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l.trim() == "READY" => {}
            other => {
                let _ = child.kill();
                panic!("aiosmtpd did not start on port {port}: {other:?}");
            }
        }
        SmtpSink { child, port, dir }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages received so far, oldest first, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("mail"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect()
    }

    /// Waits (at most `within`) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let until = Instant::now() + within;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > until {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
