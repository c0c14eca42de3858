//! The checks of `selftest` on this host: the outbox folder, the clock and
//! the GPIO outputs.

use super::Check;
use crate::config::GatewayConfig;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;

const MIB: u64 = 1024 * 1024;

/// The outbox folder can be created, written and synced, and its file
/// system has at least `min_free_mb` MiB free for an unprivileged user.
pub(super) fn outbox(config: &GatewayConfig, min_free_mb: u64) -> Check {
    let name = "outbox";
    let (dir, note) = match &config.outbox.dir {
        Some(d) => (d.clone(), String::new()),
        None => (
            std::env::temp_dir(),
            " (no [outbox] dir: readings would wait in a temporary folder, lost at restart)"
                .to_owned(),
        ),
    };
    // A folder not made yet is made by `run`: its nearest existing parent
    // must then be writable (selftest itself creates nothing).
    let mut dir = dir;
    let mut note = note;
    if !dir.exists() {
        let parent = dir.ancestors().skip(1).find(|a| a.is_dir());
        let Some(parent) = parent.map(Path::to_path_buf) else {
            return Check::fail(
                name,
                format!("{} has no existing parent folder", dir.display()),
            );
        };
        note = format!(
            " ({} does not exist yet; `run` creates it){note}",
            dir.display()
        );
        dir = parent;
    }
    if let Err(e) = write_probe(&dir) {
        return Check::fail(
            name,
            format!("{} is not writable: {e}{note}", dir.display()),
        );
    }
    match nix::sys::statvfs::statvfs(&dir) {
        Err(e) => Check::fail(
            name,
            format!("cannot read the free space of {}: {e}", dir.display()),
        ),
        Ok(s) => {
            // u64 on 64-bit hosts, u32 on a 32-bit Pi OS.
            #[allow(clippy::useless_conversion)]
            let free = u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size()));
            let (free_mb, max_mb) = (free / MIB, config.outbox.max_bytes / MIB);
            let what = format!(
                "{} is writable, {free_mb} MiB free (need {min_free_mb}; the outbox may grow to \
                 {max_mb} MiB){note}",
                dir.display()
            );
            if free_mb < min_free_mb {
                Check::fail(name, format!("too little space: {what}"))
            } else {
                Check::pass(name, what)
            }
        }
    }
}

/// Writes, syncs and removes a small file in `dir`.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    let mut f = tempfile::Builder::new()
        .prefix(".selftest-")
        .tempfile_in(dir)?;
    f.write_all(&[0u8; 4096])?;
    f.as_file().sync_all()?;
    f.close()
}

/// NTP synchronisation as systemd sees it; SKIP where `timedatectl` cannot
/// tell (no systemd, a container), with what the kernel says (the flag the
/// daemon reads for `require_clock_sync`) as a hint: in a container the
/// kernel is the host's, and NTP is the host's business.
pub(super) fn clock() -> Check {
    let name = "clock";
    let out = Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output();
    let why_not = match out {
        Err(e) => format!("cannot run timedatectl ({e})"),
        Ok(o) if !o.status.success() => format!(
            "timedatectl cannot tell ({})",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(o) => match String::from_utf8_lossy(&o.stdout).trim() {
            "yes" => return Check::pass(name, "synchronised by NTP (timedatectl)"),
            "no" => return unsynced("timedatectl NTPSynchronized=no"),
            other => format!("timedatectl said {other:?}"),
        },
    };
    let kernel = match crate::clock_sync::kernel_synced() {
        Some(true) => "; the kernel says NTP synchronised the clock",
        Some(false) => "; the kernel reports its clock unsynchronised (TIME_ERROR)",
        None => "",
    };
    Check::skip(name, format!("{why_not}{kernel}; check NTP by hand"))
}

fn unsynced(evidence: &str) -> Check {
    Check::fail(
        "clock",
        format!(
            "not synchronised: readings would carry a wrong time ({evidence}; check network \
             access to an NTP server)"
        ),
    )
}

/// Switches each configured output on for a moment and off again: SKIP
/// without outputs, without the `rpi` feature, or off a Raspberry Pi.
pub(super) async fn outputs(config: &GatewayConfig) -> Check {
    let name = "outputs";
    if config.edge.outputs.is_empty() {
        return Check::skip(name, "no [[edge.outputs]] are configured");
    }
    click(name, config).await
}

#[cfg(not(feature = "rpi"))]
async fn click(name: &str, _config: &GatewayConfig) -> Check {
    Check::skip(
        name,
        "this gateway is built without the rpi feature: outputs only log",
    )
}

#[cfg(feature = "rpi")]
async fn click(name: &str, config: &GatewayConfig) -> Check {
    use crate::edge::gpio::{self, Pin};
    use crate::edge::output::HeldOutput;
    let mut clicked = Vec::new();
    for o in &config.edge.outputs {
        let pin = match gpio::open(o) {
            Ok(Pin::Gpio(p)) => Pin::Gpio(p),
            Ok(Pin::Logged(_)) => {
                return Check::skip(name, "no Raspberry Pi GPIO on this host");
            }
            Err(e) => return Check::fail(name, format!("output {}: {e}", o.name)),
        };
        let Ok(mut out) = HeldOutput::new(o.clone(), pin);
        let _ = out.fire(0);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = out.tick(o.hold_ms.saturating_add(1));
        clicked.push(format!("{} (GPIO {})", o.name, o.gpio_bcm));
    }
    Check::pass(
        name,
        format!(
            "switched on for 0.3 s each: {}; listen for the click",
            clicked.join(", ")
        ),
    )
}
