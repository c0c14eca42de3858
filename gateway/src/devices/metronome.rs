//! One clock per poll interval, shared by every poller with that interval.
//!
//! With an interval of its own per poller, ten meters polled every 50 ms
//! re-arm ten timers per round. Each re-armed timer that is due before the
//! runtime's next planned wake-up makes tokio wake its own driver through
//! an eventfd: a `write` system call, and one more return from
//! `epoll_wait`, per poller per round, for nothing. A metronome keeps one
//! timer for all of them, and keeps the *next* beat armed while the current
//! one fires, so re-arming never moves the driver's next wake-up earlier.
//! Pollers due at the same moment then also start together, their readings
//! arrive together and the outbox writes them together.
//!
//! Beats are on a fixed grid from the start (like a tokio interval with
//! `MissedTickBehavior::Skip`): a late beat never causes a burst, and the
//! grid keeps its phase.
//!
//! **Settling.** Devices on one LAN answer a beat's requests within a
//! millisecond or so of each other, one after another: each answer that
//! arrives while the runtime waits in `epoll_wait` wakes it, so ten units
//! cost ten wake-ups a round (sleeping and waking is most of the kernel's
//! share of the gateway's CPU). When settling is on, the metronome lets the
//! pollers send their requests and then holds the runtime's thread asleep
//! for [`SETTLE`]; the answers arrive meanwhile and one `epoll_wait`
//! returns them all. It settles only after a beat whose polls all ended
//! within [`SETTLE_WHEN_DONE_WITHIN`] (slow devices would not be gathered,
//! so there is nothing to gain), and the daemon turns it on only when every
//! device is on Modbus TCP and the runtime is its own one-thread runtime:
//! the thread is blocked for that time, which a serial line's silences
//! could not bear, nor other programs' tasks on a shared runtime. It adds
//! at most [`SETTLE`] to the delivery delay.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// How long the runtime's thread sleeps after a beat's requests are sent,
/// when settling (module docs): long enough for ten units on one machine
/// or LAN to answer, short against the delivery delay allowed (20 ms).
pub const SETTLE: Duration = Duration::from_millis(1);
/// A beat is followed by a settle only if every poll of the previous beat
/// ended within this time of it (the settle itself included).
pub const SETTLE_WHEN_DONE_WITHIN: Duration = Duration::from_millis(5);

/// The metronomes of one daemon, by interval.
#[derive(Debug)]
pub struct Metronomes {
    beats: HashMap<Duration, (watch::Sender<u64>, Arc<Metre>)>,
    shutdown: CancellationToken,
    settle: bool,
}

/// What one metronome and its pollers share: when it started, and when
/// the latest poll on its beats ended (ns since the start).
#[derive(Debug)]
struct Metre {
    start: Instant,
    last_done_ns: AtomicU64,
}

/// One poller's view of a metronome: the beats, and where it says that
/// its poll of a beat is done.
#[derive(Debug)]
pub struct Beats {
    rx: watch::Receiver<u64>,
    metre: Arc<Metre>,
}

impl Beats {
    /// Waits for the next beat (beats missed meanwhile count as one).
    /// `false` once the metronome stopped.
    pub async fn next(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// The poll of the latest beat has ended (answered, failed, and its
    /// records queued): the metronome settles only after beats whose
    /// polls all end soon.
    pub fn polled(&self) {
        let ns = u64::try_from(self.metre.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.metre.last_done_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

impl Metronomes {
    /// Metronomes that stop at `shutdown` (or when no poller listens).
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            beats: HashMap::new(),
            shutdown,
            settle: false,
        }
    }

    /// Settles after beats (module docs): only when nothing else on the
    /// runtime needs its thread within a millisecond (no serial lines).
    pub fn with_settle(mut self, settle: bool) -> Self {
        self.settle = settle;
        self
    }

    /// The beats every `every`, the first at once; starts the metronome
    /// (a task on the current runtime) on first use.
    pub fn beats(&mut self, every: Duration) -> Beats {
        let every = every.max(Duration::from_millis(1));
        if let Some((tx, metre)) = self.beats.get(&every) {
            return Beats {
                rx: tx.subscribe(),
                metre: metre.clone(),
            };
        }
        let (tx, rx) = watch::channel(0);
        let metre = Arc::new(Metre {
            start: Instant::now(),
            last_done_ns: AtomicU64::new(0),
        });
        // The first beat is a change the receivers have not seen.
        let first = tx.clone();
        let settle = self.settle.then_some(metre.clone());
        tokio::spawn(beat(every, first, settle, self.shutdown.clone()));
        self.beats.insert(every, (tx, metre.clone()));
        Beats { rx, metre }
    }
}

/// The grid beat `k` is on.
fn at(start: Instant, every: Duration, k: u64) -> Instant {
    start + every.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
}

async fn beat(
    every: Duration,
    tx: watch::Sender<u64>,
    settle: Option<Arc<Metre>>,
    shutdown: CancellationToken,
) {
    let start = settle.as_ref().map_or_else(Instant::now, |m| m.start);
    // When the previous beat fired, in ns since the start.
    let mut fired_ns: Option<u64> = None;
    let mut k: u64 = 0;
    // Two beats armed: when beat k fires, beat k + 1 is already waiting.
    let mut now_due = Box::pin(sleep_until(start));
    let mut next_due = Box::pin(sleep_until(at(start, every, 1)));
    loop {
        tokio::select! {
            _ = &mut now_due => {}
            _ = shutdown.cancelled() => return,
            _ = tx.closed() => return,
        }
        tx.send_replace(k);
        if let Some(metre) = &settle {
            let now_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let done_ns = metre.last_done_ns.load(Ordering::Relaxed);
            let soon = fired_ns.is_some_and(|f| {
                done_ns >= f && done_ns - f <= SETTLE_WHEN_DONE_WITHIN.as_nanos() as u64
            });
            fired_ns = Some(now_ns);
            if soon {
                // The pollers woken by the beat run (and send their
                // requests) before this task is polled again.
                behind_woken_tasks().await;
                std::thread::sleep(SETTLE);
            }
        }
        let late =
            Instant::now().saturating_duration_since(start).as_nanos() / every.as_nanos().max(1);
        let late = u64::try_from(late).unwrap_or(u64::MAX);
        if late > k {
            // Beats were missed (the runtime was busy): go on at the next
            // beat on the grid, none in between.
            k = late;
            now_due.as_mut().reset(at(start, every, k + 1));
            next_due.as_mut().reset(at(start, every, k + 2));
            k += 1;
            continue;
        }
        k += 1;
        std::mem::swap(&mut now_due, &mut next_due);
        next_due.as_mut().reset(at(start, every, k + 1));
    }
}

/// Lets every task already woken run before this one goes on. Unlike
/// `tokio::task::yield_now`, which lets the runtime look for I/O first
/// (an `epoll_wait`, and an eventfd write to wake this task again), it only
/// queues this task behind the others.
async fn behind_woken_tasks() {
    let mut queued = false;
    std::future::poll_fn(|cx| {
        if queued {
            return std::task::Poll::Ready(());
        }
        queued = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pollers_with_one_interval_share_its_beats_in_order() {
        let stop = CancellationToken::new();
        let mut m = Metronomes::new(stop.clone());
        let mut rx = m.beats(Duration::from_millis(5));
        assert!(rx.next().await);
        assert_eq!(*rx.rx.borrow_and_update(), 0);
        // A second poller with the same interval shares the beat.
        let mut other = m.beats(Duration::from_millis(5));
        let mut last = 0;
        for _ in 0..3 {
            assert!(rx.next().await);
            assert!(other.next().await);
            let (a, b) = (*rx.rx.borrow_and_update(), *other.rx.borrow_and_update());
            assert!(a > last && b > last);
            last = a.min(b);
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn settling_after_beats_keeps_them_coming_in_order() {
        let stop = CancellationToken::new();
        let mut m = Metronomes::new(stop.clone()).with_settle(true);
        let mut beats = m.beats(Duration::from_millis(5));
        let mut last = None;
        for _ in 0..5 {
            assert!(beats.next().await);
            let k = *beats.rx.borrow_and_update();
            assert!(last.is_none_or(|l| k > l));
            last = Some(k);
            // Polled at once: the metronome settles after the next beats.
            beats.polled();
        }
        stop.cancel();
    }
}
