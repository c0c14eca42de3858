//! Edge rules and outputs: what the gateway switches by itself, on the
//! spot, without waiting for the centre.
//!
//! A rule such as "an e-bike sighted at the lift lobby → buzzer on and lift
//! relay held for 120 s" fires named [`output`]s; each output holds its pin
//! for its configured time after the last firing, then releases it. Outputs
//! drive any embedded-hal 1.0 [`OutputPin`](embedded_hal::digital::OutputPin):
//! with the `rpi` cargo feature on a Raspberry Pi, real GPIO through rppal
//! ([`gpio`]); without the feature, or off a Pi, a pin that logs what it
//! would switch. The logic is sans-IO: time is passed in as `now_ms`.
//!
//! ```
//! use gridwatch_gateway::edge::{Edge, EdgeConfig};
//!
//! let config: EdgeConfig = toml::from_str(r#"
//!     [[outputs]]
//!     name = "lobby-buzzer"
//!     gpio_bcm = 17
//!     hold_ms = 10000
//!
//!     [[rules]]
//!     when_sighted_at = ["lift_lobby", "lift_car"]
//!     fire = ["lobby-buzzer"]
//! "#)?;
//! let mut edge = Edge::build(&config)?; // logs instead of switching without `rpi`
//! edge.on_sighting("lift_lobby", 0)?;
//! assert!(edge.is_on("lobby-buzzer"));
//! edge.tick(10_000)?;
//! assert!(!edge.is_on("lobby-buzzer"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod gpio;
pub mod output;
pub mod rule;

pub use gpio::Pin;

use gridwatch_telemetry::Clock;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often held outputs are checked for release: a buzzer held for 10 s
/// stops within a tenth of a second of its time.
pub const RELEASE_CHECK: Duration = Duration::from_millis(100);
pub use output::{HeldOutput, LoggedPin, OutputConfig};
pub use rule::{Edge, EdgeConfig, RuleConfig};

/// Why edge outputs could not be built or switched.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Two outputs share a name.
    #[error("edge output {0:?} is configured twice")]
    DuplicateOutput(String),
    /// A rule fires an output that is not configured.
    #[error("edge rule {rule} fires output {output:?}, which is not configured")]
    UnknownOutput {
        /// Index of the rule in the config.
        rule: usize,
        /// The missing output's name.
        output: String,
    },
    /// A GPIO line could not be opened.
    #[error("GPIO {gpio_bcm} for edge output {name:?} could not be opened: {reason}")]
    Gpio {
        /// The output's name.
        name: String,
        /// BCM pin number.
        gpio_bcm: u8,
        /// What the GPIO layer said.
        reason: String,
    },
    /// Switching a pin failed.
    #[error("edge output {name:?} could not be switched: {reason}")]
    Switch {
        /// The output's name.
        name: String,
        /// What the pin said.
        reason: String,
    },
}

/// Releases held outputs when their time runs out, until `shutdown`; then
/// switches every output off, so a stopped gateway leaves no buzzer
/// sounding and no lift held.
pub async fn release_outputs(
    edge: Arc<Mutex<Edge>>,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(RELEASE_CHECK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let tick = |now_ms: u64| {
        let mut edge = match edge.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = edge.tick(now_ms) {
            tracing::warn!("edge outputs could not be released: {e}");
        }
    };
    loop {
        tokio::select! {
            _ = interval.tick() => tick(u64::try_from(clock.now().millis()).unwrap_or(0)),
            _ = shutdown.cancelled() => break,
        }
    }
    tick(u64::MAX);
}
