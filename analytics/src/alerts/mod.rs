//! Alerts: turning a detector's [`Finding`] into an [`Alert`] for the grid
//! cell that handles it, and showing it to a person.
//!
//! Every alert is raised `open`; its stable id lets a consumer fold a
//! re-delivery into the alert it already has. What happens next is the life
//! cycle ([`crate::lifecycle`]: acknowledge, close with a disposition, re-check),
//! applied to the cases in [`crate::store`] by [`crate::dispatch`], which also
//! escalates along the [`directory`] in event time.

pub mod directory;
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
