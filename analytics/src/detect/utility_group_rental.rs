//! Group rental at utility resolution (`group_rental_utility`): what the
//! city's platform can judge from the utilities' own exports, without a
//! gateway in the building.
//!
//! The utilities export registers, not load curves: State Grid freezes each
//! meter's register at local midnight, water companies read monthly. This
//! detector reads only that much of any stream it is fed: the first
//! `energy_kwh` register of each local day and the first `volume_m3` water
//! register of each month. Whatever else the stream carries (5-minute
//! power, hourly flows) it never looks at, so a replay of a gateway's
//! stream scores exactly what a utility export of the same flats would.
//!
//! Per flat and calendar month it works out electricity per day (from the
//! daily registers, over at least `min_days` days) and water per day (from
//! the month's two water registers), each per registered occupant as the
//! register stood at the month's end ([`crate::register::Register::flat_on`]).
//! Two days into the next month, when every flat of the building has closed
//! its month, each flat is compared with its building's flats of the same
//! month (medians, at least `min_peers` of them): a flat whose water per
//! registered person is `water_ratio` times the building's and whose
//! electricity per person is `electricity_ratio` times, or whose water alone
//! is `water_alone_ratio` times, with water above `min_water_l` a day per
//! registered person, is a possible group rental. A registered business is
//! not judged. The coarsest data it needs: daily electricity registers and
//! monthly water registers; it never judges a month it has less of.

use super::entity_table::EntityTable;
use super::local_time::LocalTime;
use super::Finding;
use crate::register::dates::{first_day_of, month_of};
use crate::register::{flat_key, Register};
use crate::stats::median;
use crate::toml_file::FieldError;
use gridwatch_telemetry::{DeviceKind, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The rule's name.
pub const RULE: &str = "group_rental_utility";

/// The `[detect.group_rental_utility]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UtilityGroupRentalConfig {
    /// Run the rule.
    pub enabled: bool,
    /// Days of electricity a month needs to be judged.
    pub min_days: u8,
    /// Flats of the building with a judged month needed to compare with.
    pub min_peers: usize,
    /// Water per registered person over the building's median, times.
    pub water_ratio: f64,
    /// Electricity per registered person over the building's median, times
    /// (with `water_ratio`).
    pub electricity_ratio: f64,
    /// Water per registered person over the building's median that is
    /// enough alone, times.
    pub water_alone_ratio: f64,
    /// Water per registered person a day below which nothing is judged
    /// (litres): a flat of one quiet person is not a group rental.
    pub min_water_l: f64,
    /// People the flat's water speaks for (its litres a day over the
    /// building's median per registered person) below which it is not a
    /// group rental, whatever the ratios: a family of four registered for
    /// two is under-registered, not a group rental.
    pub min_people: f64,
    /// Days after an alert before the same flat may alert again.
    pub cooldown_days: u32,
    /// Occupants assumed for a flat not in the register.
    pub default_occupants: u8,
}

impl Default for UtilityGroupRentalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_days: 20,
            min_peers: 5,
            water_ratio: 2.0,
            electricity_ratio: 1.5,
            water_alone_ratio: 3.0,
            min_water_l: 150.0,
            min_people: 6.0,
            cooldown_days: 60,
            default_occupants: 2,
        }
    }
}

impl UtilityGroupRentalConfig {
    /// Ratios above 1, a positive day count and peers.
    pub fn validate(&self) -> Result<(), FieldError> {
        for (key, v) in [
            ("water_ratio", self.water_ratio),
            ("electricity_ratio", self.electricity_ratio),
            ("water_alone_ratio", self.water_alone_ratio),
        ] {
            if !(v.is_finite() && v > 1.0) {
                return Err(FieldError::at(
                    crate::toml_file::locate::FieldPath::keys(&[key]),
                    "must be a number above 1",
                ));
            }
        }
        if self.min_days == 0 || self.min_days > 31 || self.min_peers < 3 {
            return Err(FieldError::at(
                crate::toml_file::locate::FieldPath::keys(&["min_days"]),
                "min_days must be 1–31 and min_peers at least 3",
            ));
        }
        Ok(())
    }
}

/// One flat's registers, as a utility would export them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct FlatUse {
    /// The day and register of the last daily electricity value.
    e_last: Option<(i32, f64)>,
    /// The month being summed, its kWh and days.
    e_month: i32,
    e_kwh: f64,
    e_days: u8,
    /// The last month closed: (month, kWh a day, days it covers).
    e_closed: Option<(i32, f32, u8)>,
    /// The water register at the first reading of the month: (month, day, m³).
    w_start: Option<(i32, i32, f64)>,
    /// The last month closed: (month, litres a day).
    w_closed: Option<(i32, f32)>,
    /// The month handed to the building already.
    handed: i32,
    alerted_day: Option<i32>,
}

/// A flat's month, waiting for its building's.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlatMonth {
    flat: u32,
    kwh_day: f32,
    water_l_day: f32,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtilityGroupRentalStats {
    /// Flat-months judged.
    pub flat_months: u64,
    /// Building-months not judged: fewer than `min_peers` flats.
    pub skipped_months: u64,
    /// Findings raised.
    pub findings: u64,
}

/// The detector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UtilityGroupRental {
    config: UtilityGroupRentalConfig,
    local: LocalTime,
    flats: EntityTable<FlatUse>,
    /// Per building, the months waiting to be judged.
    buildings: HashMap<String, BTreeMap<i32, Vec<FlatMonth>>>,
    stats: UtilityGroupRentalStats,
}

impl UtilityGroupRental {
    /// A detector for a validated config.
    pub fn new(config: &UtilityGroupRentalConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            flats: EntityTable::default(),
            buildings: HashMap::new(),
            stats: UtilityGroupRentalStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> UtilityGroupRentalStats {
        self.stats
    }

    /// Flats with state, and the bytes that state takes (keys, index and
    /// the months waiting for their building included).
    pub fn memory(&self) -> (usize, usize) {
        let waiting: usize = self
            .buildings
            .iter()
            .map(|(k, m)| k.capacity() + m.values().map(|v| 16 + v.capacity() * 12).sum::<usize>())
            .sum();
        (self.flats.len(), self.flats.bytes() + waiting)
    }

    /// Feeds a meter reading; only electricity and water registers count.
    pub fn observe(&mut self, r: &Reading, register: &Register) -> Vec<Finding> {
        if !self.config.enabled {
            return Vec::new();
        }
        let (electric, value) = match r.kind {
            DeviceKind::ElectricityMeter => (true, r.value("energy_kwh")),
            DeviceKind::WaterMeter => (false, r.value("volume_m3")),
            _ => return Vec::new(),
        };
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return Vec::new();
        };
        let Some(flat) = flat_key(r) else {
            return Vec::new();
        };
        let building = format!("{}/{}", r.site, r.building.as_deref().unwrap_or(""));
        let day = self.local.day(r.ts) as i32;
        let idx = match self.flats.find(&flat) {
            Some(i) => i,
            None => self.flats.insert(
                flat,
                FlatUse {
                    handed: i32::MIN,
                    ..FlatUse::default()
                },
            ),
        };
        let u = &mut self.flats[idx];
        if electric {
            daily_electricity(u, day, value);
        } else {
            monthly_water(u, day, value);
        }
        if let (Some((em, kwh, days)), Some((wm, litres))) = (u.e_closed, u.w_closed) {
            if em == wm && em > u.handed && days >= self.config.min_days {
                u.handed = em;
                self.buildings
                    .entry(building.clone())
                    .or_default()
                    .entry(em)
                    .or_default()
                    .push(FlatMonth {
                        flat: idx,
                        kwh_day: kwh,
                        water_l_day: litres,
                    });
            }
        }
        self.judge_due(&building, r.site.as_str(), day, r.ts, register)
    }

    /// Judges the building's months whose next month is two days old.
    fn judge_due(
        &mut self,
        building: &str,
        site: &str,
        day: i32,
        ts: Timestamp,
        register: &Register,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        loop {
            let Some(months) = self.buildings.get_mut(building) else {
                return out;
            };
            let Some((&month, _)) = months.first_key_value() else {
                return out;
            };
            if day < first_day_of(month + 1) + 2 {
                return out;
            }
            let Some(members) = months.remove(&month) else {
                return out;
            };
            out.extend(self.judge(month, &members, site, ts, register));
        }
    }

    fn judge(
        &mut self,
        month: i32,
        members: &[FlatMonth],
        site: &str,
        ts: Timestamp,
        register: &Register,
    ) -> Vec<Finding> {
        let c = self.config.clone();
        let last_day = first_day_of(month + 1) - 1;
        let per_person: Vec<(u32, f64, f64, u8, bool)> = members
            .iter()
            .map(|m| {
                let facts = register.flat_on(self.flats.key(m.flat), last_day);
                let occ = facts.map_or(c.default_occupants, |f| f.occupants).max(1);
                let business = facts.is_some_and(|f| f.business);
                (
                    m.flat,
                    f64::from(m.kwh_day) / f64::from(occ),
                    f64::from(m.water_l_day) / f64::from(occ),
                    occ,
                    business,
                )
            })
            .collect();
        if per_person.len() < c.min_peers {
            self.stats.skipped_months += 1;
            return Vec::new();
        }
        let med_e = median(&per_person.iter().map(|x| x.1).collect::<Vec<_>>()).max(0.1);
        let med_w = median(&per_person.iter().map(|x| x.2).collect::<Vec<_>>()).max(10.0);
        let mut out = Vec::new();
        for &(i, e, w, occ, business) in &per_person {
            self.stats.flat_months += 1;
            let (we, ee) = (w / med_w, e / med_e);
            let people = w * f64::from(occ) / med_w;
            let suspect = !business
                && w >= c.min_water_l
                && people >= c.min_people
                && ((we >= c.water_ratio && ee >= c.electricity_ratio)
                    || we >= c.water_alone_ratio);
            let u = &mut self.flats[i];
            let cooled = u
                .alerted_day
                .is_none_or(|d| last_day - d >= c.cooldown_days as i32);
            if !(suspect && cooled) {
                continue;
            }
            u.alerted_day = Some(last_day);
            let flat = self.flats.key(i).to_owned();
            let values = [
                ("water_l_day_per_registered", w),
                ("building_median_water_l_day_per_registered", med_w),
                ("kwh_day_per_registered", e),
                ("building_median_kwh_day_per_registered", med_e),
                ("registered_occupants", f64::from(occ)),
                ("people_by_water", people),
                ("peers", per_person.len() as f64),
            ];
            let thresholds = [
                ("water_ratio", c.water_ratio),
                ("electricity_ratio", c.electricity_ratio),
                ("water_alone_ratio", c.water_alone_ratio),
                ("min_water_l", c.min_water_l),
                ("min_people", c.min_people),
            ];
            let month_start = self.local.day_end(i64::from(first_day_of(month)) - 1);
            out.push(Finding {
                id: format!("{RULE}:{flat}:{}", month_start.0),
                rule: RULE,
                entity: flat.clone(),
                site: site.to_owned(),
                severity: Severity::Minor,
                ts,
                title: format!("Possible group rental in {flat} (utility data)"),
                summary: format!(
                    "{flat} (registered for {occ}, register of {}) used {w:.0} L of water and \
                     {e:.1} kWh a day per registered person in {}, {we:.1}× and {ee:.1}× its \
                     building's median. Judged from daily electricity and monthly water \
                     registers. Put it on the inspection list.",
                    crate::register::dates::format_day(last_day),
                    crate::register::dates::format_day(first_day_of(month))[..7].to_owned(),
                ),
                evidence: super::evidence_of(&values, &thresholds, month_start, ts),
            });
        }
        self.stats.findings += out.len() as u64;
        out
    }
}

/// Sums a day's electricity from the first register of each local day.
fn daily_electricity(u: &mut FlatUse, day: i32, register: f64) {
    let Some((last_day, last)) = u.e_last else {
        u.e_last = Some((day, register));
        u.e_month = month_of(day);
        return;
    };
    if day <= last_day {
        return;
    }
    u.e_last = Some((day, register));
    let used = register - last;
    if used < 0.0 {
        return; // a replaced or reversed meter: no day's value
    }
    let month = month_of(last_day);
    if month != u.e_month {
        close_electricity(u);
        u.e_month = month;
    }
    // Days without a reading share the span's use evenly.
    let span = (day - last_day) as f64;
    u.e_kwh += used;
    u.e_days = u.e_days.saturating_add(span.min(31.0) as u8);
    if month_of(day) != month {
        close_electricity(u);
        u.e_month = month_of(day);
    }
}

fn close_electricity(u: &mut FlatUse) {
    if u.e_days > 0 {
        u.e_closed = Some((u.e_month, (u.e_kwh / f64::from(u.e_days)) as f32, u.e_days));
    }
    u.e_kwh = 0.0;
    u.e_days = 0;
}

/// The month's water from its first register and the next month's.
fn monthly_water(u: &mut FlatUse, day: i32, register: f64) {
    let month = month_of(day);
    match u.w_start {
        None => u.w_start = Some((month, day, register)),
        Some((m, start_day, start)) if month > m => {
            let days = day - start_day;
            if days >= 20 && register >= start {
                u.w_closed = Some((m, ((register - start) * 1000.0 / f64::from(days)) as f32));
            }
            u.w_start = Some((month, day, register));
        }
        Some(_) => {}
    }
}

#[cfg(test)]
#[path = "utility_group_rental_tests.rs"]
mod tests;
