//! Compliance renovation (合规改造): a confirmed group rental or
//! three-in-one premises is found, ordered to be put right, renovated, and
//! accepted (验收) by the authority, or closed otherwise (the tenancy ended,
//! the premises was demolished). Each town is assessed on the share of its
//! premises accepted, against targets with deadlines (for example 25 %,
//! 50 %, 80 % and 95 % by successive dates), so the store keeps each
//! premises' steps with their times, and the report computes the rate per
//! town and street from the register's places (docs/tips.md).

use serde::{Deserialize, Serialize};

/// The steps of a premises' renovation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Confirmed on site as a hazard.
    Found,
    /// Rectification ordered (责令整改).
    Ordered,
    /// The owner reports it renovated.
    Renovated,
    /// Accepted by the authority (验收).
    Accepted,
    /// Ended otherwise; not counted as accepted, nor as outstanding.
    Closed,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [
        Step::Found,
        Step::Ordered,
        Step::Renovated,
        Step::Accepted,
        Step::Closed,
    ];

    /// The store's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Found => "found",
            Step::Ordered => "ordered",
            Step::Renovated => "renovated",
            Step::Accepted => "accepted",
            Step::Closed => "closed",
        }
    }

    /// Parses [`Step::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The steps a premises at `self` may move to: the next one, or closed.
    pub fn next(self) -> Vec<Step> {
        match self {
            Step::Found => vec![Step::Ordered, Step::Closed],
            Step::Ordered => vec![Step::Renovated, Step::Closed],
            Step::Renovated => vec![Step::Accepted, Step::Ordered, Step::Closed],
            Step::Accepted | Step::Closed => Vec::new(),
        }
    }
}

/// The hazards premises are renovated for.
pub const HAZARDS: [&str; 2] = ["group_rental", "three_in_one"];

/// One acceptance target: `percent` of premises accepted by local date `by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The deadline, `YYYY-MM-DD` (local).
    pub by: String,
    /// Percent of premises found that must be accepted by then.
    pub percent: u8,
}

/// The `[alerts.renovation]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenovationConfig {
    /// The campaign's acceptance targets, earliest first.
    pub targets: Vec<Target>,
}

impl RenovationConfig {
    /// Every date is a date and targets rise with their deadlines.
    pub fn validate(&self) -> Result<(), String> {
        let mut last: Option<(i32, u8)> = None;
        for t in &self.targets {
            let day = crate::register::dates::parse_date(&t.by).ok_or_else(|| {
                format!("renovation target by {:?} is not a date (YYYY-MM-DD)", t.by)
            })?;
            if t.percent > 100 {
                return Err(format!("renovation target {} % is over 100", t.percent));
            }
            if let Some((d, p)) = last {
                if day <= d || t.percent < p {
                    return Err(format!(
                        "renovation targets must come in date order with rising percentages ({} at {})",
                        t.percent, t.by
                    ));
                }
            }
            last = Some((day, t.percent));
        }
        Ok(())
    }

    /// The target in force on local `day`: the first whose deadline is not
    /// yet past, else the last one.
    pub fn target_on(&self, day: i32) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| crate::register::dates::parse_date(&t.by).is_some_and(|d| d >= day))
            .or(self.targets.last())
    }
}

/// Acceptance in one place (a town, or a street of it) for one hazard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Acceptance {
    /// The town (镇), `—` when the register does not say.
    pub town: String,
    /// The street (街道), empty for the town's own total.
    pub street: String,
    /// `group_rental` or `three_in_one`.
    pub hazard: String,
    /// Premises found (closed ones left out).
    pub found: u64,
    /// Rectification ordered, renovated or accepted.
    pub ordered: u64,
    /// Accepted.
    pub accepted: u64,
    /// `accepted / found`; `None` before any premises.
    pub rate: Option<f64>,
    /// Confirmed tip-offs in the place, and their rewards (yuan).
    pub tips_confirmed: u64,
    /// Rewards earned by those tips, yuan.
    pub rewards_yuan: u64,
    /// Of which paid.
    pub rewards_paid_yuan: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> RenovationConfig {
        RenovationConfig {
            targets: [
                ("2026-06-30", 25),
                ("2026-12-31", 50),
                ("2027-06-30", 80),
                ("2027-12-31", 95),
            ]
            .map(|(by, percent)| Target {
                by: by.into(),
                percent,
            })
            .to_vec(),
        }
    }

    #[test]
    fn the_target_in_force_is_the_next_deadline() {
        let c = targets();
        c.validate().unwrap();
        let day = |d| crate::register::dates::parse_date(d).unwrap();
        assert_eq!(c.target_on(day("2026-03-01")).unwrap().percent, 25);
        assert_eq!(c.target_on(day("2026-06-30")).unwrap().percent, 25);
        assert_eq!(c.target_on(day("2026-07-01")).unwrap().percent, 50);
        assert_eq!(c.target_on(day("2030-01-01")).unwrap().percent, 95);
        assert!(RenovationConfig::default().target_on(0).is_none());
    }

    #[test]
    fn targets_out_of_order_or_over_100_are_refused() {
        let mut c = targets();
        c.targets.swap(0, 1);
        assert!(c.validate().unwrap_err().contains("date order"));
        let mut c = targets();
        c.targets[3].percent = 101;
        assert!(c.validate().unwrap_err().contains("over 100"));
    }

    #[test]
    fn each_step_moves_forward_or_closes() {
        assert_eq!(Step::Found.next(), vec![Step::Ordered, Step::Closed]);
        assert!(Step::Accepted.next().is_empty());
        assert!(
            Step::Renovated.next().contains(&Step::Ordered),
            "a failed acceptance orders again"
        );
        assert_eq!(Step::parse("accepted"), Some(Step::Accepted));
    }
}
