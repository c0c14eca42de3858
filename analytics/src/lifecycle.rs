//! The life cycle of an alert case: which person action is allowed in which
//! state, the dispositions a case is closed with, and the `[alerts]` section
//! (cool-downs, acknowledgement times, re-check delay).
//!
//! States (docs/detection.md, "Alert handling that works"): open → acknowledged →
//! in progress → resolved with a disposition → closed once the automatic
//! re-check after `recheck_after_s` found no return. A return of the
//! condition within the cool-down re-opens the case; a data "clear" never
//! closes it — only a person does, with a disposition.
//!
//! Everything here is pure; [`crate::store`] applies it and writes the audit.

use crate::toml_file::FieldError;
use gridwatch_telemetry::{AlertState, Severity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// How a person closed a case. Kept as a label: precision per rule and site
/// is computed from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Inspection confirmed a group rental.
    ConfirmedGroupRental,
    /// Inspection confirmed an e-bike charged indoors.
    ConfirmedIndoorCharging,
    /// The pile or socket is faulty.
    PileFault,
    /// The hazard was real and has been put right.
    Rectified,
    /// Nothing was wrong; the note must say why.
    FalsePositive,
    /// Nobody could get in; says nothing about the rule.
    NoAccess,
}

impl Disposition {
    /// Every disposition, in the order a form lists them.
    pub const ALL: [Disposition; 6] = [
        Disposition::Rectified,
        Disposition::PileFault,
        Disposition::ConfirmedIndoorCharging,
        Disposition::ConfirmedGroupRental,
        Disposition::FalsePositive,
        Disposition::NoAccess,
    ];

    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::ConfirmedGroupRental => "confirmed_group_rental",
            Disposition::ConfirmedIndoorCharging => "confirmed_indoor_charging",
            Disposition::PileFault => "pile_fault",
            Disposition::Rectified => "rectified",
            Disposition::FalsePositive => "false_positive",
            Disposition::NoAccess => "no_access",
        }
    }

    /// The dispositions that can end a case of `rule`: only outcomes the
    /// rule can have, so that a person who closes a group-rental case does
    /// not pick "pile fault" and skew the rule's precision. No access and
    /// false alarm are always there; a rule this build does not know gets
    /// every disposition.
    pub fn offered_for(rule: &str) -> Vec<Disposition> {
        use Disposition::*;
        let real: &[Disposition] = if rule == "group_rental" {
            &[ConfirmedGroupRental]
        } else if rule.starts_with("indoor_") {
            &[ConfirmedIndoorCharging, Rectified]
        } else if rule == crate::tips::RULE_TIP || rule == crate::tips::RULE_PATROL {
            &[ConfirmedGroupRental, ConfirmedIndoorCharging, Rectified]
        } else if rule.starts_with("socket_") || rule.starts_with("pile_") {
            &[Rectified, PileFault]
        } else if matches!(
            rule,
            "three_in_one"
                | "night_water_leak"
                | "meter_no_data"
                | "building_no_data"
                | "meter_stuck"
                | "meter_reversed"
                | "clock_skew"
        ) {
            &[Rectified]
        } else {
            return Self::ALL.to_vec();
        };
        real.iter()
            .copied()
            .chain([FalsePositive, NoAccess])
            .collect()
    }

    /// The disposition named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether the alert was right: `None` when the disposition says nothing
    /// about it (no access).
    pub fn true_positive(self) -> Option<bool> {
        match self {
            Disposition::FalsePositive => Some(false),
            Disposition::NoAccess => None,
            _ => Some(true),
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The database and wire name of a state.
pub fn state_name(s: AlertState) -> &'static str {
    match s {
        AlertState::Open => "open",
        AlertState::Acknowledged => "acknowledged",
        AlertState::InProgress => "in_progress",
        AlertState::Resolved => "resolved",
        AlertState::Closed => "closed",
    }
}

/// The state named `s`.
pub fn parse_state(s: &str) -> Option<AlertState> {
    [
        AlertState::Open,
        AlertState::Acknowledged,
        AlertState::InProgress,
        AlertState::Resolved,
        AlertState::Closed,
    ]
    .into_iter()
    .find(|st| state_name(*st) == s)
}

/// The severity named `s`.
pub fn parse_severity(s: &str) -> Option<Severity> {
    [Severity::Minor, Severity::Major, Severity::Critical]
        .into_iter()
        .find(|v| v.as_str() == s)
}

/// Whether a case in this state still needs a person.
pub fn is_active(s: AlertState) -> bool {
    matches!(
        s,
        AlertState::Open | AlertState::Acknowledged | AlertState::InProgress
    )
}

/// What a person does to a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// "I have it": stops escalation.
    Acknowledge,
    /// Gives the case to a named user (it stays in its state).
    Assign(String),
    /// Work on site has begun.
    Start,
    /// A note for the trail; no state change.
    Comment(String),
    /// Handled: a disposition, a note and photo references.
    Close {
        /// How it ended.
        disposition: Disposition,
        /// What was found and done.
        note: String,
        /// References to photos kept elsewhere.
        photos: Vec<String>,
    },
}

impl Action {
    /// The audit-trail name.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Assign(_) => "assign",
            Action::Start => "start",
            Action::Comment(_) => "comment",
            Action::Close { .. } => "close",
        }
    }
}

/// An action that the case's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot {action} an alert that is {state}")]
pub struct TransitionError {
    /// The action's name.
    pub action: &'static str,
    /// The state's name.
    pub state: &'static str,
}

/// The state after `action` on a case in `state`.
pub fn transition(state: AlertState, action: &Action) -> Result<AlertState, TransitionError> {
    use AlertState::*;
    let next = match (action, state) {
        (Action::Acknowledge, Open) => Some(Acknowledged),
        (Action::Start, Open | Acknowledged) => Some(InProgress),
        (Action::Assign(_) | Action::Comment(_), s) if is_active(s) => Some(s),
        (Action::Comment(_), s) => Some(s),
        (Action::Close { .. }, s) if is_active(s) => Some(Resolved),
        _ => None,
    };
    next.ok_or(TransitionError {
        action: action.name(),
        state: state_name(state),
    })
}

/// How long each severity may stay unacknowledged before it escalates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AckWithin {
    /// Critical: minutes.
    pub critical_s: u64,
    /// Major: the same day.
    pub major_s: u64,
    /// Minor: the inspection backlog.
    pub minor_s: u64,
}

impl Default for AckWithin {
    fn default() -> Self {
        Self {
            critical_s: 10 * 60,
            major_s: 8 * 3600,
            minor_s: 7 * 86_400,
        }
    }
}

impl AckWithin {
    /// The acknowledgement time of `severity`, in milliseconds.
    pub fn millis(&self, severity: Severity) -> i64 {
        let s = match severity {
            Severity::Critical => self.critical_s,
            Severity::Major => self.major_s,
            Severity::Minor => self.minor_s,
        };
        (s as i64).saturating_mul(1000)
    }
}

/// The `[alerts]` section: the clocks of the life cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// After a case is resolved, a return within this many seconds re-opens
    /// it; a later return opens a new case marked as a recurrence.
    pub cooldown_s: u64,
    /// Per-rule cool-downs (e.g. 7 days for occupancy rules).
    pub cooldown_by_rule_s: BTreeMap<String, u64>,
    /// A resolved case is closed (verified) when the condition has not
    /// returned this long after resolution.
    pub recheck_after_s: u64,
    /// Escalation times per severity.
    pub ack_within: AckWithin,
    /// The assessment report's close limit: a case closed (a disposition
    /// given) within this many seconds of opening counts as closed in time,
    /// one still open past it as overdue. Default 7 days.
    pub close_within_s: u64,
    /// Root causes that inhibit dependent alerts (`[[alerts.inhibit]]`).
    pub inhibit: Vec<InhibitRule>,
    /// Tip-offs and patrol findings (`[alerts.tips]`): the public page,
    /// its limits, and the rewards.
    pub tips: crate::tips::TipsConfig,
    /// Compliance renovation (`[alerts.renovation]`): the acceptance
    /// targets the assessment report measures towns against.
    pub renovation: crate::renovation::RenovationConfig,
}

/// What an inhibiting case and the alert it covers must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InhibitScope {
    /// The same entity (one socket, one meter).
    #[default]
    Entity,
    /// The same device: entities equal up to the socket (`…/pile-1#3` and
    /// `…/pile-1#5` share `…/pile-1`).
    Device,
    /// The same site.
    Site,
}

/// An Alertmanager-style inhibition: while a case of `source_rule` is
/// active (open, acknowledged, in progress), new and repeated alerts of
/// `target_rules` in the same `equal` scope are recorded and shown, marked
/// with the case that explains them, but notify nobody. When that case is
/// resolved the mark is lifted (and audited).
///
/// Why: one cause raises many alerts — a pile that went offline makes every
/// socket's data stop, an overcurrent socket is also over power — and staff
/// should be sent to the cause, not paged once per symptom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// The root-cause rule, e.g. `pile_offline` or `socket_overcurrent`.
    pub source_rule: String,
    /// The rules it inhibits; empty means every other rule.
    #[serde(default)]
    pub target_rules: Vec<String>,
    /// What the two must share.
    #[serde(default)]
    pub equal: InhibitScope,
}

impl InhibitRule {
    /// Whether this rule may inhibit alerts of `rule`.
    pub fn targets(&self, rule: &str) -> bool {
        rule != self.source_rule
            && (self.target_rules.is_empty() || self.target_rules.iter().any(|t| t == rule))
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            cooldown_s: 86_400,
            cooldown_by_rule_s: BTreeMap::new(),
            recheck_after_s: 7 * 86_400,
            ack_within: AckWithin::default(),
            close_within_s: 7 * 86_400,
            inhibit: Vec::new(),
            tips: crate::tips::TipsConfig::default(),
            renovation: crate::renovation::RenovationConfig::default(),
        }
    }
}

impl AlertsConfig {
    /// Refuses zero times, which would escalate or close instantly.
    pub fn validate(&self) -> Result<(), FieldError> {
        let a = &self.ack_within;
        for (key, v) in [
            ("recheck_after_s", self.recheck_after_s),
            ("close_within_s", self.close_within_s),
            ("ack_within.critical_s", a.critical_s),
            ("ack_within.major_s", a.major_s),
            ("ack_within.minor_s", a.minor_s),
        ] {
            if v == 0 {
                let path =
                    crate::toml_file::locate::FieldPath::keys(&key.split('.').collect::<Vec<_>>());
                return Err(FieldError::at(path, "is 0; it must be at least 1 second"));
            }
        }
        for (i, r) in self.inhibit.iter().enumerate() {
            let at = |key: &str| {
                crate::toml_file::locate::FieldPath::keys(&["inhibit"])
                    .index(i)
                    .key(key)
            };
            if r.source_rule.trim().is_empty() {
                return Err(FieldError::at(
                    at("source_rule"),
                    "is empty; name the root-cause rule",
                ));
            }
            if r.target_rules.contains(&r.source_rule) {
                return Err(FieldError::at(
                    at("target_rules"),
                    format!(
                        "includes the source rule {:?}: a case cannot inhibit its own rule",
                        r.source_rule
                    ),
                ));
            }
        }
        self.renovation.validate().map_err(|why| {
            FieldError::at(
                crate::toml_file::locate::FieldPath::keys(&["renovation", "targets"]),
                why,
            )
        })?;
        Ok(())
    }

    /// The cool-down of `rule`, in milliseconds.
    pub fn cooldown_ms(&self, rule: &str) -> i64 {
        let s = self
            .cooldown_by_rule_s
            .get(rule)
            .copied()
            .unwrap_or(self.cooldown_s);
        (s as i64).saturating_mul(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertState::*;

    #[test]
    fn each_rule_is_offered_only_outcomes_it_can_have() {
        use Disposition::*;
        let socket = Disposition::offered_for("socket_overcurrent");
        assert!(socket.contains(&PileFault) && !socket.contains(&ConfirmedGroupRental));
        let rental = Disposition::offered_for("group_rental");
        assert_eq!(rental, vec![ConfirmedGroupRental, FalsePositive, NoAccess]);
        assert!(!Disposition::offered_for("indoor_sighting").contains(&PileFault));
        assert!(!Disposition::offered_for("night_water_leak").contains(&ConfirmedIndoorCharging));
        assert_eq!(
            Disposition::offered_for("a_new_rule").len(),
            Disposition::ALL.len()
        );
        for rule in [
            "socket_overcurrent",
            "group_rental",
            "meter_stuck",
            "indoor_charging_fused",
        ] {
            let offered = Disposition::offered_for(rule);
            assert!(
                offered.contains(&FalsePositive) && offered.contains(&NoAccess),
                "{rule}"
            );
        }
    }

    #[test]
    fn acknowledge_only_from_open() {
        assert_eq!(transition(Open, &Action::Acknowledge), Ok(Acknowledged));
        let e = transition(Acknowledged, &Action::Acknowledge).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot acknowledge an alert that is acknowledged"
        );
    }

    #[test]
    fn closing_resolves_an_active_case_and_nothing_else() {
        let close = Action::Close {
            disposition: Disposition::Rectified,
            note: "socket replaced".into(),
            photos: vec![],
        };
        for s in [Open, Acknowledged, InProgress] {
            assert_eq!(transition(s, &close), Ok(Resolved));
        }
        assert!(transition(Resolved, &close).is_err());
        assert!(transition(Closed, &close).is_err());
    }

    #[test]
    fn comments_are_allowed_in_every_state_and_change_nothing() {
        for s in [Open, Acknowledged, InProgress, Resolved, Closed] {
            assert_eq!(transition(s, &Action::Comment("x".into())), Ok(s));
        }
    }

    #[test]
    fn no_access_says_nothing_about_the_rule() {
        assert_eq!(Disposition::NoAccess.true_positive(), None);
        assert_eq!(Disposition::FalsePositive.true_positive(), Some(false));
        assert_eq!(Disposition::PileFault.true_positive(), Some(true));
        for d in Disposition::ALL {
            assert_eq!(Disposition::parse(d.as_str()), Some(d));
        }
    }

    #[test]
    fn per_rule_cooldown_overrides_the_default() {
        let mut c = AlertsConfig::default();
        c.cooldown_by_rule_s.insert("group_rental".into(), 604_800);
        assert_eq!(c.cooldown_ms("group_rental"), 604_800_000);
        assert_eq!(c.cooldown_ms("socket_overcurrent"), 86_400_000);
    }
}
