//! Sleeping to a deadline precisely enough for an RS-485 line's silences.
//!
//! At 115 200 baud a character takes 95 µs and the inter-frame silence is
//! 1.75 ms, but tokio's timer rounds every sleep up to a whole millisecond:
//! a bus that slept that way would leave a third of the line idle. A
//! [`Pause`] arms a timerfd instead, a kernel high-resolution timer whose
//! descriptor becomes readable at the deadline, and waits for it on the
//! runtime's own event loop: one wake-up at the deadline, on the bus's own
//! thread, with no thread hand-off. Where no timerfd can be made (not Linux,
//! or out of descriptors) it falls back to [`pause_until`].

use std::io;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// Sleeps until `deadline` to within a few tens of microseconds, without a
/// timer of its own: the coarse part on tokio's timer, the last millisecond
/// on a blocking thread (whose sleep the kernel keeps to ~60 µs). Two thread
/// hand-offs per call, so [`Pause`] is better wherever it can be made.
pub async fn pause_until(deadline: Instant) {
    const COARSE: Duration = Duration::from_millis(1);
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > 2 * COARSE {
        sleep_until(deadline - COARSE).await;
    }
    let rest = deadline.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        // A failed join only means the runtime is shutting down.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// A reusable precise sleep for one task (a bus, a simulated line): one
/// timer descriptor, armed once per pause.
#[derive(Debug)]
pub struct Pause {
    timer: Option<timer::TimerFd>,
}

impl Pause {
    /// A pause with its own timerfd; must be made inside a tokio runtime.
    /// Never fails: without a timerfd it sleeps as [`pause_until`] does.
    pub fn new() -> Self {
        Self {
            timer: timer::TimerFd::new().ok(),
        }
    }

    /// Sleeps until `deadline`; returns at once if it has passed. Safe to
    /// cancel (a `select!` branch): the next call re-arms the timer.
    pub async fn until(&mut self, deadline: Instant) {
        let Some(rest) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        if let Some(timer) = &self.timer {
            if timer.sleep(rest).await.is_ok() {
                return;
            }
        }
        pause_until(deadline).await;
    }
}

impl Default for Pause {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
mod timer {
    use super::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// A monotonic, non-blocking timerfd registered with the runtime.
    #[derive(Debug)]
    pub(super) struct TimerFd(AsyncFd<OwnedFd>);

    impl TimerFd {
        pub(super) fn new() -> io::Result<Self> {
            // SAFETY: plain system call; the result is checked below.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a descriptor just opened and owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: the `AsyncFd` owns the `OwnedFd`, so the descriptor
            // stays open and is not reused while it is registered.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?;
            Ok(Self(fd))
        }

        /// Arms the timer `rest` from now (not zero: that would disarm it)
        /// and waits until it expires.
        pub(super) async fn sleep(&self, rest: Duration) -> io::Result<()> {
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: rest.as_secs() as libc::time_t,
                    tv_nsec: rest.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: a valid timerfd and a valid `itimerspec`; arming it
            // also clears an expiry not yet read (a cancelled pause).
            let armed = unsafe {
                libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if armed < 0 {
                return Err(io::Error::last_os_error());
            }
            loop {
                let mut ready = self.0.readable().await?;
                // A readiness left over from a cancelled pause reads as
                // WouldBlock; `try_io` then clears it and we wait again.
                match ready.try_io(|fd| {
                    let mut expiries = [0u8; 8];
                    // SAFETY: reads at most 8 bytes into an 8-byte buffer.
                    let n = unsafe {
                        libc::read(fd.as_raw_fd(), expiries.as_mut_ptr().cast(), expiries.len())
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                }) {
                    Ok(result) => return result,
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod timer {
    use super::io;
    use std::time::Duration;

    /// No timerfd here: [`Pause`](super::Pause) always falls back.
    #[derive(Debug)]
    pub(super) struct TimerFd;

    impl TimerFd {
        pub(super) fn new() -> io::Result<Self> {
            Err(io::Error::other("timerfd is Linux only"))
        }

        pub(super) async fn sleep(&self, _rest: Duration) -> io::Result<()> {
            Err(io::Error::other("timerfd is Linux only"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[tokio::test]
    async fn a_pause_never_returns_before_its_deadline() {
        let mut pause = Pause::new();
        for micros in [0u64, 50, 400, 1_750, 3_000] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            pause.until(deadline).await;
            assert!(Instant::now() >= deadline, "{micros} µs");
        }
    }

    #[tokio::test]
    async fn a_cancelled_pause_does_not_end_the_next_one_early() {
        let mut pause = Pause::new();
        {
            // Armed, polled once, then dropped, as a losing `select!` branch is.
            let first = pause.until(Instant::now() + Duration::from_millis(1));
            tokio::pin!(first);
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(first.as_mut().poll(cx))).await;
            assert!(polled.is_pending());
        }
        // The first timer expires meanwhile and is never read.
        std::thread::sleep(Duration::from_millis(2));
        let deadline = Instant::now() + Duration::from_millis(3);
        pause.until(deadline).await;
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test]
    async fn a_passed_deadline_returns_at_once() {
        let mut pause = Pause::new();
        let past = Instant::now();
        std::thread::sleep(Duration::from_micros(100));
        pause.until(past).await;
    }
}
