//! What analytics raises: a hazard on an entity, with the numbers that justify it.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How fast a person must act. Maps to response times (docs/detection.md):
/// critical in minutes, major the same day, minor in the inspection backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Inspection backlog (e.g. group-rental suspicion).
    Minor,
    /// Same day.
    Major,
    /// Minutes; cut power where hardware allows.
    Critical,
}

impl Severity {
    /// The wire and topic name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an alert stands in its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised, nobody has acknowledged it.
    Open,
    /// A person has taken it.
    Acknowledged,
    /// Being handled on site.
    InProgress,
    /// Handled, with a disposition; awaiting the re-check.
    Resolved,
    /// Finished.
    Closed,
}

/// One sample of a series shown as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When.
    pub ts: Timestamp,
    /// The value.
    pub value: f64,
}

/// The numbers behind an alert, so the person receiving it can judge it
/// without opening another tool.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// The observed values that crossed a threshold (peak, mean, duration, …).
    pub values: BTreeMap<String, f64>,
    /// The thresholds they were compared with, named like the config keys.
    pub thresholds: BTreeMap<String, f64>,
    /// First and last sample of the condition.
    pub window_start: Timestamp,
    /// Last sample of the condition.
    pub window_end: Timestamp,
    /// The series that crossed (e.g. `current_a`), sample by sample.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<Sample>,
    /// Name of the series in `samples`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
}

/// An alert raised by a detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Payload schema version ([`crate::SCHEMA_VERSION`]).
    #[serde(default = "crate::codec::default_schema")]
    pub schema: u32,
    /// Stable id: one alert per (rule, entity) while it is open.
    pub id: String,
    /// The rule that fired (`socket_overcurrent`, …).
    pub rule: String,
    /// The entity it concerns (`site/gateway/device#socket`).
    pub entity: String,
    /// The grid cell whose staff handle it.
    pub cell: String,
    /// The site.
    pub site: String,
    /// How urgent.
    pub severity: Severity,
    /// Handling state.
    pub state: AlertState,
    /// When the condition was confirmed (event time of the data, not wall time).
    pub ts: Timestamp,
    /// One line for a phone notification.
    pub title: String,
    /// A few sentences with the numbers.
    pub summary: String,
    /// The numbers.
    pub evidence: Evidence,
}
