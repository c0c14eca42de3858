//! The gateway's own health, as published retained on its status topic.
//!
//! Pollers count devices in and out of [`Health`]; the MQTT uplink composes
//! a [`Status`] from it whenever it (re)connects, when its figures change
//! (at least every minute), and when it shuts down, and registers the
//! offline variant as the broker's last will.

use gridwatch_telemetry::{
    GatewayId, GatewayState, SeqGap, SiteId, Status, Timestamp, SCHEMA_VERSION,
};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// Live counters shared by pollers and the uplink.
#[derive(Debug)]
pub struct Health {
    gateway: GatewayId,
    site: SiteId,
    devices_total: u32,
    devices_online: AtomicU32,
    outbox_pending: AtomicU64,
    outbox_dropped: AtomicU64,
    outbox_full_dropped: AtomicU64,
    seq_gaps: Mutex<Vec<SeqGap>>,
}

impl Health {
    /// Counters for a gateway with `devices_total` configured devices.
    pub fn new(gateway: GatewayId, site: SiteId, devices_total: u32) -> Self {
        Self {
            gateway,
            site,
            devices_total,
            devices_online: AtomicU32::new(0),
            outbox_pending: AtomicU64::new(0),
            outbox_dropped: AtomicU64::new(0),
            outbox_full_dropped: AtomicU64::new(0),
            seq_gaps: Mutex::new(Vec::new()),
        }
    }

    /// A device started answering.
    pub fn device_up(&self) {
        self.devices_online.fetch_add(1, Ordering::Relaxed);
    }

    /// A device that was answering stopped.
    pub fn device_down(&self) {
        // Never below zero, even if a caller miscounts.
        let _ = self
            .devices_online
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// The outbox's latest counters: records not yet delivered everywhere,
    /// records dropped at its cap since start, and records it could not
    /// store (a full disk). Plain numbers, so status and outbox know nothing
    /// of each other; the daemon wires the writer's counters here.
    pub fn set_outbox(&self, pending: u64, cap_dropped: u64, full_dropped: u64) {
        self.outbox_pending.store(pending, Ordering::Relaxed);
        self.outbox_dropped
            .store(cap_dropped.saturating_add(full_dropped), Ordering::Relaxed);
        self.outbox_full_dropped
            .store(full_dropped, Ordering::Relaxed);
    }

    /// The seqs skipped by the last restart (see [`Status::seq_gaps`]),
    /// announced in every status of this run.
    pub fn set_seq_gaps(&self, gaps: Vec<SeqGap>) {
        *self.seq_gaps.lock().unwrap_or_else(|p| p.into_inner()) = gaps;
    }

    /// Records the outbox dropped since start, for any reason.
    pub fn outbox_dropped(&self) -> u64 {
        self.outbox_dropped.load(Ordering::Relaxed)
    }

    /// Devices answering now.
    pub fn devices_online(&self) -> u32 {
        self.devices_online.load(Ordering::Relaxed)
    }

    /// The status message for `state` at `ts`.
    pub fn status(&self, state: GatewayState, ts: Timestamp) -> Status {
        Status {
            schema: SCHEMA_VERSION,
            ts,
            gateway: self.gateway.clone(),
            site: self.site.clone(),
            state,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            devices_total: self.devices_total,
            devices_online: match state {
                GatewayState::Online => self.devices_online(),
                GatewayState::Offline => 0,
            },
            outbox_pending: self.outbox_pending.load(Ordering::Relaxed),
            outbox_dropped: self.outbox_dropped(),
            outbox_full_dropped: self.outbox_full_dropped.load(Ordering::Relaxed),
            seq_gaps: self
                .seq_gaps
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            clock_synced: Some(crate::clock_sync::trusted_now(ts)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_status_reports_no_device_online() {
        let h = Health::new("gw".into(), "site".into(), 2);
        h.device_up();
        h.device_down();
        h.device_down();
        assert_eq!(h.devices_online(), 0);
        h.device_up();
        let on = h.status(GatewayState::Online, Timestamp(5));
        assert_eq!((on.devices_total, on.devices_online), (2, 1));
        assert_eq!(
            h.status(GatewayState::Offline, Timestamp(5)).devices_online,
            0
        );
    }
}
