//! Alerts: turning a detector's [`Finding`] into an [`Alert`] for the grid
//! cell that handles it, and showing it to a person.
//!
//! The life cycle (acknowledge, escalate, close with a disposition) and the
//! store come later; for now every alert is raised `open`, and its stable id
//! lets the consumer fold a re-delivery into the alert it already has.

pub mod render;
pub mod route;

use crate::detect::Finding;
use gridwatch_telemetry::{Alert, AlertState, SCHEMA_VERSION};

/// The alert for `finding`, routed to `cell`.
pub fn raise(finding: Finding, cell: &str) -> Alert {
    Alert {
        schema: SCHEMA_VERSION,
        id: finding.id,
        rule: finding.rule.to_owned(),
        entity: finding.entity,
        cell: cell.to_owned(),
        site: finding.site,
        severity: finding.severity,
        state: AlertState::Open,
        ts: finding.ts,
        title: finding.title,
        summary: finding.summary,
        evidence: finding.evidence,
    }
}
