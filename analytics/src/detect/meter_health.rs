//! Meter health: a meter that stopped reporting, whose register stopped
//! moving, or whose register runs backwards. Every other flat detector
//! trusts these readings; docs/detection.md: "missing data is its own state (no
//! data), never normal".
//!
//! Per meter (electricity, water, gas; the entity is the reading's
//! `site/gateway/device`), one small state machine:
//! - `meter_no_data` (minor): no reading for more than `no_data_min` of event time,
//!   judged at sweeps every `sweep_min` of event time (the newest reading of
//!   any meter is "now": analytics never reads the wall clock). One alert per
//!   silence; when the meter reports again it is back to normal (logged, the
//!   alert stays for a person to close). When a meter reaches the limit and
//!   at least `building_share` of its gateway's meters have been silent for
//!   half of it (they fall silent at different moments: electricity every
//!   few minutes, water and gas hourly), one `building_no_data` (major)
//!   alert replaces all of theirs: one root cause, one alert.
//! - `meter_stuck` (minor): the cumulative register (`energy_kwh`,
//!   `volume_m3`) of a meter of `stuck_kinds` (electricity and water) has
//!   not moved for `stuck_h` while the meter kept reporting, and its own
//!   interval values (`power_w`, `flow_l`) show use meanwhile. A vacant
//!   flat's register rests too, with interval values of zero: that is not
//!   a fault (on the district, every water meter of a flat away on holiday
//!   alerted before). Nor is a register that had too little to show: the
//!   interval values, turned into the register's unit (`power_w` × time in
//!   kWh, `flow_l` in m³), must add up to `stuck_min_steps` of the
//!   register's smallest step (its last decimal: 0.01 kWh, 1 L, 0.01 m³)
//!   since it last moved. 0.1 W of standby is 2.4 Wh a day, a quarter of
//!   what a 0.01 kWh register can show. A meter that reports no interval
//!   values is judged on its register alone.
//! - `meter_reversed` (major): the cumulative register went down by more
//!   than `reverse_tolerance`, or an interval value was negative: a meter
//!   wired backwards, tampered with or replaced. Once per `cooldown_h`.
//!   Two falls are not reversals: a register near its largest reading
//!   wrapping to near zero (99999.999 m³ → 0.002 m³) is use, judged by the
//!   rule the gateway shares ([`gridwatch_telemetry::register`], the
//!   register's size inferred from its digits); and a register starting
//!   again under a new `meter_serial` is a replaced meter, whose readings
//!   start a new baseline.

use super::entity_table::EntityTable;
use super::Finding;
use crate::toml_file::{positive, FieldError};
use gridwatch_telemetry::register::{inferred_modulus, register_use};
use gridwatch_telemetry::{DeviceKind, Evidence, Reading, Severity, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Rule: one meter silent.
pub const RULE_NO_DATA: &str = "meter_no_data";
/// Rule: most of a building's meters silent at once.
pub const RULE_BUILDING_NO_DATA: &str = "building_no_data";
/// Rule: register not moving.
pub const RULE_STUCK: &str = "meter_stuck";
/// Rule: register going backwards.
pub const RULE_REVERSED: &str = "meter_reversed";

/// The `[detect.meter_health]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeterHealthConfig {
    /// Turns the detector off.
    pub enabled: bool,
    /// A meter silent this long (event time) is in the "no data" state, minutes.
    pub no_data_min: u32,
    /// How often silences are looked for, minutes of event time.
    pub sweep_min: u32,
    /// This share of a gateway's meters silent at once is one building alert.
    pub building_share: f64,
    /// A register unchanged this long is stuck, hours.
    pub stuck_h: u32,
    /// Use the interval values showed since the register last moved must
    /// be worth this many of the register's smallest steps before a
    /// register at rest is stuck: below one step the register cannot show
    /// it, and the second covers the interval values' own rounding.
    pub stuck_min_steps: f64,
    /// Meter kinds whose register should move every day. Not gas by
    /// default: gas is only for cooking, and a day without cooking is normal.
    pub stuck_kinds: Vec<DeviceKind>,
    /// A register lower than the previous by more than this is reversed (its unit).
    pub reverse_tolerance: f64,
    /// At most one stuck or reversed alert per meter in this many hours.
    pub cooldown_h: u32,
}

impl Default for MeterHealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            no_data_min: 180,
            sweep_min: 10,
            building_share: 0.8,
            stuck_h: 24,
            stuck_min_steps: 2.0,
            stuck_kinds: vec![DeviceKind::ElectricityMeter, DeviceKind::WaterMeter],
            reverse_tolerance: 0.001,
            cooldown_h: 168,
        }
    }
}

impl MeterHealthConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        positive("reverse_tolerance", self.reverse_tolerance)?;
        positive("stuck_min_steps", self.stuck_min_steps)?;
        if !(self.building_share > 0.0 && self.building_share <= 1.0) {
            return Err(FieldError::new(
                "building_share",
                format!(
                    "is {}; it must be above 0 and at most 1",
                    self.building_share
                ),
            ));
        }
        for (key, v) in [
            ("no_data_min", self.no_data_min),
            ("sweep_min", self.sweep_min),
            ("stuck_h", self.stuck_h),
        ] {
            if v == 0 {
                return Err(FieldError::new(key, "is 0; it must be at least 1"));
            }
        }
        Ok(())
    }
}

/// How an interval value becomes use in its register's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Per {
    /// The value is already in the register's unit over its interval
    /// (`use_m3`, `heat_use_kwh`), or this factor of it (`flow_l` in m³).
    Interval(f64),
    /// The value is a mean power in W over the interval since the last
    /// reading: W × h / 1000 is kWh.
    Watts,
}

/// The register and interval value names of a meter kind, and how the
/// interval value adds to the register.
fn fields(kind: DeviceKind) -> Option<(&'static str, &'static str, Per)> {
    match kind {
        DeviceKind::ElectricityMeter => Some(("energy_kwh", "power_w", Per::Watts)),
        DeviceKind::WaterMeter => Some(("volume_m3", "flow_l", Per::Interval(0.001))),
        DeviceKind::GasMeter => Some(("volume_m3", "use_m3", Per::Interval(1.0))),
        DeviceKind::HeatMeter => Some(("heat_kwh", "heat_use_kwh", Per::Interval(1.0))),
        _ => None,
    }
}

/// Most decimals a register is taken to show: past this a value is a
/// computed float, not a display, and its step is too small to matter.
const MAX_DECIMALS: u8 = 6;

/// Decimals `v` shows: the fewest that write it exactly (to float noise).
fn decimals(v: f64) -> u8 {
    let mut scale = 1.0;
    for d in 0..MAX_DECIMALS {
        let x = v * scale;
        if (x - x.round()).abs() <= 1e-6 * x.abs().max(1.0) {
            return d;
        }
        scale *= 10.0;
    }
    MAX_DECIMALS
}

/// Whether a reading numbered `seq` at `ts` repeats what a device already
/// delivered (newest `last_seq` at `last_ts`). Seqs rise per device and are
/// never used twice (docs/outbox.md: drop duplicates by device and seq):
/// the newest seq again is a repeat whatever time it carries, and so is an
/// older seq no later than the newest reading (an uplink re-sending from
/// its cursor). An older seq with a later time is a source that numbers
/// out of order, left to the detectors' own time order. Seq 0 is no
/// number (hand-written sources): a reading of the same time is then the
/// repeat.
pub fn is_repeat(last_seq: Option<u64>, last_ts: i64, seq: u64, ts: i64) -> bool {
    match last_seq {
        Some(l) if seq != 0 && l != 0 => seq == l || (seq < l && ts <= last_ts),
        Some(l) => ts == last_ts && l == seq,
        None => false,
    }
}

/// Per gateway at a sweep: meters, those newly past the limit, those silent
/// for half of it.
type GatewaySilence = (usize, Vec<String>, Vec<String>);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MeterTrack {
    /// Bytes of the site and of the gateway at the start of the meter's
    /// key (`site/gateway/device`): the key already holds both, and a city
    /// has millions of meters, so they are not kept twice.
    site_len: u32,
    gateway_len: u32,
    last_ts: i64,
    /// Sequence number of the newest reading; a reading with the same time
    /// and seq is a duplicate delivery (QoS 1, a replayed outbox) and is
    /// dropped, as docs/outbox.md tells every consumer to.
    last_seq: Option<u64>,
    silent: bool,
    total: f64,
    total_since: i64,
    /// Use the interval values showed since the register last moved, in
    /// the register's unit (the values of the reading that moved it belong
    /// to that move).
    used_since: f64,
    /// Most decimals the register has shown: its smallest step is
    /// 10^-decimals.
    decimals: u8,
    /// Shortest time between two readings, ms: the interval a mean power
    /// covers (a reading after a gap covers one interval, not the gap).
    interval_ms: i64,
    /// Whether the meter reports interval values at all.
    has_interval: bool,
    alerted_stuck: Option<i64>,
    alerted_reversed: Option<i64>,
    /// The serial of the meter behind the device id, when readings carry it.
    serial: Option<Box<str>>,
}

impl MeterTrack {
    /// The site and the gateway of the meter keyed `key`.
    /// (Empty rather than a panic, should a key ever not be one this
    /// track was made for.)
    fn site_gateway<'k>(&self, key: &'k str) -> (&'k str, &'k str) {
        let (site, gateway) = (self.site_len as usize, self.gateway_len as usize);
        let from = site + 1;
        (
            key.get(..site).unwrap_or_default(),
            key.get(from..from + gateway).unwrap_or_default(),
        )
    }
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MeterHealth {
    config: MeterHealthConfig,
    meters: EntityTable<MeterTrack>,
    now: i64,
    next_sweep: i64,
}

impl MeterHealth {
    /// A detector for a validated config.
    pub fn new(config: &MeterHealthConfig) -> Self {
        Self {
            config: config.clone(),
            meters: EntityTable::default(),
            now: i64::MIN,
            next_sweep: i64::MIN,
        }
    }

    /// Meters with state, and the bytes that state takes (keys included).
    pub fn memory(&self) -> (usize, usize) {
        let serials: usize = self
            .meters
            .rows()
            .iter()
            .map(|t| t.serial.as_ref().map_or(0, |s| s.len()))
            .sum();
        (self.meters.len(), self.meters.bytes() + serials)
    }

    /// Feeds one reading; meters are tracked, and every reading moves event
    /// time on (which is when silences are looked for).
    pub fn observe(&mut self, r: &Reading) -> Vec<Finding> {
        if !self.config.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        if r.ts.0 > self.now {
            self.now = r.ts.0;
            if self.now >= self.next_sweep {
                out = self.sweep();
                self.next_sweep = self.now + i64::from(self.config.sweep_min) * 60_000;
            }
        }
        let Some((total_key, interval_key, per)) = fields(r.kind) else {
            return out;
        };
        let entity = r.entity();
        let total = r.value(total_key).filter(|v| v.is_finite());
        let interval = r.value(interval_key).filter(|v| v.is_finite());
        let ts = r.ts.0;
        if self.meters.find(entity.as_str()).is_none() {
            let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
            let track = MeterTrack {
                site_len: len(r.site.as_str()),
                gateway_len: len(r.gateway.as_str()),
                last_ts: ts,
                last_seq: None,
                silent: false,
                // Not known yet: the first register "moves" it.
                total: f64::NAN,
                total_since: ts,
                used_since: 0.0,
                decimals: 0,
                interval_ms: i64::MAX,
                has_interval: false,
                alerted_stuck: None,
                alerted_reversed: None,
                serial: None,
            };
            self.meters.insert(entity.clone(), track);
        }
        let Some(t) = self.meters.get_mut(entity.as_str()) else {
            return out;
        };
        // Out of order, or delivered before (the pipeline counts those).
        if ts < t.last_ts || is_repeat(t.last_seq, t.last_ts, r.seq, ts) {
            return out;
        }
        t.last_seq = Some(r.seq);
        if ts > t.last_ts {
            t.interval_ms = t.interval_ms.min(ts - t.last_ts);
        }
        if t.silent {
            tracing::info!(meter = %entity, "{entity} reports again after a silence; its no-data alert stays open until someone closes it");
            t.silent = false;
        }
        t.last_ts = ts;
        let cfg = &self.config;
        let cooldown = i64::from(cfg.cooldown_h) * 3_600_000;
        let may = |last: Option<i64>| last.is_none_or(|l| ts - l >= cooldown);
        let mut reversed = None;
        let mut moved = false;
        let replaced = match (&t.serial, &r.meter_serial) {
            (Some(before), Some(now)) => **before != **now,
            _ => false,
        };
        if let Some(now) = &r.meter_serial {
            if t.serial.as_deref() != Some(now.as_str()) {
                t.serial = Some(now.as_str().into());
            }
        }
        if replaced {
            tracing::info!(meter = %entity, "{entity} now reports meter serial {}: a replaced meter; its register starts a new baseline", r.meter_serial.as_deref().unwrap_or_default());
            t.total = f64::NAN;
        }
        if let Some(v) = total {
            t.decimals = t.decimals.max(decimals(v));
            if t.total.is_finite()
                && v < t.total - cfg.reverse_tolerance
                // A wrap past the register's largest reading is use.
                && register_use(t.total, v, inferred_modulus(t.total)).is_none()
            {
                reversed = Some((total_key, v, t.total));
            }
            if !(t.total.is_finite() && (v - t.total).abs() <= f64::EPSILON * v.abs().max(1.0)) {
                t.total = v;
                t.total_since = ts;
                t.used_since = 0.0;
                moved = true;
            }
        }
        if let Some(x) = interval {
            if x < 0.0 && reversed.is_none() {
                reversed = Some((interval_key, x, 0.0));
            }
            t.has_interval = true;
            if !moved {
                t.used_since += match per {
                    Per::Interval(k) => x.max(0.0) * k,
                    // The first reading has no interval yet: one hour is
                    // the longest any meter here reports at.
                    Per::Watts => {
                        x.max(0.0) * t.interval_ms.min(3_600_000) as f64 / 3_600_000_000.0
                    }
                };
            }
        }
        if let Some((key, value, before)) = reversed {
            if may(t.alerted_reversed) {
                t.alerted_reversed = Some(ts);
                out.push(finding(
                    RULE_REVERSED,
                    &entity,
                    r,
                    Severity::Major,
                    Timestamp(ts),
                    format!("{key} went from {before} to {value}: the meter runs backwards (wired in reverse, tampered with or replaced). Check it; its readings feed the other detectors."),
                    &[(key, value), ("previous", before)],
                    &[("reverse_tolerance", cfg.reverse_tolerance)],
                ));
            }
        }
        let stuck_ms = i64::from(cfg.stuck_h) * 3_600_000;
        // The register's smallest step, and the use it must have shown.
        let step = 10f64.powi(-i32::from(t.decimals));
        let shown = cfg.stuck_min_steps * step;
        if total.is_some()
            && cfg.stuck_kinds.contains(&r.kind)
            && ts - t.total_since >= stuck_ms
            // A register at rest while the meter itself measured no use is a
            // vacant flat, not a stuck register.
            // Nor is use too small for the register's step to show.
            && (!t.has_interval || t.used_since >= shown)
            && may(t.alerted_stuck)
        {
            t.alerted_stuck = Some(ts);
            let hours = (ts - t.total_since) as f64 / 3_600_000.0;
            out.push(finding(
                RULE_STUCK,
                &entity,
                r,
                Severity::Minor,
                Timestamp(t.total_since),
                format!("{total_key} has stayed at {} for {hours:.0} h while the meter kept reporting use ({interval_key} adds up to {:.4} in the register's unit meanwhile, {:.1} of its steps of {step}): a stuck register. Check the meter.", t.total, t.used_since, t.used_since / step),
                &[("hours_unchanged", hours), (total_key, t.total), ("unshown_use", t.used_since), ("register_step", step)],
                &[("stuck_h", f64::from(cfg.stuck_h)), ("stuck_min_steps", cfg.stuck_min_steps)],
            ));
        }
        out
    }

    /// Looks for meters silent past `no_data_min`.
    fn sweep(&mut self) -> Vec<Finding> {
        let limit = i64::from(self.config.no_data_min) * 60_000;
        let now = self.now;
        // A building gone dark silences its meters at different moments
        // (electricity every few minutes, water and gas hourly), so the
        // building share counts every meter silent for half the limit.
        let half = limit / 2;
        let mut per_gateway: HashMap<(&str, &str), GatewaySilence> = HashMap::new();
        for (k, t) in self.meters.iter() {
            let e = per_gateway.entry(t.site_gateway(k)).or_default();
            e.0 += 1;
            // More than the limit: the sweep runs on the first reading of
            // an instant, before the rest of that instant's readings, so a
            // meter whose reading is due exactly now is not yet late (else a
            // building's hourly meters, silent for exactly the limit after an
            // outage, would each alert in the instant they report again).
            if !t.silent && now - t.last_ts > limit {
                e.1.push(k.to_string());
            }
            if now - t.last_ts >= half {
                e.2.push(k.to_string());
            }
        }
        let mut out = Vec::new();
        let mut gateways: Vec<_> = per_gateway
            .into_iter()
            .filter(|(_, v)| !v.1.is_empty())
            .map(|((site, gateway), v)| ((site.to_owned(), gateway.to_owned()), v))
            .collect();
        gateways.sort();
        for ((site, gateway), (count, mut silent, quiet)) in gateways {
            silent.sort();
            let building =
                quiet.len() as f64 >= self.config.building_share * count as f64 && count > 1;
            // Under a building alert every quiet meter is held back.
            let held = if building { &quiet } else { &silent };
            for k in held {
                if let Some(t) = self.meters.get_mut(k.as_str()) {
                    t.silent = true;
                }
            }
            let since = silent
                .iter()
                .filter_map(|k| self.meters.get(k.as_str()).map(|t| t.last_ts))
                .min()
                .unwrap_or(now);
            let minutes = (now - since) as f64 / 60_000.0;
            if building {
                let entity = format!("{site}/{gateway}");
                out.push(Finding {
                    id: format!("{RULE_BUILDING_NO_DATA}:{entity}:{since}"),
                    rule: RULE_BUILDING_NO_DATA,
                    entity: entity.clone(),
                    site,
                    severity: Severity::Major,
                    ts: Timestamp(now),
                    title: format!("No data from {entity}: {} of {count} meters silent", quiet.len()),
                    summary: format!("{} of the {count} meters behind gateway {entity} have sent nothing for {minutes:.0} min or more (since {}): a power cut, the gateway or its uplink. Meter alerts of this building are held back; no data is not normal use.", quiet.len(), Timestamp(since)),
                    evidence: evidence(&[("silent_meters", quiet.len() as f64), ("meters", count as f64), ("silent_min", minutes)], &[("no_data_min", f64::from(self.config.no_data_min)), ("building_share", self.config.building_share)], since, now),
                });
                continue;
            }
            for k in silent {
                let Some(t) = self.meters.get(k.as_str()) else {
                    continue;
                };
                let m = (now - t.last_ts) as f64 / 60_000.0;
                out.push(Finding {
                    id: format!("{RULE_NO_DATA}:{k}:{}", t.last_ts),
                    rule: RULE_NO_DATA,
                    entity: k.clone(),
                    site: t.site_gateway(&k).0.to_owned(),
                    severity: Severity::Minor,
                    ts: Timestamp(now),
                    title: format!("No data from meter {k} for {m:.0} min"),
                    summary: format!("Meter {k} has sent nothing since {} ({m:.0} min). Its flat is not being watched until it returns: check the meter and its wiring.", Timestamp(t.last_ts)),
                    evidence: evidence(&[("silent_min", m)], &[("no_data_min", f64::from(self.config.no_data_min))], t.last_ts, now),
                });
            }
        }
        out
    }
}

fn evidence(values: &[(&str, f64)], thresholds: &[(&str, f64)], from: i64, to: i64) -> Evidence {
    super::evidence_of(values, thresholds, Timestamp(from), Timestamp(to))
}

#[allow(clippy::too_many_arguments)]
fn finding(
    rule: &'static str,
    entity: &str,
    r: &Reading,
    severity: Severity,
    since: Timestamp,
    summary: String,
    values: &[(&str, f64)],
    thresholds: &[(&str, f64)],
) -> Finding {
    let what = if rule == RULE_STUCK {
        "register not moving"
    } else {
        "register running backwards"
    };
    Finding {
        id: format!("{rule}:{entity}:{}", since.0),
        rule,
        entity: entity.to_owned(),
        site: r.site.to_string(),
        severity,
        ts: r.ts,
        title: format!("Meter {entity}: {what}"),
        summary: format!("Meter {entity}: {summary}"),
        evidence: evidence(values, thresholds, since.0, r.ts.0),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rollover_tests;

#[cfg(test)]
mod quantum_tests;
