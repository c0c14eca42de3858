//! Exponential backoff for reconnecting to devices and brokers.
//!
//! A device or broker that is down should be probed often at first (it may
//! be a blip) and then rarely (it may be gone for hours, and a hundred
//! gateways hammering a recovering broker keep it down). Pure: it only
//! computes delays; the caller sleeps.

use std::time::Duration;

/// Delays that double from `initial` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`; `max` below `initial` is raised to it.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let max = max.max(initial);
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `initial`, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// The longest delay.
    pub fn max(&self) -> Duration {
        self.max
    }
}

/// `d` spread over its upper half by `unit` (a random number in 0..1):
/// a fleet of gateways that lost the broker at the same moment then does not
/// come back at the same moment.
pub fn jittered(d: Duration, unit: f64) -> Duration {
    d.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A duration as people say it in logs: `500 ms`, `2 s`, `1.5 s`, `2 min`.
pub fn words(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let got: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn jitter_keeps_a_delay_within_its_upper_half() {
        let d = Duration::from_secs(4);
        assert_eq!(jittered(d, 0.0), Duration::from_secs(2));
        assert_eq!(jittered(d, 1.0), d);
        assert_eq!(jittered(d, 7.0), d);
        assert_eq!(jittered(d, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(words(Duration::from_millis(500)), "500 ms");
        assert_eq!(words(Duration::from_secs(2)), "2 s");
        assert_eq!(words(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(words(Duration::from_secs(120)), "2 min");
    }
}
