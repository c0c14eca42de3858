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
//!
//! Since every entity is looked up here anyway, the quota also remembers
//! each one's newest delivery (seq and time, 16 bytes): a reading or event
//! delivered again (an uplink re-sending from its cursor after a reconnect,
//! QoS 1) is known by its device and seq, as docs/outbox.md tells every
//! consumer, and is dropped and counted before any detector sees it.

use crate::detect::meter_health::is_repeat;
use std::collections::{HashMap, HashSet};

/// The newest delivery of one entity.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Newest {
    seq: u64,
    ts: i64,
}

/// The entities of one gateway and their newest deliveries.
type Entities = HashMap<String, Newest>;

/// The saved form of [`EntityQuota::seen`]: one map keyed by (site,
/// gateway), the shape checkpoints have always had.
mod by_gateway {
    use super::Entities;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::HashMap;

    pub fn serialize<S: Serializer>(
        seen: &HashMap<String, HashMap<String, Entities>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            seen.iter()
                .flat_map(|(site, gws)| gws.iter().map(move |(gw, m)| ((site, gw), m))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<HashMap<String, HashMap<String, Entities>>, D::Error> {
        let flat = HashMap::<(String, String), Entities>::deserialize(d)?;
        let mut seen: HashMap<String, HashMap<String, Entities>> = HashMap::new();
        for ((site, gw), m) in flat {
            seen.entry(site).or_default().insert(gw, m);
        }
        Ok(seen)
    }
}

/// What [`EntityQuota::admit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Not delivered before: judge it.
    Fresh,
    /// Its device delivered this seq before: drop it.
    Repeat,
}

/// Distinct entities per (site, gateway), capped.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EntityQuota {
    max_per_gateway: usize,
    /// Site, then gateway, then entity: looked up by `&str` at each level,
    /// so a known entity costs no allocation (this runs for every reading).
    /// Saved as one map keyed by (site, gateway), as before the split.
    #[serde(with = "by_gateway")]
    seen: HashMap<String, HashMap<String, Entities>>,
    refused: u64,
    /// Deliveries dropped as repeats.
    #[serde(default)]
    repeats: u64,
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
            repeats: 0,
            over: HashSet::new(),
        }
    }

    /// Whether the entity may have state: it is known, or its gateway is
    /// under quota (then it becomes known); and whether its delivery
    /// numbered `seq` at `ts` repeats one already admitted
    /// ([`is_repeat`]). Returns `Err(true)` the first time a gateway goes
    /// over, so the caller can log it once.
    pub fn admit(
        &mut self,
        site: &str,
        gateway: &str,
        entity: &str,
        seq: u64,
        ts: i64,
    ) -> Result<Admitted, bool> {
        let sites = match self.seen.get_mut(site) {
            Some(g) => g,
            None => self.seen.entry(site.to_owned()).or_default(),
        };
        let map = match sites.get_mut(gateway) {
            Some(m) => m,
            None => sites.entry(gateway.to_owned()).or_default(),
        };
        if let Some(n) = map.get_mut(entity) {
            if is_repeat(Some(n.seq), n.ts, seq, ts) {
                self.repeats += 1;
                return Ok(Admitted::Repeat);
            }
            *n = Newest { seq, ts };
            return Ok(Admitted::Fresh);
        }
        if map.len() < self.max_per_gateway {
            map.insert(entity.to_owned(), Newest { seq, ts });
            return Ok(Admitted::Fresh);
        }
        self.refused += 1;
        Err(self.over.insert((site.to_owned(), gateway.to_owned())))
    }

    /// Readings and events dropped as repeats of one already delivered.
    pub fn repeats(&self) -> u64 {
        self.repeats
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
            assert_eq!(
                q.admit("s", "gw-1", &format!("d{i}"), 1, 0),
                Ok(Admitted::Fresh)
            );
        }
        assert_eq!(q.admit("s", "gw-1", "d99", 1, 0), Err(true));
        assert_eq!(q.admit("s", "gw-1", "d100", 1, 0), Err(false));
        // Known entities keep flowing; other gateways have their own quota.
        assert_eq!(q.admit("s", "gw-1", "d1", 2, 1), Ok(Admitted::Fresh));
        assert_eq!(q.admit("s", "gw-2", "d99", 1, 0), Ok(Admitted::Fresh));
        assert_eq!(q.refused(), 2);
        assert_eq!(q.gateways_over(), 1);
    }
}

#[cfg(test)]
mod repeat_tests {
    use super::*;

    #[test]
    fn a_seq_delivered_before_is_a_repeat_whatever_time_it_carries() {
        let mut q = EntityQuota::new(10);
        assert_eq!(q.admit("s", "gw", "em-1", 7, 1_000), Ok(Admitted::Fresh));
        assert_eq!(q.admit("s", "gw", "em-1", 8, 2_000), Ok(Admitted::Fresh));
        // Re-sent from the cursor: same seqs, the same or a later stamp.
        assert_eq!(q.admit("s", "gw", "em-1", 7, 1_000), Ok(Admitted::Repeat));
        assert_eq!(q.admit("s", "gw", "em-1", 8, 9_000), Ok(Admitted::Repeat));
        // Another device's seq 8 is its own.
        assert_eq!(q.admit("s", "gw", "wm-1", 8, 2_000), Ok(Admitted::Fresh));
        assert_eq!(q.admit("s", "gw", "em-1", 9, 3_000), Ok(Admitted::Fresh));
        assert_eq!(q.repeats(), 2);
        // Unnumbered (seq 0): only the same time again is a repeat.
        assert_eq!(q.admit("s", "gw", "x", 0, 1_000), Ok(Admitted::Fresh));
        assert_eq!(q.admit("s", "gw", "x", 0, 2_000), Ok(Admitted::Fresh));
        assert_eq!(q.admit("s", "gw", "x", 0, 2_000), Ok(Admitted::Repeat));
    }

    #[test]
    fn a_checkpoint_keeps_the_shape_it_had_before_the_map_was_split_by_site() {
        // The shape saved before: one map keyed by (site, gateway).
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Before {
            max_per_gateway: usize,
            seen: HashMap<(String, String), HashMap<String, Newest>>,
            refused: u64,
            repeats: u64,
            over: HashSet<(String, String)>,
        }
        let mut q = EntityQuota::new(8);
        q.admit("s1", "gw-1", "s1/gw-1/em-1", 5, 1_000).unwrap();
        q.admit("s1", "gw-2", "s1/gw-2/em-1", 7, 1_000).unwrap();
        q.admit("s2", "gw-1", "s2/gw-1/wm-1", 9, 1_000).unwrap();
        let bytes = rmp_serde::to_vec_named(&q).unwrap();
        let before: Before = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(before.seen.len(), 3);
        assert_eq!(
            before.seen[&("s1".to_owned(), "gw-2".to_owned())]["s1/gw-2/em-1"].seq,
            7
        );
        // And a checkpoint written in that shape restores the deliveries.
        let old = rmp_serde::to_vec_named(&before).unwrap();
        let mut back: EntityQuota = rmp_serde::from_slice(&old).unwrap();
        assert_eq!(
            back.admit("s2", "gw-1", "s2/gw-1/wm-1", 9, 1_000),
            Ok(Admitted::Repeat)
        );
        assert_eq!(
            back.admit("s2", "gw-1", "s2/gw-1/wm-1", 10, 2_000),
            Ok(Admitted::Fresh)
        );
    }
}
