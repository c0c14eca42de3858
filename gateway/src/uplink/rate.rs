//! A token bucket: at most `per_s` sends a second, with a burst of a tenth
//! of a second's worth. Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// Limits sends to a rate.
#[derive(Debug, Clone)]
pub struct RateLimit {
    per_s: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    /// `per_s` sends a second (at least one), starting full at `now`.
    pub fn new(per_s: u32, now: Instant) -> Self {
        let per_s = f64::from(per_s.max(1));
        let burst = (per_s / 10.0).max(1.0);
        Self {
            per_s,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one send if allowed at `now`; otherwise says how long to wait.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(100, t0);
        let burst = (0..50).take_while(|_| r.take(t0).is_ok()).count();
        assert_eq!(burst, 10);
        let wait = r.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(10), "{wait:?}");
        // One second later: 100 more at most (capped at the burst per take
        // window), never more than rate × time over a long run.
        let mut sent = 0;
        for ms in 1..=1000u64 {
            let now = t0 + Duration::from_millis(ms);
            while r.take(now).is_ok() {
                sent += 1;
            }
        }
        assert!((99..=101).contains(&sent), "{sent}");
    }
}
