//! Recent history for the charts people would rather look at than a list
//! of numbers: per socket the last [`SOCKET_MINUTES`] minutes (what led up to
//! a fault, a session's curve), per flat the last [`FLAT_DAYS`] local days
//! of water, electricity and gas (a flat against its building's spread for
//! group rental; the nights of a leak).
//!
//! The detectors keep a dozen numbers per meter, never the readings, and
//! the alert evidence holds a few samples: neither can draw weeks. This
//! module is fed every reading the detectors see (by the service) and keeps
//! just enough, bounded: at most [`MAX_SOCKETS`] sockets and [`MAX_FLATS`]
//! flats (about 24 MB and 27 MB when full); further ones are counted as refused,
//! and readings older than what is kept are counted as late. With
//! checkpoints on, it is saved beside the checkpoint as
//! `<checkpoint>.history` ([`file`]) and restored at start.
//!
//! ```
//! use gridwatch_analytics::history::{History, SocketSeries};
//! use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
//! let h = History::default();
//! let mut r = Reading::new(Timestamp(60_000), "gw-1", "pile-1", DeviceKind::ChargingSocket, 1);
//! r.site = "yard-a".into();
//! r.socket = Some(2);
//! r.values.insert("current_a".into(), 7.1);
//! h.observe(&r);
//! let s = h.socket("yard-a/gw-1/pile-1#2", SocketSeries::Current, Timestamp(0), Timestamp(120_000));
//! assert!((s[0].value - 7.1).abs() < 1e-6); // kept as f32: 4 bytes a value
//! ```

pub mod file;
pub mod flat;
pub mod socket;

pub use flat::{DayTotals, FlatDays, FLAT_DAYS};
pub use socket::{SocketSeries, SocketTrack, SOCKET_MINUTES};

use crate::i18n::zones::SiteZones;
use crate::register::{flat_key, Register};
use gridwatch_telemetry::alert::Sample;
use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

/// Sockets tracked at most.
pub const MAX_SOCKETS: usize = 4096;
/// Flats tracked at most.
pub const MAX_FLATS: usize = 20_000;
/// A gap between two readings of a meter longer than this says nothing
/// about the use in between: the interval is not counted.
const MAX_GAP_MIN: i64 = 60;

/// What a flat chart can show, per registered occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatFeature {
    /// Litres of water.
    Water,
    /// kWh.
    Electricity,
    /// m³ of gas.
    Gas,
}

impl FlatFeature {
    /// Every feature, in the order the page shows them.
    pub const ALL: [FlatFeature; 3] = [Self::Water, Self::Electricity, Self::Gas];

    fn of(self, d: &DayTotals) -> f32 {
        match self {
            Self::Water => d.water_l,
            Self::Electricity => d.kwh,
            Self::Gas => d.gas_m3,
        }
    }

    /// The unit per person per day.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Water => "L",
            Self::Electricity => "kWh",
            Self::Gas => "m³",
        }
    }
}

/// The spread of a building's flats on one day, per occupant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayBand {
    /// Local day number.
    pub day: i32,
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Flats with data that day.
    pub flats: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    sockets: BTreeMap<String, SocketTrack>,
    flats: BTreeMap<String, FlatDays>,
}

#[derive(Debug, Default)]
struct Inner {
    kept: Kept,
    /// Last reading time per meter, for the interval of the next one.
    meters: HashMap<String, i64>,
    refused: u64,
    late: u64,
}

/// Counts for the status line and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryStats {
    /// Sockets tracked.
    pub sockets: usize,
    /// Flats tracked.
    pub flats: usize,
    /// Readings of sockets or flats not tracked because the bound was hit.
    pub refused: u64,
    /// Readings older than what is kept.
    pub late: u64,
}

/// The hours of a night the history keeps the water of, local: after
/// midnight, when nearly every household sleeps, so that a leak's chart
/// shows a steady flow against dry nights. The leak rule's own window is
/// wider by default (it also covers a night-shift worker's afternoon sleep),
/// and may wrap past midnight, which these hours do not.
pub const NIGHT_HOURS: (u8, u8) = (1, 5);

/// The shared history: written by the service, read by the dashboard.
#[derive(Debug, Clone)]
pub struct History {
    inner: Arc<RwLock<Inner>>,
    zones: SiteZones,
    night_h: (u8, u8),
    register: crate::register::shared::SharedRegister,
    default_occupants: f32,
}

impl Default for History {
    fn default() -> Self {
        Self::new(SiteZones::uniform(480), NIGHT_HOURS, Register::default(), 2)
    }
}

impl History {
    /// A history whose days and nights are the sites' own (`zones`), whose
    /// nights run `night_h.0`–`night_h.1` local, and whose per-person use
    /// divides by the `register`'s occupants (`default_occupants` for a
    /// flat not in it).
    pub fn new(
        zones: SiteZones,
        night_h: (u8, u8),
        register: Register,
        default_occupants: u8,
    ) -> Self {
        Self {
            inner: Arc::default(),
            zones,
            night_h,
            register: crate::register::shared::SharedRegister::new(register),
            default_occupants: f32::from(default_occupants.max(1)),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a reading: a charging socket's power, current and temperature;
    /// a flat meter's water, electricity or gas. Others are ignored.
    pub fn observe(&self, r: &Reading) {
        match r.kind {
            DeviceKind::ChargingSocket if r.socket.is_some() => self.observe_socket(r),
            DeviceKind::ElectricityMeter | DeviceKind::WaterMeter | DeviceKind::GasMeter => {
                self.observe_meter(r)
            }
            _ => {}
        }
    }

    fn observe_socket(&self, r: &Reading) {
        let v = |k: &str| r.value(k).filter(|x| x.is_finite()).unwrap_or(f64::NAN);
        let (p, a, t) = (v("power_w"), v("current_a"), v("temperature_c"));
        if p.is_nan() && a.is_nan() && t.is_nan() {
            return;
        }
        let entity = r.entity();
        let mut g = self.write();
        let inner = &mut *g;
        if !inner.kept.sockets.contains_key(&entity) && inner.kept.sockets.len() >= MAX_SOCKETS {
            inner.refused += 1;
            return;
        }
        if !inner
            .kept
            .sockets
            .entry(entity)
            .or_default()
            .add(r.ts, p, a, t)
        {
            inner.late += 1;
        }
    }

    fn observe_meter(&self, r: &Reading) {
        let Some(flat) = flat_key(r) else {
            return;
        };
        let offset = self.zones.of(r.site.as_str());
        let local_ms = r.ts.0 + i64::from(offset) * 60_000;
        let day = local_ms.div_euclid(86_400_000) as i32;
        let hour = (local_ms.rem_euclid(86_400_000) / 3_600_000) as u8;
        let night = hour >= self.night_h.0 && hour < self.night_h.1;
        let mut g = self.write();
        let inner = &mut *g;
        if !inner.kept.flats.contains_key(&flat) && inner.kept.flats.len() >= MAX_FLATS {
            inner.refused += 1;
            return;
        }
        let meter = r.entity();
        let gap_min = match inner.meters.get(&meter) {
            Some(last) if r.ts.0 > *last => (r.ts.0 - last) / 60_000,
            _ => 0,
        };
        let dt_min = if gap_min > MAX_GAP_MIN { 0 } else { gap_min };
        if inner.meters.len() < MAX_FLATS * 4 || inner.meters.contains_key(&meter) {
            let last = inner.meters.entry(meter).or_insert(r.ts.0);
            *last = (*last).max(r.ts.0);
        }
        let ok = |k: &str| r.value(k).filter(|v| v.is_finite() && *v >= 0.0);
        let mut u = flat::DayUse::default();
        match r.kind {
            DeviceKind::ElectricityMeter => {
                u.kwh = ok("power_w").map_or(0.0, |p| p * dt_min as f64 / 60_000.0);
            }
            DeviceKind::WaterMeter => {
                u.water_l = ok("flow_l").unwrap_or(0.0);
                if night {
                    u.night_water_l = u.water_l;
                    u.night_water_min = dt_min as u16;
                }
            }
            DeviceKind::GasMeter => u.gas_m3 = ok("use_m3").unwrap_or(0.0),
            _ => return,
        }
        if !inner.kept.flats.entry(flat).or_default().add(day, u) {
            inner.late += 1;
        }
    }

    /// A socket's `series` between `from` and `to`, one sample per minute
    /// (the minute's peak); empty when the socket is not tracked.
    pub fn socket(
        &self,
        entity: &str,
        s: SocketSeries,
        from: Timestamp,
        to: Timestamp,
    ) -> Vec<Sample> {
        self.read()
            .kept
            .sockets
            .get(entity)
            .map(|t| t.series(s, from, to))
            .unwrap_or_default()
    }

    /// A flat's days, oldest first.
    pub fn flat(&self, flat: &str) -> Vec<DayTotals> {
        self.read()
            .kept
            .flats
            .get(flat)
            .map(|f| f.days().copied().collect())
            .unwrap_or_default()
    }

    /// The register the charts divide by, shared with the service, which
    /// replaces it when its file changes; the dashboard's flat page shows
    /// its history.
    pub fn register(&self) -> &crate::register::shared::SharedRegister {
        &self.register
    }

    /// The occupants a flat's use is divided by.
    pub fn occupants(&self, flat: &str) -> f32 {
        self.register
            .get()
            .flat(flat)
            .map_or(self.default_occupants, |f| f32::from(f.occupants.max(1)))
    }

    /// The site's zone offset, minutes east of UTC.
    pub fn zones(&self) -> &SiteZones {
        &self.zones
    }

    /// The quiet hours of a night, local.
    pub fn night_hours(&self) -> (u8, u8) {
        self.night_h
    }

    /// Per day in `days`, the spread of `feature` per occupant over the
    /// flats of `flat`'s building (its `site/building/` prefix), the flat
    /// itself included; days with fewer than 3 flats are left out.
    pub fn building_band(&self, flat: &str, feature: FlatFeature, days: &[i32]) -> Vec<DayBand> {
        let Some((building, _)) = flat.rsplit_once('/') else {
            return Vec::new();
        };
        let prefix = format!("{building}/");
        let g = self.read();
        let peers: Vec<(&String, &FlatDays)> = g
            .kept
            .flats
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .collect();
        days.iter()
            .filter_map(|&day| {
                let mut v: Vec<f64> = peers
                    .iter()
                    .filter_map(|(k, f)| {
                        let d = f.day(day)?;
                        Some(f64::from(feature.of(d) / self.occupants(k)))
                    })
                    .collect();
                if v.len() < 3 {
                    return None;
                }
                v.sort_by(f64::total_cmp);
                Some(DayBand {
                    day,
                    q1: quantile(&v, 0.25),
                    median: quantile(&v, 0.5),
                    q3: quantile(&v, 0.75),
                    flats: v.len(),
                })
            })
            .collect()
    }

    /// Per day of `flat`, `feature` per occupant.
    pub fn flat_per_person(&self, flat: &str, feature: FlatFeature) -> Vec<(i32, f64)> {
        let occ = self.occupants(flat);
        self.flat(flat)
            .iter()
            .map(|d| (d.day, f64::from(feature.of(d) / occ)))
            .collect()
    }

    /// Counts for logs and the status line.
    pub fn stats(&self) -> HistoryStats {
        let g = self.read();
        HistoryStats {
            sockets: g.kept.sockets.len(),
            flats: g.kept.flats.len(),
            refused: g.refused,
            late: g.late,
        }
    }
}

/// The `q` quantile of sorted `v` (linear between neighbours).
fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests;
