//! A rate limit on repeated log lines, so one broken source cannot flood
//! the log.

use std::time::{Duration, Instant};

/// At most `per_period` log lines per period; the rest are counted and
/// reported in the next counters line. A broken device sending garbage every
/// second must not bury everything else in the log.
#[derive(Debug)]
pub struct LogBudget {
    per_period: u32,
    period: Duration,
    started: Instant,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// A budget of `per_period` lines per `period`.
    pub fn new(per_period: u32, period: Duration) -> Self {
        Self {
            per_period,
            period,
            started: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether one more line may be logged now (else it is counted).
    pub fn allow(&mut self) -> bool {
        if self.started.elapsed() >= self.period {
            self.started = Instant::now();
            self.used = 0;
        }
        if self.used < self.per_period {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Lines not logged since the last call.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}
