//! The pure pipeline: reading in, alerts out — every detector, then routing.
//!
//! No I/O and no clock: [`crate::service`] feeds it from MQTT, and a test or a
//! replay of a recorded stream feeds it from memory and gets the same alerts.

use crate::alerts::{self, route::CellRouter};
use crate::detect::group_rental::{GroupRental, GroupRentalStats};
use crate::detect::indoor_charging::{IndoorCharging, IndoorChargingStats};
use crate::detect::meter_health::MeterHealth;
use crate::detect::night_water::NightWater;
use crate::detect::pile_offline::PileOffline;
use crate::detect::socket_safety::{SocketSafety, SocketSafetyStats};
use crate::detect::socket_session::{SocketSession, SocketSessionStats};
use crate::detect::three_in_one::{ThreeInOne, ThreeInOneStats};
use crate::detect::utility_group_rental::{UtilityGroupRental, UtilityGroupRentalStats};
use crate::detect::Finding;
use crate::entity_quota::{Admitted, EntityQuota};
use crate::plausibility::Plausibility;
use crate::register::Register;
use gridwatch_telemetry::{Alert, Event, Reading};

/// Counters across the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PipelineStats {
    /// Readings processed.
    pub readings: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Events processed.
    pub events: u64,
    /// The socket-safety detector's own counters.
    pub socket_safety: SocketSafetyStats,
    /// The pile session rules' counters.
    pub socket_session: SocketSessionStats,
    /// The indoor-charging detector's counters.
    pub indoor_charging: IndoorChargingStats,
    /// The group-rental detector's counters.
    pub group_rental: GroupRentalStats,
    /// The three-in-one detector's counters.
    pub three_in_one: ThreeInOneStats,
    /// The utility-resolution group-rental detector's counters.
    pub group_rental_utility: UtilityGroupRentalStats,
    /// Readings kept out of every detector because a value was physically
    /// impossible ([`crate::plausibility`]).
    pub implausible: u64,
    /// Readings kept out of every detector because their gateway stamped
    /// them before its clock was synchronised (`clock_unsynced`).
    pub unsynced: u64,
    /// Readings and events refused because their gateway had reached its
    /// quota of devices ([`crate::entity_quota`]).
    pub over_quota: u64,
    /// Gateways that reached that quota.
    pub gateways_over_quota: usize,
    /// Readings and events dropped because their device had delivered
    /// that seq before (an uplink re-sending after a reconnect).
    pub repeats: u64,
}

/// Memory held for monitored flats by the flat detectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlatMemory {
    /// Flats with state.
    pub flats: usize,
    /// Bytes of that state (keys and indexes included).
    pub bytes: usize,
    /// The same bytes by detector, in the order of [`FlatMemory::DETECTORS`]:
    /// where a per-flat budget goes, so that the next saving is found by
    /// reading, not by guessing.
    pub by_detector: [usize; 6],
}

impl FlatMemory {
    /// The detectors of [`FlatMemory::by_detector`], by name.
    pub const DETECTORS: [&'static str; 6] = [
        "indoor_charging",
        "group_rental",
        "meter_health",
        "night_water",
        "three_in_one",
        "group_rental_utility",
    ];

    /// Bytes per monitored flat.
    pub fn per_flat(&self) -> f64 {
        self.bytes as f64 / self.flats.max(1) as f64
    }
}

/// Every detector's per-entity state and the pipeline's counters: what a
/// checkpoint saves ([`crate::checkpoint`]) so that a restarted service
/// resumes instead of relearning weeks of baselines.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PipelineState {
    socket_safety: SocketSafety,
    socket_session: SocketSession,
    meter_health: MeterHealth,
    night_water: NightWater,
    pile_offline: PileOffline,
    indoor_charging: IndoorCharging,
    group_rental: GroupRental,
    three_in_one: ThreeInOne,
    group_rental_utility: UtilityGroupRental,
    quota: EntityQuota,
    implausible: u64,
    unsynced: u64,
    readings: u64,
    events: u64,
    alerts: u64,
}

/// Detectors and routing, with all per-entity state.
/// The sections of the config a pipeline is built from: the detectors'
/// settings, the cells alerts are routed to and what ingest admits. Built
/// from the whole config by `From<&AnalyticsConfig>` (in [`crate::config`]),
/// so callers pass `&config` and this module does not depend on the file's
/// layout.
#[derive(Debug, Clone, Default)]
pub struct PipelineConfig {
    /// `[detect]`: every detector's thresholds and the site's UTC offset.
    pub detect: crate::detect::DetectConfig,
    /// `[cells]`: which grid cell handles each site.
    pub cells: crate::alerts::route::CellsConfig,
    /// `[ingest]`: the device quota per gateway and the plausible ranges.
    pub ingest: crate::ingest::IngestConfig,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    s: PipelineState,
    register: std::sync::Arc<Register>,
    router: CellRouter,
    plausibility: Plausibility,
}

impl Pipeline {
    /// A pipeline with empty state. The config should have been validated
    /// ([`crate::config::AnalyticsConfig::load`] does); out-of-range numbers
    /// in a config built in code are clamped rather than panicking.
    pub fn new(config: impl Into<PipelineConfig>) -> Self {
        Self::with_register(config, Register::default())
    }

    /// A pipeline that knows the register of flats and tags (registered
    /// occupants, businesses, tag owners); without it group rental assumes
    /// `default_occupants` and sightings name the reader, not the flat.
    pub fn with_register(config: impl Into<PipelineConfig>, register: Register) -> Self {
        let config = config.into();
        let d = &config.detect;
        Self {
            s: PipelineState {
                socket_safety: SocketSafety::new(&d.socket_safety),
                socket_session: SocketSession::new(&d.socket_session),
                meter_health: MeterHealth::new(&d.meter_health),
                night_water: NightWater::new(&d.night_water, d.local_time()),
                pile_offline: PileOffline::new(&d.pile_offline),
                indoor_charging: IndoorCharging::new(&d.indoor_charging, d.local_time()),
                group_rental: GroupRental::new(&d.group_rental, d.local_time()),
                three_in_one: ThreeInOne::new(&d.three_in_one, d.local_time()),
                group_rental_utility: UtilityGroupRental::new(
                    &d.group_rental_utility,
                    d.local_time(),
                ),
                quota: EntityQuota::new(config.ingest.max_entities_per_gateway),
                implausible: 0,
                unsynced: 0,
                readings: 0,
                events: 0,
                alerts: 0,
            },
            register: std::sync::Arc::new(register),
            router: CellRouter::new(&config.cells),
            plausibility: Plausibility::new(&config.ingest.plausible),
        }
    }

    /// Puts a re-read register in force: from the next reading on, every
    /// detector judges against it (each day against the entry in force
    /// that day, where the register keeps history).
    pub fn set_register(&mut self, register: std::sync::Arc<Register>) {
        self.register = register;
    }

    /// The detectors' state and counters, for a checkpoint.
    pub fn state(&self) -> &PipelineState {
        &self.s
    }

    /// Carries on from a checkpoint's state; the register, routing and
    /// plausibility ranges stay those of the running config.
    pub fn restore(&mut self, state: PipelineState) {
        self.s = state;
    }

    /// Feeds one reading to every detector that applies and returns the
    /// alerts it confirmed, routed to their grid cell. Readings of one entity
    /// must come in event-time order; earlier ones are ignored, and one
    /// whose device delivered its seq before is dropped and counted
    /// (`repeats`): no detector judges a reading twice.
    ///
    /// A reading stamped by an unsynchronised clock, with a physically
    /// impossible value, or from a gateway over its device quota, is
    /// counted and feeds nothing.
    pub fn process(&mut self, reading: &Reading) -> Vec<Alert> {
        self.s.readings += 1;
        if reading.clock_unsynced {
            // Stamped before the gateway's clock was synchronised: the
            // time may be anything, so no detector may judge it.
            self.s.unsynced += 1;
            return Vec::new();
        }
        if self.plausibility.check(reading).is_err() {
            self.s.implausible += 1;
            return Vec::new();
        }
        match self.s.quota.admit(
            reading.site.as_str(),
            reading.gateway.as_str(),
            &reading.entity(),
            reading.seq,
            reading.ts.0,
        ) {
            Ok(Admitted::Fresh) => {}
            // Delivered before (docs/outbox.md): counted, judged once.
            Ok(Admitted::Repeat) | Err(_) => return Vec::new(),
        }
        let mut findings = self.s.socket_safety.observe(reading);
        findings.extend(self.s.socket_session.observe(reading));
        findings.extend(self.s.meter_health.observe(reading));
        findings.extend(self.s.night_water.observe(reading));
        self.s.pile_offline.observe(reading);
        findings.extend(self.s.indoor_charging.observe(reading));
        findings.extend(self.s.group_rental.observe(reading, &self.register));
        findings.extend(self.s.three_in_one.observe(reading, &self.register));
        findings.extend(self.s.group_rental_utility.observe(reading, &self.register));
        self.route(findings)
    }

    /// Feeds one event (a sighting, a device going offline) to the detectors
    /// that use events.
    pub fn process_event(&mut self, event: &Event) -> Vec<Alert> {
        self.s.events += 1;
        let entity = format!("{}/{}/{}", event.site, event.gateway, event.device);
        match self.s.quota.admit(
            event.site.as_str(),
            event.gateway.as_str(),
            &entity,
            event.seq,
            event.ts.0,
        ) {
            Ok(Admitted::Fresh) => {}
            Ok(Admitted::Repeat) | Err(_) => return Vec::new(),
        }
        self.s.socket_session.observe_event(event);
        let mut findings = self.s.indoor_charging.observe_event(event, &self.register);
        findings.extend(self.s.pile_offline.observe_event(event));
        self.route(findings)
    }

    /// Routes a finding made outside the detectors (the live service's
    /// [`crate::clock_guard`]) like any other.
    pub fn raise_finding(&mut self, finding: Finding) -> Alert {
        let cell = self.router.cell_for(&finding.site).to_owned();
        self.s.alerts += 1;
        alerts::raise(finding, &cell)
    }

    fn route(&mut self, findings: Vec<Finding>) -> Vec<Alert> {
        if findings.is_empty() {
            return Vec::new();
        }
        let alerts: Vec<Alert> = findings
            .into_iter()
            .map(|f| {
                let cell = self.router.cell_for(&f.site).to_owned();
                alerts::raise(f, &cell)
            })
            .collect();
        self.s.alerts += alerts.len() as u64;
        alerts
    }

    /// Memory held for monitored flats by the flat detectors together.
    pub fn flat_memory(&self) -> FlatMemory {
        let (n1, b1) = self.s.indoor_charging.memory();
        let (n2, b2) = self.s.group_rental.memory();
        // Meter health keeps one small track per meter (three per flat).
        let (_, b3) = self.s.meter_health.memory();
        let (_, b4) = self.s.night_water.memory();
        let (n5, b5) = self.s.three_in_one.memory();
        let (n6, b6) = self.s.group_rental_utility.memory();
        FlatMemory {
            flats: n1.max(n2).max(n5).max(n6),
            bytes: b1 + b2 + b3 + b4 + b5 + b6,
            by_detector: [b1, b2, b3, b4, b5, b6],
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            readings: self.s.readings,
            alerts: self.s.alerts,
            events: self.s.events,
            socket_safety: self.s.socket_safety.stats(),
            socket_session: self.s.socket_session.stats(),
            indoor_charging: self.s.indoor_charging.stats(),
            group_rental: self.s.group_rental.stats(),
            three_in_one: self.s.three_in_one.stats(),
            group_rental_utility: self.s.group_rental_utility.stats(),
            implausible: self.s.implausible,
            unsynced: self.s.unsynced,
            over_quota: self.s.quota.refused(),
            gateways_over_quota: self.s.quota.gateways_over(),
            repeats: self.s.quota.repeats(),
        }
    }

    /// The plausibility check the pipeline applies, so the live service can
    /// name the refused value in its log and dead-letter file.
    pub fn plausibility(&self) -> &Plausibility {
        &self.plausibility
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::route::SiteCell;
    use crate::config::AnalyticsConfig;
    use gridwatch_telemetry::{AlertState, DeviceKind, Severity, Timestamp};

    fn socket_reading(site: &str, s: i64, current_a: f64) -> Reading {
        let mut r = Reading::new(
            Timestamp(s * 1000),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            s as u64,
        );
        r.site = site.into();
        r.socket = Some(3);
        r.values.insert("current_a".into(), current_a);
        r
    }

    #[test]
    fn alerts_are_routed_to_the_sites_cell_or_the_default() {
        let mut config = AnalyticsConfig::default();
        config.cells.sites.push(SiteCell {
            site: "yard-a".into(),
            cell: "cell-07".into(),
        });
        let mut p = Pipeline::new(&config);
        let mut alerts = Vec::new();
        for s in 0..=10 {
            alerts.extend(p.process(&socket_reading("yard-a", s, 7.0)));
            alerts.extend(p.process(&socket_reading("yard-b", s, 7.0)));
        }
        let cells: Vec<&str> = alerts.iter().map(|a| a.cell.as_str()).collect();
        assert_eq!(cells, ["cell-07", "unassigned"]);
        assert!(alerts
            .iter()
            .all(|a| a.state == AlertState::Open && a.severity == Severity::Critical));
        assert_eq!(p.stats().alerts, 2);
        assert_eq!(p.stats().readings, 22);
    }

    #[test]
    fn normal_charging_raises_nothing() {
        let mut p = Pipeline::new(&AnalyticsConfig::default());
        for s in 0..3600 {
            assert!(p.process(&socket_reading("yard-a", s, 2.5)).is_empty());
        }
    }

    #[test]
    fn readings_stamped_by_an_unsynchronised_clock_judge_nothing() {
        let mut p = Pipeline::new(&AnalyticsConfig::default());
        let mut alerts = Vec::new();
        for s in 0..=10 {
            let mut r = socket_reading("yard-a", s, 7.0);
            r.clock_unsynced = true;
            alerts.extend(p.process(&r));
        }
        assert!(alerts.is_empty(), "{alerts:?}");
        assert_eq!(p.stats().unsynced, 11);
        // The same readings with a trusted clock raise the overcurrent.
        for s in 0..=10 {
            alerts.extend(p.process(&socket_reading("yard-a", s, 7.0)));
        }
        assert_eq!(alerts.len(), 1);
    }

    #[test]
    fn a_reading_delivered_again_is_judged_once_and_counted() {
        // An empty flat's water meter, hourly; the reading of its last use
        // is delivered again with a later stamp. Judged twice, its 12 L
        // would be use the register never showed: meter_stuck on a healthy
        // meter a day later.
        let wm = |h: i64, seq: u64, volume: f64, flow: f64| {
            let mut r = Reading::new(
                Timestamp(h * 3_600_000),
                "gw-1",
                "wm-0101",
                DeviceKind::WaterMeter,
                seq,
            );
            r.site = "s01".into();
            r.values.insert("volume_m3".into(), volume);
            r.values.insert("flow_l".into(), flow);
            r
        };
        let mut p = Pipeline::new(&AnalyticsConfig::default());
        let mut alerts = Vec::new();
        alerts.extend(p.process(&wm(0, 1, 1.0, 0.0)));
        alerts.extend(p.process(&wm(1, 2, 1.012, 12.0)));
        for h in 2..=72 {
            alerts.extend(p.process(&wm(h, h as u64 + 1, 1.012, 0.0)));
            if h == 3 {
                alerts.extend(p.process(&wm(1, 2, 1.012, 12.0)));
                alerts.extend(p.process(&wm(3, 2, 1.012, 12.0)));
            }
        }
        let rules: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
        assert!(rules.is_empty(), "{rules:?}");
        assert_eq!(p.stats().repeats, 2);
        assert_eq!(p.stats().readings, 75);
    }
}
