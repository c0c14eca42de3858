//! A cap on how many devices one gateway can make analytics remember.
//!
//! Every detector keeps state per socket, meter or flat, keyed by what the
//! gateway says. A gateway with a broken config — or a stolen one — can
//! invent device ids without end and grow analytics' memory until it falls
//! over (30,000 invented ids took it from 10 MB to 99 MB). A real building
//! gateway has a few hundred devices, so each gateway gets a quota of
//! distinct entities (`[ingest] max_entities_per_gateway`); the first ones
//! seen are kept, later new ones are refused and counted, and the gateway
//! shows up in the stats line. Refusing the newcomer instead of evicting the
//! longest-silent keeps a flood from pushing out real meters' baselines,
//! which take weeks to rebuild.
//!
//! The ACL lets a gateway publish only under its own topic
//! (docs/security.md), so the number of gateways is bounded by the broker's
//! password file, and total state by quota × gateways.

use std::collections::{HashMap, HashSet};

/// Distinct entities per (site, gateway), capped.
#[derive(Debug, Clone)]
pub struct EntityQuota {
    max_per_gateway: usize,
    seen: HashMap<(String, String), HashSet<String>>,
    refused: u64,
    /// Gateways that have hit the cap at least once.
    over: HashSet<(String, String)>,
}

impl EntityQuota {
    /// A quota of `max_per_gateway` distinct entities (at least 1).
    pub fn new(max_per_gateway: usize) -> Self {
        Self {
            max_per_gateway: max_per_gateway.max(1),
            seen: HashMap::new(),
            refused: 0,
            over: HashSet::new(),
        }
    }

    /// Whether the entity may have state: it is known, or its gateway is
    /// under quota (then it becomes known). Returns `Err(true)` the first
    /// time a gateway goes over, so the caller can log it once.
    pub fn admit(&mut self, site: &str, gateway: &str, entity: &str) -> Result<(), bool> {
        let key = (site.to_owned(), gateway.to_owned());
        let set = self.seen.entry(key.clone()).or_default();
        if set.contains(entity) {
            return Ok(());
        }
        if set.len() < self.max_per_gateway {
            set.insert(entity.to_owned());
            return Ok(());
        }
        self.refused += 1;
        Err(self.over.insert(key))
    }

    /// Readings and events refused because their gateway was over quota.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Gateways that went over their quota.
    pub fn gateways_over(&self) -> usize {
        self.over.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_cannot_make_analytics_remember_more_than_its_quota() {
        let mut q = EntityQuota::new(3);
        for i in 0..3 {
            assert_eq!(q.admit("s", "gw-1", &format!("d{i}")), Ok(()));
        }
        assert_eq!(q.admit("s", "gw-1", "d99"), Err(true));
        assert_eq!(q.admit("s", "gw-1", "d100"), Err(false));
        // Known entities keep flowing; other gateways have their own quota.
        assert_eq!(q.admit("s", "gw-1", "d1"), Ok(()));
        assert_eq!(q.admit("s", "gw-2", "d99"), Ok(()));
        assert_eq!(q.refused(), 2);
        assert_eq!(q.gateways_over(), 1);
    }
}
