//! Night water flow: a leak, not people. docs/detection.md: "night minimum flow
//! (a steady small flow is a leak, not people)".
//!
//! People use water in bursts — a flush, a shower, a glass at the tap — with
//! dry hours between, even in a crowded flat. A dripping tap or a running
//! cistern never stops. So per water meter, the quiet hours of each local
//! night (`night_start_h`–`night_end_h`, 00:00–06:00 by default) are split
//! into hourly bins (any meter interval up to an hour fills them; hourly
//! registers quantised to 1 L are what the field has). A night is a leak
//! night when
//!
//! - every bin flows at least `min_flow_lph` (the floor never reaches zero),
//! - and at least half the bins sit near that floor (within `floor_band_lph`
//!   or a quarter of it): a leak is a steady floor that people's bursts
//!   ride on, while a crowded flat up at night shows a different amount
//!   every hour.
//!
//! A night with one dry bin resets the count; a night the meter barely
//! reported (coverage below `min_coverage`) neither counts nor resets: no
//! data is not evidence either way. The comparison is the flat with its own
//! nights: a flat that always runs water at night is alerted once, when the
//! run of nights is first complete, and again only after a dry night. After
//! `nights` leak nights in a row, one `night_water_leak` alert (minor), with
//! the lowest night flow and the nights persisted as evidence.
//!
//! State: about 100 bytes per meter (16 numbers for the bins, the run, the
//! keys), never the readings themselves.

use super::local_time::{in_hours, LocalTime};
use super::Finding;
use crate::config::{positive, FieldError};
use crate::register::flat_key;
use gridwatch_telemetry::{DeviceKind, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Rule: water flowing all night, night after night.
pub const RULE_LEAK: &str = "night_water_leak";

const HOUR_MS: i64 = 3_600_000;
/// Hourly bins of the longest quiet window.
const BINS: usize = 8;

/// The `[detect.night_water]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NightWaterConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// First hour of the quiet window, local (inclusive).
    pub night_start_h: u8,
    /// Hour the quiet window ends, local (exclusive).
    pub night_end_h: u8,
    /// Every hour of a leak night flows at least this, L/h: just under one
    /// litre an hour, the step of a register quantised to 1 L (a meter whose
    /// clock drifts reads 1 L over 61 minutes).
    pub min_flow_lph: f64,
    /// Half the night's hours lie within this much (L/h), or a quarter of
    /// the floor if more, of its lowest hour: the steady floor of a leak.
    pub floor_band_lph: f64,
    /// Leak nights in a row before the alert.
    pub nights: u32,
    /// Share of the window the meter's readings must cover for a night to
    /// count either way.
    pub min_coverage: f64,
    /// A gap between two readings longer than this is missing data, not one
    /// long interval, hours.
    pub max_interval_h: f64,
}

impl Default for NightWaterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            night_start_h: 0,
            night_end_h: 6,
            min_flow_lph: 0.8,
            floor_band_lph: 1.5,
            nights: 5,
            min_coverage: 0.75,
            max_interval_h: 2.0,
        }
    }
}

impl NightWaterConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("min_flow_lph", self.min_flow_lph)?;
        positive("max_interval_h", self.max_interval_h)?;
        positive("floor_band_lph", self.floor_band_lph)?;
        for (key, h) in [
            ("night_start_h", self.night_start_h),
            ("night_end_h", self.night_end_h),
        ] {
            if h > 23 {
                return Err(FieldError::new(
                    key,
                    format!("is {h}; it must be an hour 0–23"),
                ));
            }
        }
        if self.night_start_h == self.night_end_h {
            return Err(FieldError::new(
                "night_end_h",
                "equals night_start_h; the window would be empty",
            ));
        }
        if self.window_ms() > BINS as i64 * HOUR_MS {
            return Err(FieldError::new(
                "night_end_h",
                format!("the window is longer than {BINS} hours"),
            ));
        }
        if self.nights == 0 {
            return Err(FieldError::new("nights", "is 0; it must be at least 1"));
        }
        if !(self.min_coverage > 0.0 && self.min_coverage <= 1.0) {
            return Err(FieldError::new(
                "min_coverage",
                format!("is {}; it must be above 0 and at most 1", self.min_coverage),
            ));
        }
        Ok(())
    }

    fn window_ms(&self) -> i64 {
        i64::from((self.night_end_h + 24 - self.night_start_h) % 24) * HOUR_MS
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Track {
    entity: String,
    site: String,
    last_ts: i64,
    /// The night being measured: the local day its window ends on.
    night: Option<i64>,
    /// Litres and milliseconds seen per hour of the window.
    bin_l: [f32; BINS],
    bin_ms: [u32; BINS],
    streak: u32,
    streak_min_lph: f64,
    streak_start: i64,
    alerted: bool,
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NightWater {
    config: NightWaterConfig,
    local: LocalTime,
    meters: HashMap<String, Track>,
}

impl NightWater {
    /// A detector for a validated config.
    pub fn new(config: &NightWaterConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            meters: HashMap::new(),
        }
    }

    /// Meters with state, and the bytes that state takes (keys included).
    pub fn memory(&self) -> (usize, usize) {
        super::map_memory(&self.meters, |t| t.entity.capacity() + t.site.capacity())
    }

    /// Feeds one reading; only water meters with `flow_l` are looked at.
    pub fn observe(&mut self, r: &Reading) -> Vec<Finding> {
        if !self.config.enabled || r.kind != DeviceKind::WaterMeter {
            return Vec::new();
        }
        let Some(flow_l) = r.value("flow_l").filter(|v| v.is_finite()) else {
            return Vec::new();
        };
        let ts = r.ts.0;
        let t = self.meters.entry(r.entity()).or_insert_with(|| Track {
            entity: flat_key(r).unwrap_or_else(|| r.entity()),
            site: r.site.to_string(),
            last_ts: ts,
            night: None,
            bin_l: [0.0; BINS],
            bin_ms: [0; BINS],
            streak: 0,
            streak_min_lph: f64::INFINITY,
            streak_start: ts,
            alerted: false,
        });
        if ts <= t.last_ts {
            return Vec::new();
        }
        let cfg = &self.config;
        let interval = ts - t.last_ts;
        t.last_ts = ts;
        // The interval a reading closes ends inside the window when its last
        // millisecond does.
        let end = Timestamp(ts - 1);
        let in_window = in_hours(self.local.hour(end), cfg.night_start_h, cfg.night_end_h);
        // A night is named by the local day its window starts on, so a window
        // past midnight (22–05) stays one night.
        let night = in_window.then(|| {
            self.local
                .day(Timestamp(end.0 - i64::from(cfg.night_start_h) * HOUR_MS))
        });
        let mut out = Vec::new();
        if t.night.is_some() && t.night != night {
            out.extend(close_night(t, cfg, ts));
        }
        if let Some(n) = night {
            t.night = Some(n);
            if (interval as f64) <= cfg.max_interval_h * HOUR_MS as f64 {
                // The hour of the window the interval ends in; an interval
                // longer than an hour (a missed reading) fills its bin alone.
                let hour = self.local.hour(end);
                let bin = (usize::from(hour + 24 - cfg.night_start_h) % 24).min(BINS - 1);
                t.bin_l[bin] += flow_l.max(0.0) as f32;
                t.bin_ms[bin] = t.bin_ms[bin].saturating_add(interval as u32);
            }
        }
        out
    }
}

/// The lowest hourly flow of a night (L/h) and whether half its hours sit
/// near it. Bins seen for under half an hour are left out.
fn night_floor(litres: &[f32; BINS], ms: &[u32; BINS], band_lph: f64) -> (f64, bool) {
    let lph: Vec<f64> = litres
        .iter()
        .zip(ms)
        .filter(|(_, &m)| i64::from(m) >= HOUR_MS / 2)
        .map(|(&l, &m)| f64::from(l) * HOUR_MS as f64 / f64::from(m))
        .collect();
    let Some(min) = lph.iter().copied().reduce(f64::min) else {
        return (0.0, false);
    };
    let band = min + band_lph.max(0.25 * min);
    let near = lph.iter().filter(|&&v| v <= band).count();
    (min, near * 2 >= lph.len())
}

/// Judges the night just measured; returns the alert when it completes a run.
fn close_night(t: &mut Track, cfg: &NightWaterConfig, now: i64) -> Option<Finding> {
    let covered_ms: i64 = t.bin_ms.iter().map(|&m| i64::from(m)).sum();
    let covered = covered_ms as f64 >= cfg.min_coverage * cfg.window_ms() as f64;
    let (min, steady) = night_floor(&t.bin_l, &t.bin_ms, cfg.floor_band_lph);
    t.night = None;
    t.bin_l = [0.0; BINS];
    t.bin_ms = [0; BINS];
    if !covered {
        return None;
    }
    if min < cfg.min_flow_lph || !steady {
        t.streak = 0;
        t.streak_min_lph = f64::INFINITY;
        t.alerted = false;
        return None;
    }
    if t.streak == 0 {
        t.streak_start = now;
    }
    t.streak += 1;
    t.streak_min_lph = t.streak_min_lph.min(min);
    if t.streak < cfg.nights || t.alerted {
        return None;
    }
    t.alerted = true;
    let e = &t.entity;
    let lph = t.streak_min_lph;
    Some(Finding {
        id: format!("{RULE_LEAK}:{e}:{}", t.streak_start),
        rule: RULE_LEAK,
        entity: e.clone(),
        site: t.site.clone(),
        severity: Severity::Minor,
        ts: Timestamp(now),
        title: format!("Water running all night at {e}: {lph:.1} L/h or more"),
        summary: format!(
            "Water at {e} has flowed at least {lph:.1} L/h through every hour of the quiet hours \
             ({:02}:00–{:02}:00) for {} nights in a row. People use water in bursts with dry \
             intervals between; a flow that never stops is a leak (a running cistern, a dripping \
             tap, a burst pipe). Check the flat's taps, cistern and pipes.",
            cfg.night_start_h, cfg.night_end_h, t.streak
        ),
        evidence: super::evidence_of(
            &[("min_night_flow_lph", lph), ("nights", f64::from(t.streak))],
            &[
                ("min_flow_lph", cfg.min_flow_lph),
                ("nights", f64::from(cfg.nights)),
            ],
            Timestamp(t.streak_start),
            Timestamp(now),
        ),
    })
}

#[cfg(test)]
mod tests;
