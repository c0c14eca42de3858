//! A PostgreSQL server of the test's own: `initdb` into a [`TempDir`], the
//! server on a free loopback port with its socket in that directory, one
//! database created, and a fast shutdown on drop.
//!
//! PostgreSQL refuses to run as root. When the test runs as root (a CI
//! container), `initdb` and `postgres` are run as the `postgres` user (or
//! the one named by `GRIDWATCH_PG_USER`) through `setpriv`, which `exec`s,
//! so the child we hold is the server itself and our signals reach it.

use crate::{free_port, require, Server, TempDir};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The role the tests connect as (the cluster's superuser).
pub const PG_USER: &str = "gridwatch";
/// The database [`Postgres::start`] creates.
pub const PG_DATABASE: &str = "gridwatch";

/// A running PostgreSQL server with one database, stopped on drop.
///
/// Over TCP the role needs its password (scram-sha-256), so a client that
/// forgets to send it fails as it would in production; over the socket in
/// [`Postgres::socket_dir`] it is trusted.
pub struct Postgres {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    password: String,
    log: Arc<Mutex<String>>,
    dir: TempDir,
}

impl Postgres {
    /// A fresh cluster on a free port with the database [`PG_DATABASE`];
    /// `None` only when PostgreSQL is missing and [`crate::ALLOW_MISSING`]
    /// is set (see [`require`]). Panics, with the server's log, when it
    /// does not start on any of three ports.
    pub fn start() -> Option<Self> {
        let initdb = require(Server::Postgres)?;
        let bin = initdb
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = TempDir::new("postgres");
        let owner = ServerUser::for_this_process();
        let password = random_password();
        init_cluster(&bin, dir.path(), &owner, &password);
        let mut pg = Postgres {
            child: None,
            bin,
            port: 0,
            password,
            log: Arc::default(),
            dir,
        };
        let mut why = String::new();
        for _ in 0..3 {
            let port = free_port();
            match pg.launch(port, &owner) {
                Ok(()) => {
                    pg.port = port;
                    pg.create_database(PG_DATABASE);
                    return Some(pg);
                }
                Err(e) => why = e,
            }
        }
        panic!("postgres did not start on any of 3 free ports: {why}");
    }

    fn launch(&mut self, port: u16, owner: &ServerUser) -> Result<(), String> {
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
        let data = self.dir.path().join("data");
        let sock = self.dir.path().join("sock");
        let mut child = owner
            .command(&self.bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&sock)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=60",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.join("postgres").display()))?;
        if let Some(out) = child.stderr.take() {
            let log = Arc::clone(&self.log);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(mut l) = log.lock() {
                        l.push_str(&line);
                        l.push('\n');
                    }
                }
            });
        }
        // Ready means a client gets past "the database system is starting
        // up", not merely that the port is open.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "postgres on port {port} exited with {status}: {}",
                    self.log()
                ));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(&sock)
                .arg("-p")
                .arg(port.to_string())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                stop(&mut child);
                return Err(format!(
                    "postgres on port {port} was not ready within 30 s: {}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates another empty database (a test that needs two stores side
    /// by side) and returns its URL, password included.
    pub fn create_database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("createdb"))
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(PG_USER)
            .arg(name)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.join("createdb").display()));
        assert!(
            out.status.success(),
            "createdb {name} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.url_of(name)
    }

    /// The URL of [`PG_DATABASE`] with the password in it:
    /// `postgres://gridwatch:<password>@127.0.0.1:<port>/gridwatch`.
    pub fn url(&self) -> String {
        self.url_of(PG_DATABASE)
    }

    /// The same URL without the password, for a client that reads the
    /// password from elsewhere (a file).
    pub fn url_without_password(&self) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{PG_DATABASE}", self.port)
    }

    fn url_of(&self, database: &str) -> String {
        format!(
            "postgres://{PG_USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The password of [`PG_USER`] over TCP (letters and digits only, so it
    /// needs no escaping in a URL).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of its Unix socket (trusted, no password).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Everything the server logged since it last started.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
    }
}

/// A fast shutdown (SIGINT: disconnect clients, stop), at most 10 s, then
/// SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Who runs the server: this process, or (as root) an unprivileged user.
enum ServerUser {
    Same,
    Other { name: String, uid: u32, gid: u32 },
}

impl ServerUser {
    fn for_this_process() -> Self {
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if !root {
            return ServerUser::Same;
        }
        let name = std::env::var("GRIDWATCH_PG_USER").unwrap_or_else(|_| "postgres".into());
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let found = passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        });
        match found {
            Some((Some(uid), Some(gid))) => ServerUser::Other { name, uid, gid },
            _ => panic!(
                "PostgreSQL will not run as root and there is no user {name} to run it as \
                 (Debian's postgresql package creates one; GRIDWATCH_PG_USER names another)"
            ),
        }
    }

    /// `bin` as a command run by this user.
    fn command(&self, bin: &Path) -> Command {
        match self {
            ServerUser::Same => Command::new(bin),
            ServerUser::Other { uid, gid, .. } => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(bin);
                c
            }
        }
    }

    /// Makes `dir` this user's, with `mode`.
    fn own(&self, dir: &Path, mode: u32) {
        if let ServerUser::Other { uid, gid, name } = self {
            std::os::unix::fs::chown(dir, Some(*uid), Some(*gid))
                .unwrap_or_else(|e| panic!("chown {} to {name}: {e}", dir.display()));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
    }
}

/// `initdb` into `<dir>/data`: superuser [`PG_USER`] with `password`,
/// trusted on the socket, scram-sha-256 over TCP, UTF-8 and the C locale
/// (no dependence on the machine's locales).
fn init_cluster(bin: &Path, dir: &Path, owner: &ServerUser, password: &str) {
    let data = dir.join("data");
    let sock = dir.join("sock");
    for d in [&data, &sock] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    }
    owner.own(&data, 0o700);
    owner.own(&sock, 0o755);
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, password).expect("write the password file for initdb");
    let _ = std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644));
    let out = owner
        .command(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .arg("-U")
        .arg(PG_USER)
        .arg(format!("--pwfile={}", pwfile.display()))
        .args([
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.join("initdb").display()));
    let _ = std::fs::remove_file(&pwfile);
    assert!(
        out.status.success(),
        "initdb into {} failed: {}{}",
        data.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 32 hex digits from the standard library's per-process random keys.
fn random_password() -> String {
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
