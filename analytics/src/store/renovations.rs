//! Compliance renovation in the store: one row per premises and hazard,
//! with the time of each step ([`crate::renovation`]). Moving a premises
//! on is audited in the trail of the case it came from.

use super::sql::{vals, Row};
use super::{Scope, Store, StoreError};
use crate::renovation::Step;
use gridwatch_telemetry::Timestamp;
use serde::Serialize;

/// One premises' renovation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renovation {
    /// Its number.
    pub id: i64,
    /// The flat.
    pub flat: String,
    /// `group_rental` or `three_in_one`.
    pub hazard: String,
    /// The grid cell.
    pub cell: String,
    /// The site.
    pub site: String,
    /// The case it was found in.
    pub case_id: Option<i64>,
    /// Where it stands.
    pub step: Step,
    /// When each step was reached: found, ordered, renovated, accepted,
    /// closed.
    pub at: [Option<Timestamp>; 5],
}

/// Why a renovation could not be moved.
fn refused(msg: String) -> StoreError {
    StoreError::Refused(msg)
}

const COLUMNS: &str = "id, flat, hazard, cell, site, case_id, step, found_ms, ordered_ms, \
                       renovated_ms, accepted_ms, closed_ms";

fn of_row(r: &Row) -> Result<Renovation, super::sql::DbError> {
    let step: String = r.get(6)?;
    let t = |i: usize| -> Result<Option<Timestamp>, super::sql::DbError> {
        Ok(r.get::<Option<i64>>(i)?.map(Timestamp))
    };
    Ok(Renovation {
        id: r.get(0)?,
        flat: r.get(1)?,
        hazard: r.get(2)?,
        cell: r.get(3)?,
        site: r.get(4)?,
        case_id: r.get(5)?,
        step: Step::parse(&step).unwrap_or(Step::Found),
        at: [t(7)?, t(8)?, t(9)?, t(10)?, t(11)?],
    })
}

impl Store {
    /// Registers premises found on case `id` (in `scope`) for renovation:
    /// the case's flat, `hazard`, cell and site. A premises already
    /// registered for that hazard is returned as it is.
    pub fn found_premises(
        &self,
        scope: &Scope,
        id: i64,
        hazard: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<Renovation, StoreError> {
        if !crate::renovation::HAZARDS.contains(&hazard) {
            return Err(refused(format!("no renovation for hazard {hazard:?}")));
        }
        let case = self.get(scope, id)?;
        let inserted = self.write(|db| {
            db.execute(
                "INSERT INTO renovations (flat, hazard, cell, site, case_id, step, found_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'found', ?6) ON CONFLICT (flat, hazard) DO NOTHING",
                vals![
                    case.entity.as_str(),
                    hazard,
                    case.cell.as_str(),
                    case.site.as_str(),
                    id,
                    now.0
                ],
            )
            .map_err(|e| self.err(e))
        })?;
        if inserted == 1 {
            self.note(
                id,
                now,
                actor,
                "comment",
                &format!("登记为合规整改对象（{hazard}）。"),
            )?;
        }
        self.renovation_of(&case.entity, hazard)?
            .ok_or_else(|| refused("the renovation was not kept".into()))
    }

    /// The renovation of `flat` for `hazard`, if registered.
    pub fn renovation_of(
        &self,
        flat: &str,
        hazard: &str,
    ) -> Result<Option<Renovation>, StoreError> {
        self.read(|db| {
            db.query_opt(
                &format!("SELECT {COLUMNS} FROM renovations WHERE flat = ?1 AND hazard = ?2"),
                vals![flat, hazard],
            )
            .and_then(|r| r.map(|r| of_row(&r)).transpose())
            .map_err(|e| self.err(e))
        })
    }

    /// Every renovation in `scope`.
    pub fn renovations(&self, scope: &Scope) -> Result<Vec<Renovation>, StoreError> {
        let all = self.read(|db| {
            db.query(
                &format!("SELECT {COLUMNS} FROM renovations ORDER BY id"),
                &[],
            )
            .and_then(|rows| rows.iter().map(of_row).collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))
        })?;
        Ok(all
            .into_iter()
            .filter(|r| scope.allows(&r.cell, &r.site))
            .collect())
    }

    /// Moves renovation `id` (in `scope`) to `to`, which must be one of its
    /// step's next ones; notes it in its case's trail.
    pub fn advance_renovation(
        &self,
        scope: &Scope,
        id: i64,
        to: Step,
        actor: &str,
        now: Timestamp,
    ) -> Result<Renovation, StoreError> {
        let r = self
            .renovations(scope)?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(StoreError::NotFound(id))?;
        if !r.step.next().contains(&to) {
            return Err(refused(format!(
                "a renovation at {} cannot move to {}",
                r.step.as_str(),
                to.as_str()
            )));
        }
        let column = match to {
            Step::Found => "found_ms",
            Step::Ordered => "ordered_ms",
            Step::Renovated => "renovated_ms",
            Step::Accepted => "accepted_ms",
            Step::Closed => "closed_ms",
        };
        let n = self.write(|db| {
            db.execute(
                &format!(
                    "UPDATE renovations SET step = ?2, {column} = ?3 WHERE id = ?1 AND step = ?4"
                ),
                vals![id, to.as_str(), now.0, r.step.as_str()],
            )
            .map_err(|e| self.err(e))
        })?;
        if n != 1 {
            return Err(refused(
                "the renovation was moved by someone else meanwhile".into(),
            ));
        }
        if let Some(case) = r.case_id {
            self.note(
                case,
                now,
                actor,
                "comment",
                &format!("合规整改：{} → {}。", r.step.as_str(), to.as_str()),
            )?;
        }
        self.renovations(scope)?
            .into_iter()
            .find(|x| x.id == id)
            .ok_or(StoreError::NotFound(id))
    }
}
