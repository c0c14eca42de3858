//! Group rental (群租): a flat used like a dormitory — far more people living
//! there than are registered, steadily, for days.
//!
//! People are counted with water, the one meter machines do not drive:
//! showers, flushes and cooking scale with heads, while a crypto miner, a
//! night air-conditioner, gas floor heating or a cold spell move
//! electricity and gas but not water. Per flat and local day ([`day`]):
//! electricity kWh, water litres net of the day's floor flow (a leak flows
//! around the clock and counts no one), gas m³ and the night base load,
//! each per registered occupant, smoothed over days (an exponential mean
//! over `smoothing_days`), so a party or a guest does not count.
//!
//! When a building's day ends (the first reading of the next local day from
//! any of its flats), the building's water per registered person is the
//! median over the flats lived in that day (water at least `occupied_min_l`:
//! a flat emptied for the Spring Festival or a holiday says nothing about
//! how much a person uses), needing `min_peers` of them, smoothed over days
//! like the flats' own. A flat's
//! people are then its own smoothed water over that: a flat compared with
//! what a person in its building uses, whatever the season. A day is suspect
//! when that estimate is at least `min_people` and at least `min_extra_people`
//! more than registered (a couple registered as one is a shared flat, not a
//! dormitory); the flat is alerted after `persistence_days` suspect days out
//! of the last `persistence_days + 3`.
//!
//! Suppressed: flats with a registered business; days on which fewer than
//! half the building's flats had a full day of data (an outage or a gateway
//! down says nothing about a flat). Alerts are minor (inspection backlog),
//! at most one per flat per `cooldown_days`, with the numbers they rest on.

pub mod day;
#[cfg(test)]
mod tests;

use super::flat_table::FlatTable;
use super::local_time::{in_hours, LocalTime};
use super::Finding;
use crate::config::{positive, FieldError};
use crate::register::{flat_key, Register};
use crate::stats::median;
use day::{DayUse, FEATURES};
use gridwatch_telemetry::{DeviceKind, Evidence, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Rule name.
pub const RULE_GROUP_RENTAL: &str = "group_rental";

/// The `[detect.group_rental]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupRentalConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// Occupants assumed for a flat missing from the register.
    pub default_occupants: u8,
    /// Days over which daily features are smoothed.
    pub smoothing_days: u32,
    /// Lived-in flats with data needed in a building for its water per person.
    pub min_peers: usize,
    /// A flat using less water than this a day (smoothed), litres, is empty
    /// for now and left out of the building's water per person.
    pub occupied_min_l: f64,
    /// People (water over the building's water per person) needed for a
    /// suspect day: a dormitory, not a family.
    pub min_people: f64,
    /// People beyond the registered occupants needed for a suspect day.
    pub min_extra_people: f64,
    /// Suspect days needed (out of the last `persistence_days + 3`).
    pub persistence_days: u32,
    /// Share of a day that must have data for it to count.
    pub min_coverage: f64,
    /// At most one alert per flat in this many days.
    pub cooldown_days: u32,
}

impl Default for GroupRentalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default_occupants: 2,
            smoothing_days: 7,
            min_peers: 8,
            occupied_min_l: 25.0,
            min_people: 5.5,
            min_extra_people: 3.0,
            persistence_days: 7,
            min_coverage: 0.8,
            cooldown_days: 30,
        }
    }
}

impl GroupRentalConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("occupied_min_l", self.occupied_min_l)?;
        positive("min_people", self.min_people)?;
        if !(self.min_extra_people.is_finite() && self.min_extra_people >= 0.0) {
            return Err(FieldError::new("min_extra_people", "must be 0 or more"));
        }
        if !(self.min_coverage > 0.0 && self.min_coverage <= 1.0) {
            return Err(FieldError::new(
                "min_coverage",
                format!("is {}; it must be above 0 and at most 1", self.min_coverage),
            ));
        }
        if !(1..=13).contains(&self.persistence_days) {
            return Err(FieldError::new(
                "persistence_days",
                format!("is {}; it must be 1 to 13", self.persistence_days),
            ));
        }
        if self.min_peers < 3 {
            return Err(FieldError::new(
                "min_peers",
                format!(
                    "is {}; a median of fewer than 3 flats says nothing",
                    self.min_peers
                ),
            ));
        }
        if self.smoothing_days == 0 {
            return Err(FieldError::new(
                "smoothing_days",
                "is 0; it must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One flat's state: about 80 bytes plus its key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FlatTrack {
    today: DayUse,
    /// Last reading per meter kind (electricity, water, gas), ms.
    last_ts: [i64; 3],
    /// Smoothed features; NaN until the first full day.
    smooth: [f32; 4],
    valid_days: u16,
    /// Suspect days, newest in bit 0.
    suspect: u16,
    alerted_at: Option<i64>,
    occupants: u8,
    business: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct BuildingTrack {
    day: i32,
    flats: Vec<u32>,
    /// Water per person in the building's lived-in flats, L a day, smoothed
    /// like the flats' own; NaN until a day had enough of them.
    per_person_l: f32,
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
    flats: FlatTable<FlatTrack>,
    buildings: HashMap<String, BuildingTrack>,
    stats: GroupRentalStats,
}

impl GroupRental {
    /// A detector for a validated config.
    pub fn new(config: &GroupRentalConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            flats: FlatTable::default(),
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
            .map(|(k, b)| k.capacity() + b.flats.capacity() * 4 + 52)
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
                out = self.close_day(&building, r.site.as_str());
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
                valid_days: 0,
                suspect: 0,
                alerted_at: None,
                occupants: facts
                    .map_or(self.config.default_occupants, |f| f.occupants)
                    .max(1),
                business: facts.is_some_and(|f| f.business),
            },
        );
        self.buildings
            .entry(building.to_owned())
            .or_insert_with(|| BuildingTrack {
                day,
                flats: Vec::new(),
                per_person_l: f32::NAN,
            })
            .flats
            .push(idx);
        idx
    }

    /// Ends the building's current day for all its flats and judges them.
    fn close_day(&mut self, building: &str, site: &str) -> Vec<Finding> {
        let Some(b) = self.buildings.get(building) else {
            return Vec::new();
        };
        let (bday, members) = (b.day, b.flats.clone());
        self.stats.building_days += 1;
        let cfg = self.config.clone();
        let alpha = (2.0 / (f64::from(cfg.smoothing_days) + 1.0)) as f32;
        let mut complete = 0usize;
        let mut lived_in: Vec<f64> = Vec::new();
        for &i in &members {
            let t = &mut self.flats[i];
            let feats = (t.today.day == bday)
                .then(|| {
                    t.today
                        .features(f32::from(t.occupants), cfg.min_coverage as f32)
                })
                .flatten();
            let Some(x) = feats else { continue };
            complete += 1;
            if f64::from(x[1]) * f64::from(t.occupants) >= cfg.occupied_min_l {
                lived_in.push(f64::from(x[1]));
            }
            t.valid_days = t.valid_days.saturating_add(1);
            for (s, v) in t.smooth.iter_mut().zip(x) {
                if v.is_finite() {
                    *s = if s.is_finite() {
                        *s + alpha * (v - *s)
                    } else {
                        v
                    };
                }
            }
        }
        if complete * 2 < members.len() || complete < cfg.min_peers {
            self.stats.skipped_days += 1;
            for &i in &members {
                self.flats[i].suspect <<= 1;
            }
            return Vec::new();
        }
        // Water per person: the day's median over the flats lived in that
        // day, smoothed over days like the flats' own.
        if lived_in.len() >= cfg.min_peers {
            let today = median(&lived_in) as f32;
            if let Some(b) = self.buildings.get_mut(building) {
                b.per_person_l = if b.per_person_l.is_finite() {
                    b.per_person_l + alpha * (today - b.per_person_l)
                } else {
                    today
                };
            }
        }
        let per_person = self
            .buildings
            .get(building)
            .map_or(f64::NAN, |b| f64::from(b.per_person_l));
        // The building's medians per feature, for the evidence.
        let mut medians = [f32::NAN; 4];
        for (f, m) in medians.iter_mut().enumerate() {
            let xs: Vec<f64> = members
                .iter()
                .map(|&i| f64::from(self.flats[i].smooth[f]))
                .filter(|v| v.is_finite())
                .collect();
            if xs.len() >= cfg.min_peers {
                *m = median(&xs) as f32;
            }
        }
        medians[1] = per_person as f32;
        let mut out = Vec::new();
        let end = self.local.day_end(i64::from(bday));
        for &i in &members {
            let t = &mut self.flats[i];
            let people = f64::from(t.smooth[1]) * f64::from(t.occupants) / per_person.max(1e-3);
            let suspect = per_person.is_finite()
                && people.is_finite()
                && t.valid_days >= 3
                && people >= cfg.min_people
                && people >= f64::from(t.occupants) + cfg.min_extra_people
                && !t.business;
            t.suspect = (t.suspect << 1) | u16::from(suspect);
            let recent = (t.suspect & ((1u16 << (cfg.persistence_days + 3)) - 1)).count_ones();
            let cooled = t
                .alerted_at
                .is_none_or(|a| end.0 - a >= i64::from(cfg.cooldown_days) * 86_400_000);
            if suspect && recent >= cfg.persistence_days && cooled {
                t.alerted_at = Some(end.0);
                let t = &self.flats[i];
                out.push(self.finding(i, site, end, people, recent, medians, t));
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
        people: f64,
        suspect_days: u32,
        medians: [f32; 4],
        t: &FlatTrack,
    ) -> Finding {
        let flat = self.flats.key(i);
        let mut values = BTreeMap::from([
            ("estimated_people".to_owned(), people),
            ("suspect_days".to_owned(), f64::from(suspect_days)),
            ("registered_occupants".to_owned(), f64::from(t.occupants)),
        ]);
        for (f, name) in FEATURES.iter().enumerate() {
            if t.smooth[f].is_finite() {
                values.insert((*name).to_owned(), f64::from(t.smooth[f]));
            }
            if medians[f].is_finite() {
                values.insert(format!("building_median_{name}"), f64::from(medians[f]));
            }
        }
        let c = &self.config;
        Finding {
            id: format!("{RULE_GROUP_RENTAL}:{flat}:{}", end.0),
            rule: RULE_GROUP_RENTAL,
            entity: flat.to_owned(),
            site: site.to_owned(),
            severity: Severity::Minor,
            ts: end,
            title: format!(
                "Possible group rental in {flat}: water for {people:.0} people, {} registered",
                t.occupants
            ),
            summary: format!(
                "{flat} (registered for {}) uses {:.0} L of water a day per registered \
                 occupant, leaks aside, where a person in its building uses {:.0} L: water for \
                 about {people:.0} people ({:.1} kWh a day per registered occupant against a \
                 building median of {:.1}); suspect on {suspect_days} of the last {} days. Put it \
                 on the inspection list.",
                t.occupants,
                t.smooth[1],
                medians[1],
                t.smooth[0],
                medians[0],
                c.persistence_days + 3,
            ),
            evidence: Evidence {
                values,
                thresholds: BTreeMap::from([
                    ("min_people".to_owned(), c.min_people),
                    ("min_extra_people".to_owned(), c.min_extra_people),
                    ("occupied_min_l".to_owned(), c.occupied_min_l),
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
