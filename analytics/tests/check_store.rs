//! `check` reads the `[store]` section as `run` does: a PostgreSQL url of
//! the wrong form, a url beside a SQLite path, a url with the password in
//! it or a password file that cannot be read are refused before anything
//! starts; a good url with its password file passes without contacting
//! the server.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use support::TempDir;

fn check(config: &Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .expect("run check")
}

fn write_config(dir: &Path, store: &str) -> PathBuf {
    let path = dir.join("analytics.toml");
    std::fs::write(
        &path,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = 1\n\
             [[cells.sites]]\nsite = \"yard-a\"\ncell = \"cell-07\"\n[store]\n{store}"
        ),
    )
    .unwrap();
    path
}

fn refused(dir: &Path, store: &str, needle: &str) -> String {
    let out = check(&write_config(dir, store));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "{err}");
    err
}

#[test]
fn check_refuses_a_store_url_it_cannot_use() {
    let dir = TempDir::new("check-store");
    refused(
        dir.path(),
        "path = \"/tmp/a.db\"\nurl = \"postgres://g@db/city\"\n",
        "both `path`",
    );
    refused(
        dir.path(),
        "url = \"http://g@db/city\"\n",
        "not a PostgreSQL url",
    );
    refused(
        dir.path(),
        "url = \"postgres://db:5432/city\"\n",
        "names no user",
    );
    let e = refused(
        dir.path(),
        "url = \"postgres://g:hunter22@db/city\"\n",
        "password_file",
    );
    assert!(!e.contains("hunter22"), "the password was shown: {e}");
    refused(
        dir.path(),
        "url = \"postgres://g@db/city\"\npassword_file = \"/nonexistent/pw\"\n",
        "cannot read the PostgreSQL password file /nonexistent/pw",
    );
}

#[test]
fn check_accepts_a_url_with_a_readable_password_file() {
    let dir = TempDir::new("check-store-ok");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let out = check(&write_config(
        dir.path(),
        &format!(
            "url = \"postgresql://gridwatch@127.0.0.1:1/city\"\npassword_file = \"{}\"\n",
            pw.display()
        ),
    ));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
