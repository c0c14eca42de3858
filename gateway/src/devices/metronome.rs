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

use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// The metronomes of one daemon, by interval.
#[derive(Debug)]
pub struct Metronomes {
    beats: HashMap<Duration, watch::Sender<u64>>,
    shutdown: CancellationToken,
}

impl Metronomes {
    /// Metronomes that stop at `shutdown` (or when no poller listens).
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            beats: HashMap::new(),
            shutdown,
        }
    }

    /// The beats every `every`, the first at once; starts the metronome
    /// (a task on the current runtime) on first use. The receiver sees
    /// the number of the latest beat.
    pub fn beats(&mut self, every: Duration) -> watch::Receiver<u64> {
        let every = every.max(Duration::from_millis(1));
        if let Some(tx) = self.beats.get(&every) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(0);
        // The first beat is a change the receivers have not seen.
        let first = tx.clone();
        tokio::spawn(beat(every, first, self.shutdown.clone()));
        self.beats.insert(every, tx);
        rx
    }
}

/// The grid beat `k` is on.
fn at(start: Instant, every: Duration, k: u64) -> Instant {
    start + every.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
}

async fn beat(every: Duration, tx: watch::Sender<u64>, shutdown: CancellationToken) {
    let start = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pollers_with_one_interval_share_its_beats_in_order() {
        let stop = CancellationToken::new();
        let mut m = Metronomes::new(stop.clone());
        let mut rx = m.beats(Duration::from_millis(5));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 0);
        // A second poller with the same interval shares the beat.
        let mut other = m.beats(Duration::from_millis(5));
        let mut last = 0;
        for _ in 0..3 {
            rx.changed().await.unwrap();
            other.changed().await.unwrap();
            let (a, b) = (*rx.borrow_and_update(), *other.borrow_and_update());
            assert!(a > last && b > last);
            last = a.min(b);
        }
        stop.cancel();
    }
}
