//! The pure pipeline: reading in, alerts out — every detector, then routing.
//!
//! No I/O and no clock: [`crate::service`] feeds it from MQTT, and a test or a
//! replay of a recorded stream feeds it from memory and gets the same alerts.

use crate::alerts::{self, route::CellRouter};
use crate::config::AnalyticsConfig;
use crate::detect::socket_safety::{SocketSafety, SocketSafetyStats};
use gridwatch_telemetry::{Alert, Reading};

/// Counters across the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Readings processed.
    pub readings: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// The socket-safety detector's own counters.
    pub socket_safety: SocketSafetyStats,
}

/// Detectors and routing, with all per-entity state.
#[derive(Debug, Clone)]
pub struct Pipeline {
    socket_safety: SocketSafety,
    router: CellRouter,
    readings: u64,
    alerts: u64,
}

impl Pipeline {
    /// A pipeline with empty state. The config should have been validated
    /// ([`AnalyticsConfig::load`] does); out-of-range numbers in a config
    /// built in code are clamped rather than panicking.
    pub fn new(config: &AnalyticsConfig) -> Self {
        Self {
            socket_safety: SocketSafety::new(&config.detect.socket_safety),
            router: CellRouter::new(&config.cells),
            readings: 0,
            alerts: 0,
        }
    }

    /// Feeds one reading to every detector that applies and returns the
    /// alerts it confirmed, routed to their grid cell. Readings of one entity
    /// must come in event-time order; earlier or repeated ones are ignored.
    pub fn process(&mut self, reading: &Reading) -> Vec<Alert> {
        self.readings += 1;
        let alerts: Vec<Alert> = self
            .socket_safety
            .observe(reading)
            .into_iter()
            .map(|f| {
                let cell = self.router.cell_for(&f.site).to_owned();
                alerts::raise(f, &cell)
            })
            .collect();
        self.alerts += alerts.len() as u64;
        alerts
    }

    /// Counters so far.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            readings: self.readings,
            alerts: self.alerts,
            socket_safety: self.socket_safety.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::route::SiteCell;
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
}
