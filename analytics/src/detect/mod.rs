//! Detectors: small per-entity state machines fed readings in event-time
//! order, each returning [`Finding`]s with the numbers that justify them.
//!
//! Detectors are sans-IO: they never read the wall clock, touch the network
//! or know where an alert will go. That is what lets a replay of a recorded
//! stream, or a simulated district running 1000× faster than real time, give
//! exactly the alerts the live run gives — and lets every edge case be a
//! plain unit test. Routing to a grid cell happens afterwards
//! ([`crate::alerts`]).

pub mod episode;
pub mod socket_safety;

use crate::config::FieldError;
use gridwatch_telemetry::{Evidence, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// The `[detect]` section: one sub-section per detector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Charging-pile socket protections (overcurrent, overpower, over-temperature).
    pub socket_safety: socket_safety::SocketSafetyConfig,
}

impl DetectConfig {
    /// Checks every detector's section.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.socket_safety
            .validate()
            .map_err(|e| e.within(&["socket_safety"]))
    }
}

/// A confirmed hazard on one entity, before it is routed to a grid cell and
/// becomes an [`gridwatch_telemetry::Alert`].
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable per (rule, entity, episode): `{rule}:{entity}:{episode start ms}`,
    /// so a re-delivered or replayed alert folds into the one already open.
    pub id: String,
    /// The rule that fired (`socket_overcurrent`, …).
    pub rule: &'static str,
    /// The entity (`site/gateway/device#socket`).
    pub entity: String,
    /// The site, for routing.
    pub site: String,
    /// How urgent.
    pub severity: Severity,
    /// Event time at which the condition was confirmed.
    pub ts: Timestamp,
    /// One line for a phone notification.
    pub title: String,
    /// A few sentences with the numbers and what to do.
    pub summary: String,
    /// The numbers.
    pub evidence: Evidence,
}
