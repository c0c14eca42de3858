//! Drives a [`SharedPile`] from the real clock, optionally faster than real
//! time, for the demo and for live gateway tests.
//!
//! The model itself never reads a clock; this task is the one place that
//! does, and it only turns elapsed real time into `step` calls.

use tokio::task::JoinHandle;
use tokio::time::{self, Duration, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::SharedPile;

/// Invalid arguments to [`spawn_clock`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    /// `speed` is not a finite number above 0.
    #[error("clock speed must be a finite number above 0, not {0}")]
    Speed(f64),
    /// `tick_ms` is 0.
    #[error("clock tick must be at least 1 ms")]
    Tick,
}

/// Spawns a task that, every `tick_ms` of real time, advances the pile by
/// the real time elapsed × `speed` (so `speed = 1000.0` runs a 6-hour charge
/// in about 22 s). Elapsed time is measured rather than assumed, so a busy
/// machine slows nothing down; fractions of a simulated ms carry over.
///
/// Stops when `shutdown` is cancelled. Must be called inside a Tokio runtime.
pub fn spawn_clock(
    pile: SharedPile,
    speed: f64,
    tick_ms: u64,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, ClockError> {
    if !(speed.is_finite() && speed > 0.0) {
        return Err(ClockError::Speed(speed));
    }
    if tick_ms == 0 {
        return Err(ClockError::Tick);
    }
    Ok(tokio::spawn(async move {
        let mut ticks = time::interval(Duration::from_millis(tick_ms));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last = Instant::now();
        let mut carry_ms = 0.0_f64;
        debug!("pile clock runs at {speed}x real time, ticking every {tick_ms} ms");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {
                    let now = Instant::now();
                    carry_ms += (now - last).as_secs_f64() * 1000.0 * speed;
                    last = now;
                    let whole = carry_ms.floor();
                    carry_ms -= whole;
                    // Saturating float-to-int cast: an absurd value cannot wrap.
                    pile.with(|p| p.step(whole as u64));
                }
            }
        }
        debug!("pile clock stopped");
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pile::{PileConfig, PileModel};

    #[tokio::test]
    async fn clock_runs_the_model_faster_than_real_time() {
        // One socket: this tests the clock, not how fast an unoptimised
        // build runs the firmware for many sockets.
        let config = PileConfig {
            sockets: 1,
            ..PileConfig::default()
        };
        let pile = SharedPile::new(PileModel::new(config).expect("valid"));
        let shutdown = CancellationToken::new();
        let task = spawn_clock(pile.clone(), 60_000.0, 5, shutdown.clone()).expect("valid args");
        time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
        task.await.expect("clock task did not panic");
        let simulated = pile.with(|p| p.now_ms());
        // 200 ms real × 60 000 = 3.3 simulated hours; allow a slow machine.
        assert!(simulated >= 60 * 60_000, "only {simulated} ms simulated");
        let stopped_at = simulated;
        time::sleep(Duration::from_millis(30)).await;
        assert_eq!(pile.with(|p| p.now_ms()), stopped_at);
    }

    #[tokio::test]
    async fn invalid_speed_or_tick_is_refused() {
        let pile = SharedPile::new(PileModel::new(PileConfig::default()).expect("valid"));
        let t = CancellationToken::new();
        assert!(matches!(
            spawn_clock(pile.clone(), f64::NAN, 10, t.clone()),
            Err(ClockError::Speed(_))
        ));
        assert!(matches!(
            spawn_clock(pile.clone(), 0.0, 10, t.clone()),
            Err(ClockError::Speed(_))
        ));
        assert!(matches!(
            spawn_clock(pile, 1.0, 0, t),
            Err(ClockError::Tick)
        ));
    }
}
