//! Night water flow: a leak, not people. docs/detection.md: "night minimum flow
//! (a steady small flow is a leak, not people)".
//!
//! People use water in bursts — a flush, a shower, a glass at the tap — with
//! intervals of no flow between, even in a crowded flat. A dripping tap or a
//! running cistern never stops. So per water meter, one small state machine
//! keeps the *minimum* flow rate (L/h) over the quiet hours of each local
//! night (`night_start_h`–`night_end_h`, 13:00–05:00 by default: the hours
//! in which everyone in a flat sleeps at some point, a night-shift worker
//! in the afternoon and everyone else after midnight; a leak flows through
//! both, and a shift worker's use at night is no longer a leak). A night
//! whose every reading shows at least `min_flow_lph` is a leak night; a
//! night with one dry interval resets the count; a night the meter barely
//! reported (coverage below `min_coverage`) neither counts nor resets: no
//! data is not evidence either way. After `nights` leak nights in a row,
//! one `night_water_leak` alert (minor), with the lowest night flow and the
//! nights persisted as evidence. The count restarts once a night is dry, so
//! a repaired and later recurring leak is a new alert.
//!
//! The state is a dozen numbers per meter, never the readings themselves.

use super::entity_table::EntityTable;
use super::local_time::{in_hours, LocalTime};
use super::Finding;
use crate::register::flat_key;
use crate::toml_file::{positive, FieldError};
use gridwatch_telemetry::{DeviceKind, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// Rule: water flowing all night, night after night.
pub const RULE_LEAK: &str = "night_water_leak";

const HOUR_MS: i64 = 3_600_000;

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
    /// Every interval of a leak night flows at least this, L/h. Below the
    /// smallest drip worth a visit, above a meter's creep.
    pub min_flow_lph: f64,
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
            night_start_h: 13,
            night_end_h: 5,
            min_flow_lph: 3.0,
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
    last_ts: i64,
    /// The night being measured: the local day its window ends on.
    night: Option<i64>,
    night_min_lph: f64,
    night_covered_ms: i64,
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
    /// By meter (`site/gateway/device`). A track holds no names: an alert
    /// takes the flat and the site from the reading that closes the night.
    meters: EntityTable<Track>,
}

impl NightWater {
    /// A detector for a validated config.
    pub fn new(config: &NightWaterConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            meters: EntityTable::default(),
        }
    }

    /// Meters with state, and the bytes that state takes (keys included).
    pub fn memory(&self) -> (usize, usize) {
        (self.meters.len(), self.meters.bytes())
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
        let meter = r.entity();
        if self.meters.find(meter.as_str()).is_none() {
            let track = Track {
                last_ts: ts,
                night: None,
                night_min_lph: f64::INFINITY,
                night_covered_ms: 0,
                streak: 0,
                streak_min_lph: f64::INFINITY,
                streak_start: ts,
                alerted: false,
            };
            self.meters.insert(meter.clone(), track);
        }
        let Some(t) = self.meters.get_mut(meter.as_str()) else {
            return Vec::new();
        };
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
            out.extend(close_night(t, cfg, r));
        }
        if let Some(n) = night {
            t.night = Some(n);
            if (interval as f64) <= cfg.max_interval_h * HOUR_MS as f64 {
                let lph = flow_l.max(0.0) * HOUR_MS as f64 / interval as f64;
                t.night_min_lph = t.night_min_lph.min(lph);
                t.night_covered_ms += interval;
            }
        }
        out
    }
}

/// Judges the night just measured; returns the alert when it completes a run.
fn close_night(t: &mut Track, cfg: &NightWaterConfig, r: &Reading) -> Option<Finding> {
    let now = r.ts.0;
    let covered = t.night_covered_ms as f64 >= cfg.min_coverage * cfg.window_ms() as f64;
    let min = t.night_min_lph;
    t.night = None;
    t.night_min_lph = f64::INFINITY;
    t.night_covered_ms = 0;
    if !covered {
        return None;
    }
    if min < cfg.min_flow_lph {
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
    let e = &flat_key(r).unwrap_or_else(|| r.entity());
    let lph = t.streak_min_lph;
    Some(Finding {
        id: format!("{RULE_LEAK}:{e}:{}", t.streak_start),
        rule: RULE_LEAK,
        entity: e.clone(),
        site: r.site.to_string(),
        severity: Severity::Minor,
        ts: Timestamp(now),
        title: format!("Water running all night at {e}: {lph:.1} L/h or more"),
        summary: format!(
            "Water at {e} has flowed at least {lph:.1} L/h through every interval from {:02}:00 to \
             {:02}:00 (hours in which everyone in a flat sleeps at some point) for {} nights in a \
             row. People use water in bursts with dry intervals between; a flow that never stops \
             is a leak (a running cistern, a dripping tap, a burst pipe). Check the flat's taps, \
             cistern and pipes.",
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
