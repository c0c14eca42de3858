//! The gateway's own health, as published retained on its status topic.
//!
//! Pollers count devices in and out of [`Health`]; the MQTT uplink composes
//! a [`Status`] from it whenever it (re)connects, when its figures change
//! (at least every minute), and when it shuts down, and registers the
//! offline variant as the broker's last will.
//!
//! It also keeps figures per device (polls, failures, latency, whether it
//! answered) and per uplink (connected or not): the metrics endpoint
//! publishes them, and a remote config on trial is judged by them.

use gridwatch_telemetry::{
    ConfigStatus, GatewayId, GatewayState, SeqGap, SiteId, Status, Timestamp, SCHEMA_VERSION,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The config state told in every status, shared by the remote-config
/// supervisor (which outlives each run of the daemon) and the status.
pub type SharedConfigStatus = Arc<Mutex<Option<ConfigStatus>>>;

/// What one device did since the gateway (or its current config) started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFigures {
    /// Polls attempted.
    pub polls: u64,
    /// Polls that gave no values: no answer at all, or only exceptions (a
    /// TCP-to-RS-485 converter answering for a unit that is not there).
    pub unanswered: u64,
    /// Polls that gave values and an error for part of the registers.
    pub partial: u64,
    /// Sum of the times answered polls took, in milliseconds.
    pub latency_ms_sum: u64,
    /// Whether it answered at least once.
    pub answered: bool,
    /// Whether it counts as online now (answered since it was last reported
    /// offline).
    pub online: bool,
}

/// One uplink's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkFigures {
    /// Whether it is connected (MQTT) or its last write went through
    /// (InfluxDB).
    pub up: bool,
    /// Whether it was up at least once.
    pub ever_up: bool,
    /// Connection attempts or writes that failed.
    pub failures: u64,
}

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
    devices: Mutex<BTreeMap<String, DeviceFigures>>,
    uplinks: Mutex<BTreeMap<&'static str, UplinkFigures>>,
    config: SharedConfigStatus,
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
            devices: Mutex::new(BTreeMap::new()),
            uplinks: Mutex::new(BTreeMap::new()),
            config: SharedConfigStatus::default(),
        }
    }

    /// Tells the config state in the status from `config` (kept by the
    /// remote-config supervisor across restarts of the daemon).
    pub fn with_config_status(mut self, config: SharedConfigStatus) -> Self {
        self.config = config;
        self
    }

    /// One poll of `device`: whether it gave values (`answered`; with
    /// errors for some registers: `partial`), and how long it took.
    pub fn record_poll(&self, device: &str, answered: bool, partial: bool, took: Duration) {
        let mut devices = lock(&self.devices);
        // Every poll of every device passes here: no key copied once known.
        if !devices.contains_key(device) {
            devices.insert(device.to_owned(), DeviceFigures::default());
        }
        let Some(d) = devices.get_mut(device) else {
            return;
        };
        d.polls += 1;
        if answered {
            d.answered = true;
            d.online = true;
            d.partial += u64::from(partial);
            d.latency_ms_sum = d
                .latency_ms_sum
                .saturating_add(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        } else {
            d.unanswered += 1;
        }
    }

    /// `device` was reported offline (too many unanswered polls in a row).
    pub fn record_offline(&self, device: &str) {
        lock(&self.devices)
            .entry(device.to_owned())
            .or_default()
            .online = false;
    }

    /// The figures of every device that was polled, by id.
    pub fn device_figures(&self) -> BTreeMap<String, DeviceFigures> {
        lock(&self.devices).clone()
    }

    /// The uplink `name` came up (`true`) or failed (`false`).
    pub fn record_uplink(&self, name: &'static str, up: bool) {
        let mut uplinks = lock(&self.uplinks);
        let u = uplinks.entry(name).or_default();
        u.up = up;
        u.ever_up |= up;
        u.failures += u64::from(!up);
    }

    /// The state of every uplink that reported, by name.
    pub fn uplink_figures(&self) -> BTreeMap<&'static str, UplinkFigures> {
        lock(&self.uplinks).clone()
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
            config: lock(&self.config).clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    #[test]
    fn device_figures_count_polls_and_keep_online_until_reported_offline() {
        let h = Health::new("gw".into(), "site".into(), 1);
        h.record_poll("m", false, false, Duration::from_millis(100));
        assert!(!h.device_figures()["m"].answered);
        h.record_poll("m", true, true, Duration::from_millis(30));
        h.record_poll("m", true, false, Duration::from_millis(20));
        let m = &h.device_figures()["m"];
        assert_eq!(
            (m.polls, m.unanswered, m.partial, m.latency_ms_sum),
            (3, 1, 1, 50)
        );
        assert!(m.answered && m.online);
        h.record_offline("m");
        assert!(!h.device_figures()["m"].online);
    }
}
