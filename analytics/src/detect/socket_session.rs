//! Charging-pile session rules: the rows of the docs/detection.md pile table that
//! are not instantaneous cut-offs ([`super::socket_safety`] has overcurrent,
//! overpower and over-temperature).
//!
//! Each rule is a condition on a socket's (or a pile's) readings that must
//! hold for a time; it fires on the first reading at which it has held that
//! long, so it is detected within one sample period of persisting. Each fires
//! at most once per charging session (a socket) or per episode (a pile). A
//! new session begins when the relay switches on, or when `session_s` goes
//! down with the relay on (an unplug resets it with the relay off: no session).
//! A silence longer than `max_gap_s` restarts every hold: no data is not
//! evidence of anything.
//!
//! | rule | condition (defaults) | severity |
//! |---|---|---|
//! | `socket_residual_current` | `residual_ma` ≥ 30 | critical |
//! | `socket_nonstandard_charger` | `power_w` > 600 for 5 s | major |
//! | `socket_not_full_after` | relay on, `session_s` ≥ 8 h, `power_w` ≥ 45 | major |
//! | `socket_session_over_cap` | relay on, `session_s` ≥ 12 h | major |
//! | `socket_forced_stop_missed` | relay on, `session_s` ≥ 24 h | critical |
//! | `socket_live_after_full` | relay on, `power_w` < 45 for 45 min | major |
//! | `socket_idle_live` | relay on, `power_w` < 2.5 for 5 min | minor |
//! | `socket_taper_reversal` | after the taper began (power below 80 % of the session's peak), power rising on 3 consecutive samples | major |
//! | `socket_bulk_stuck` | relay on, `session_s` ≥ 6 h, `current_a` > 0.55 | major |
//! | `pile_overload` | pile `total_power_w` > 8.7 kW for 5 s | critical |
//! | `pile_session_over_limit` | a socket's session began while the pile drew > 7.8 kW | major |
//! | `socket_abnormal_session_energy` | the session's `energy_wh` > 1.3 × the median of the energies of the starting tag's previous sessions (at least 3, the last 10 kept) | major |
//!
//! The last rule needs to know who started the session: socket readings
//! carry no tag, so it takes the identity of the `session_started` event
//! ([`SocketSession::observe_event`]); sessions without one are not judged
//! (`socket_session/energy.rs` has the details). `socket_idle_live` asks every reading in the 5 minutes to be below
//! 2.5 W, slightly stricter than the table's 5-minute mean.

use super::socket_safety::secs_ms;
use super::Finding;
use gridwatch_telemetry::{DeviceKind, Event, EventKind, Reading, Severity, Timestamp};
use std::collections::HashMap;

/// Rule names, in the order of the table above.
pub const RULES: [&str; 12] = [
    "socket_residual_current",
    "socket_nonstandard_charger",
    "socket_not_full_after",
    "socket_session_over_cap",
    "socket_forced_stop_missed",
    "socket_live_after_full",
    "socket_idle_live",
    "socket_taper_reversal",
    "socket_bulk_stuck",
    "pile_overload",
    "pile_session_over_limit",
    "socket_abnormal_session_energy",
];
const RESIDUAL: usize = 0;
const NONSTANDARD: usize = 1;
const NOT_FULL: usize = 2;
const OVER_CAP: usize = 3;
const FORCED: usize = 4;
const LIVE_FULL: usize = 5;
const IDLE: usize = 6;
const REVERSAL: usize = 7;
const BULK: usize = 8;
const PILE_OVERLOAD: usize = 9;
const PILE_NEW_SESSION: usize = 10;
const ENERGY: usize = 11;

/// A rule that fired: which, since when, the values and the thresholds.
type Hit = (
    usize,
    i64,
    Vec<(&'static str, f64)>,
    Vec<(&'static str, f64)>,
);

/// One socket's (or pile's) state: when each condition began to hold, which
/// rules fired this session, and what the taper rule needs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Track {
    last_ts: Option<i64>,
    session_start: i64,
    last_session_s: f64,
    relay_on: bool,
    since: [Option<i64>; RULES.len()],
    fired: u16,
    peak_w: f64,
    last_w: f64,
    tapering: bool,
    rises: u32,
}

/// One socket's session as [`SocketSession::standing`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStanding {
    /// The relay as last reported.
    pub relay_on: bool,
    /// When the current session began, ms since the epoch.
    pub session_start_ms: i64,
    /// Per rule of [`RULES`], since when its condition has held.
    pub holding_since_ms: [Option<i64>; RULES.len()],
    /// Per rule of [`RULES`], whether it fired this session.
    pub fired: Vec<bool>,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SocketSessionStats {
    /// Sessions seen begin.
    pub sessions: u64,
    /// Findings raised.
    pub findings: u64,
    /// `session_started` events that named who started the session.
    pub identified_sessions: u64,
}

/// The detector.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SocketSession {
    config: SocketSessionConfig,
    tracks: HashMap<String, Track>,
    /// Latest total power per pile (`site/gateway/device`).
    pile_w: HashMap<String, f64>,
    energy: energy::SessionEnergy,
    stats: SocketSessionStats,
}

impl SocketSession {
    /// A detector for a validated config.
    pub fn new(config: &SocketSessionConfig) -> Self {
        Self {
            config: config.clone(),
            tracks: HashMap::new(),
            pile_w: HashMap::new(),
            energy: energy::SessionEnergy::default(),
            stats: SocketSessionStats::default(),
        }
    }

    /// Feeds one event: a `session_started` with the identity that started
    /// it opens the session whose energy the abnormal-energy rule judges
    /// against that identity's history. Raises nothing itself.
    pub fn observe_event(&mut self, e: &Event) {
        if !self.config.enabled {
            return;
        }
        let EventKind::SessionStarted { socket, identity } = &e.kind else {
            return;
        };
        let entity = format!("{}/{}/{}#{}", e.site, e.gateway, e.device, socket);
        if identity.is_some() {
            self.stats.identified_sessions += 1;
        }
        let lim = self.energy_limits();
        self.energy.started(&entity, identity.as_deref(), lim);
    }

    /// Tags with a session-energy history.
    pub fn identities(&self) -> usize {
        self.energy.identities()
    }

    fn energy_limits(&self) -> energy::Limits {
        let c = &self.config;
        energy::Limits {
            ratio: c.energy_ratio,
            min_sessions: c.energy_min_sessions as usize,
            keep: c.energy_history.max(1) as usize,
            max_tags: c.energy_max_tags,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> SocketSessionStats {
        self.stats
    }

    /// Where `entity`'s session and each rule's condition stand, so that
    /// `explain --socket` can say when a session began and when a condition
    /// began to hold, stopped holding or fired.
    pub fn standing(&self, entity: &str) -> Option<SessionStanding> {
        let t = self.tracks.get(entity)?;
        Some(SessionStanding {
            relay_on: t.relay_on,
            session_start_ms: t.session_start,
            holding_since_ms: t.since,
            fired: RULES
                .iter()
                .enumerate()
                .map(|(i, _)| t.fired & (1 << i) != 0)
                .collect(),
        })
    }

    /// Feeds one reading; only charging sockets and piles matter.
    pub fn observe(&mut self, r: &Reading) -> Vec<Finding> {
        if !self.config.enabled {
            return Vec::new();
        }
        match r.kind {
            DeviceKind::ChargingSocket => self.observe_socket(r),
            DeviceKind::ChargingPile => self.observe_pile(r),
            _ => Vec::new(),
        }
    }

    fn observe_pile(&mut self, r: &Reading) -> Vec<Finding> {
        let Some(w) = r.value("total_power_w").filter(|v| v.is_finite()) else {
            return Vec::new();
        };
        let entity = r.entity();
        self.pile_w.insert(entity.clone(), w);
        let c = &self.config;
        let hold = secs_ms(c.pile_persistence_s);
        let gap = secs_ms(c.max_gap_s);
        let t = self.tracks.entry(entity.clone()).or_default();
        if !t.advance(r.ts.0, gap) {
            return Vec::new();
        }
        let over = w > c.pile_cut_w;
        if !over {
            // An episode ends when the pile is back under its limit.
            t.fired &= !(1 << PILE_OVERLOAD);
        }
        let mut out = Vec::new();
        if let Some(since) = t.hold(PILE_OVERLOAD, over, r.ts.0, hold) {
            let values = [("total_power_w", w), ("held_s", held_s(since, r.ts.0))];
            let thresholds = [
                ("pile_cut_w", c.pile_cut_w),
                ("pile_persistence_s", c.pile_persistence_s as f64),
            ];
            out.push(self.finding(
                PILE_OVERLOAD,
                r,
                entity,
                since,
                Severity::Critical,
                &values,
                &thresholds,
            ));
        }
        self.stats.findings += out.len() as u64;
        out
    }

    fn observe_socket(&mut self, r: &Reading) -> Vec<Finding> {
        let value = |name: &str| r.value(name).filter(|v| v.is_finite());
        let entity = r.entity();
        let pile = format!("{}/{}/{}", r.site, r.gateway, r.device);
        let pile_w = self.pile_w.get(&pile).copied();
        let c = self.config.clone();
        let lim = self.energy_limits();
        let gap = secs_ms(c.max_gap_s);
        let ts = r.ts.0;
        let t = self.tracks.entry(entity.clone()).or_default();
        if !t.advance(ts, gap) {
            return Vec::new();
        }
        let relay = value("relay_on").is_none_or(|v| v >= 0.5);
        let session_s = value("session_s");
        // Only a live relay starts a session: pile firmware resets
        // `session_s` to 0 when the plug comes out, relay off, and that
        // is the end of a session, not the start of one.
        let new_session = relay && (!t.relay_on || session_s.is_some_and(|s| s < t.last_session_s));
        t.relay_on = relay;
        if let Some(s) = session_s {
            t.last_session_s = s;
        }
        let mut hits: Vec<Hit> = Vec::new();
        if new_session {
            self.stats.sessions += 1;
            t.start_session(ts - session_s.map_or(0, |s| (s * 1000.0) as i64));
            if let Some(w) = pile_w.filter(|w| *w > c.pile_new_session_w) {
                if t.fire_once(PILE_NEW_SESSION) {
                    hits.push((
                        PILE_NEW_SESSION,
                        ts,
                        vec![("pile_total_power_w", w)],
                        vec![("pile_new_session_w", c.pile_new_session_w)],
                    ));
                }
            }
        }
        let power = value("power_w");
        let session_h = session_s.map(|s| s / 3600.0);
        let live_for = |h: u64| relay && session_h.is_some_and(|x| x >= h as f64);

        let residual = value("residual_ma");
        let cond = residual.is_some_and(|m| m >= c.residual_trip_ma);
        if let Some(since) = t.hold(RESIDUAL, cond, ts, 0) {
            hits.push((
                RESIDUAL,
                since,
                vec![("residual_ma", residual.unwrap_or(0.0))],
                vec![("residual_trip_ma", c.residual_trip_ma)],
            ));
        }
        let p = power.unwrap_or(f64::NAN);
        let cond = p > c.nonstandard_w;
        if let Some(since) = t.hold(NONSTANDARD, cond, ts, secs_ms(c.nonstandard_persistence_s)) {
            hits.push((
                NONSTANDARD,
                since,
                vec![("power_w", p), ("held_s", held_s(since, ts))],
                vec![
                    ("nonstandard_w", c.nonstandard_w),
                    (
                        "nonstandard_persistence_s",
                        c.nonstandard_persistence_s as f64,
                    ),
                ],
            ));
        }
        let sh = session_h.unwrap_or(0.0);
        let cond = live_for(c.not_full_after_h) && p >= c.full_below_w;
        if let Some(since) = t.hold(NOT_FULL, cond, ts, 0) {
            hits.push((
                NOT_FULL,
                since,
                vec![("session_h", sh), ("power_w", p)],
                vec![
                    ("not_full_after_h", c.not_full_after_h as f64),
                    ("full_below_w", c.full_below_w),
                ],
            ));
        }
        if let Some(since) = t.hold(OVER_CAP, live_for(c.session_cap_h), ts, 0) {
            hits.push((
                OVER_CAP,
                since,
                vec![("session_h", sh), ("power_w", p)],
                vec![("session_cap_h", c.session_cap_h as f64)],
            ));
        }
        if let Some(since) = t.hold(FORCED, live_for(c.forced_stop_h), ts, 0) {
            hits.push((
                FORCED,
                since,
                vec![("session_h", sh), ("power_w", p)],
                vec![("forced_stop_h", c.forced_stop_h as f64)],
            ));
        }
        let cond = relay && p < c.full_below_w;
        if let Some(since) = t.hold(LIVE_FULL, cond, ts, c.full_hold_min as i64 * 60_000) {
            hits.push((
                LIVE_FULL,
                since,
                vec![("power_w", p), ("held_min", held_s(since, ts) / 60.0)],
                vec![
                    ("full_below_w", c.full_below_w),
                    ("full_hold_min", c.full_hold_min as f64),
                ],
            ));
        }
        let cond = relay && p < c.idle_below_w;
        if let Some(since) = t.hold(IDLE, cond, ts, c.idle_hold_min as i64 * 60_000) {
            hits.push((
                IDLE,
                since,
                vec![("power_w", p), ("held_min", held_s(since, ts) / 60.0)],
                vec![
                    ("idle_below_w", c.idle_below_w),
                    ("idle_hold_min", c.idle_hold_min as f64),
                ],
            ));
        }
        if let Some(w) = power {
            let cond = t.taper_step(w, &c);
            if let Some(since) = t.hold(REVERSAL, cond, ts, 0) {
                hits.push((
                    REVERSAL,
                    since,
                    vec![
                        ("power_w", w),
                        ("session_peak_w", t.peak_w),
                        ("rising_samples", f64::from(t.rises)),
                    ],
                    vec![
                        ("taper_start_ratio", c.taper_start_ratio),
                        ("taper_rises", f64::from(c.taper_rises)),
                    ],
                ));
            }
        }
        let amps = value("current_a").unwrap_or(0.0);
        let cond = live_for(c.bulk_stuck_after_h) && amps > c.bulk_stuck_a;
        if let Some(since) = t.hold(BULK, cond, ts, 0) {
            hits.push((
                BULK,
                since,
                vec![("current_a", amps), ("session_h", sh)],
                vec![
                    ("bulk_stuck_a", c.bulk_stuck_a),
                    ("bulk_stuck_after_h", c.bulk_stuck_after_h as f64),
                ],
            ));
        }
        if let Some(wh) = value("energy_wh") {
            if let Some(x) = self.energy.reading(&entity, wh, lim) {
                hits.push((
                    ENERGY,
                    ts,
                    vec![
                        ("session_energy_wh", x.energy_wh),
                        ("median_wh", x.median_wh),
                        ("ratio", x.energy_wh / x.median_wh),
                        ("sessions", x.previous as f64),
                    ],
                    vec![
                        ("energy_ratio", c.energy_ratio),
                        ("energy_min_sessions", f64::from(c.energy_min_sessions)),
                    ],
                ));
            }
        }
        let severity = |rule| match rule {
            RESIDUAL | FORCED => Severity::Critical,
            IDLE => Severity::Minor,
            _ => Severity::Major,
        };
        let out: Vec<Finding> = hits
            .into_iter()
            .map(|(rule, since, v, th)| {
                self.finding(rule, r, entity.clone(), since, severity(rule), &v, &th)
            })
            .collect();
        self.stats.findings += out.len() as u64;
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        rule: usize,
        r: &Reading,
        entity: String,
        since: i64,
        severity: Severity,
        values: &[(&str, f64)],
        thresholds: &[(&str, f64)],
    ) -> Finding {
        let name = RULES[rule];
        let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
        let limits: Vec<String> = thresholds.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let (title, advice) = wording(rule);
        Finding {
            id: format!("{name}:{entity}:{since}"),
            rule: name,
            site: r.site.to_string(),
            severity,
            ts: r.ts,
            title: format!("{title} on {entity}"),
            summary: format!(
                "{title} on {entity} since {}: {} (limits: {}). {advice}",
                Timestamp(since),
                shown.join(", "),
                limits.join(", ")
            ),
            entity,
            evidence: super::evidence_of(values, thresholds, Timestamp(since), r.ts),
        }
    }
}

/// Title and what to do, per rule.
fn wording(rule: usize) -> (&'static str, &'static str) {
    match rule {
        RESIDUAL => ("Residual current", "Leakage to earth: cut the socket and inspect the charger and cable now."),
        NONSTANDARD => ("Non-standard charger", "Not a compliant e-bike charger (fast charger, modified pack, tricycle or several bikes): find the owner."),
        NOT_FULL => ("Not full after the expected time", "A healthy battery is full by now: check the battery and charger."),
        OVER_CAP => ("Session past the cap", "The pile should have ended this session: check its firmware and relay."),
        FORCED => ("Session past the forced stop", "The pile did not stop the session: cut the socket and inspect the pile."),
        LIVE_FULL => ("Power not cut when full", "The battery is full but the socket is still live; regulation requires the pile to cut power: check its firmware."),
        IDLE => ("Socket live with nothing drawing", "Unplugged or abandoned, yet the relay is on: check the socket."),
        REVERSAL => ("Taper reversal", "Power rose again after the taper began: a failing battery or charger; inspect before the next charge."),
        BULK => ("Lead-acid stuck in bulk", "The charger never left its bulk stage: a failing battery or charger; inspect it."),
        PILE_OVERLOAD => ("Pile over its power limit", "The whole pile draws more than it may: it must cut sessions; check its protection."),
        ENERGY => ("Abnormal session energy", "Far more energy than this tag's sessions usually take: a second or bigger battery, a modified pack or a lent tag; check the bike."),
        _ => ("Session started over the pile limit", "A new session began while the pile was above its new-session limit: check its protection."),
    }
}

impl Track {
    /// Moves to `ts`; false for a reading not later than the last one. A
    /// silence longer than `gap_ms` restarts every hold.
    fn advance(&mut self, ts: i64, gap_ms: i64) -> bool {
        match self.last_ts {
            Some(last) if ts <= last => return false,
            Some(last) if ts - last > gap_ms => {
                self.since = [None; RULES.len()];
                self.rises = 0;
            }
            _ => {}
        }
        self.last_ts = Some(ts);
        true
    }

    fn start_session(&mut self, start: i64) {
        self.session_start = start;
        self.since = [None; RULES.len()];
        self.fired = 0;
        self.peak_w = 0.0;
        self.last_w = f64::NAN;
        self.tapering = false;
        self.rises = 0;
    }

    /// Marks `rule` fired this session; false if it already was.
    fn fire_once(&mut self, rule: usize) -> bool {
        let bit = 1u16 << rule;
        let first = self.fired & bit == 0;
        self.fired |= bit;
        first
    }

    /// Tracks a condition; returns when it began if it has now held
    /// `hold_ms` and has not fired this session.
    fn hold(&mut self, rule: usize, cond: bool, ts: i64, hold_ms: i64) -> Option<i64> {
        if !cond {
            self.since[rule] = None;
            return None;
        }
        let since = *self.since[rule].get_or_insert(ts);
        (ts - since >= hold_ms && self.fire_once(rule)).then_some(since)
    }

    /// Feeds the taper rule one power sample; true once power has risen on
    /// `taper_rises` consecutive samples after the taper began.
    fn taper_step(&mut self, w: f64, c: &SocketSessionConfig) -> bool {
        if !self.tapering {
            self.peak_w = self.peak_w.max(w);
            self.tapering = self.peak_w >= c.full_below_w && w < c.taper_start_ratio * self.peak_w;
        } else if w > self.last_w {
            self.rises += 1;
        } else {
            self.rises = 0;
        }
        self.last_w = w;
        self.tapering && self.rises >= c.taper_rises
    }
}

fn held_s(since: i64, ts: i64) -> f64 {
    (ts - since) as f64 / 1000.0
}

mod config;
mod energy;

pub use config::SocketSessionConfig;

#[cfg(test)]
mod tests;
