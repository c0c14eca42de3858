//! Re-reading the register without a restart: the service looks at the
//! file every `[register] reload_check_s` and, when it changed, puts the new
//! register in force for the detectors, the charts and the dashboard at
//! once. A file that fails to read keeps the register in force; the failure
//! is logged with the file's own error and counted.

use super::Service;
use crate::register::shared::{RegisterWatch, Reload};
use crate::register::RegisterConfig;
use std::time::Duration;
use tracing::{info, warn};

/// The watch `config` asks for: none without a file or with checks off.
pub(super) fn watch(config: &RegisterConfig) -> Option<RegisterWatch> {
    match &config.path {
        Some(p) if config.reload_check_s > 0 => Some(RegisterWatch::new(p)),
        _ => None,
    }
}

/// When to look: every `reload_check_s`, or once a day when off (the tick
/// then does nothing).
pub(super) fn tick(config: &RegisterConfig) -> tokio::time::Interval {
    let every = match config.reload_check_s {
        0 => Duration::from_secs(86_400),
        s => Duration::from_secs(s),
    };
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

impl Service {
    pub(super) fn reload_register(&mut self) {
        let Some(watch) = &mut self.register_watch else {
            return;
        };
        match watch.check() {
            Reload::Unchanged => {}
            Reload::Changed(register) => {
                let (flats, tags) = register.counts();
                let shared = self.live.history.register().set(register);
                self.pipeline.set_register(shared);
                info!(
                    register_reloads = watch.reloads,
                    "register {} changed: {flats} flats, {tags} tags now in force (reload {})",
                    watch.path().display(),
                    watch.reloads
                );
            }
            Reload::Failed(e) => warn!(
                register_reload_failures = watch.failures,
                "{e}; the register read before stays in force ({} failed reloads so far)",
                watch.failures
            ),
        }
    }
}
