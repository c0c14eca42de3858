//! Indoor charging: e-bikes and their batteries must not go indoors.
//!
//! Three rules per flat (docs/detection.md, "E-bike chargers as a load"):
//! - `indoor_sighting` (major): a registered e-bike tag or plate seen at an
//!   indoor location (lift lobby, lift car, stairwell). Immediate; the
//!   entity is the owner's flat from the register, or the reader when the tag
//!   is not registered.
//! - `indoor_charging_signature` (major): the flat's load showed the charger
//!   signature ([`signature`]) `min_sessions` times within
//!   `session_window_days`. One session can be a coincidence; a habit is not.
//!   A flat with no known e-bike (no tag registered to it seen anywhere in
//!   `bike_known_days`, the gate included) needs `min_sessions_no_bike`:
//!   most loads that pass for a charger are in households that own no
//!   e-bike, and a tag seen at the gate is a fact about the household, not
//!   a guess from its load. A flat whose rider has no tag, or whose tag the
//!   register gives to another flat, is still found if it charges nearly
//!   every night. With `same_charger_ratio` set, only sessions of one
//!   step (one charger) count together; off by default, since a busy
//!   household moves the measured step as much as a charger does.
//! - `indoor_charging_fused` (critical): one signature session and a
//!   sighting of the flat's tag from `fusion_window_h` before the session
//!   started until it ended. Each source alone has blind spots (batteries go
//!   up in bags; loads can look alike); together they are the strongest case.
//!   Also two sessions in the window that each began just after the rider
//!   was read at the gate, or, for sessions that ended sharply (a lithium
//!   charger's short tail), read indoors.
//!
//! Each rule raises at most one alert per flat per `cooldown_days`.

mod config;
mod recent;
mod session;
pub mod signature;
pub mod trace;

use super::entity_table::EntityTable;
use super::local_time::{in_hours, LocalTime};
use super::Finding;
use crate::register::{flat_key, Register};
pub use config::IndoorChargingConfig;
use gridwatch_telemetry::{DeviceKind, Event, EventKind, Evidence, Reading, Severity, Timestamp};
use signature::{Session, SignatureTrack};
use std::collections::BTreeMap;
use trace::{NoTrace, TraceEvent, TraceSink};

/// Rule name: a tag seen indoors.
pub const RULE_SIGHTING: &str = "indoor_sighting";
/// Rule name: the charger signature in a flat's load.
pub const RULE_SIGNATURE: &str = "indoor_charging_signature";
/// Rule name: signature and sighting agree.
pub const RULE_FUSED: &str = "indoor_charging_fused";

/// Per-flat state: the signature track, recent sessions and alert times.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct FlatTrack {
    signature: SignatureTrack,
    /// Recent sessions, newest last, at most `min_sessions`: the alert's
    /// evidence lists them so that a dashboard can draw them.
    sessions: Vec<Session>,
    last_session: Option<Session>,
    last_sighting: Option<i64>,
    alerted: [Option<i64>; 3],
    /// Newest sighting, anywhere, of a tag registered to the flat.
    #[serde(default)]
    bike_seen: Option<i64>,
    /// The newest sightings of the flat's tag outside (the rider coming
    /// home), newest first, 0 where none: held inline, since every flat
    /// with a tag has some and a session ends within hours of its arrival.
    #[serde(default)]
    arrivals: [i64; MAX_ARRIVALS],
    /// Sessions that followed an arrival, as (start, arrival), oldest
    /// first, within `session_window_days` and at most
    /// `min_arrival_sessions` (held exactly: most flats have none).
    #[serde(default)]
    arrived: Vec<[i64; 2]>,
}

/// Whether two sessions could be one charger: their steps within
/// `same_charger_ratio` of each other (0: any two).
fn same_charger(cfg: &IndoorChargingConfig, a: &Session, b: &Session) -> bool {
    let (lo, hi) = if a.step_w <= b.step_w {
        (a.step_w, b.step_w)
    } else {
        (b.step_w, a.step_w)
    };
    cfg.same_charger_ratio == 0.0 || f64::from(hi) <= f64::from(lo) * cfg.same_charger_ratio
}

/// Most arrivals a flat keeps: a session ends within `max_session_h` of
/// its arrival, and a rider passes the gate a few times a day.
const MAX_ARRIVALS: usize = 3;

impl FlatTrack {
    /// Records a sighting of the flat's tag outside at `ts`, forgetting
    /// those no session could still follow.
    fn arrive(&mut self, cfg: &IndoorChargingConfig, ts: i64) {
        if cfg.arrival_window_min == 0 {
            return;
        }
        // Newest first; a sighting older than all kept (out of order)
        // takes the last place only if it is newer than what is there.
        let at = self.arrivals.iter().position(|a| *a < ts);
        if let Some(at) = at {
            self.arrivals.copy_within(at..MAX_ARRIVALS - 1, at + 1);
            self.arrivals[at] = ts;
        }
    }

    /// The newest arrival from `arrival_window_min` before the session's
    /// start until `smooth_min` after it (the start is known only to within
    /// the smoothing: the smoothed load rises once every reading in it is up).
    fn arrival_before(&self, cfg: &IndoorChargingConfig, s: Session) -> Option<i64> {
        self.arrivals
            .iter()
            .copied()
            .find(|a| *a != 0 && just_before(cfg, s, *a))
    }
}

/// Whether a sighting at `at` came just before `s` began: at most
/// `arrival_window_min` before its start, or up to `smooth_min` after it
/// (the start is known only to within the smoothing). Never when
/// `arrival_window_min` is 0.
fn just_before(cfg: &IndoorChargingConfig, s: Session, at: i64) -> bool {
    let from = s.start.0 - i64::from(cfg.arrival_window_min) * 60_000;
    let to = s.start.0 + i64::from(cfg.smooth_min) * 60_000;
    cfg.arrival_window_min > 0 && at >= from && at <= to
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndoorChargingStats {
    /// Sessions with a charger's shape seen, those only fusion takes (a
    /// short plateau, a sharp end) included.
    pub sessions: u64,
    /// Indoor sightings seen.
    pub sightings: u64,
    /// Findings raised.
    pub findings: u64,
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IndoorCharging {
    config: IndoorChargingConfig,
    local: LocalTime,
    flats: EntityTable<FlatTrack>,
    stats: IndoorChargingStats,
}

impl IndoorCharging {
    /// A detector for a validated config.
    pub fn new(config: &IndoorChargingConfig, local: LocalTime) -> Self {
        Self {
            config: config.clone(),
            local,
            flats: EntityTable::default(),
            stats: IndoorChargingStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> IndoorChargingStats {
        self.stats
    }

    /// Flats with state, and the bytes that state takes (keys included).
    pub fn memory(&self) -> (usize, usize) {
        let heap: usize = (self.flats.rows().iter())
            .map(|v| {
                v.signature.heap_bytes()
                    + v.sessions.capacity() * std::mem::size_of::<Session>()
                    + v.arrived.capacity() * std::mem::size_of::<[i64; 2]>()
            })
            .sum();
        (self.flats.len(), self.flats.bytes() + heap)
    }

    /// Feeds an electricity reading; other readings are ignored.
    pub fn observe(&mut self, r: &Reading) -> Vec<Finding> {
        self.observe_traced(r, &mut NoTrace)
    }

    /// [`Self::observe`], telling `trace` what the signature track of the
    /// reading's flat decided (for `gridwatch-analytics explain`).
    pub fn observe_traced<T: TraceSink>(&mut self, r: &Reading, trace: &mut T) -> Vec<Finding> {
        if !self.config.enabled || r.kind != DeviceKind::ElectricityMeter {
            return Vec::new();
        }
        let (Some(flat), Some(p)) = (flat_key(r), r.value("power_w").filter(|v| v.is_finite()))
        else {
            return Vec::new();
        };
        let cfg = &self.config;
        let hour = self.local.hour(r.ts);
        let night = in_hours(hour, cfg.start_hour_from, cfg.start_hour_to);
        let quiet = in_hours(hour, cfg.quiet_hour_from, cfg.quiet_hour_to);
        let track = self.flats.get_or_insert_with(&flat, FlatTrack::default);
        let Some(session) = track
            .signature
            .observe_traced(cfg, r.ts, p, night, quiet, trace)
        else {
            return Vec::new();
        };
        self.stats.sessions += 1;
        track.last_session = Some(session);
        let window_ms = i64::from(cfg.session_window_days) * 86_400_000;
        let mut out = Vec::new();
        let site = r.site.to_string();
        let sighted = track.last_sighting.filter(|s| {
            !session.sharp
                && *s >= session.start.0 - i64::from(cfg.fusion_window_h) * 3_600_000
                && *s <= session.end.0
        });
        // A session that ended sharply is as weak as a household's own
        // load switched off: only the battery carried up just before it
        // (read indoors) makes it an arrival, and it takes two, as at the
        // gate (a bike kept in the lobby is read most evenings).
        let arrived = if session.sharp {
            track
                .last_sighting
                .filter(|s| just_before(cfg, session, *s))
        } else {
            track.arrival_before(cfg, session)
        };
        if let Some(at) = arrived {
            let most = cfg.min_arrival_sessions as usize;
            track
                .arrived
                .retain(|[start, _]| session.start.0 - start <= window_ms);
            if track.arrived.len() >= most {
                track.arrived.remove(0);
            }
            track
                .arrived
                .reserve_exact(most.saturating_sub(track.arrived.len()));
            track.arrived.push([session.start.0, at]);
            trace.event(
                r.ts,
                TraceEvent::AfterArrival {
                    arrived_min_before: (session.start.0 - at) as f32 / 60_000.0,
                    indoors: session.sharp,
                    sessions: track.arrived.len() as u32,
                    needed: cfg.min_arrival_sessions,
                },
            );
        }
        let arrivals_met = track.arrived.len() >= cfg.min_arrival_sessions as usize;
        if let Some(seen) = sighted {
            if let Some(f) = self.fused(&flat, &site, session, seen) {
                out.push(f);
            }
        } else if arrived.is_some() && arrivals_met {
            if let Some(f) = self.fused_arrival(&flat, &site, session, session.sharp) {
                out.push(f);
            }
        }
        if session.fusion_only {
            // Not for the signature alone: only a sighting counts it.
            for f in &out {
                trace.event(r.ts, TraceEvent::Alert { rule: f.rule });
            }
            self.stats.findings += out.len() as u64;
            return out;
        }
        let cfg = &self.config;
        let Some(track) = self.flats.get_mut(flat.as_str()) else {
            return out;
        };
        track
            .sessions
            .retain(|s| session.start.0 - s.start.0 <= window_ms);
        track.sessions.push(session);
        let bike_known = track.bike_seen.is_some_and(|seen| {
            seen <= session.end.0
                && session.end.0 - seen <= i64::from(cfg.bike_known_days) * 86_400_000
        });
        let most = cfg.min_sessions.max(cfg.min_sessions_no_bike).max(1) as usize;
        if track.sessions.len() > most {
            track.sessions.remove(0);
        }
        let keep = if bike_known {
            cfg.min_sessions
        } else {
            cfg.min_sessions_no_bike
        }
        .max(1) as usize;
        let alike = track
            .sessions
            .iter()
            .filter(|s| same_charger(cfg, s, &session))
            .count();
        trace.event(
            r.ts,
            TraceEvent::InWindow {
                sessions: track.sessions.len() as u32,
                alike: alike as u32,
                needed: keep as u32,
                bike_known,
            },
        );
        if alike >= keep {
            if let Some(f) = self.signature_finding(&flat, &site, session) {
                out.push(f);
            }
        }
        for f in &out {
            trace.event(r.ts, TraceEvent::Alert { rule: f.rule });
        }
        self.stats.findings += out.len() as u64;
        out
    }

    /// Feeds an event; only sightings at indoor locations matter.
    pub fn observe_event(&mut self, e: &Event, register: &Register) -> Vec<Finding> {
        let EventKind::Sighting {
            location, identity, ..
        } = &e.kind
        else {
            return Vec::new();
        };
        if !self.config.enabled {
            return Vec::new();
        }
        if let Some(owner) = register.tag_owner(identity) {
            // Wherever it is seen, the tag says the flat has an e-bike.
            let track = self.flats.get_or_insert_with(owner, FlatTrack::default);
            track.bike_seen = track.bike_seen.max(Some(e.ts.0));
            if !self.config.indoor_locations.iter().any(|l| l == location) {
                track.arrive(&self.config, e.ts.0);
            }
        }
        if !self.config.indoor_locations.iter().any(|l| l == location) {
            return Vec::new();
        }
        self.stats.sightings += 1;
        let entity = match register.tag_owner(identity) {
            Some(flat) => flat.to_owned(),
            None => format!("{}/{}/{}", e.site, e.gateway, e.device),
        };
        let site = e.site.to_string();
        let track = self.flats.get_or_insert_with(&entity, FlatTrack::default);
        track.last_sighting = Some(e.ts.0);
        let mut out = Vec::new();
        // A battery carried down in the morning after a night's session.
        if let Some(s) = track.last_session.filter(|s| !s.sharp) {
            if e.ts.0 >= s.end.0
                && e.ts.0 - s.end.0 <= i64::from(self.config.fusion_window_h) * 3_600_000
            {
                if let Some(f) = self.fused(&entity, &site, s, e.ts.0) {
                    out.push(f);
                }
            }
        }
        if self.may_alert(&entity, 0, e.ts.0) {
            let evidence = Evidence {
                values: BTreeMap::from([("sighted_at_ms".to_owned(), e.ts.0 as f64)]),
                thresholds: BTreeMap::new(),
                window_start: e.ts,
                window_end: e.ts,
                samples: Vec::new(),
                series: None,
            };
            out.push(Finding {
                id: format!("{RULE_SIGHTING}:{entity}:{}", e.ts.0),
                rule: RULE_SIGHTING,
                entity: entity.clone(),
                site,
                severity: Severity::Major,
                ts: e.ts,
                title: format!("E-bike tag seen at {location} of {entity}"),
                summary: format!(
                    "A registered e-bike tag or plate was seen at {location} ({}, reader {}); its \
                     owner's flat is {entity}. E-bikes and batteries must not go indoors: check \
                     the flat and the lift area.",
                    e.ts, e.device
                ),
                evidence,
            });
        }
        self.stats.findings += out.len() as u64;
        out
    }

    /// Whether rule slot `slot` may alert for `flat` at `ts` (cool-down), and
    /// if so records it.
    fn may_alert(&mut self, flat: &str, slot: usize, ts: i64) -> bool {
        let cooldown = i64::from(self.config.cooldown_days) * 86_400_000;
        let Some(track) = self.flats.get_mut(flat) else {
            return false;
        };
        match track.alerted[slot] {
            Some(last) if ts - last < cooldown => false,
            _ => {
                track.alerted[slot] = Some(ts);
                true
            }
        }
    }

    fn session_evidence(&self, s: Session, extra: Vec<(String, f64)>) -> Evidence {
        let c = &self.config;
        let mut values = BTreeMap::from([
            ("step_w".to_owned(), f64::from(s.step_w)),
            ("plateau_min".to_owned(), f64::from(s.plateau_min)),
            ("taper_min".to_owned(), f64::from(s.taper_min)),
            ("roughness_w".to_owned(), f64::from(s.roughness_w)),
            (
                "duration_min".to_owned(),
                s.end.since(s.start) as f64 / 60_000.0,
            ),
            (
                "start_local_hour".to_owned(),
                f64::from(self.local.hour(s.start)),
            ),
        ]);
        values.extend(extra);
        Evidence {
            values,
            thresholds: BTreeMap::from([
                ("min_step_w".to_owned(), c.min_step_w),
                ("max_step_w".to_owned(), c.max_step_w),
                ("min_plateau_min".to_owned(), f64::from(c.min_plateau_min)),
                ("min_taper_min".to_owned(), f64::from(c.min_taper_min)),
            ]),
            window_start: s.start,
            window_end: s.end,
            samples: Vec::new(),
            series: Some("power_w".to_owned()),
        }
    }

    fn signature_finding(&mut self, flat: &str, site: &str, s: Session) -> Option<Finding> {
        if !self.may_alert(flat, 1, s.end.0) {
            return None;
        }
        let (mut seen, bike_seen) = self
            .flats
            .get(flat)
            .map(|t| (t.sessions.clone(), t.bike_seen))
            .unwrap_or_default();
        // The sessions that made the case: those of the same charger.
        seen.retain(|x| same_charger(&self.config, x, &s));
        let n = seen.len();
        let mut extra = vec![("sessions_in_window".to_owned(), n as f64)];
        // Whether the flat's e-bike was known, and when its tag was last seen.
        let bike = match bike_seen {
            Some(at) if at <= s.end.0 => {
                extra.push(("bike_seen_ms".to_owned(), at as f64));
                format!(
                    " A tag registered to the flat was last seen at {}.",
                    Timestamp(at)
                )
            }
            _ => " No tag registered to the flat has been seen.".to_owned(),
        };
        for (i, x) in seen.iter().enumerate() {
            extra.extend([
                (format!("session_{i}_start_ms"), x.start.0 as f64),
                (format!("session_{i}_end_ms"), x.end.0 as f64),
                (format!("session_{i}_step_w"), f64::from(x.step_w)),
                (format!("session_{i}_plateau_min"), f64::from(x.plateau_min)),
                (format!("session_{i}_taper_min"), f64::from(x.taper_min)),
            ]);
        }
        let evidence = self.session_evidence(s, extra);
        Some(Finding {
            id: format!("{RULE_SIGNATURE}:{flat}:{}", s.start.0),
            rule: RULE_SIGNATURE,
            entity: flat.to_owned(),
            site: site.to_owned(),
            severity: Severity::Major,
            ts: s.end,
            title: format!("E-bike charger signature in {flat}: {n} night sessions"),
            summary: format!(
                "{flat}'s load stepped up by {:.0} W at {}, held for {:.0} min, tapered for {:.0} \
                 min and ended at {} — the shape of an e-bike charger — {n} times within {} days.{bike} \
                 Check for a battery charging indoors.",
                s.step_w,
                s.start,
                s.plateau_min,
                s.taper_min,
                s.end,
                self.config.session_window_days
            ),
            evidence,
        })
    }

    /// `indoor_charging_fused` by arrivals: the flat's tag read just before
    /// each of `min_arrival_sessions` sessions in the window, outside (the
    /// gate: a rider who carries the battery up is read only there) or,
    /// for a session that ended sharply, indoors (`indoors`, which the
    /// summary names).
    fn fused_arrival(
        &mut self,
        flat: &str,
        site: &str,
        s: Session,
        indoors: bool,
    ) -> Option<Finding> {
        if !self.may_alert(flat, 2, s.end.0) {
            return None;
        }
        let arrived = self
            .flats
            .get(flat)
            .map(|t| t.arrived.clone())
            .unwrap_or_default();
        let n = arrived.len();
        let mut extra = vec![("arrival_sessions".to_owned(), n as f64)];
        for (i, [start, at]) in arrived.iter().enumerate() {
            extra.extend([
                (format!("session_{i}_arrived_ms"), *at as f64),
                (format!("session_{i}_start_ms"), *start as f64),
            ]);
        }
        let arrived_at = arrived.last().map_or(s.start.0, |[_, at]| *at);
        extra.push(("arrived_at_ms".to_owned(), arrived_at as f64));
        let evidence = self.session_evidence(s, extra);
        Some(Finding {
            id: format!("{RULE_FUSED}:{flat}:{}", s.start.0),
            rule: RULE_FUSED,
            entity: flat.to_owned(),
            site: site.to_owned(),
            severity: Severity::Critical,
            ts: s.end,
            title: format!(
                "Indoor e-bike charging in {flat}: the e-bike came home, a charger followed"
            ),
            summary: format!(
                "The tag registered to {flat} was read {} at {}, and {:.0} min later \
                 the flat's load showed an e-bike charger ({:.0} W step at {}, {:.0} min plateau, \
                 {:.0} min taper); {n} times within {} days a charger's load followed the e-bike \
                 coming home. The battery is likely carried up and charged indoors: go soon.",
                if indoors {
                    "indoors"
                } else {
                    "outside (the gate)"
                },
                Timestamp(arrived_at),
                (s.start.0 - arrived_at).max(0) as f64 / 60_000.0,
                s.step_w,
                s.start,
                s.plateau_min,
                s.taper_min,
                self.config.session_window_days
            ),
            evidence,
        })
    }

    fn fused(&mut self, flat: &str, site: &str, s: Session, seen: i64) -> Option<Finding> {
        let ts = s.end.0.max(seen);
        if !self.may_alert(flat, 2, ts) {
            return None;
        }
        let evidence = self.session_evidence(s, vec![("sighted_at_ms".to_owned(), seen as f64)]);
        Some(Finding {
            id: format!("{RULE_FUSED}:{flat}:{}", s.start.0),
            rule: RULE_FUSED,
            entity: flat.to_owned(),
            site: site.to_owned(),
            severity: Severity::Critical,
            ts: Timestamp(ts),
            title: format!("Indoor e-bike charging in {flat}: tag sighted and charger load"),
            summary: format!(
                "The tag registered to {flat} was seen indoors at {}, and the flat's load shows an \
                 e-bike charger ({:.0} W step at {}, {:.0} min plateau, {:.0} min taper). Both \
                 sources agree: go now, and cut the flat's socket circuit if the battery is found.",
                Timestamp(seen),
                s.step_w,
                s.start,
                s.plateau_min,
                s.taper_min
            ),
            evidence,
        })
    }
}

#[cfg(test)]
mod tests;
