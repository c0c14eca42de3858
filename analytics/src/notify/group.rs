//! Grouping notices per grid cell (or site), so that a burst of new cases
//! in one place reaches people as one message, not twenty.
//!
//! Alertmanager's model, in event time: the first notice of a quiet group
//! waits `wait_s` for others to join it; after a group was sent, new notices
//! wait until `interval_s` after that send. Escalations are not grouped —
//! they are already late. With both times 0 (the default) grouping is off
//! and every notice goes out alone, at once.
//!
//! Sans-IO: notices in with [`Grouper::push`], batches out of
//! [`Grouper::due`]; the caller owns the clock and the channel.

use crate::toml_file::FieldError;
use gridwatch_telemetry::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What notices are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The grid cell (one message per cell's staff).
    #[default]
    Cell,
    /// The site.
    Site,
}

/// The `[notify.group]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Group by cell or site.
    pub by: GroupBy,
    /// How long the first notice of a quiet group waits for others.
    pub wait_s: u64,
    /// The least time between two sends of one group.
    pub interval_s: u64,
    /// Notices held per group at most; beyond, the oldest are dropped.
    pub max_pending: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            by: GroupBy::Cell,
            wait_s: 0,
            interval_s: 0,
            max_pending: 100,
        }
    }
}

impl GroupConfig {
    /// Whether grouping is on.
    pub fn enabled(&self) -> bool {
        self.wait_s > 0 || self.interval_s > 0
    }

    /// Refuses `max_pending = 0` when grouping is on.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.enabled() && self.max_pending == 0 {
            return Err(FieldError::new(
                "max_pending",
                "is 0; set it (e.g. 100) when wait_s or interval_s is set",
            ));
        }
        Ok(())
    }
}

/// Notices of one group sent together.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The cell or site.
    pub key: String,
    /// The notices, oldest first.
    pub items: Vec<serde_json::Value>,
    /// Notices dropped from this batch because too many waited.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Group {
    pending: Vec<serde_json::Value>,
    dropped: u64,
    send_at: Option<Timestamp>,
    last_sent: Option<Timestamp>,
}

/// The groups and their clocks.
#[derive(Debug, Default)]
pub struct Grouper {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
}

impl Grouper {
    /// A grouper for `config`.
    pub fn new(config: &GroupConfig) -> Self {
        Self {
            config: config.clone(),
            groups: BTreeMap::new(),
        }
    }

    /// Whether grouping is on (else callers send notices directly).
    pub fn enabled(&self) -> bool {
        self.config.enabled()
    }

    /// The group key of a notice about `cell` at `site`.
    pub fn key<'a>(&self, cell: &'a str, site: &'a str) -> &'a str {
        match self.config.by {
            GroupBy::Cell => cell,
            GroupBy::Site => site,
        }
    }

    /// Adds a notice to its group at event time `now`.
    pub fn push(&mut self, key: &str, item: serde_json::Value, now: Timestamp) {
        let wait = (self.config.wait_s as i64).saturating_mul(1000);
        let interval = (self.config.interval_s as i64).saturating_mul(1000);
        let g = self.groups.entry(key.to_owned()).or_default();
        if g.pending.len() >= self.config.max_pending.max(1) {
            g.pending.remove(0);
            g.dropped += 1;
        }
        g.pending.push(item);
        if g.send_at.is_none() {
            g.send_at = Some(match g.last_sent {
                Some(l) if now.since(l) < interval => l.plus_millis(interval),
                _ => now.plus_millis(wait),
            });
        }
    }

    /// The batches due at `now`. Groups idle for longer than the interval
    /// are forgotten, so memory follows the active groups only.
    pub fn due(&mut self, now: Timestamp) -> Vec<Batch> {
        let interval = (self.config.interval_s as i64).saturating_mul(1000);
        let mut out = Vec::new();
        for (key, g) in &mut self.groups {
            if g.send_at.is_some_and(|t| t <= now) {
                out.push(Batch {
                    key: key.clone(),
                    items: std::mem::take(&mut g.pending),
                    dropped: std::mem::take(&mut g.dropped),
                });
                g.send_at = None;
                g.last_sent = Some(now);
            }
        }
        self.groups.retain(|_, g| {
            g.send_at.is_some() || g.last_sent.is_some_and(|l| now.since(l) < interval)
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grouper(wait_s: u64, interval_s: u64) -> Grouper {
        Grouper::new(&GroupConfig {
            by: GroupBy::Cell,
            wait_s,
            interval_s,
            max_pending: 10,
        })
    }

    #[test]
    fn a_burst_waits_and_goes_out_as_one_batch() {
        let mut g = grouper(30, 300);
        g.push("cell-07", json!(1), Timestamp(0));
        g.push("cell-07", json!(2), Timestamp(10_000));
        g.push("cell-08", json!(3), Timestamp(10_000));
        assert!(g.due(Timestamp(29_999)).is_empty());
        let b = g.due(Timestamp(30_000));
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].key.as_str(), b[0].items.clone()),
            ("cell-07", vec![json!(1), json!(2)])
        );
        let b = g.due(Timestamp(40_000));
        assert_eq!(b[0].key, "cell-08");
    }

    #[test]
    fn after_a_send_new_notices_wait_for_the_interval() {
        let mut g = grouper(30, 300);
        g.push("c", json!(1), Timestamp(0));
        assert_eq!(g.due(Timestamp(30_000)).len(), 1);
        g.push("c", json!(2), Timestamp(60_000));
        assert!(g.due(Timestamp(329_999)).is_empty());
        assert_eq!(g.due(Timestamp(330_000))[0].items, [json!(2)]);
        // Long after, a quiet group waits only wait_s again.
        g.push("c", json!(3), Timestamp(2_000_000));
        assert_eq!(g.due(Timestamp(2_030_000))[0].items, [json!(3)]);
    }

    #[test]
    fn too_many_waiting_drops_the_oldest_and_says_so() {
        let mut g = Grouper::new(&GroupConfig {
            by: GroupBy::Site,
            wait_s: 30,
            interval_s: 0,
            max_pending: 2,
        });
        for i in 0..4 {
            g.push("yard-a", json!(i), Timestamp(0));
        }
        let b = g.due(Timestamp(30_000));
        assert_eq!(b[0].items, [json!(2), json!(3)]);
        assert_eq!(b[0].dropped, 2);
    }

    #[test]
    fn grouping_is_off_by_default() {
        assert!(!Grouper::new(&GroupConfig::default()).enabled());
    }
}
