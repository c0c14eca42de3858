//! Charging-pile socket protections: overcurrent, overpower and
//! over-temperature, per socket (docs/detection.md, "Charging piles").
//!
//! These are the cut-off conditions of deployed pile firmware, watched again
//! centrally because not every pile enforces them and because a socket that
//! trips them is a fire risk someone has to look at. All three are critical.
//!
//! - **Overcurrent / overpower**: `current_a` above `overcurrent_a` (5.5 A),
//!   or `power_w` above `overpower_w` (1.2 kW), held for `persistence_s`
//!   (5 s): at least two consecutive samples that far apart, all above.
//! - **Over-temperature**: `temperature_c` above `overtemp_c` (65 °C) for
//!   `overtemp_persistence_s` (60 s), *and* rising faster than
//!   `overtemp_rise_c_per_min` (1 °C/min) at some sample of that episode,
//!   the rate measured over the preceding `overtemp_rise_window_s` (5 min,
//!   see [`crate::stats::RiseMeter`]). A plain threshold false-triggered in
//!   the field (sun on the enclosure warms it slowly past 65 °C); a bad
//!   contact or an overloaded charger heats it fast.
//! - **Over-temperature ceiling**: a socket that creeps slowly past 65 °C and
//!   keeps heating is still a fire risk, so above `overtemp_ceiling_c`
//!   (75 °C) for `overtemp_persistence_s` the same rule fires regardless of
//!   the rise rate. One heat episode raises one alert, whichever path
//!   confirms it first.
//!
//! Each condition ends only after the value stayed below
//! `limit × clear_ratio` for `clear_s`, so it fires once per episode. Readings
//! not later than the socket's previous one (duplicates from an uplink replay,
//! reordering) are ignored and counted. A silence longer than `max_gap_s`
//! resets persistence: no data is not evidence of anything.

#[cfg(test)]
mod tests;
mod wording;

use super::episode::{Confirmed, Episode, Limits, Transition};
use super::Finding;
use crate::stats::RiseMeter;
use crate::toml_file::{positive, FieldError};
use gridwatch_telemetry::{DeviceKind, Evidence, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Rule name: current above `overcurrent_a`.
pub const RULE_OVERCURRENT: &str = "socket_overcurrent";
/// Rule name: power above `overpower_w`.
pub const RULE_OVERPOWER: &str = "socket_overpower";
/// Rule name: temperature above `overtemp_c` and rising fast, or above
/// `overtemp_ceiling_c` whatever the rise.
pub const RULE_OVERTEMPERATURE: &str = "socket_overtemperature";
/// Internal marker: an over-temperature confirmed by the ceiling path. The
/// finding carries [`RULE_OVERTEMPERATURE`].
const VIA_CEILING: &str = "socket_overtemperature_ceiling";

/// Longest duration any `*_s` setting may take (a day); longer makes no
/// sense for these rules and would risk overflow in milliseconds.
const MAX_SECONDS: u64 = 86_400;

/// The `[detect.socket_safety]` section. Defaults are docs/detection.md's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketSafetyConfig {
    /// Turns the whole detector off.
    pub enabled: bool,
    /// Current limit per socket.
    pub overcurrent_a: f64,
    /// Power limit per socket.
    pub overpower_w: f64,
    /// How long current or power must stay above the limit.
    pub persistence_s: u64,
    /// Temperature limit.
    pub overtemp_c: f64,
    /// How long temperature must stay above the limit.
    pub overtemp_persistence_s: u64,
    /// The rise rate that must be exceeded at some point in the episode.
    pub overtemp_rise_c_per_min: f64,
    /// The span over which the rise rate is measured (at least 60 s).
    pub overtemp_rise_window_s: u64,
    /// Above this for `overtemp_persistence_s` the over-temperature rule fires
    /// whatever the rise rate (a slow creep that keeps going). At least
    /// `overtemp_c`.
    pub overtemp_ceiling_c: f64,
    /// A condition ends below `limit × clear_ratio`…
    pub clear_ratio: f64,
    /// …held this long.
    pub clear_s: u64,
    /// A silence longer than this between a socket's readings resets persistence.
    pub max_gap_s: u64,
    /// Samples attached to an alert as evidence, at most.
    pub evidence_samples: usize,
    /// Sockets tracked at most; beyond, the longest-silent ones are forgotten.
    /// Bounds memory against a stream that invents device ids.
    pub max_sockets: usize,
}

impl Default for SocketSafetyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            overcurrent_a: 5.5,
            overpower_w: 1200.0,
            persistence_s: 5,
            overtemp_c: 65.0,
            overtemp_persistence_s: 60,
            overtemp_rise_c_per_min: 1.0,
            overtemp_rise_window_s: 300,
            overtemp_ceiling_c: 75.0,
            clear_ratio: 0.9,
            clear_s: 30,
            max_gap_s: 60,
            evidence_samples: 60,
            max_sockets: 100_000,
        }
    }
}

impl SocketSafetyConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("overcurrent_a", self.overcurrent_a)?;
        positive("overpower_w", self.overpower_w)?;
        positive("overtemp_c", self.overtemp_c)?;
        if !(self.overtemp_ceiling_c.is_finite() && self.overtemp_ceiling_c >= self.overtemp_c) {
            return Err(FieldError::new(
                "overtemp_ceiling_c",
                format!(
                    "is {}; it must be at least overtemp_c ({})",
                    self.overtemp_ceiling_c, self.overtemp_c
                ),
            ));
        }
        if !(self.overtemp_rise_c_per_min.is_finite() && self.overtemp_rise_c_per_min >= 0.0) {
            return Err(FieldError::new(
                "overtemp_rise_c_per_min",
                format!("is {}; it must be 0 or more", self.overtemp_rise_c_per_min),
            ));
        }
        if !(self.clear_ratio > 0.0 && self.clear_ratio <= 1.0) {
            return Err(FieldError::new(
                "clear_ratio",
                format!(
                    "is {}; it must be above 0 and at most 1 (a condition clears below limit × clear_ratio)",
                    self.clear_ratio
                ),
            ));
        }
        for (key, value) in [
            ("persistence_s", self.persistence_s),
            ("overtemp_persistence_s", self.overtemp_persistence_s),
            ("overtemp_rise_window_s", self.overtemp_rise_window_s),
            ("clear_s", self.clear_s),
            ("max_gap_s", self.max_gap_s),
        ] {
            if value > MAX_SECONDS {
                return Err(FieldError::new(
                    key,
                    format!("is {value} s; at most {MAX_SECONDS} s (a day) is allowed"),
                ));
            }
        }
        if self.overtemp_rise_window_s < 60 {
            return Err(FieldError::new(
                "overtemp_rise_window_s",
                format!(
                    "is {} s; a rise rate needs at least 60 s of data",
                    self.overtemp_rise_window_s
                ),
            ));
        }
        if self.max_gap_s == 0 {
            return Err(FieldError::new(
                "max_gap_s",
                "is 0; every pair of readings would count as a gap",
            ));
        }
        if !(1..=1000).contains(&self.evidence_samples) {
            return Err(FieldError::new(
                "evidence_samples",
                format!(
                    "is {}; it must be between 1 and 1000",
                    self.evidence_samples
                ),
            ));
        }
        if self.max_sockets == 0 {
            return Err(FieldError::new(
                "max_sockets",
                "is 0; at least one socket must be tracked",
            ));
        }
        Ok(())
    }

    fn limits(&self, above: f64, persistence_s: u64) -> Limits {
        Limits {
            above,
            persistence_ms: secs_ms(persistence_s),
            clear_below: above * self.clear_ratio,
            clear_ms: secs_ms(self.clear_s),
            max_gap_ms: secs_ms(self.max_gap_s),
            secondary_above: None,
            max_samples: self.evidence_samples.max(1),
            sample_spacing_ms: 0,
            keep_context: false,
        }
    }
}

/// Seconds of config as milliseconds, capped at a day (no overflow).
pub(super) fn secs_ms(s: u64) -> i64 {
    i64::try_from(s.min(MAX_SECONDS)).unwrap_or(0) * 1000
}

/// Counters for the log and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SocketSafetyStats {
    /// Socket readings looked at.
    pub readings: u64,
    /// Readings ignored because they were not later than the socket's previous one.
    pub out_of_order: u64,
    /// Sockets forgotten to stay within `max_sockets`.
    pub evicted: u64,
    /// Findings raised.
    pub findings: u64,
}

/// One socket's state: three episodes and a rise meter, a few hundred bytes
/// plus at most `evidence_samples` samples per condition.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SocketTrack {
    last_ts: Timestamp,
    current: Episode,
    power: Episode,
    temperature: Episode,
    ceiling: Episode,
    rise: RiseMeter,
}

/// The detector: a few hundred bytes of state per socket entity.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SocketSafety {
    config: SocketSafetyConfig,
    current: Limits,
    power: Limits,
    temperature: Limits,
    ceiling: Limits,
    sockets: HashMap<String, SocketTrack>,
    stats: SocketSafetyStats,
}

impl SocketSafety {
    /// A detector for a validated config.
    pub fn new(config: &SocketSafetyConfig) -> Self {
        let rise_window_ms = secs_ms(config.overtemp_rise_window_s);
        let mut temperature = config.limits(config.overtemp_c, config.overtemp_persistence_s);
        temperature.secondary_above = Some(config.overtemp_rise_c_per_min);
        // Temperature evidence shows the rise that led up to the episode, thinned
        // so that `evidence_samples` cover the rise window.
        temperature.keep_context = true;
        temperature.sample_spacing_ms =
            rise_window_ms / i64::try_from(temperature.max_samples).unwrap_or(1).max(1);
        let mut ceiling = temperature.clone();
        ceiling.above = config.overtemp_ceiling_c;
        ceiling.secondary_above = None;
        Self {
            ceiling,
            current: config.limits(config.overcurrent_a, config.persistence_s),
            power: config.limits(config.overpower_w, config.persistence_s),
            temperature,
            config: config.clone(),
            sockets: HashMap::new(),
            stats: SocketSafetyStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SocketSafetyStats {
        self.stats
    }

    /// How many sockets have state.
    pub fn tracked_sockets(&self) -> usize {
        self.sockets.len()
    }

    /// Where each of `entity`'s conditions stands (rule or path name, see
    /// [`super::episode::Episode::standing`]), so that `explain --socket`
    /// can say when a condition began, fell back or was confirmed.
    pub fn standing(&self, entity: &str) -> Vec<(&'static str, Option<(bool, Timestamp)>)> {
        let Some(t) = self.sockets.get(entity) else {
            return Vec::new();
        };
        vec![
            (RULE_OVERCURRENT, t.current.standing()),
            (RULE_OVERPOWER, t.power.standing()),
            (RULE_OVERTEMPERATURE, t.temperature.standing()),
            (VIA_CEILING, t.ceiling.standing()),
        ]
    }

    /// Feeds one reading; readings of other device kinds are ignored.
    pub fn observe(&mut self, reading: &Reading) -> Vec<Finding> {
        if !self.config.enabled || reading.kind != DeviceKind::ChargingSocket {
            return Vec::new();
        }
        self.stats.readings += 1;
        let entity = reading.entity();
        if !self.sockets.contains_key(&entity) && self.sockets.len() >= self.config.max_sockets {
            self.evict_oldest();
        }
        let window_ms = secs_ms(self.config.overtemp_rise_window_s);
        let gap_ms = secs_ms(self.config.max_gap_s);
        let track = self
            .sockets
            .entry(entity)
            .or_insert_with_key(|_| SocketTrack {
                last_ts: Timestamp(i64::MIN),
                current: Episode::default(),
                power: Episode::default(),
                temperature: Episode::default(),
                ceiling: Episode::default(),
                rise: RiseMeter::new(window_ms, gap_ms),
            });
        if reading.ts <= track.last_ts {
            self.stats.out_of_order += 1;
            tracing::debug!(
                entity = %reading.entity(),
                ts = %reading.ts,
                last = %track.last_ts,
                seq = reading.seq,
                "ignored a reading not later than the socket's previous one (duplicate or out of order)"
            );
            return Vec::new();
        }
        track.last_ts = reading.ts;

        let mut confirmed: Vec<(&'static str, Confirmed)> = Vec::new();
        let value = |name: &str| reading.value(name).filter(|v| v.is_finite());
        if let Some(a) = value("current_a") {
            let t = track.current.observe(&self.current, reading.ts, a, None);
            note(&mut confirmed, RULE_OVERCURRENT, t, reading);
        }
        if let Some(w) = value("power_w") {
            let t = track.power.observe(&self.power, reading.ts, w, None);
            note(&mut confirmed, RULE_OVERPOWER, t, reading);
        }
        if let Some(c) = value("temperature_c") {
            track.rise.push(reading.ts, c);
            let rate = track.rise.rate_per_min();
            // Either path may confirm the heat episode; the other one, already
            // under way, stays quiet so that one episode raises one alert.
            let was_hot = track.temperature.is_active() || track.ceiling.is_active();
            let t = track
                .temperature
                .observe(&self.temperature, reading.ts, c, rate);
            let via_rate = matches!(t, Transition::Confirmed(_));
            if !(via_rate && was_hot) {
                note(&mut confirmed, RULE_OVERTEMPERATURE, t, reading);
            }
            let t = track.ceiling.observe(&self.ceiling, reading.ts, c, rate);
            let via_ceiling = matches!(t, Transition::Confirmed(_));
            if !(via_ceiling && (was_hot || via_rate)) {
                note(&mut confirmed, VIA_CEILING, t, reading);
            }
        }
        let findings: Vec<Finding> = confirmed
            .into_iter()
            .map(|(rule, c)| self.finding(rule, reading, c))
            .collect();
        self.stats.findings += findings.len() as u64;
        findings
    }

    /// Forgets the tenth of sockets that have been silent longest (at least
    /// one). Done in a batch so that a flood of new ids costs amortised O(1)
    /// per reading, not a scan each.
    fn evict_oldest(&mut self) {
        let mut ts: Vec<Timestamp> = self.sockets.values().map(|t| t.last_ts).collect();
        let k = (ts.len() / 10).max(1) - 1;
        let (_, cutoff, _) = ts.select_nth_unstable(k);
        let cutoff = *cutoff;
        let before = self.sockets.len();
        self.sockets.retain(|_, t| t.last_ts > cutoff);
        let evicted = (before - self.sockets.len()) as u64;
        self.stats.evicted += evicted;
        tracing::warn!(
            evicted,
            max_sockets = self.config.max_sockets,
            "socket_safety tracks the maximum number of sockets; forgot the {evicted} silent longest"
        );
    }

    fn finding(&self, rule: &'static str, reading: &Reading, c: Confirmed) -> Finding {
        let cfg = &self.config;
        let mut values = BTreeMap::from([
            ("peak".to_owned(), c.peak),
            ("mean".to_owned(), c.mean),
            (
                "duration_s".to_owned(),
                c.end.since(c.start) as f64 / 1000.0,
            ),
            ("sample_count".to_owned(), f64::from(c.count)),
        ]);
        let (series, thresholds) = match rule {
            RULE_OVERCURRENT => (
                "current_a",
                vec![
                    ("overcurrent_a", cfg.overcurrent_a),
                    ("persistence_s", cfg.persistence_s as f64),
                ],
            ),
            RULE_OVERPOWER => (
                "power_w",
                vec![
                    ("overpower_w", cfg.overpower_w),
                    ("persistence_s", cfg.persistence_s as f64),
                ],
            ),
            _ => {
                if let Some(r) = c.secondary_max {
                    values.insert("rise_c_per_min".to_owned(), r);
                }
                (
                    "temperature_c",
                    vec![
                        ("overtemp_c", cfg.overtemp_c),
                        ("overtemp_persistence_s", cfg.overtemp_persistence_s as f64),
                        ("overtemp_rise_c_per_min", cfg.overtemp_rise_c_per_min),
                        ("overtemp_rise_window_s", cfg.overtemp_rise_window_s as f64),
                        ("overtemp_ceiling_c", cfg.overtemp_ceiling_c),
                    ],
                )
            }
        };
        let via = rule;
        let rule = if rule == VIA_CEILING {
            RULE_OVERTEMPERATURE
        } else {
            rule
        };
        let evidence = Evidence {
            values,
            thresholds: thresholds
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            window_start: c.start,
            window_end: c.end,
            samples: c.samples,
            series: Some(series.to_owned()),
        };
        let entity = reading.entity();
        let (title, summary) = wording::describe(via, reading, &evidence);
        Finding {
            id: format!("{rule}:{entity}:{}", c.start.millis()),
            rule,
            entity,
            site: reading.site.to_string(),
            severity: Severity::Critical,
            ts: c.end,
            title,
            summary,
            evidence,
        }
    }
}

/// Collects a confirmation, and logs the end of an episode (an alert is not
/// closed by data: a person closes it; this is for whoever reads the log).
fn note(out: &mut Vec<(&'static str, Confirmed)>, rule: &'static str, t: Transition, r: &Reading) {
    match t {
        Transition::Confirmed(c) => out.push((rule, c)),
        Transition::Cleared { start, end } if rule != VIA_CEILING => tracing::info!(
            rule,
            entity = %r.entity(),
            "{rule} on {} cleared at {end} (episode began {start}); the alert stays open until someone closes it",
            r.entity()
        ),
        Transition::Cleared { .. } | Transition::None => {}
    }
}
