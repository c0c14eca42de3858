//! Where a server's binary is, and what a test does when it is not there.

use std::path::PathBuf;

/// The environment variable that turns a missing server from a failure
/// into a skip. Set it only on purpose (a laptop without the servers);
/// `scripts/test` installs every server and never sets it.
pub const ALLOW_MISSING: &str = "GRIDWATCH_ALLOW_MISSING_SERVERS";

/// A server the tests start themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The MQTT broker (Debian's `mosquitto` package).
    Mosquitto,
    /// The PostgreSQL server (Debian's `postgresql` package); the path found
    /// is its `initdb`, and `postgres` and `createdb` sit beside it.
    Postgres,
}

impl Server {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Server::Mosquitto => "mosquitto",
            Server::Postgres => "postgresql",
        }
    }

    /// The environment variable that points to another binary (for
    /// PostgreSQL, to another `bin` directory holding `initdb`).
    pub fn override_var(self) -> &'static str {
        match self {
            Server::Mosquitto => "GRIDWATCH_MOSQUITTO",
            Server::Postgres => "GRIDWATCH_PG_BIN",
        }
    }

    /// Where it is looked for, in order: the override, then where Debian's
    /// package and a local build put it (the places `scripts/test` checks).
    pub fn candidates(self) -> Vec<PathBuf> {
        if let Some(p) = std::env::var_os(self.override_var()) {
            let p = PathBuf::from(p);
            return vec![match self {
                Server::Postgres => p.join("initdb"),
                Server::Mosquitto => p,
            }];
        }
        match self {
            Server::Mosquitto => [
                "/usr/sbin/mosquitto",
                "/usr/bin/mosquitto",
                "/usr/local/sbin/mosquitto",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            Server::Postgres => postgres_candidates(),
        }
    }

    /// The first candidate that exists.
    pub fn find(self) -> Option<PathBuf> {
        self.candidates().into_iter().find(|p| p.exists())
    }

    /// The Debian package that installs it.
    fn package(self) -> &'static str {
        match self {
            Server::Mosquitto => "mosquitto",
            Server::Postgres => "postgresql",
        }
    }
}

/// Debian installs each major version under `/usr/lib/postgresql/<major>/bin`;
/// the newest comes first, then a source build's default prefix.
fn postgres_candidates() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin").join("initdb")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    let mut out: Vec<PathBuf> = versions.into_iter().map(|(_, p)| p).collect();
    if out.is_empty() {
        // Named even when absent, so the "not installed" message says where
        // it looked.
        out.push(PathBuf::from("/usr/lib/postgresql/<major>/bin/initdb"));
    }
    out.push(PathBuf::from("/usr/local/pgsql/bin/initdb"));
    out
}

/// The binary of `server`, or — when it is missing — a panic that fails the
/// test and says how to install it, unless [`ALLOW_MISSING`] is set, in which
/// case `None` after printing that the test did not run.
pub fn require(server: Server) -> Option<PathBuf> {
    if let Some(p) = server.find() {
        return Some(p);
    }
    let looked = server
        .candidates()
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        std::env::var_os(ALLOW_MISSING).is_some(),
        "{} is not installed (looked in {looked}); scripts/test installs it \
         (apt-get install -y {}); set {ALLOW_MISSING}=1 to skip tests that need it on purpose",
        server.name(),
        server.package()
    );
    println!(
        "not run: {} is missing and {ALLOW_MISSING} is set",
        server.name()
    );
    None
}
