//! Outcome feedback: how often each rule was right, from the dispositions
//! people closed its cases with. `no_access` counts as neither.

use super::sql::Value;
use super::{Scope, Store, StoreError};
use crate::lifecycle::Disposition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Precision of one rule at one site (or all sites when `site` is `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulePrecision {
    /// The rule.
    pub rule: String,
    /// The site, or `None` for the rule across the caller's scope.
    pub site: Option<String>,
    /// Cases closed as real hazards.
    pub true_positives: u64,
    /// Cases closed as false positives.
    pub false_positives: u64,
    /// Cases closed without access (not counted in the precision).
    pub no_access: u64,
    /// true / (true + false); `None` before any judged case.
    pub precision: Option<f64>,
}

impl Store {
    /// Precision per rule, and per rule and site, over the closed cases in
    /// `scope`. Rules come first (site `None`), then each site, in name order.
    pub fn precision(&self, scope: &Scope) -> Result<Vec<RulePrecision>, StoreError> {
        let (cond, args) = scope.sql();
        let sql = format!(
            "SELECT rule, site, disposition, COUNT(*) FROM alerts \
             WHERE disposition IS NOT NULL AND {cond} GROUP BY rule, site, disposition"
        );
        let params: Vec<Value> = args.into_iter().map(Value::Text).collect();
        let rows: Vec<(String, String, String, i64)> = self.read(|db| {
            db.query(&sql, &params)
                .and_then(|rows| {
                    rows.iter()
                        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .collect()
                })
                .map_err(|e| self.err(e))
        })?;
        let mut by: BTreeMap<(String, Option<String>), [u64; 3]> = BTreeMap::new();
        for (rule, site, disposition, n) in rows {
            let d = Disposition::parse(&disposition)
                .ok_or_else(|| self.corrupt(0, "disposition", &disposition))?;
            let slot = match d.true_positive() {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            };
            for key in [(rule.clone(), None), (rule.clone(), Some(site.clone()))] {
                by.entry(key).or_default()[slot] += n as u64;
            }
        }
        Ok(by
            .into_iter()
            .map(|((rule, site), [tp, fp, na])| RulePrecision {
                rule,
                site,
                true_positives: tp,
                false_positives: fp,
                no_access: na,
                precision: (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64),
            })
            .collect())
    }
}
