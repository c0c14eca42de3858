//! Three-in-one premises (三合一): a residential unit where people live, work
//! and store goods — weekday daytime machine loads on top of normal living
//! at night (docs/detection.md "Three-in-one premises").
//!
//! Per flat and local day, three mean powers from the electricity meter:
//! daytime (`day_start_hour`..`day_end_hour`), evening (19:00–24:00) and
//! night (00:00–05:00). The last `window_days` complete days are kept in a
//! small ring (16 bytes a day). When a flat's day ends (its first reading of
//! a later local day), the window is judged:
//!
//! - weekday daytime mean ≥ `min_daytime_kw` (machines, not a kettle),
//! - weekday daytime ≥ `daytime_vs_evening_ratio` × the flat's own weekday
//!   evening mean (work by day, not just a big household),
//! - weekday daytime ≥ `weekday_vs_weekend_ratio` × the weekend daytime mean
//!   (a working week),
//! - evening mean ≥ `min_evening_kw` (someone lives there: a workshop
//!   alone is dark at night),
//!
//! with at least `min_weekdays` weekdays and `min_weekend_days` weekend days
//! in the window. A flat is alerted (major) after `persistence_days`
//! consecutive suspect days, at most once per `cooldown_days`. Flats with a
//! registered business are suppressed: the register already knows why they
//! use power by day, and a registered business is not a hidden dwelling.

#[cfg(test)]
mod tests;

use super::entity_table::EntityTable;
use super::{evidence_of, local_time::LocalTime, Finding};
use crate::register::{flat_key, Register};
use crate::toml_file::{positive, FieldError};
use gridwatch_telemetry::{DeviceKind, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// Rule name.
pub const RULE_THREE_IN_ONE: &str = "three_in_one";

const DAY_MS: i64 = 86_400_000;

/// The `[detect.three_in_one]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreeInOneConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// First local hour of the working day.
    pub day_start_hour: u8,
    /// Local hour the working day ends (exclusive).
    pub day_end_hour: u8,
    /// Days judged together (at most 28).
    pub window_days: u32,
    /// Weekdays with data needed in the window.
    pub min_weekdays: u32,
    /// Weekend days with data needed in the window.
    pub min_weekend_days: u32,
    /// Weekday daytime mean power needed, kW.
    pub min_daytime_kw: f64,
    /// Weekday daytime mean over the weekday evening mean needed.
    pub daytime_vs_evening_ratio: f64,
    /// Weekday daytime mean over the weekend daytime mean needed.
    pub weekday_vs_weekend_ratio: f64,
    /// Evening mean power that shows someone lives there, kW.
    pub min_evening_kw: f64,
    /// Consecutive suspect days before an alert.
    pub persistence_days: u32,
    /// At most one alert per flat in this many days.
    pub cooldown_days: u32,
}

impl Default for ThreeInOneConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            day_start_hour: 9,
            day_end_hour: 18,
            window_days: 14,
            min_weekdays: 5,
            min_weekend_days: 2,
            min_daytime_kw: 0.5,
            daytime_vs_evening_ratio: 2.0,
            weekday_vs_weekend_ratio: 1.8,
            min_evening_kw: 0.1,
            persistence_days: 5,
            cooldown_days: 30,
        }
    }
}

impl ThreeInOneConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("min_daytime_kw", self.min_daytime_kw)?;
        positive("daytime_vs_evening_ratio", self.daytime_vs_evening_ratio)?;
        positive("weekday_vs_weekend_ratio", self.weekday_vs_weekend_ratio)?;
        positive("min_evening_kw", self.min_evening_kw)?;
        if self.day_start_hour >= self.day_end_hour || self.day_end_hour > 19 {
            return Err(FieldError::new(
                "day_end_hour",
                format!(
                    "working day {}..{} must start before it ends and end by 19 (the evening)",
                    self.day_start_hour, self.day_end_hour
                ),
            ));
        }
        if !(7..=28).contains(&self.window_days) {
            return Err(FieldError::new(
                "window_days",
                format!("is {}; it must be 7 to 28", self.window_days),
            ));
        }
        for (key, v) in [
            ("min_weekdays", self.min_weekdays),
            ("min_weekend_days", self.min_weekend_days),
            ("persistence_days", self.persistence_days),
        ] {
            if v == 0 || v > self.window_days {
                return Err(FieldError::new(
                    key,
                    format!("is {v}; it must be 1 to window_days ({})", self.window_days),
                ));
            }
        }
        Ok(())
    }
}

/// Sums of power samples in one part of a day.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct Part {
    sum_kw: f32,
    n: u16,
}

impl Part {
    fn mean(self) -> Option<f32> {
        (self.n > 0).then(|| self.sum_kw / f32::from(self.n))
    }
}

/// One closed day: 16 bytes.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct DaySummary {
    day: i32,
    day_kw: f32,
    evening_kw: f32,
    night_kw: f32,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct FlatTrack {
    day: i32,
    last_ts: i64,
    /// Daytime, evening, night of the open day.
    parts: [Part; 3],
    ring: Vec<DaySummary>,
    streak: u16,
    alerted_at: Option<i64>,
    business: bool,
}

/// The weekly figures a verdict rests on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct Window {
    weekday_day_kw: f64,
    weekend_day_kw: f64,
    weekday_evening_kw: f64,
    night_kw: f64,
    weekdays: u32,
    weekend_days: u32,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThreeInOneStats {
    /// Flat-days closed.
    pub flat_days: u64,
    /// Flat-days judged suspect.
    pub suspect_days: u64,
    /// Findings raised.
    pub findings: u64,
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ThreeInOne {
    config: ThreeInOneConfig,
    local: LocalTime,
    flats: EntityTable<FlatTrack>,
    stats: ThreeInOneStats,
}

/// Monday = 0 … Sunday = 6 for a local day number (1970-01-01 was a Thursday).
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

impl ThreeInOne {
    /// A detector for a validated config.
    pub fn new(config: &ThreeInOneConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            flats: EntityTable::default(),
            stats: ThreeInOneStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ThreeInOneStats {
        self.stats
    }

    /// Flats with state, and the bytes that state takes (keys and index included).
    pub fn memory(&self) -> (usize, usize) {
        let rings: usize = self
            .flats
            .rows()
            .iter()
            .map(|f| f.ring.capacity() * std::mem::size_of::<DaySummary>())
            .sum();
        (self.flats.len(), self.flats.bytes() + rings)
    }

    /// Feeds an electricity-meter reading; others are ignored.
    pub fn observe(&mut self, r: &Reading, register: &Register) -> Vec<Finding> {
        if r.kind != DeviceKind::ElectricityMeter || !self.config.enabled {
            return Vec::new();
        }
        let Some(p) = r.value("power_w").filter(|v| v.is_finite() && *v >= 0.0) else {
            return Vec::new();
        };
        let Some(flat) = flat_key(r) else {
            return Vec::new();
        };
        let day = self.local.day(r.ts) as i32;
        let idx = match self.flats.find(&flat) {
            Some(i) => i,
            None => {
                let business = register.flat(&flat).is_some_and(|f| f.business);
                let track = FlatTrack {
                    day,
                    last_ts: i64::MIN,
                    parts: [Part::default(); 3],
                    ring: Vec::with_capacity(self.config.window_days as usize),
                    streak: 0,
                    alerted_at: None,
                    business,
                };
                self.flats.insert(flat, track)
            }
        };
        let t = &self.flats[idx];
        if r.ts.0 <= t.last_ts || day < t.day {
            return Vec::new(); // late or repeated
        }
        let mut out = Vec::new();
        if day > t.day {
            out.extend(self.close_day(idx, r.site.as_str()));
        }
        let hour = self.local.hour(r.ts);
        let c = &self.config;
        let part = if (c.day_start_hour..c.day_end_hour).contains(&hour) {
            Some(0)
        } else if hour >= 19 {
            Some(1)
        } else if hour < 5 {
            Some(2)
        } else {
            None
        };
        let t = &mut self.flats[idx];
        t.day = day;
        t.last_ts = r.ts.0;
        if let Some(i) = part {
            t.parts[i].sum_kw += (p / 1000.0) as f32;
            t.parts[i].n = t.parts[i].n.saturating_add(1);
        }
        out
    }

    /// Ends the flat's open day, keeps its summary and judges the window.
    fn close_day(&mut self, idx: u32, site: &str) -> Option<Finding> {
        self.stats.flat_days += 1;
        let cfg = self.config.clone();
        let t = &mut self.flats[idx];
        let parts = std::mem::take(&mut t.parts);
        let (Some(day_kw), Some(evening_kw), Some(night_kw)) =
            (parts[0].mean(), parts[1].mean(), parts[2].mean())
        else {
            t.streak = 0; // a day without data breaks the run
            return None;
        };
        if t.ring.len() == cfg.window_days as usize {
            t.ring.remove(0);
        }
        t.ring.push(DaySummary {
            day: t.day,
            day_kw,
            evening_kw,
            night_kw,
        });
        let oldest = i64::from(t.day) - i64::from(cfg.window_days) + 1;
        let w = window(&t.ring, oldest);
        let suspect = !t.business && is_suspect(&cfg, &w);
        t.streak = if suspect {
            t.streak.saturating_add(1)
        } else {
            0
        };
        if !suspect {
            return None;
        }
        self.stats.suspect_days += 1;
        let end = self.local.day_end(i64::from(t.day));
        let cooled = t
            .alerted_at
            .is_none_or(|a| end.0 - a >= i64::from(cfg.cooldown_days) * DAY_MS);
        if u32::from(t.streak) < cfg.persistence_days || !cooled {
            return None;
        }
        t.alerted_at = Some(end.0);
        let streak = t.streak;
        self.stats.findings += 1;
        Some(self.finding(idx, site, end, &w, streak))
    }

    fn finding(&self, idx: u32, site: &str, end: Timestamp, w: &Window, days: u16) -> Finding {
        let flat = self.flats.key(idx);
        let c = &self.config;
        let vs_evening = w.weekday_day_kw / w.weekday_evening_kw.max(1e-3);
        let vs_weekend = w.weekday_day_kw / w.weekend_day_kw.max(1e-3);
        Finding {
            id: format!("{RULE_THREE_IN_ONE}:{flat}:{}", end.0),
            rule: RULE_THREE_IN_ONE,
            entity: flat.to_owned(),
            site: site.to_owned(),
            severity: Severity::Major,
            ts: end,
            title: format!(
                "Possible three-in-one premises in {flat}: {:.1} kW on weekdays by day, \
                 {:.1}× the evening",
                w.weekday_day_kw, vs_evening
            ),
            summary: format!(
                "{flat} draws {:.2} kW on weekdays {:02}:00–{:02}:00 against {:.2} kW at \
                 weekends and {:.2} kW in weekday evenings, and is lived in at night \
                 ({:.2} kW evening); suspect {days} days running ({} weekdays, {} weekend days \
                 judged). No business is registered there: inspect for work or storage in a \
                 dwelling.",
                w.weekday_day_kw,
                c.day_start_hour,
                c.day_end_hour,
                w.weekend_day_kw,
                w.weekday_evening_kw,
                w.weekday_evening_kw,
                w.weekdays,
                w.weekend_days,
            ),
            evidence: evidence_of(
                &[
                    ("weekday_daytime_kw", w.weekday_day_kw),
                    ("weekend_daytime_kw", w.weekend_day_kw),
                    ("weekday_evening_kw", w.weekday_evening_kw),
                    ("night_kw", w.night_kw),
                    ("daytime_vs_evening", vs_evening),
                    ("weekday_vs_weekend", vs_weekend),
                    ("days_persisted", f64::from(days)),
                ],
                &[
                    ("min_daytime_kw", c.min_daytime_kw),
                    ("daytime_vs_evening_ratio", c.daytime_vs_evening_ratio),
                    ("weekday_vs_weekend_ratio", c.weekday_vs_weekend_ratio),
                    ("min_evening_kw", c.min_evening_kw),
                    ("persistence_days", f64::from(c.persistence_days)),
                ],
                Timestamp(end.0 - i64::from(c.window_days) * DAY_MS),
                end,
            ),
        }
    }
}

/// Weekday and weekend means over the days of the ring from `oldest` on.
fn window(ring: &[DaySummary], oldest: i64) -> Window {
    let (mut wd, mut we) = ([0f64; 2], 0f64);
    let (mut nwd, mut nwe, mut night) = (0u32, 0u32, 0f64);
    for d in ring.iter().filter(|d| i64::from(d.day) >= oldest) {
        night += f64::from(d.night_kw);
        if weekday(i64::from(d.day)) < 5 {
            nwd += 1;
            wd[0] += f64::from(d.day_kw);
            wd[1] += f64::from(d.evening_kw);
        } else {
            nwe += 1;
            we += f64::from(d.day_kw);
        }
    }
    let mean = |s: f64, n: u32| if n == 0 { f64::NAN } else { s / f64::from(n) };
    Window {
        weekday_day_kw: mean(wd[0], nwd),
        weekend_day_kw: mean(we, nwe),
        weekday_evening_kw: mean(wd[1], nwd),
        night_kw: mean(night, nwd + nwe),
        weekdays: nwd,
        weekend_days: nwe,
    }
}

fn is_suspect(c: &ThreeInOneConfig, w: &Window) -> bool {
    w.weekdays >= c.min_weekdays
        && w.weekend_days >= c.min_weekend_days
        && w.weekday_day_kw >= c.min_daytime_kw
        && w.weekday_day_kw >= c.daytime_vs_evening_ratio * w.weekday_evening_kw
        && w.weekday_day_kw >= c.weekday_vs_weekend_ratio * w.weekend_day_kw
        && w.weekday_evening_kw >= c.min_evening_kw
}
