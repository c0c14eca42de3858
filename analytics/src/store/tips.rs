//! Tip-offs in the store: the receipt, channel, hazard and place of each
//! tip, the reporter's contact (read only through
//! [`Store::tip_for_case`] with `office = true`), and the reward's payment.
//! The case itself is an ordinary row of `alerts`.

use super::sql::{vals, Row, Value};
use super::{Scope, Store, StoreError};
use crate::lifecycle::{AlertsConfig, Disposition};
use crate::tips::{Hazard, NewTip, RULE_PATROL, RULE_TIP};
use gridwatch_telemetry::{Alert, AlertState, Timestamp};
use serde::Serialize;

/// A tip as the case's page and the export show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TipRecord {
    /// The reporter's receipt code.
    pub receipt: String,
    /// The case it opened or joined.
    pub case_id: i64,
    /// `public`, `hotline` or `patrol`.
    pub channel: String,
    /// What it is about.
    pub hazard: String,
    /// The flat.
    pub flat: String,
    /// The grid cell.
    pub cell: String,
    /// The place as reported.
    pub place: String,
    /// The reporter's contact: only for the office.
    pub contact: Option<String>,
    /// When it was received.
    pub reported: Timestamp,
    /// The case's state now.
    pub state: AlertState,
    /// The case's disposition, once given.
    pub disposition: Option<String>,
    /// The reward it earned, yuan: set once the case is closed as a real
    /// hazard, 0 otherwise.
    pub reward_yuan: u32,
    /// When the reward was paid.
    pub paid: Option<Timestamp>,
}

/// Whether a disposition confirms what a tip reported.
fn confirms(d: Option<&str>) -> bool {
    d.and_then(Disposition::parse).is_some_and(|d| {
        matches!(
            d,
            Disposition::ConfirmedGroupRental
                | Disposition::ConfirmedIndoorCharging
                | Disposition::Rectified
        )
    })
}

impl Store {
    /// Active sensor cases on `flat` (not tips), oldest first: what a new
    /// tip corroborates.
    pub fn active_sensor_cases(&self, flat: &str) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|db| {
            db.query(
                "SELECT id, rule FROM alerts WHERE entity = ?1 AND rule NOT IN (?2, ?3) \
                 AND state IN ('open', 'acknowledged', 'in_progress') ORDER BY id",
                vals![flat, RULE_TIP, RULE_PATROL],
            )
            .and_then(|rows| rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect())
            .map_err(|e| self.err(e))
        })
    }

    /// Records a tip: its case (`alert`, see [`crate::tips::alert_of`]),
    /// the tip's own row and, when given, its photo (already stripped of
    /// metadata). Returns the case's id.
    pub fn add_tip(
        &self,
        tip: &NewTip,
        receipt: &str,
        alert: &Alert,
        config: &AlertsConfig,
        photo: Option<(&str, &[u8])>,
    ) -> Result<i64, StoreError> {
        let case = self.record(alert, config)?.id;
        self.write(|db| {
            db.execute(
                "INSERT INTO tips (receipt, alert_id, channel, hazard, place, contact, reported_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                vals![
                    receipt,
                    case,
                    tip.channel.as_str(),
                    tip.hazard.as_str(),
                    tip.place.as_str(),
                    tip.contact.as_deref(),
                    tip.at.0
                ],
            )
            .map_err(|e| self.err(e))
        })?;
        if let Some((kind, bytes)) = photo {
            self.add_photo(&Scope::All, case, "reporter", kind, bytes, tip.at)?;
        }
        Ok(case)
    }

    /// Notes, on a sensor case just opened on `entity` and on every active
    /// tip case of that flat, that the two corroborate each other (the tip
    /// came first; a tip that comes second is linked when it is recorded).
    /// Returns the tip cases linked.
    pub fn corroborate_tips(
        &self,
        case: i64,
        rule: &str,
        entity: &str,
        at: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        if rule == RULE_TIP || rule == RULE_PATROL {
            return Ok(Vec::new());
        }
        let tips: Vec<i64> = self.read(|db| {
            db.query(
                "SELECT id FROM alerts WHERE entity = ?1 AND rule IN (?2, ?3) \
                 AND state IN ('open', 'acknowledged', 'in_progress') ORDER BY id",
                vals![entity, RULE_TIP, RULE_PATROL],
            )
            .and_then(|rows| rows.iter().map(|r| r.get(0)).collect())
            .map_err(|e| self.err(e))
        })?;
        for tip in &tips {
            self.note(
                *tip,
                at,
                "system",
                "comment",
                &format!("传感器告警 #{case}（{rule}）指向同一房屋，与本线索互相印证。"),
            )?;
            self.note(
                case,
                at,
                "system",
                "comment",
                &format!("与举报线索 #{tip} 指向同一房屋，互相印证。"),
            )?;
        }
        Ok(tips)
    }

    /// Whether a tip with this receipt (a hotline ticket's) is stored.
    pub fn tip_exists(&self, receipt: &str) -> Result<bool, StoreError> {
        self.read(|db| {
            db.query_opt("SELECT 1 FROM tips WHERE receipt = ?1", vals![receipt])
                .map(|r| r.is_some())
                .map_err(|e| self.err(e))
        })
    }

    /// The state of the case a receipt follows; `None` for a code nobody
    /// was given.
    pub fn tip_state(&self, receipt: &str) -> Result<Option<AlertState>, StoreError> {
        let state: Option<String> = self.read(|db| {
            db.query_opt(
                "SELECT a.state FROM tips t JOIN alerts a ON a.id = t.alert_id WHERE t.receipt = ?1",
                vals![receipt],
            )
            .and_then(|r| r.map(|r| r.get(0)).transpose())
            .map_err(|e| self.err(e))
        })?;
        Ok(state.and_then(|s| crate::lifecycle::parse_state(&s)))
    }

    /// The tips of case `id` in `scope`, oldest first; the contact only for
    /// the `office`.
    pub fn tips_of_case(
        &self,
        scope: &Scope,
        id: i64,
        office: bool,
        config: &AlertsConfig,
    ) -> Result<Vec<TipRecord>, StoreError> {
        self.get(scope, id)?;
        self.tip_rows("WHERE t.alert_id = ?1", vals![id], office, config)
    }

    /// Every tip in `scope`, oldest first, with its reward: the reward
    /// bookkeeping's export. Contacts only for the `office`.
    pub fn tips(
        &self,
        scope: &Scope,
        office: bool,
        config: &AlertsConfig,
    ) -> Result<Vec<TipRecord>, StoreError> {
        let all = self.tip_rows("", &[], office, config)?;
        Ok(all
            .into_iter()
            .filter(|t| scope.allows(&t.cell, t.flat.split('/').next().unwrap_or_default()))
            .collect())
    }

    /// Marks a confirmed tip's reward paid at `now`; false when the tip
    /// is unknown, not confirmed, or already paid.
    pub fn mark_tip_paid(
        &self,
        receipt: &str,
        now: Timestamp,
        config: &AlertsConfig,
    ) -> Result<bool, StoreError> {
        let rows = self.tip_rows("WHERE t.receipt = ?1", vals![receipt], false, config)?;
        let Some(t) = rows.first() else {
            return Ok(false);
        };
        if t.reward_yuan == 0 || t.paid.is_some() {
            return Ok(false);
        }
        let n = self.write(|db| {
            db.execute(
                "UPDATE tips SET paid_ms = ?2 WHERE receipt = ?1 AND paid_ms IS NULL",
                vals![receipt, now.0],
            )
            .map_err(|e| self.err(e))
        })?;
        Ok(n == 1)
    }

    fn tip_rows(
        &self,
        filter: &str,
        args: &[Value],
        office: bool,
        config: &AlertsConfig,
    ) -> Result<Vec<TipRecord>, StoreError> {
        let rows = self.read(|db| {
            db.query(
                &format!(
                    "SELECT t.receipt, t.alert_id, t.channel, t.hazard, a.entity, a.cell, t.place, \
                     t.contact, t.reported_ms, a.state, a.disposition, t.paid_ms \
                     FROM tips t JOIN alerts a ON a.id = t.alert_id {filter} \
                     ORDER BY t.reported_ms, t.receipt"
                ),
                args,
            )
            .map_err(|e| self.err(e))
        })?;
        rows.iter()
            .map(|r| record_of(r, office, config))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }
}

fn record_of(
    r: &Row,
    office: bool,
    config: &AlertsConfig,
) -> Result<TipRecord, super::sql::DbError> {
    let hazard: String = r.get(3)?;
    let state: String = r.get(9)?;
    let disposition: Option<String> = r.get(10)?;
    let reward = if confirms(disposition.as_deref()) {
        Hazard::parse(&hazard)
            .and_then(|h| config.tips.rewards_yuan.get(h.as_str()).copied())
            .unwrap_or(0)
    } else {
        0
    };
    Ok(TipRecord {
        receipt: r.get(0)?,
        case_id: r.get(1)?,
        channel: r.get(2)?,
        hazard,
        flat: r.get(4)?,
        cell: r.get(5)?,
        place: r.get(6)?,
        contact: if office { r.get(7)? } else { None },
        reported: Timestamp(r.get(8)?),
        state: crate::lifecycle::parse_state(&state).unwrap_or(AlertState::Open),
        disposition,
        reward_yuan: reward,
        paid: r.get::<Option<i64>>(11)?.map(Timestamp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tips::{alert_of, Channel};
    use gridwatch_telemetry::{Evidence, Severity};

    #[test]
    fn a_sensor_case_opened_after_a_tip_is_linked_to_it_both_ways() {
        let store = Store::open_in_memory().unwrap();
        let config = AlertsConfig::default();
        let tip = NewTip {
            channel: Channel::Public,
            hazard: Hazard::GroupRental,
            flat: "s/b/101".into(),
            place: "幸福路1号".into(),
            text: String::new(),
            contact: None,
            at: Timestamp(1_000),
        };
        let tip_case = store
            .add_tip(&tip, "R1", &alert_of(&tip, "R1", "c", false), &config, None)
            .unwrap();
        let sensor = Alert {
            schema: 1,
            id: "group_rental:s/b/101:2".into(),
            rule: "group_rental".into(),
            entity: "s/b/101".into(),
            cell: "c".into(),
            site: "s".into(),
            severity: Severity::Minor,
            state: AlertState::Open,
            ts: Timestamp(2_000),
            title: String::new(),
            summary: String::new(),
            evidence: Evidence::default(),
        };
        let case = store.record(&sensor, &config).unwrap().id;
        let linked = store
            .corroborate_tips(case, "group_rental", "s/b/101", Timestamp(2_000))
            .unwrap();
        assert_eq!(linked, vec![tip_case]);
        let said = |id| {
            store
                .audit(&Scope::All, id)
                .unwrap()
                .into_iter()
                .filter_map(|e| e.note)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            said(tip_case).contains(&format!("#{case}")),
            "{}",
            said(tip_case)
        );
        assert!(
            said(case).contains(&format!("#{tip_case}")),
            "{}",
            said(case)
        );
        // A tip case itself links nothing; another flat's sensor case neither.
        assert!(store
            .corroborate_tips(tip_case, RULE_TIP, "s/b/101", Timestamp(3))
            .unwrap()
            .is_empty());
        assert!(store
            .corroborate_tips(case, "group_rental", "s/b/102", Timestamp(3))
            .unwrap()
            .is_empty());
    }
}
