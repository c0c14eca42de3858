//! The kit's PostgreSQL: a private server that a client reaches with the
//! URL it gives (and not without the password), that is gone once the
//! handle is dropped, and that follows the kit's rule when missing.

use gridwatch_testkit::{Postgres, ALLOW_MISSING, PG_DATABASE};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

/// Set in the child run, where PostgreSQL is hidden.
const CHILD: &str = "GRIDWATCH_TESTKIT_PG_CHILD";

/// `psql` beside the `initdb` the kit found.
fn psql() -> PathBuf {
    gridwatch_testkit::Server::Postgres
        .find()
        .and_then(|p| p.parent().map(|d| d.join("psql")))
        .expect("psql beside initdb")
}

/// Runs `sql` through psql on `url` with no password prompt; (ok, output).
fn query(url: &str, sql: &str) -> (bool, String) {
    let out = Command::new(psql())
        .args(["-w", "-X", "-A", "-t", "-c", sql])
        .arg(url)
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/nonexistent")
        .output()
        .expect("run psql");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

#[test]
fn a_private_server_serves_its_database_over_tcp_with_the_password() {
    let Some(pg) = Postgres::start() else {
        assert!(std::env::var_os(ALLOW_MISSING).is_some());
        return;
    };
    assert!(
        std::env::var_os(CHILD).is_none(),
        "the child run hides postgresql"
    );
    assert_ne!(pg.port(), 5432, "never the system's port");
    let (ok, text) = query(&pg.url(), "SELECT current_database(), 6 * 7");
    assert!(ok, "{text}\n{}", pg.log());
    assert_eq!(text, format!("{PG_DATABASE}|42"));
    // Writes persist between connections.
    let (ok, text) = query(
        &pg.url(),
        "CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (7)",
    );
    assert!(ok, "{text}");
    assert_eq!(query(&pg.url(), "SELECT x FROM t").1, "7");
}

#[test]
fn tcp_without_the_password_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    let (ok, text) = query(&pg.url_without_password(), "SELECT 1");
    assert!(!ok, "connected without a password: {text}");
    assert!(text.contains("password"), "{text}");
}

#[test]
fn a_second_database_is_separate_and_the_server_stops_on_drop() {
    let Some(pg) = Postgres::start() else { return };
    let other = pg.create_database("second");
    assert!(other.ends_with("/second"), "{other}");
    assert!(query(&pg.url(), "CREATE TABLE only_here (x INT)").0);
    let (ok, text) = query(&other, "SELECT count(*) FROM only_here");
    assert!(!ok && text.contains("only_here"), "{text}");
    let port = pg.port();
    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening on {port} after drop"
    );
}

/// Runs the first test in a child process with PostgreSQL hidden.
fn run_hidden(allow: bool) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("own test binary"));
    cmd.args([
        "--exact",
        "a_private_server_serves_its_database_over_tcp_with_the_password",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .env("GRIDWATCH_PG_BIN", "/nonexistent/gridwatch-hidden/bin")
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
fn hidden_postgresql_fails_the_test_unless_allowed() {
    let (ok, text) = run_hidden(false);
    assert!(!ok, "the test passed without its server:\n{text}");
    assert!(
        text.contains("postgresql is not installed")
            && text.contains("apt-get install -y postgresql")
            && text.contains("/nonexistent/gridwatch-hidden/bin/initdb"),
        "{text}"
    );
    let (ok, text) = run_hidden(true);
    assert!(ok, "{text}");
    assert!(text.contains("not run: postgresql is missing"), "{text}");
}
