//! A clock that runs faster than the wall clock, so the demo and accelerated
//! simulations can show hours of charging in minutes while every component
//! still stamps and judges data by one consistent time.

use gridwatch_telemetry::{Clock, SystemClock, Timestamp};
use std::time::Instant;

/// Simulated time = `start` + (wall time elapsed since creation) × `speed`.
#[derive(Debug, Clone, Copy)]
pub struct ScaledClock {
    origin: Instant,
    start: Timestamp,
    speed: f64,
}

impl ScaledClock {
    /// A clock that starts at the current wall time and runs `speed` times faster.
    pub fn starting_now(speed: f64) -> Self {
        Self::new(SystemClock.now(), speed)
    }

    /// A clock that starts at `start` and runs `speed` times faster than the wall.
    pub fn new(start: Timestamp, speed: f64) -> Self {
        Self {
            origin: Instant::now(),
            start,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// How many simulated milliseconds pass per real millisecond.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Timestamp {
        let real_ms = self.origin.elapsed().as_secs_f64() * 1000.0;
        self.start.plus_millis((real_ms * self.speed) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_faster_than_the_wall() {
        let c = ScaledClock::new(Timestamp(0), 1000.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t = c.now().millis();
        assert!(
            t >= 20_000,
            "20 ms of wall time at 1000x should be >= 20 s, got {t} ms"
        );
    }

    #[test]
    fn nonsense_speed_falls_back_to_real_time() {
        assert_eq!(ScaledClock::new(Timestamp(0), -3.0).speed(), 1.0);
        assert_eq!(ScaledClock::new(Timestamp(0), f64::NAN).speed(), 1.0);
    }
}
