//! Whether the gateway can trust its own clock when it stamps a reading.
//!
//! A Raspberry Pi has no battery-backed clock: it boots at 1970, or at the
//! time fake-hwclock saved at the last shutdown, and only NTP makes it
//! right. Readings stamped before that carry a time that may be anything,
//! and a detector fed one judges the wrong night. So every reading says
//! whether its stamp was trusted (`clock_unsynced` on the wire, docs/
//! telemetry.md) and analytics keeps untrusted ones out of its detectors;
//! the gateway's status says `clock_synced`.
//!
//! Two tests: a stamp before [`FLOOR_MS`] (2024-01-01) is never trusted;
//! with `[gateway] require_clock_sync = true` (the packaged default for a
//! Pi) the kernel must also say NTP has synchronised it (`adjtimex` not
//! reporting `TIME_ERROR`, which is what `timedatectl` shows as
//! NTPSynchronized). The kernel's answer is read every few seconds by the
//! daemon ([`watch`]) and kept in one process-wide flag, since the clock
//! is one per machine.

use gridwatch_telemetry::Timestamp;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Stamps before this instant (2024-01-01T00:00:00Z) are never trusted.
pub const FLOOR_MS: i64 = 1_704_067_200_000;

/// How often the daemon asks the kernel.
const WATCH_EVERY: Duration = Duration::from_secs(5);

static REQUIRE_SYNC: AtomicBool = AtomicBool::new(false);
static KERNEL_SYNCED: AtomicBool = AtomicBool::new(true);

/// Whether a stamp `ts` is trusted, given whether sync is required and what
/// the kernel says.
pub fn trusted(ts: Timestamp, require_sync: bool, kernel_synced: bool) -> bool {
    ts.0 >= FLOOR_MS && (!require_sync || kernel_synced)
}

/// Whether a stamp taken now at `ts` is trusted, by the daemon's settings.
pub fn trusted_now(ts: Timestamp) -> bool {
    trusted(
        ts,
        REQUIRE_SYNC.load(Ordering::Relaxed),
        KERNEL_SYNCED.load(Ordering::Relaxed),
    )
}

/// What the kernel says: `Some(true)` when NTP has synchronised the clock,
/// `None` where it cannot be asked.
pub fn kernel_synced() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: adjtimex with modes = 0 only reads; the struct is plain
        // data the kernel fills in.
        let mut t: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::adjtimex(&mut t) };
        if state < 0 {
            None
        } else {
            Some(state != libc::TIME_ERROR)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Sets whether sync is required and reads the kernel once, before the
/// first reading is stamped; then [`watch`] keeps it current.
pub fn init(require_sync: bool) {
    REQUIRE_SYNC.store(require_sync, Ordering::Relaxed);
    if require_sync {
        KERNEL_SYNCED.store(kernel_synced().unwrap_or(true), Ordering::Relaxed);
    }
}

/// Keeps the process-wide flag current until `shutdown` (after [`init`]).
/// With `require_sync` false only the floor applies and nothing is watched.
pub async fn watch(require_sync: bool, shutdown: CancellationToken) {
    if !require_sync {
        return;
    }
    let mut was: Option<bool> = None;
    loop {
        // A kernel that cannot be asked is taken at its word: the floor
        // still applies.
        let synced = kernel_synced().unwrap_or(true);
        KERNEL_SYNCED.store(synced, Ordering::Relaxed);
        if was != Some(synced) {
            if synced {
                tracing::info!("clock synchronised: readings are stamped as trusted");
            } else {
                tracing::warn!(
                    "clock not synchronised (NTP): readings are marked clock_unsynced and \
                     analytics will not judge them until it is"
                );
            }
            was = Some(synced);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_trusted_only_past_the_floor_and_when_synced_if_required() {
        let now = Timestamp(1_780_000_000_000);
        assert!(trusted(now, false, false));
        assert!(trusted(now, true, true));
        assert!(!trusted(now, true, false));
        // A Pi booted at 1970 or at an old fake-hwclock time.
        assert!(!trusted(Timestamp(5_000), false, true));
        assert!(!trusted(Timestamp(FLOOR_MS - 1), false, true));
        assert!(trusted(Timestamp(FLOOR_MS), false, true));
    }

    #[test]
    fn the_kernel_answers_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(kernel_synced().is_some());
        }
    }
}
