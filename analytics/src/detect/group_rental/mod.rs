//! Group rental (群租): a flat used like a dormitory — far more water, power
//! and gas per registered occupant than its peers, steadily, for days.
//!
//! Per flat and local day ([`day`]): electricity kWh, water litres, cooking
//! gas m³ (the day's gas less its rate between 00:00 and 05:00, when nobody
//! cooks: floor heating is not people) and night activity (the mean
//! interval power 00:00–05:00 above its lowest: people up at night, not a
//! miner or PC that runs around the clock), each per registered occupant. A
//! day with next to no water is an empty flat (away for the Spring
//! Festival, between tenants): it is neither judged nor a peer. Each feature is smoothed over days (an exponential
//! mean over `smoothing_days`), so a party or a guest does not count.
//!
//! When a building's day ends (the first reading of the next local day from
//! any of its flats), each flat's smoothed features are compared with its
//! peers' in the same building: robust z = 0.6745·(x − median)/MAD (MAD 0 →
//! 1.2533 × mean absolute deviation), needing `min_peers` flats. The
//! factors of a day are the features whose z exceeds `z_threshold`, water or
//! electricity per occupant above `norm_ratio` × the regional norm, and a
//! CUSUM level shift against the flat's own first `baseline_days` (k =
//! `cusum_k`, h = `cusum_h`, on the sum of the norm ratios). A day is
//! suspect with at least `min_factors` factors adding up to `min_score` (each
//! capped at 20), `min_people_factors` of them from water, gas or the night
//! activity (electricity by day alone is machines, not people); the flat is alerted after
//! `persistence_days` suspect days out of the last `persistence_days + 3`.
//!
//! A suspect day also needs the flat's water to say that at least
//! `min_people_estimate` people live there (its water over the building's
//! median water per registered occupant): three adults sharing a flat
//! registered for one are far out per occupant but are not a group rental.
//!
//! Suppressed: flats with a registered business; days on which fewer than
//! half the building's flats had a full day of data (an outage or a gateway
//! down says nothing about a flat). Alerts are minor (inspection backlog),
//! at most one per flat per `cooldown_days`, with the top factors in numbers.

mod config;
pub mod day;
#[cfg(test)]
mod tests;

use super::entity_table::EntityTable;
use super::local_time::{in_hours, LocalTime};
use super::Finding;
use crate::register::{flat_key, Register};
use crate::stats::{median, robust_z};
pub use config::GroupRentalConfig;
use day::{DayUse, FEATURES};
use gridwatch_telemetry::{DeviceKind, Evidence, Reading, Severity, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// Rule name.
pub const RULE_GROUP_RENTAL: &str = "group_rental";

/// One flat's state: about 120 bytes plus its key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FlatTrack {
    today: DayUse,
    /// Last reading per meter kind (electricity, water, gas), ms.
    last_ts: [i64; 3],
    /// Smoothed features; NaN until the first full day.
    smooth: [f32; 4],
    /// Electricity and water per occupant over `peer_window_days`; NaN
    /// until the first full day.
    peer: [f32; 2],
    valid_days: u16,
    /// CUSUM baseline (Welford) and sum.
    base_n: u16,
    base_mean: f32,
    base_m2: f32,
    cusum: f32,
    /// Suspect days, newest in bit 0.
    suspect: u16,
    alerted_at: Option<i64>,
    occupants: u8,
    business: bool,
    /// The local day the register entry judged on is in force from
    /// (`i32::MIN`: undated), named in an alert's summary.
    register_since: i32,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct BuildingTrack {
    day: i32,
    flats: Vec<u32>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRentalStats {
    /// Building-days closed.
    pub building_days: u64,
    /// Building-days skipped because too few flats had data.
    pub skipped_days: u64,
    /// Findings raised.
    pub findings: u64,
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GroupRental {
    config: GroupRentalConfig,
    local: LocalTime,
    flats: EntityTable<FlatTrack>,
    buildings: HashMap<String, BuildingTrack>,
    stats: GroupRentalStats,
}

impl GroupRental {
    /// A detector for a validated config.
    pub fn new(config: &GroupRentalConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            flats: EntityTable::default(),
            buildings: HashMap::new(),
            stats: GroupRentalStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> GroupRentalStats {
        self.stats
    }

    /// Flats with state, and the bytes that state takes (keys, index and
    /// building lists included).
    pub fn memory(&self) -> (usize, usize) {
        let flats = self.flats.bytes();
        let buildings: usize = self
            .buildings
            .iter()
            .map(|(k, b)| k.capacity() + b.flats.capacity() * 4 + 48)
            .sum();
        (self.flats.len(), flats + buildings)
    }

    /// Feeds a meter reading; readings not bound to a unit are ignored.
    pub fn observe(&mut self, r: &Reading, register: &Register) -> Vec<Finding> {
        let slot = match r.kind {
            DeviceKind::ElectricityMeter => 0,
            DeviceKind::WaterMeter => 1,
            DeviceKind::GasMeter => 2,
            _ => return Vec::new(),
        };
        if !self.config.enabled {
            return Vec::new();
        }
        let Some(flat) = flat_key(r) else {
            return Vec::new();
        };
        let day = self.local.day(r.ts) as i32;
        let building = format!("{}/{}", r.site, r.building.as_deref().unwrap_or(""));
        let idx = match self.flats.find(&flat) {
            Some(i) => i,
            None => self.add_flat(flat, &building, register, day),
        };
        let mut out = Vec::new();
        let b = self.buildings.get(&building).map(|b| b.day);
        if let Some(bday) = b {
            if day > bday {
                out = self.close_day(&building, r.site.as_str(), register);
                if let Some(b) = self.buildings.get_mut(&building) {
                    b.day = day;
                }
            }
        }
        let night = in_hours(self.local.hour(r.ts), 0, 5);
        let t = &mut self.flats[idx];
        if day < t.today.day {
            return out; // late reading of a day already closed
        }
        if day > t.today.day {
            t.today = DayUse::new(day);
        }
        let last = t.last_ts[slot];
        if r.ts.0 <= last {
            return out;
        }
        let dt_min = if last == i64::MIN {
            0
        } else {
            ((r.ts.0 - last) / 60_000).min(60) as u16
        };
        t.last_ts[slot] = r.ts.0;
        t.today.add(r, dt_min, night);
        out
    }

    fn add_flat(&mut self, flat: String, building: &str, register: &Register, day: i32) -> u32 {
        let facts = register.flat(&flat);
        let idx = self.flats.insert(
            flat,
            FlatTrack {
                today: DayUse::new(day),
                last_ts: [i64::MIN; 3],
                smooth: [f32::NAN; 4],
                peer: [f32::NAN; 2],
                valid_days: 0,
                base_n: 0,
                base_mean: 0.0,
                base_m2: 0.0,
                cusum: 0.0,
                suspect: 0,
                alerted_at: None,
                occupants: facts
                    .map_or(self.config.default_occupants, |f| f.occupants)
                    .max(1),
                business: facts.is_some_and(|f| f.business),
                register_since: facts.and_then(|f| f.since_day).unwrap_or(i32::MIN),
            },
        );
        self.buildings
            .entry(building.to_owned())
            .or_insert_with(|| BuildingTrack {
                day,
                flats: Vec::new(),
            })
            .flats
            .push(idx);
        idx
    }

    /// Ends the building's current day for all its flats and judges them.
    /// Each flat is judged per occupant of the register entry in force on
    /// the day closed (a re-registration takes effect that day, whether it
    /// came in a reloaded file or in the register's history).
    fn close_day(&mut self, building: &str, site: &str, register: &Register) -> Vec<Finding> {
        let Some(b) = self.buildings.get(building) else {
            return Vec::new();
        };
        let (bday, members) = (b.day, b.flats.clone());
        self.stats.building_days += 1;
        let cfg = self.config.clone();
        let alpha = (2.0 / (f64::from(cfg.smoothing_days) + 1.0)) as f32;
        let alpha_peer = (2.0 / (f64::from(cfg.peer_window_days) + 1.0)) as f32;
        let mut complete = 0usize;
        for &i in &members {
            let facts = register.flat_on(self.flats.key(i), bday);
            let t = &mut self.flats[i];
            t.occupants = facts.map_or(cfg.default_occupants, |f| f.occupants).max(1);
            t.business = facts.is_some_and(|f| f.business);
            t.register_since = facts.and_then(|f| f.since_day).unwrap_or(i32::MIN);
            let feats = (t.today.day == bday)
                .then(|| {
                    t.today
                        .features(f32::from(t.occupants), cfg.min_coverage as f32)
                })
                .flatten();
            let Some(x) = feats else { continue };
            complete += 1;
            t.valid_days = t.valid_days.saturating_add(1);
            for (s, v) in t.smooth.iter_mut().zip(x) {
                ema(s, v, alpha);
            }
            for (s, v) in t.peer.iter_mut().zip(x) {
                ema(s, v, alpha_peer);
            }
            // CUSUM on the day's load against the regional norms.
            let load = (f64::from(x[0]) / cfg.norm_electricity_kwh
                + f64::from(x[1]) / cfg.norm_water_l) as f32;
            if u32::from(t.base_n) < cfg.baseline_days {
                t.base_n += 1;
                let d = load - t.base_mean;
                t.base_mean += d / f32::from(t.base_n);
                t.base_m2 += d * (load - t.base_mean);
            } else {
                let var = t.base_m2 / f32::from(t.base_n.max(2) - 1);
                let sd = var.sqrt().max(0.1 * t.base_mean).max(1e-3);
                t.cusum = (t.cusum + (load - t.base_mean) / sd - cfg.cusum_k as f32).max(0.0);
            }
        }
        if complete * 2 < members.len() || complete < cfg.min_peers {
            self.stats.skipped_days += 1;
            for &i in &members {
                self.flats[i].suspect <<= 1;
            }
            return Vec::new();
        }
        // Peer statistics per feature over the flats with smoothed values.
        let mut z_of: Vec<[f32; 4]> = vec![[f32::NAN; 4]; members.len()];
        let mut medians = [f32::NAN; 4];
        for f in 0..4 {
            let xs: Vec<f64> = members
                .iter()
                .map(|&i| f64::from(self.flats[i].smooth[f]))
                .filter(|v| v.is_finite())
                .collect();
            if xs.len() < cfg.min_peers {
                continue;
            }
            medians[f] = median(&xs) as f32;
            let zs = robust_z(&xs);
            let mut k = 0;
            for (m, &i) in members.iter().enumerate() {
                if self.flats[i].smooth[f].is_finite() {
                    z_of[m][f] = zs[k] as f32;
                    k += 1;
                }
            }
        }
        // The peers' way: medians of the month-long averages of the flats
        // that have had half a window of full days.
        let settled = |t: &FlatTrack| u32::from(t.valid_days) * 2 >= cfg.peer_window_days;
        let mut peer_medians = [f64::NAN; 2];
        for (f, pm) in peer_medians.iter_mut().enumerate() {
            let xs: Vec<f64> = members
                .iter()
                .map(|&i| &self.flats[i])
                .filter(|t| settled(t) && t.peer[f].is_finite())
                .map(|t| f64::from(t.peer[f]))
                .collect();
            if xs.len() >= cfg.min_peers {
                *pm = median(&xs);
            }
        }
        let mut out = Vec::new();
        let end = self.local.day_end(i64::from(bday));
        for (m, &i) in members.iter().enumerate() {
            let t = &self.flats[i];
            let peer_people = (cfg.peer_min_people > 0.0 && settled(t))
                .then(|| peer_way(&cfg, t, peer_medians))
                .flatten();
            let mut factors: Vec<(String, f64, f64)> = Vec::new();
            for f in 0..4 {
                let z = f64::from(z_of[m][f]);
                if z.is_finite() && z > cfg.z_threshold {
                    factors.push((
                        format!("{}_robust_z", FEATURES[f]),
                        z,
                        f64::from(t.smooth[f]),
                    ));
                }
            }
            let ratio_w = f64::from(t.smooth[1]) / cfg.norm_water_l;
            if ratio_w > cfg.norm_ratio {
                factors.push(("water_vs_norm".into(), ratio_w, f64::from(t.smooth[1])));
            }
            let ratio_e = f64::from(t.smooth[0]) / cfg.norm_electricity_kwh;
            if ratio_e > cfg.norm_ratio {
                factors.push((
                    "electricity_vs_norm".into(),
                    ratio_e,
                    f64::from(t.smooth[0]),
                ));
            }
            if f64::from(t.cusum) > cfg.cusum_h {
                factors.push(("cusum_level_shift".into(), f64::from(t.cusum), f64::NAN));
            }
            let score: f64 = factors.iter().map(|f| f.1.min(20.0)).sum();
            let people = factors.iter().filter(|f| counts_people(&f.0)).count();
            if let Some(p) = peer_people {
                factors.push(("water_people_vs_building".into(), p, f64::from(t.peer[1])));
            }
            let people_est =
                f64::from(t.smooth[1]) * f64::from(t.occupants) / f64::from(medians[1]);
            let crowded =
                medians[1].is_nan() || medians[1] <= 0.0 || people_est >= cfg.min_people_estimate;
            let by_factors = crowded
                && factors.len() >= cfg.min_factors as usize
                && people >= cfg.min_people_factors as usize
                && score >= cfg.min_score;
            let suspect = (by_factors || peer_people.is_some()) && t.valid_days >= 3 && !t.business;
            let t = &mut self.flats[i];
            t.suspect = (t.suspect << 1) | u16::from(suspect);
            let recent = (t.suspect & ((1u16 << (cfg.persistence_days + 3)) - 1)).count_ones();
            let cooled = t
                .alerted_at
                .is_none_or(|a| end.0 - a >= i64::from(cfg.cooldown_days) * 86_400_000);
            if suspect && recent >= cfg.persistence_days && cooled {
                t.alerted_at = Some(end.0);
                let t = &self.flats[i];
                out.push(self.finding(i, site, end, &factors, recent, medians, t));
            }
        }
        self.stats.findings += out.len() as u64;
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        i: u32,
        site: &str,
        end: Timestamp,
        factors: &[(String, f64, f64)],
        suspect_days: u32,
        medians: [f32; 4],
        t: &FlatTrack,
    ) -> Finding {
        let flat = self.flats.key(i);
        let mut top: Vec<&(String, f64, f64)> = factors.iter().collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        let score: f64 = factors.iter().map(|f| f.1.min(20.0)).sum();
        let mut values = BTreeMap::from([
            ("score".to_owned(), score),
            ("suspect_days".to_owned(), f64::from(suspect_days)),
            ("registered_occupants".to_owned(), f64::from(t.occupants)),
        ]);
        if medians[1] > 0.0 {
            values.insert(
                "people_estimate".to_owned(),
                f64::from(t.smooth[1]) * f64::from(t.occupants) / f64::from(medians[1]),
            );
        }
        for (f, name) in FEATURES.iter().enumerate() {
            if t.smooth[f].is_finite() {
                values.insert((*name).to_owned(), f64::from(t.smooth[f]));
            }
            if medians[f].is_finite() {
                values.insert(format!("building_median_{name}"), f64::from(medians[f]));
            }
        }
        for (name, v, _) in factors {
            values.insert(format!("factor_{name}"), *v);
        }
        let c = &self.config;
        let words: Vec<String> = top
            .iter()
            .take(3)
            .map(|(name, v, _)| format!("{name} {v:.1}"))
            .collect();
        Finding {
            id: format!("{RULE_GROUP_RENTAL}:{flat}:{}", end.0),
            rule: RULE_GROUP_RENTAL,
            entity: flat.to_owned(),
            site: site.to_owned(),
            severity: Severity::Minor,
            ts: end,
            title: format!("Possible group rental in {flat}: {}", words.join(", ")),
            summary: format!(
                "{flat} (registered for {}, register entry {}) uses {:.0} L of water and {:.1} kWh a day per \
                 registered occupant against a building median of {:.0} L and {:.1} kWh, with a \
                 night activity of {:.0} W per occupant; suspect on {suspect_days} of the last {} \
                 days. Top factors: {}. Put it on the inspection list.",
                t.occupants,
                if t.register_since == i32::MIN {
                    "undated".to_owned()
                } else {
                    format!(
                        "since {}",
                        crate::register::dates::format_day(t.register_since)
                    )
                },
                t.smooth[1],
                t.smooth[0],
                medians[1],
                medians[0],
                t.smooth[3],
                c.persistence_days + 3,
                words.join("; ")
            ),
            evidence: Evidence {
                values,
                thresholds: BTreeMap::from([
                    ("z_threshold".to_owned(), c.z_threshold),
                    ("norm_water_l".to_owned(), c.norm_water_l),
                    ("norm_electricity_kwh".to_owned(), c.norm_electricity_kwh),
                    ("norm_ratio".to_owned(), c.norm_ratio),
                    ("cusum_h".to_owned(), c.cusum_h),
                    ("persistence_days".to_owned(), f64::from(c.persistence_days)),
                ]),
                window_start: Timestamp(end.0 - i64::from(c.persistence_days + 3) * 86_400_000),
                window_end: end,
                samples: Vec::new(),
                series: None,
            },
        }
    }
}

/// An exponential mean's step; a NaN value leaves it, a NaN mean takes
/// the first value.
fn ema(s: &mut f32, v: f32, alpha: f32) {
    if v.is_finite() {
        *s = if s.is_finite() {
            *s + alpha * (v - *s)
        } else {
            v
        };
    }
}

/// The peers' way (`peer_min_people`): the people the flat's month of
/// water speaks for when it holds, else `None`.
fn peer_way(cfg: &GroupRentalConfig, t: &FlatTrack, medians: [f64; 2]) -> Option<f64> {
    let (e, w) = (f64::from(t.peer[0]), f64::from(t.peer[1]));
    let (med_e, med_w) = (medians[0].max(0.1), medians[1].max(10.0));
    if !(e.is_finite() && w.is_finite() && medians[0].is_finite() && medians[1].is_finite()) {
        return None;
    }
    let people = w * f64::from(t.occupants) / med_w;
    let (we, ee) = (w / med_w, e / med_e);
    let holds = w >= cfg.peer_min_water_l
        && people >= cfg.peer_min_people
        && ((we >= cfg.peer_water_ratio && ee >= cfg.peer_electricity_ratio)
            || we >= cfg.peer_water_alone_ratio);
    holds.then_some(people)
}

/// Whether a factor measures people (showers, cooking, someone up at night)
/// rather than electricity by day, which machines explain as well.
fn counts_people(factor: &str) -> bool {
    factor.starts_with("water_")
        || factor.starts_with("gas_")
        || factor.starts_with("night_activity_")
}
