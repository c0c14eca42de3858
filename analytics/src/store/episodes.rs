//! The alerts recorded, each by its detector's id: what makes recording
//! idempotent (see [`Store::record`]) and what a replay is checked against.

use super::sql::vals;
use super::{Store, StoreError};
use gridwatch_telemetry::{Alert, Timestamp};
use serde::{Deserialize, Serialize};

impl Store {
    /// Every alert recorded, by its detector id, with its case and the
    /// alert that opened that case: the same for the same alerts whichever
    /// process recorded them and in which order their partitions came (a
    /// case's store id is not; it is the order of opening). What a replay
    /// check compares.
    pub fn episodes(&self) -> Result<Vec<Episode>, StoreError> {
        self.read(|db| {
            let rows = db
                .query(
                    "SELECT e.alert_id, e.case_id, e.at_ms, a.snapshot FROM episodes e \
                     JOIN alerts a ON a.id = e.case_id ORDER BY e.alert_id",
                    &[],
                )
                .map_err(|e| self.err(e))?;
            rows.iter()
                .map(|r| {
                    let (alert_id, case_id, at, snapshot): (String, i64, i64, String) = (
                        r.get(0).map_err(|e| self.err(e))?,
                        r.get(1).map_err(|e| self.err(e))?,
                        r.get(2).map_err(|e| self.err(e))?,
                        r.get(3).map_err(|e| self.err(e))?,
                    );
                    let opened: Alert = serde_json::from_str(&snapshot)
                        .map_err(|_| self.corrupt(case_id, "snapshot", &snapshot))?;
                    Ok(Episode {
                        alert_id,
                        case_id,
                        case_opened_by: opened.id,
                        at: Timestamp(at),
                    })
                })
                .collect()
        })
    }

    /// The case an alert (by its detector id) was recorded into, if it was.
    pub fn case_of(&self, alert_id: &str) -> Result<Option<i64>, StoreError> {
        self.read(|db| {
            db.query_opt(
                "SELECT case_id FROM episodes WHERE alert_id = ?1",
                vals![alert_id],
            )
            .and_then(|r| r.map(|r| r.get(0)).transpose())
            .map_err(|e| self.err(e))
        })
    }
}

/// One recorded alert (see [`Store::episodes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// The detector's alert id (deterministic: rule, entity, episode).
    pub alert_id: String,
    /// The case it went into (this database's id).
    pub case_id: i64,
    /// The detector id of the alert that opened that case.
    pub case_opened_by: String,
    /// The alert's event time.
    pub at: Timestamp,
}
