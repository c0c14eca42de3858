//! A profile-driven Modbus device simulator: any profile in
//! `config/devices/` becomes a device with plausible, changing values.
//!
//! - [`image`]: the register image, transport-independent.
//! - [`model`]: values by unit and name, encoded as the profile says.
//! - [`server`]: Modbus TCP in front of one or more devices (unit ids), with
//!   exceptions, silence and disappearance on demand.
//!
//! ```
//! use gridwatch_gateway::profile::ProfileLibrary;
//! use gridwatch_simulators::meter::MeterModel;
//!
//! let profile = ProfileLibrary::built_in().get("eastron-sdm630")?;
//! let meter = MeterModel::new(profile, 1);
//! let v = meter.reading(None)["voltage_l1_v"];
//! assert!((220.0..240.0).contains(&v));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod image;
pub mod model;
pub mod server;

pub use model::{MeterModel, SharedMeter};
pub use server::{serve, Behaviour, Control, MeterService, Units};

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Advances every meter in `units` from the real clock, `speed` simulated
/// seconds per second, every `tick`, until `shutdown`.
pub fn spawn_clock(
    units: Units,
    speed: f64,
    tick: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let mut interval = tokio::time::interval(tick);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let t_ms = (start.elapsed().as_secs_f64() * speed * 1000.0) as u64;
            for meter in units.values() {
                meter.with(|m| m.step(t_ms));
            }
        }
    })
}
