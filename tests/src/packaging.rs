//! Building the gateway as it ships: release binaries (for this machine and
//! for the Pi's aarch64), Debian packages made with cargo-deb, and a Debian
//! root made with debootstrap to install them into.
//!
//! These builds run cargo from inside a test, so they use their own target
//! folder (`<target>/tmp/package`, kept between runs): the test's own cargo
//! holds the lock on the main one. The Debian root is cached beside it, so
//! only the first run downloads it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Rust target of a Raspberry Pi 3/4/5 with a 64-bit OS.
pub const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// Debian's cross linker for [`AARCH64`] (package gcc-aarch64-linux-gnu).
pub const AARCH64_LINKER: &str = "aarch64-linux-gnu-gcc";

/// The Debian release the root is made of (the one this project tests on).
pub const DEBIAN_SUITE: &str = "bookworm";

/// Whether every tool in `tools` is on PATH. A missing one fails the test
/// (scripts/test installs them), unless GRIDWATCH_ALLOW_MISSING_SERVERS is
/// set: then it prints what is missing and the caller skips.
pub fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("GRIDWATCH_ALLOW_MISSING_SERVERS").is_some(),
        "{missing:?} not installed; run scripts/test (it installs them), or set \
         GRIDWATCH_ALLOW_MISSING_SERVERS=1 to skip"
    );
    println!("not run: {missing:?} missing and GRIDWATCH_ALLOW_MISSING_SERVERS is set");
    false
}

/// Whether the test runs as root, which dpkg --root and chroot need; like a
/// missing tool, not being root fails unless GRIDWATCH_ALLOW_MISSING_SERVERS is set.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc_geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("GRIDWATCH_ALLOW_MISSING_SERVERS").is_some(),
        "installing into a Debian root needs root (chroot); run the test as root, or set \
         GRIDWATCH_ALLOW_MISSING_SERVERS=1 to skip"
    );
    println!("not run: not root and GRIDWATCH_ALLOW_MISSING_SERVERS is set");
    false
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The full path of `tool` on PATH (or in /usr/sbin and /sbin, where
/// debootstrap and chroot live but a non-root PATH may not look).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// Runs `cmd`; panics with its output when it fails to start or exits non-zero.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Standard output of `cmd`, which must succeed, as text.
pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// A cargo command in the workspace with the packaging target folder and,
/// for [`AARCH64`], Debian's cross linker.
fn cargo(target_dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace())
        .env("CARGO_TARGET_DIR", target_dir)
        .env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            AARCH64_LINKER,
        );
    cmd
}

/// Builds the release gateway for `target` (None: this machine) in
/// `target_dir` and returns the binary. The aarch64 build has the `rpi`
/// feature (GPIO through rppal): it is the Pi's binary.
pub fn build_gateway(target_dir: &Path, target: Option<&str>) -> PathBuf {
    let mut cmd = cargo(target_dir);
    cmd.args(["build", "--release", "--quiet", "-p", "gridwatch-gateway"]);
    let mut dir = target_dir.to_owned();
    if let Some(t) = target {
        cmd.args(["--target", t]);
        dir.push(t);
    }
    if target == Some(AARCH64) {
        cmd.args(["--features", "rpi"]);
    }
    run(&mut cmd);
    dir.join("release").join("gridwatch-gateway")
}

/// Builds the gateway for `target` and packages it with cargo-deb; returns
/// the .deb (written into `out`).
pub fn build_deb(target_dir: &Path, target: Option<&str>, out: &Path) -> PathBuf {
    build_gateway(target_dir, target);
    std::fs::create_dir_all(out).expect("create the .deb folder");
    let mut cmd = cargo(target_dir);
    cmd.args(["deb", "-p", "gridwatch-gateway", "--no-build", "--output"])
        .arg(out);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let printed = stdout_of(&mut cmd);
    let deb = PathBuf::from(printed.lines().last().unwrap_or_default().trim());
    assert!(
        deb.extension().is_some_and(|e| e == "deb") && deb.is_file(),
        "cargo deb did not print a .deb path: {printed}"
    );
    deb
}

/// One field of a .deb's control file (`dpkg-deb --field`).
pub fn deb_field(deb: &Path, field: &str) -> String {
    stdout_of(Command::new("dpkg-deb").arg("--field").arg(deb).arg(field))
        .trim()
        .to_owned()
}

/// The files of a .deb: (mode string, owner/group, path without the leading dot).
pub fn deb_contents(deb: &Path) -> Vec<(String, String, String)> {
    stdout_of(Command::new("dpkg-deb").arg("--contents").arg(deb))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5)?.trim_start_matches('.').trim_end_matches('/');
            Some((f[0].to_owned(), f[1].to_owned(), path.to_owned()))
        })
        .collect()
}

/// A Debian root (`DEBIAN_SUITE`, variant minbase, plus systemd, whose units
/// `systemd-analyze verify --root` checks the gateway's against) under
/// `cache`, made with debootstrap on first use and kept: later runs copy it.
/// The mirror is GRIDWATCH_DEBIAN_MIRROR or deb.debian.org.
pub fn debian_root(cache: &Path) -> PathBuf {
    let root = cache.join(format!("debian-root-{DEBIAN_SUITE}-systemd"));
    if root.join("var/lib/dpkg/status").is_file() {
        return root;
    }
    let partial = cache.join(format!("debian-root-{DEBIAN_SUITE}-systemd.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(cache).expect("create the root cache folder");
    let mirror = std::env::var("GRIDWATCH_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    run(Command::new(which("debootstrap").expect("debootstrap"))
        .args(["--variant=minbase", "--include=systemd", DEBIAN_SUITE])
        .arg(&partial)
        .arg(&mirror));
    // Only a complete root is ever renamed into place.
    std::fs::rename(&partial, &root).expect("move the finished root into place");
    root
}
