//! The service's counters in one log line a minute (and at shutdown): what
//! came in, what was refused and why, what went out, so an operator sees
//! every loss without a metrics stack.

use super::{Service, STATS_EVERY};
use std::time::Instant;
use tracing::info;

impl Service {
    pub(super) fn log_stats_if_due(&mut self) {
        if self.last_stats.elapsed() < STATS_EVERY {
            return;
        }
        self.last_stats = Instant::now();
        self.log_stats();
    }

    pub(super) fn log_stats(&mut self) {
        let s = self.pipeline.stats();
        info!(
            readings = s.readings,
            malformed = self.malformed,
            oversized = self.oversized,
            quarantined = self.clock_guard.quarantined(),
            dead_lettered = self.dead_letters.refused() - self.dead_letters.not_written(),
            out_of_order = s.socket_safety.out_of_order,
            unsynced = s.unsynced,
            implausible = s.implausible,
            over_quota = s.over_quota,
            repeats = s.repeats,
            alerts = s.alerts,
            store_failures = self.cases.store_failures(),
            "so far: {} readings, {} malformed messages ({} not logged), {} oversized messages dropped, \
             {} quarantined for their timestamp ({} gateways now), {} out of order or repeated, \
             {} stamped by an unsynchronised clock, {} with impossible values, {} refused over the device quota ({} gateways), \
             {} delivered again (same device and seq) and dropped, \
             {} alerts raised ({} not stored: the store failed), {} acknowledged by the broker, \
             {} waiting, {} dropped (queue full), {} not passed to the tap (full); notices: {}",
            s.readings,
            self.malformed,
            self.malformed_budget.take_suppressed(),
            self.oversized,
            self.clock_guard.quarantined(),
            self.clock_guard.gateways_in_quarantine(),
            s.socket_safety.out_of_order,
            s.unsynced,
            s.implausible,
            s.over_quota,
            s.gateways_over_quota,
            s.repeats,
            s.alerts,
            self.cases.store_failures(),
            self.outbox.acknowledged(),
            self.outbox.unacknowledged(),
            self.outbox.dropped(),
            self.tap_dropped,
            self.cases.channel_stats(),
        );
        self.live.log_stats();
    }
}
