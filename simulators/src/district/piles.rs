//! Charging piles in the district's yards, with planted faulty sessions and
//! the ground truth of every pile fault (DETECTION.md, "Charging piles").
//!
//! Each site has `piles_per_site` piles of `sockets_per_pile` sockets in its
//! yard, behind their own gateway (`gw-<site>-yard`, devices `pile-1`, …).
//! The readings are what the gateway publishes for the `gridwatch-ebp12`
//! profile: one `charging_pile` reading (`total_power_w`) and one
//! `charging_socket` reading per socket (`state`, `voltage_v`, `current_a`,
//! `power_w`, `energy_wh`, `temperature_c`, `relay_on`, `session_s`,
//! `residual_ma`), the pile reading first.
//!
//! **Sample period.** A socket whose relay is on reports every 60 s, and so
//! for one minute more after its relay opens; an idle one every 10 minutes
//! and whenever its state changes; the pile reports every 60 s while any
//! relay is on (and the minute after), else every 10 minutes. Every rule in
//! the table is about a live socket (or a loaded pile), so they see 60 s
//! data whenever they can fire; the idle cadence keeps the recording small
//! (a pile is idle most of the day) and stays within `socket_session`'s
//! 600 s gap. The extra minute lets `socket_safety` see a condition end: it
//! closes an episode only after 30 s below its clear level with no gap over
//! 60 s, and a socket that then idles for a day at 10-minute readings would
//! otherwise keep its episode open and miss its next fault. The piles are simulated at that 60 s step:
//! a condition begins at a sample instant, so "detected within one sample
//! period of the condition persisting" is measurable exactly.
//!
//! **Sessions.** The e-bike owners of the site (flats with a tag) plug in in
//! the evening (and some during the day) and unplug the next morning (or
//! hours later). Each owner has one battery: lithium (CC/CV taper to the BMS
//! stop) or lead-acid (bulk, second stage, float), the curves of
//! [`crate::pile`]'s charger model. A compliant pile cuts the relay when the
//! battery is full (under 45 W for 45 min), abandoned (under 2.5 W for
//! 5 min), after 12 h (cap) or 24 h (forced stop), at 30 mA of residual
//! current; pulling the plug opens the relay and resets `session_s`.
//!
//! **Planted faults.** With `pile_fault_rate` a session gets one fault in
//! which the pile fails the protection concerned: an overcurrent load (6–7 A
//! at a poor power factor), a 1.2–1.3 kW heater (overpower), a 0.65–1.15 kW
//! non-standard charger, a contact heating at 2–4 °C/min or creeping past
//! 75 °C, earth leakage of 32–60 mA, a taper reversal, a lead-acid pack stuck
//! in bulk, a battery that never fills (8 h), the same past the 12 h cap and
//! past the 24 h forced stop, a lead-acid on float with the full cut broken,
//! a charger left plugged with its battery taken upstairs (idle live). With
//! `pile_heavy_afternoon_prob` per pile and day, delivery riders bring
//! 0.85–1.1 kW chargers in the afternoon: on half of those afternoons enough
//! of them to overload the pile (sessions begin above 7.8 kW, the pile passes
//! 8.7 kW), on the other half fewer (a near miss for the pile limits).
//!
//! **Near misses** (with `pile_near_miss_rate` per session) must not fire: a
//! one-sample inrush current spike of 6.5–9 A, a socket warming slowly to
//! 60–64 °C, one creeping slowly to 66–70 °C (the rate-of-rise filter's
//! case), a one-sample temperature glitch above 65 °C, leakage of 12–26 mA, a
//! 540–595 W charger, a taper with two rising samples.
//!
//! **Abnormal session energy.** At every session start the gateway emits a
//! `session_started` event with the owner's tag (a pile with a card reader),
//! just before the socket's first reading of the session; `energy_wh` counts
//! the session. With `pile_energy_fault_rate` an ordinary evening session
//! (from 19:00, no other plant) is a bigger pack: power above 45 W × 1.8–3.2
//! on the charger's plateau, capped at 520 W; with
//! `pile_energy_near_miss_rate` × 1.15–1.35. Power under 45 W is untouched,
//! so the pile's cuts and the pile stream's draws are as they would have
//! been, and the plants draw from their own stream: no other case moves.
//! Its truth ([`energy_truth`]) applies the table's definition to every
//! session, planted or not.
//!
//! **Ground truth** is computed from what the simulation did, per condition
//! of the table (not by running the rules): a case opens at the instant the
//! condition has persisted as long as the table requires (start) and closes
//! at the first sample at which it no longer holds (end); session rules
//! count once per session. One-sample transients (the inrush spike, the
//! glitch) are not physical conditions and make no case.
//!
//! Everything here draws from its own random streams (`seed ^ STREAM`), so
//! turning piles on or off changes no other planted case or figure.

use super::rng::Rng;
use super::{round, Flat, Scenario, MIN_MS};
use crate::pile::{ChargeStage, Charger, ChargerKind, ChargerSpec};
use gridwatch_analytics::evaluate::truth::{kind, Case};
use gridwatch_analytics::recording::Record;
use gridwatch_telemetry::{DeviceKind, Event, EventKind, Reading, Timestamp};

/// Mixed into the seed for every pile stream.
const STREAM: u64 = 0x9113_5A7E;
/// Mixed in (besides `STREAM`) for the abnormal-energy plants, so that they
/// move nothing else.
const ENERGY_STREAM: u64 = 0xE4E6_0000;
/// The table's "abnormal session energy": above this × the tag's median…
const ENERGY_RATIO: f64 = 1.3;
/// …of at least this many previous sessions…
const ENERGY_MIN_SESSIONS: usize = 3;
/// …of the last this many (the rule's default window).
const ENERGY_HISTORY: usize = 10;
/// A bigger pack's charger stays below this (well under the 600 W
/// non-standard limit and the 540-595 W near misses), W.
const BIG_PACK_MAX_W: f64 = 520.0;
/// Energy plants are evening sessions from this local minute: the heavy
/// afternoons (which test the pile limits) are over by then.
const ENERGY_FROM_MIN: i64 = 19 * 60;
/// An idle socket (and an idle pile) reports this often, minutes.
const IDLE_EVERY_MIN: i64 = 10;
/// Thermal time constant of a socket, minutes.
const THERMAL_TAU_MIN: f64 = 10.0;
/// Socket warming per watt drawn, °C.
const RISE_C_PER_W: f64 = 0.02;
/// Power factor of a charger with PFC.
const PF: f64 = 0.95;

// The thresholds of DETECTION.md's pile table, which the truth follows.
const OVERCURRENT_A: f64 = 5.5;
const OVERPOWER_W: f64 = 1200.0;
const PERSIST_MS: i64 = 5_000;
const NONSTANDARD_W: f64 = 600.0;
const OVERTEMP_C: f64 = 65.0;
const CEILING_C: f64 = 75.0;
const OVERTEMP_PERSIST_MS: i64 = 60_000;
const RISE_C_PER_MIN: f64 = 1.0;
const RESIDUAL_MA: f64 = 30.0;
const FULL_W: f64 = 45.0;
const FULL_HOLD_MIN: i64 = 45;
const IDLE_W: f64 = 2.5;
const IDLE_HOLD_MIN: i64 = 5;
const NOT_FULL_H: f64 = 8.0;
const CAP_H: f64 = 12.0;
const FORCED_H: f64 = 24.0;
const BULK_A: f64 = 0.55;
const BULK_H: f64 = 6.0;
const TAPER_RATIO: f64 = 0.8;
const TAPER_RISES: u32 = 3;
const PILE_CUT_W: f64 = 8700.0;
const PILE_NEW_SESSION_W: f64 = 7800.0;

/// What a session has planted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    None,
    // Faults: the pile fails the protection concerned.
    Overcurrent,
    Overpower,
    Nonstandard,
    HeatFast,
    HeatCreep,
    Residual,
    TaperReversal,
    BulkStuck,
    NeverFull,
    OverCap,
    ForcedStop,
    LiveAfterFull,
    IdleLive,
    /// A delivery rider's 0.85–1.1 kW charger on a heavy afternoon.
    Heavy,
    /// A second or bigger pack: more energy than the owner's usual.
    BigPack,
    // Near misses: must raise nothing.
    InrushSpike,
    Warm62,
    CreepBelowCeiling,
    TempGlitch,
    Residual20,
    Charger590,
    TaperBump2,
    /// A slightly bigger charge than usual (about 1.1–1.25 ×).
    BigPackNear,
}

const FAULTS: [Plant; 13] = [
    Plant::Overcurrent,
    Plant::Overpower,
    Plant::Nonstandard,
    Plant::HeatFast,
    Plant::HeatCreep,
    Plant::Residual,
    Plant::TaperReversal,
    Plant::BulkStuck,
    Plant::NeverFull,
    Plant::OverCap,
    Plant::ForcedStop,
    Plant::LiveAfterFull,
    Plant::IdleLive,
];

const NEAR_MISSES: [Plant; 7] = [
    Plant::InrushSpike,
    Plant::Warm62,
    Plant::CreepBelowCeiling,
    Plant::TempGlitch,
    Plant::Residual20,
    Plant::Charger590,
    Plant::TaperBump2,
];

/// An owner's battery and charger.
#[derive(Debug, Clone, Copy)]
struct Battery {
    kind: ChargerKind,
    capacity_ah: f64,
    charge_current_a: f64,
}

impl Battery {
    fn draw(rng: &mut Rng, kind: ChargerKind) -> Self {
        let (capacity_ah, c_rate) = match kind {
            ChargerKind::Lithium => (rng.range(10.0, 16.0), rng.range(0.2, 0.25)),
            ChargerKind::LeadAcid => (rng.range(12.0, 20.0), rng.range(0.13, 0.16)),
        };
        Self {
            kind,
            capacity_ah,
            charge_current_a: capacity_ah * c_rate,
        }
    }

    fn charger(&self, rng: &mut Rng) -> Charger {
        let start_soc = match self.kind {
            ChargerKind::Lithium => rng.range(0.05, 0.4),
            ChargerKind::LeadAcid => rng.range(0.15, 0.4),
        };
        Charger::new(ChargerSpec {
            kind: self.kind,
            capacity_ah: self.capacity_ah,
            charge_current_a: self.charge_current_a,
            start_soc,
        })
    }
}

/// What the socket feeds.
#[derive(Debug, Clone)]
enum Load {
    /// A battery on its charger, following the charge curve.
    Curve(Box<Charger>),
    /// A constant draw at a power factor.
    Watts { w: f64, pf: f64 },
    /// A constant current at a power factor (power follows the voltage).
    Amps { a: f64, pf: f64 },
}

#[derive(Debug, Clone)]
struct Session {
    plug: i64,
    unplug: i64,
    relay: bool,
    load: Load,
    plant: Plant,
    low45: Option<i64>,
    low2: Option<i64>,
    /// Protections the pile fails in this session.
    no_full_cut: bool,
    no_idle_cut: bool,
    no_cap: bool,
    no_forced: bool,
    no_rcd: bool,
    /// Fault window (minutes) and its magnitude (°C/min, mA, W per minute…).
    from: i64,
    to: i64,
    size: f64,
    /// Where a temperature fault levels off, °C.
    t_max: f64,
    /// Taper bump: rising minutes left (-1 before it began) and the extra
    /// watts now.
    bump_left: i64,
    bump_w: f64,
    peak_w: f64,
    energy_wh: f64,
    /// A bigger pack: power above 45 W is this many times the owner's
    /// charger's while it is on its plateau (1 = the usual pack).
    boost: f64,
    /// The owner's tag.
    tag: String,
}

/// The truth's view of one condition on one entity.
#[derive(Debug, Clone, Copy, Default)]
struct Hold {
    since: Option<i64>,
    open: Option<usize>,
    done: bool,
}

/// Conditions of the table, per socket.
const C_OVERCURRENT: usize = 0;
const C_OVERPOWER: usize = 1;
const C_NONSTANDARD: usize = 2;
const C_RESIDUAL: usize = 3;
const C_NOT_FULL: usize = 4;
const C_CAP: usize = 5;
const C_FORCED: usize = 6;
const C_LIVE_FULL: usize = 7;
const C_IDLE: usize = 8;
const C_BULK: usize = 9;
const C_TAPER: usize = 10;
const C_OVER_LIMIT: usize = 11;
const C_TEMP: usize = 12;
/// (case kind, hold in ms, counted once per session).
const CONDITIONS: [(&str, i64, bool); 13] = [
    (kind::PILE_OVERCURRENT, PERSIST_MS, false),
    (kind::PILE_OVERPOWER, PERSIST_MS, false),
    (kind::PILE_NONSTANDARD_CHARGER, PERSIST_MS, true),
    (kind::PILE_RESIDUAL_CURRENT, 0, true),
    (kind::PILE_NOT_FULL, 0, true),
    (kind::PILE_SESSION_OVER_CAP, 0, true),
    (kind::PILE_FORCED_STOP_MISSED, 0, true),
    (kind::PILE_LIVE_AFTER_FULL, FULL_HOLD_MIN * MIN_MS, true),
    (kind::PILE_IDLE_LIVE, IDLE_HOLD_MIN * MIN_MS, true),
    (kind::PILE_BULK_STUCK, 0, true),
    (kind::PILE_TAPER_REVERSAL, 0, true),
    (kind::PILE_SESSION_OVER_LIMIT, 0, true),
    (kind::PILE_OVERTEMPERATURE, OVERTEMP_PERSIST_MS, false),
];

struct Socket {
    n: u16,
    entity: String,
    session: Option<Session>,
    /// Planned arrivals today: (minute, plant for a heavy afternoon).
    arrivals: Vec<(i64, Plant)>,
    /// Temperature without any fault heat, and the fault's extra heat, °C.
    base_c: f64,
    extra_c: f64,
    /// Temperature of the last six minutes (physical), for the rise rate.
    temps: [f64; 6],
    sun: f64,
    /// What the truth notes about the current session.
    note: String,
    /// Last reported relay state, to report every change.
    reported_relay: bool,
    /// Reports every minute up to here (the minute after the relay opened).
    tail: i64,
    /// The energy of a session that ended this minute, for the energy truth.
    ended: bool,
    // Truth.
    holds: [Hold; CONDITIONS.len()],
    /// Over-temperature episode: crossing of 65 °C, of 75 °C, since when the
    /// rise was fast, last sample's time and temperature.
    hot: Option<(i64, Option<i64>, Option<i64>)>,
    last_t: Option<(i64, f64)>,
    taper: (f64, bool, f64, u32),
}

struct Pile {
    site: String,
    gateway: String,
    device: String,
    entity: String,
    rng: Rng,
    owners: Vec<(String, Battery)>,
    sockets: Vec<Socket>,
    seq: u64,
    overload: Hold,
    was_live: bool,
    /// Tag of each owner (flat key → tag).
    tags: std::collections::HashMap<String, String>,
    /// The abnormal-energy plants' own stream.
    energy_rng: Rng,
    /// Index of the pile, to order the energy log as the recording is.
    index: usize,
}

/// What the energy truth needs, in recording order: (ts, pile, order within
/// the pile's output, what).
type EnergyLog = Vec<(i64, usize, u64, EnergyObs)>;

#[derive(Debug, Clone)]
enum EnergyObs {
    /// A session began on a socket, started by a tag.
    Start {
        socket: String,
        tag: String,
        note: String,
    },
    /// A socket reported its session energy (what the reading shows).
    Energy { socket: String, wh: f64 },
    /// The session on a socket ended (unplugged).
    End { socket: String },
}

/// The yards of a district: every pile, and the truth so far.
pub(super) struct Yard {
    piles: Vec<Pile>,
    t0: i64,
    fault_rate: f64,
    near_miss_rate: f64,
    heavy_prob: f64,
    cases: Vec<Case>,
    /// Sessions by plant, for the docs and tests.
    planted: Vec<(Plant, u32)>,
    energy_rates: (f64, f64),
    energy_log: EnergyLog,
}

impl Yard {
    /// Builds the piles of every site, with the batteries of its e-bike owners.
    pub(super) fn new(s: &Scenario, seed: u64, t0: i64, flats: &[Flat]) -> Self {
        let mut piles = Vec::new();
        for (si, site) in super::sites(s)
            .into_iter()
            .map(|(site, _)| site)
            .enumerate()
        {
            let tags: std::collections::HashMap<String, String> = flats
                .iter()
                .filter(|f| f.site == site)
                .filter_map(|f| f.profile.tag.clone().map(|t| (f.key.clone(), t)))
                .collect();
            let owners: Vec<(String, Battery)> = flats
                .iter()
                .enumerate()
                .filter(|(_, f)| f.site == site && f.profile.tag.is_some())
                .map(|(i, f)| {
                    let mut r = Rng::new(seed ^ STREAM, 1_000_000 + i as u64);
                    let kind = if r.chance(0.7) {
                        ChargerKind::Lithium
                    } else {
                        ChargerKind::LeadAcid
                    };
                    (f.key.clone(), Battery::draw(&mut r, kind))
                })
                .collect();
            for p in 1..=s.piles_per_site {
                let gateway = format!("gw-{site}-yard");
                let device = format!("pile-{p}");
                let entity = format!("{site}/{gateway}/{device}");
                let stream = (si as u64 + 1) * 100 + u64::from(p);
                let mut rng = Rng::new(seed ^ STREAM, stream);
                let energy_rng = Rng::new(seed ^ STREAM ^ ENERGY_STREAM, stream);
                let sockets = (1..=s.sockets_per_pile)
                    .map(|n| Socket {
                        n,
                        entity: format!("{entity}#{n}"),
                        session: None,
                        arrivals: Vec::new(),
                        base_c: 12.0,
                        extra_c: 0.0,
                        temps: [12.0; 6],
                        sun: rng.unit(),
                        note: String::new(),
                        reported_relay: false,
                        tail: i64::MIN,
                        ended: false,
                        holds: [Hold::default(); CONDITIONS.len()],
                        hot: None,
                        last_t: None,
                        taper: (0.0, false, f64::NAN, 0),
                    })
                    .collect();
                piles.push(Pile {
                    site: site.clone(),
                    gateway,
                    device,
                    entity,
                    rng,
                    owners: owners.clone(),
                    sockets,
                    seq: 0,
                    overload: Hold::default(),
                    was_live: false,
                    tags: tags.clone(),
                    energy_rng,
                    index: piles.len(),
                });
            }
        }
        Self {
            piles,
            t0,
            fault_rate: s.pile_fault_rate,
            near_miss_rate: s.pile_near_miss_rate,
            heavy_prob: s.pile_heavy_afternoon_prob,
            cases: Vec::new(),
            planted: Vec::new(),
            energy_rates: (s.pile_energy_fault_rate, s.pile_energy_near_miss_rate),
            energy_log: Vec::new(),
        }
    }

    /// Simulates day `day` (run minutes `day*1440..`), appending its readings.
    pub(super) fn day(&mut self, day: u32, out: &mut Vec<Record>) {
        let day_start = i64::from(day) * 1440;
        let rates = (self.fault_rate, self.near_miss_rate, self.heavy_prob);
        let energy_rates = self.energy_rates;
        for pile in &mut self.piles {
            pile.plan_day(day_start, rates.2);
            let clear = pile.rng.range(0.3, 1.0);
            for m in day_start..day_start + 1440 {
                pile.minute(
                    m,
                    day,
                    clear,
                    self.t0,
                    rates,
                    energy_rates,
                    &mut self.cases,
                    &mut self.planted,
                    &mut self.energy_log,
                    out,
                );
            }
        }
    }

    /// The cases planted; those still open at the end have no end.
    pub(super) fn finish(mut self) -> Vec<Case> {
        let energy = energy_truth(std::mem::take(&mut self.energy_log));
        self.cases.extend(energy);
        self.cases
    }

    /// Sessions per plant so far, by name.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn planted(&self) -> Vec<(String, u32)> {
        self.planted
            .iter()
            .map(|(p, n)| (format!("{p:?}"), *n))
            .collect()
    }
}

impl Pile {
    fn plan_day(&mut self, day_start: i64, heavy_prob: f64) {
        for s in &mut self.sockets {
            s.arrivals.clear();
            if self.rng.chance(0.25) {
                s.arrivals
                    .push((day_start + self.rng.int(8 * 60, 13 * 60), Plant::None));
            }
            if self.rng.chance(0.55) {
                s.arrivals.push((
                    day_start + self.rng.int(17 * 60 + 30, 22 * 60 + 30),
                    Plant::None,
                ));
            }
        }
        if self.rng.chance(heavy_prob) {
            let n = self.sockets.len();
            let riders = if self.rng.chance(0.5) {
                (n * 3 / 4 + self.rng.int(0, 1) as usize).min(n)
            } else {
                n / 2
            };
            let mut at = day_start + 14 * 60 + self.rng.int(0, 30);
            let first = self.rng.int(0, n as i64 - 1) as usize;
            for k in 0..riders {
                let s = &mut self.sockets[(first + k) % n];
                s.arrivals.push((at, Plant::Heavy));
                at += self.rng.int(2, 6);
            }
        }
        for s in &mut self.sockets {
            s.arrivals.sort_by_key(|a| a.0);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn minute(
        &mut self,
        m: i64,
        day: u32,
        clear: f64,
        t0: i64,
        (fault_rate, near_rate, _): (f64, f64, f64),
        (energy_rate, energy_near_rate): (f64, f64),
        cases: &mut Vec<Case>,
        planted: &mut Vec<(Plant, u32)>,
        energy_log: &mut EnergyLog,
        out: &mut Vec<Record>,
    ) {
        let ts = t0 + m * MIN_MS;
        let volts = (231.0 + 1.5 * self.rng.normal()).clamp(228.0, 235.0);
        let hour = (m.rem_euclid(1440)) as f64 / 60.0;
        let ambient = 10.0
            + 0.17 * f64::from(day)
            + 6.0 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
        let sun_now = if (9.0..17.0).contains(&hour) {
            10.0 * clear * (std::f64::consts::PI * (hour - 9.0) / 8.0).sin()
        } else {
            0.0
        };
        // Each socket: unplug, plug in, draw, protect, heat.
        let mut states: Vec<SocketNow> = Vec::with_capacity(self.sockets.len());
        for s in &mut self.sockets {
            let mut changed = false;
            s.ended = false;
            if s.session.as_ref().is_some_and(|x| x.unplug <= m) {
                s.session = None;
                changed = true;
                s.ended = true;
            }
            let arrival = s.arrivals.iter().find(|a| a.0 == m).map(|a| a.1);
            let mut new_session = false;
            if let (None, Some(heavy)) = (&s.session, arrival) {
                if let Some(mut sess) =
                    new_session_for(&mut self.rng, &self.owners, m, heavy, fault_rate, near_rate)
                {
                    // A bigger pack, from the energy stream only (three
                    // draws per session, whatever is planted).
                    let (u, v, w) = (
                        self.energy_rng.unit(),
                        self.energy_rng.unit(),
                        self.energy_rng.unit(),
                    );
                    let eligible = sess.0.plant == Plant::None
                        && m.rem_euclid(1440) >= ENERGY_FROM_MIN
                        && matches!(sess.0.load, Load::Curve(_));
                    if eligible && u < energy_rate {
                        sess.0.plant = Plant::BigPack;
                        sess.0.boost = 1.8 + 1.4 * v;
                    } else if eligible && w < energy_near_rate {
                        sess.0.plant = Plant::BigPackNear;
                        sess.0.boost = 1.15 + 0.2 * v;
                    }
                    sess.0.tag = self.tags.get(&sess.2).cloned().unwrap_or_default();
                    count(planted, sess.0.plant);
                    s.note = sess.1;
                    s.session = Some(sess.0);
                    changed = true;
                    new_session = true;
                }
            }
            let now = s.step(m, volts, ambient, sun_now, &mut self.rng);
            states.push(SocketNow {
                changed: changed || now.relay != s.reported_relay,
                new_session,
                ..now
            });
            s.reported_relay = now.relay;
        }
        let total: f64 = states.iter().map(|x| x.power_w).sum();
        let live = states.iter().any(|x| x.relay);
        // The pile reading first, as the gateway publishes a poll.
        if live || self.was_live || m % IDLE_EVERY_MIN == 0 {
            self.seq += 1;
            let mut r = Reading::new(
                Timestamp(ts),
                self.gateway.as_str(),
                self.device.as_str(),
                DeviceKind::ChargingPile,
                self.seq,
            );
            r.site = self.site.as_str().into();
            r.values.insert("map_version".into(), 1.0);
            r.values
                .insert("socket_count".into(), self.sockets.len() as f64);
            r.values.insert("total_power_w".into(), round(total, 1));
            let overloaded = total > PILE_CUT_W;
            r.values
                .insert("fault_bits".into(), if overloaded { 2.0 } else { 0.0 });
            out.push(Record::Reading(r));
            // Truth: the pile above its cut limit for 5 s.
            let entity = self.entity.clone();
            let over = round(total, 1) > PILE_CUT_W;
            truth_hold(
                cases,
                &mut self.overload,
                kind::PILE_OVERLOAD,
                &entity,
                over,
                ts,
                PERSIST_MS,
                "pile overload",
            );
            if !over {
                self.overload.done = false;
            }
        }
        self.was_live = live;
        for (s, now) in self.sockets.iter_mut().zip(&states) {
            if now.changed && !now.relay {
                s.tail = m + 1;
            }
            if !(now.relay || now.changed || m <= s.tail || m % IDLE_EVERY_MIN == 0) {
                continue;
            }
            if s.ended {
                let socket = s.entity.clone();
                energy_log.push((ts, self.index, self.seq, EnergyObs::End { socket }));
            }
            if now.new_session {
                // A pile with a card reader knows who started the session.
                let tag = s
                    .session
                    .as_ref()
                    .map(|x| x.tag.clone())
                    .unwrap_or_default();
                self.seq += 1;
                let e = Event {
                    schema: gridwatch_telemetry::SCHEMA_VERSION,
                    ts: Timestamp(ts),
                    gateway: self.gateway.as_str().into(),
                    site: self.site.as_str().into(),
                    device: self.device.as_str().into(),
                    seq: self.seq,
                    kind: EventKind::SessionStarted {
                        socket: s.n,
                        identity: Some(tag.clone()),
                    },
                };
                out.push(Record::Event(e));
                let plant = now.plant.unwrap_or(Plant::None);
                let boost = s.session.as_ref().map_or(1.0, |x| x.boost);
                energy_log.push((
                    ts,
                    self.index,
                    self.seq,
                    EnergyObs::Start {
                        socket: s.entity.clone(),
                        tag,
                        note: format!("{plant:?} (pack x{boost:.2}); {}", s.note),
                    },
                ));
            }
            self.seq += 1;
            let mut r = Reading::new(
                Timestamp(ts),
                self.gateway.as_str(),
                self.device.as_str(),
                DeviceKind::ChargingSocket,
                self.seq,
            );
            r.site = self.site.as_str().into();
            r.socket = Some(s.n);
            let shown_a = now.spike_a.unwrap_or(now.current_a);
            let shown_c = now.glitch_c.unwrap_or(now.temperature_c);
            for (k, v) in [
                ("state", now.state),
                ("voltage_v", round(volts, 1)),
                ("current_a", round(shown_a, 3)),
                ("power_w", now.power_w),
                ("energy_wh", round(now.energy_wh, 1)),
                ("temperature_c", round(shown_c, 1)),
                ("relay_on", if now.relay { 1.0 } else { 0.0 }),
                ("fault_code", 0.0),
                ("session_s", now.session_s),
                ("residual_ma", now.residual_ma),
            ] {
                r.values.insert(k.into(), v);
            }
            out.push(Record::Reading(r));
            if s.session.is_some() {
                energy_log.push((
                    ts,
                    self.index,
                    self.seq,
                    EnergyObs::Energy {
                        socket: s.entity.clone(),
                        wh: round(now.energy_wh, 1),
                    },
                ));
            }
            s.truth(cases, ts, now, total);
        }
    }
}

/// One socket's values at a minute.
#[derive(Debug, Clone, Copy, Default)]
struct SocketNow {
    relay: bool,
    state: f64,
    power_w: f64,
    current_a: f64,
    temperature_c: f64,
    rise_c_per_min: f64,
    residual_ma: f64,
    session_s: f64,
    /// Energy of the session so far (the register resets at plug-in).
    energy_wh: f64,
    /// One-sample transients (not physical conditions).
    spike_a: Option<f64>,
    glitch_c: Option<f64>,
    changed: bool,
    new_session: bool,
    plant: Option<Plant>,
}

fn count(planted: &mut Vec<(Plant, u32)>, p: Plant) {
    match planted.iter_mut().find(|x| x.0 == p) {
        Some(x) => x.1 += 1,
        None => planted.push((p, 1)),
    }
}

/// A session starting at minute `m`: an owner, a battery, perhaps a plant.
fn new_session_for(
    rng: &mut Rng,
    owners: &[(String, Battery)],
    m: i64,
    arrival: Plant,
    fault_rate: f64,
    near_rate: f64,
) -> Option<(Session, String, String)> {
    if owners.is_empty() {
        return None;
    }
    let plant = if arrival == Plant::Heavy {
        Plant::Heavy
    } else if rng.chance(fault_rate) {
        FAULTS[rng.int(0, FAULTS.len() as i64 - 1) as usize]
    } else if rng.chance(near_rate) {
        NEAR_MISSES[rng.int(0, NEAR_MISSES.len() as i64 - 1) as usize]
    } else {
        Plant::None
    };
    // Some plants need a battery kind; pick an owner who has one.
    let needs = match plant {
        Plant::TaperReversal | Plant::TaperBump2 => Some(ChargerKind::Lithium),
        Plant::LiveAfterFull | Plant::BulkStuck => Some(ChargerKind::LeadAcid),
        _ => None,
    };
    let fitting: Vec<&(String, Battery)> = owners
        .iter()
        .filter(|o| needs.is_none_or(|k| o.1.kind == k))
        .collect();
    let (owner, battery) = if fitting.is_empty() {
        let o = &owners[rng.int(0, owners.len() as i64 - 1) as usize];
        let kind = needs.unwrap_or(o.1.kind);
        (o.0.clone(), Battery::draw(rng, kind))
    } else {
        let o = fitting[rng.int(0, fitting.len() as i64 - 1) as usize];
        (o.0.clone(), o.1)
    };
    let local = m.rem_euclid(1440);
    // Evening sessions end the next morning; day sessions after 3–9 h.
    let unplug = if local >= 17 * 60 {
        m - local + 1440 + rng.int(6 * 60 + 30, 9 * 60)
    } else {
        m + rng.int(3 * 60, 9 * 60)
    };
    let note = format!("{plant:?}; owner {owner}, {:?} battery", battery.kind);
    let mut s = Session {
        plug: m,
        unplug,
        relay: true,
        load: Load::Curve(Box::new(battery.charger(rng))),
        plant,
        low45: None,
        low2: None,
        no_full_cut: false,
        no_idle_cut: false,
        no_cap: false,
        no_forced: false,
        no_rcd: false,
        from: m,
        to: m,
        size: 0.0,
        t_max: 0.0,
        bump_left: -1,
        bump_w: 0.0,
        peak_w: 0.0,
        energy_wh: 0.0,
        boost: 1.0,
        tag: String::new(),
    };
    let never_full = |rng: &mut Rng| Load::Watts {
        w: rng.range(55.0, 105.0),
        pf: PF,
    };
    match plant {
        Plant::None | Plant::TaperReversal | Plant::TaperBump2 => {}
        Plant::Overcurrent => {
            s.load = Load::Amps {
                a: rng.range(5.9, 7.0),
                pf: rng.range(0.6, 0.68),
            };
            s.unplug = m + rng.int(5, 30);
        }
        Plant::Overpower => {
            s.load = Load::Amps {
                a: rng.range(5.36, 5.46),
                pf: 1.0,
            };
            s.unplug = m + rng.int(5, 40);
        }
        Plant::Nonstandard | Plant::Heavy => {
            s.load = if plant == Plant::Heavy {
                Load::Watts {
                    w: rng.range(850.0, 1100.0),
                    pf: PF,
                }
            } else {
                Load::Amps {
                    a: rng.range(3.0, 5.3),
                    pf: PF,
                }
            };
            s.unplug = m + rng.int(60, 150);
        }
        Plant::HeatFast | Plant::HeatCreep => {
            s.from = m + rng.int(10, 40);
            s.size = if plant == Plant::HeatFast {
                rng.range(2.0, 4.0)
            } else {
                rng.range(0.4, 0.7)
            };
            s.t_max = if plant == Plant::HeatFast {
                rng.range(78.0, 90.0)
            } else {
                rng.range(77.0, 82.0)
            };
            // The owner notices (or the battery is done) a while after the peak.
            s.unplug = s.from + (s.t_max / s.size) as i64 + rng.int(5, 20);
            s.load = never_full(rng);
        }
        Plant::Warm62 | Plant::CreepBelowCeiling => {
            s.from = m + rng.int(10, 40);
            s.size = rng.range(0.3, 0.5);
            s.t_max = if plant == Plant::Warm62 {
                rng.range(60.0, 64.0)
            } else {
                rng.range(66.0, 70.0)
            };
            s.unplug = s.from + (s.t_max / s.size) as i64 + rng.int(20, 60);
            s.load = never_full(rng);
        }
        Plant::Residual | Plant::Residual20 => {
            s.from = m + rng.int(5, 60);
            s.to = s.from + rng.int(5, 40);
            s.size = if plant == Plant::Residual {
                rng.range(32.0, 60.0)
            } else {
                rng.range(12.0, 26.0)
            };
            s.no_rcd = true;
        }
        Plant::BulkStuck => {
            s.load = Load::Watts {
                w: rng.range(135.0, 210.0),
                pf: PF,
            };
            s.unplug = s.unplug.max(m + 9 * 60);
        }
        Plant::NeverFull => {
            s.load = never_full(rng);
            s.unplug = s.unplug.max(m + 9 * 60);
        }
        Plant::OverCap => {
            s.load = never_full(rng);
            s.no_cap = true;
            s.unplug = m + rng.int(13 * 60, 20 * 60);
        }
        Plant::ForcedStop => {
            s.load = never_full(rng);
            s.no_cap = true;
            s.no_forced = true;
            s.unplug = m + rng.int(24 * 60 + 30, 28 * 60);
        }
        Plant::LiveAfterFull => {
            s.no_full_cut = true;
            s.unplug = m + rng.int(10 * 60, 11 * 60 + 30);
        }
        Plant::IdleLive => {
            // The charger stays plugged in; its battery went upstairs.
            s.load = Load::Watts { w: 0.8, pf: 0.5 };
            s.no_idle_cut = true;
        }
        Plant::InrushSpike => {
            s.size = rng.range(6.5, 9.0);
        }
        Plant::TempGlitch => {
            s.from = m + rng.int(10, 90);
        }
        Plant::BigPack | Plant::BigPackNear => {}
        Plant::Charger590 => {
            s.load = Load::Watts {
                w: rng.range(540.0, 595.0),
                pf: PF,
            };
            s.unplug = m + rng.int(120, 300);
        }
    }
    Some((s, note, owner))
}

impl Socket {
    /// Advances the socket through minute `m`: what it draws, whether the pile
    /// cuts it, how hot it is.
    fn step(&mut self, m: i64, volts: f64, ambient: f64, sun: f64, rng: &mut Rng) -> SocketNow {
        let mut now = SocketNow::default();
        let mut used_wh = 0.0;
        let mut power = 0.0;
        let mut pf = PF;
        if let Some(s) = &mut self.session {
            now.plant = Some(s.plant);
            now.session_s = ((m - s.plug) * 60) as f64;
            if s.relay {
                power = match &s.load {
                    Load::Curve(c) => c.mains_power_w(),
                    Load::Watts { w, pf: f } => {
                        pf = *f;
                        *w
                    }
                    Load::Amps { a, pf: f } => {
                        pf = *f;
                        a * volts * f
                    }
                };
                // Taper faults: power climbs back once the taper is under way.
                if matches!(s.plant, Plant::TaperReversal | Plant::TaperBump2) {
                    let tapering =
                        matches!(&s.load, Load::Curve(c) if c.stage() == ChargeStage::Taper);
                    if s.bump_left < 0 && tapering && power < 0.5 * s.peak_w {
                        s.bump_left = if s.plant == Plant::TaperReversal {
                            rng.int(4, 8)
                        } else {
                            2
                        };
                        // Faster than the taper falls, so power really rises.
                        s.size = rng.range(8.0, 15.0);
                    }
                    if s.bump_left > 0 {
                        s.bump_left -= 1;
                        s.bump_w += s.size;
                    } else {
                        s.bump_w *= 0.5;
                    }
                    power += s.bump_w;
                }
                // A bigger pack on a bigger charger: more power on the
                // plateau, the same curve after it (so the pile's cuts,
                // which look at power under 45 W, come when they would).
                if s.boost > 1.0 && power > FULL_W {
                    if let Load::Curve(c) = &s.load {
                        if c.stage() == ChargeStage::Plateau {
                            power = (FULL_W + s.boost * (power - FULL_W))
                                .min(BIG_PACK_MAX_W)
                                .max(power);
                        }
                    }
                }
                s.peak_w = s.peak_w.max(power);
                let residual = if matches!(s.plant, Plant::Residual | Plant::Residual20)
                    && (s.from..s.to).contains(&m)
                {
                    s.size
                } else if power > 1.0 {
                    f64::from(1 + (rng.unit() * 3.0) as u8)
                } else {
                    0.0
                };
                // The pile's protections, as compliant firmware applies them.
                let low45 = *s.low45.get_or_insert(m);
                if power >= FULL_W {
                    s.low45 = None;
                }
                let low2 = *s.low2.get_or_insert(m);
                if power >= IDLE_W {
                    s.low2 = None;
                }
                let full = s.low45.is_some() && m - low45 >= FULL_HOLD_MIN && !s.no_full_cut;
                let idle = s.low2.is_some() && m - low2 >= IDLE_HOLD_MIN && !s.no_idle_cut;
                let cap = m - s.plug >= (CAP_H * 60.0) as i64 && !s.no_cap;
                let forced = m - s.plug >= (FORCED_H * 60.0) as i64 && !s.no_forced;
                let rcd = residual >= RESIDUAL_MA && !s.no_rcd;
                if full || idle || cap || forced || rcd {
                    s.relay = false;
                    power = 0.0;
                } else {
                    now.residual_ma = residual;
                }
            }
            now.relay = s.relay;
            // Fault heat (only while live) or its decay.
            let heating = s.relay
                && matches!(
                    s.plant,
                    Plant::HeatFast | Plant::HeatCreep | Plant::Warm62 | Plant::CreepBelowCeiling
                )
                && m >= s.from;
            if heating {
                let room = (s.t_max - self.base_c).max(0.0);
                self.extra_c = (self.extra_c + s.size).min(room);
            } else {
                self.extra_c *= (-1.0 / THERMAL_TAU_MIN).exp();
            }
            if s.plant == Plant::InrushSpike && m == s.plug {
                now.spike_a = Some(s.size);
            }
            if s.plant == Plant::TempGlitch && m == s.from {
                now.glitch_c = Some(rng.range(66.0, 72.0));
            }
        } else {
            self.extra_c *= (-1.0 / THERMAL_TAU_MIN).exp();
        }
        let target = ambient + sun * self.sun + RISE_C_PER_W * power;
        self.base_c = target + (self.base_c - target) * (-1.0 / THERMAL_TAU_MIN).exp();
        let t = self.base_c + self.extra_c;
        self.temps.rotate_left(1);
        self.temps[5] = t;
        now.temperature_c = t;
        now.rise_c_per_min = (self.temps[5] - self.temps[0]) / 5.0;
        now.power_w = round(power, 1);
        now.current_a = if power > 0.0 {
            power / (volts * pf)
        } else {
            0.0
        };
        now.state = match &self.session {
            None => 0.0,
            Some(s) if !s.relay => 4.0,
            Some(_) if power >= FULL_W => 2.0,
            Some(_) => 3.0,
        };
        // The battery charges for the minute just reported.
        if let Some(s) = &mut self.session {
            s.energy_wh += power / 60.0;
            used_wh = s.energy_wh;
            if s.relay {
                if let Load::Curve(c) = &mut s.load {
                    c.advance(60.0);
                }
            }
        }
        now.energy_wh = used_wh;
        now
    }

    /// Updates the ground truth with the reading just written.
    fn truth(&mut self, cases: &mut Vec<Case>, ts: i64, now: &SocketNow, pile_w: f64) {
        let entity = self.entity.clone();
        let note = self.note.clone();
        if now.new_session {
            for (h, c) in self.holds.iter_mut().zip(CONDITIONS) {
                if c.2 {
                    h.done = false;
                }
            }
            self.taper = (0.0, false, f64::NAN, 0);
        }
        let relay = now.relay;
        let p = now.power_w;
        let amps = round(now.current_a, 3);
        let hours = now.session_s / 3600.0;
        let live_for = |h: f64| relay && hours >= h;
        // Taper: once power fell below 80 % of the session's peak, samples
        // that each rise above the one before.
        let (mut peak, mut tapering, last, mut rises) = self.taper;
        if !tapering {
            peak = peak.max(p);
            tapering = peak >= FULL_W && p < TAPER_RATIO * peak;
        } else if p > last {
            rises += 1;
        } else {
            rises = 0;
        }
        self.taper = (peak, tapering, p, rises);
        let reversal = tapering && rises >= TAPER_RISES;
        let conds = [
            (C_OVERCURRENT, amps > OVERCURRENT_A),
            (C_OVERPOWER, p > OVERPOWER_W),
            (C_NONSTANDARD, p > NONSTANDARD_W),
            (C_RESIDUAL, now.residual_ma >= RESIDUAL_MA),
            (C_NOT_FULL, live_for(NOT_FULL_H) && p >= FULL_W),
            (C_CAP, live_for(CAP_H)),
            (C_FORCED, live_for(FORCED_H)),
            (C_LIVE_FULL, relay && p < FULL_W),
            (C_IDLE, relay && p < IDLE_W),
            (C_BULK, live_for(BULK_H) && amps > BULK_A),
            (C_TAPER, reversal),
            (
                C_OVER_LIMIT,
                now.new_session && relay && round(pile_w, 1) > PILE_NEW_SESSION_W,
            ),
        ];
        for (c, cond) in conds {
            let (k, hold, per_session) = CONDITIONS[c];
            let h = &mut self.holds[c];
            truth_hold(cases, h, k, &entity, cond, ts, hold, &note);
            if !cond && !per_session {
                h.done = false;
            }
        }
        // The session-start fault is an instant.
        if let Some(i) = self.holds[C_OVER_LIMIT].open.take() {
            cases[i].end_ms = Some(ts);
        }
        // Over-temperature: above 65 °C for 60 s having risen faster than
        // 1 °C/min, or above 75 °C for 60 s. Crossings are interpolated
        // between samples (the temperature is continuous).
        let t = round(now.temperature_c, 1);
        let cross = |limit: f64| match self.last_t {
            Some((lt, lv)) if lv <= limit && t > lv => {
                lt + ((limit - lv) / (t - lv) * (ts - lt) as f64) as i64
            }
            _ => ts,
        };
        if t > OVERTEMP_C {
            let (c65, mut c75, mut fast) = self.hot.unwrap_or((cross(OVERTEMP_C), None, None));
            if t > CEILING_C && c75.is_none() {
                c75 = Some(cross(CEILING_C));
            }
            if now.rise_c_per_min > RISE_C_PER_MIN && fast.is_none() {
                fast = Some(ts);
            }
            self.hot = Some((c65, c75, fast));
            let due_rate = fast.map(|f| f.max(c65 + OVERTEMP_PERSIST_MS));
            let due_ceiling = c75.map(|c| c + OVERTEMP_PERSIST_MS);
            let due = match (due_rate, due_ceiling) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let h = &mut self.holds[C_TEMP];
            if let Some(due) = due.filter(|d| *d <= ts) {
                if !h.done {
                    h.done = true;
                    h.open = Some(cases.len());
                    cases.push(Case {
                        kind: kind::PILE_OVERTEMPERATURE.into(),
                        entity: entity.clone(),
                        start_ms: due.max(c65),
                        end_ms: None,
                        note: note.clone(),
                    });
                }
            }
        } else {
            self.hot = None;
            let h = &mut self.holds[C_TEMP];
            if let Some(i) = h.open.take() {
                cases[i].end_ms = Some(ts);
            }
            h.done = false;
        }
        self.last_t = Some((ts, t));
    }
}

/// Tracks one condition for the truth: a case opens once it has held
/// `hold_ms` (a hold shorter than the 60 s step is met by the step itself:
/// the simulation holds every value for the whole minute) and closes at the
/// first sample where it no longer holds.
#[allow(clippy::too_many_arguments)]
fn truth_hold(
    cases: &mut Vec<Case>,
    h: &mut Hold,
    k: &str,
    entity: &str,
    cond: bool,
    ts: i64,
    hold_ms: i64,
    note: &str,
) {
    if cond {
        let since = *h.since.get_or_insert(ts);
        let needed = if hold_ms < MIN_MS { 0 } else { hold_ms };
        if !h.done && ts - since >= needed {
            h.done = true;
            h.open = Some(cases.len());
            cases.push(Case {
                kind: k.into(),
                entity: entity.into(),
                start_ms: since + hold_ms,
                end_ms: None,
                note: note.into(),
            });
        }
    } else {
        h.since = None;
        if let Some(i) = h.open.take() {
            cases[i].end_ms = Some(ts);
        }
    }
}

/// The truth of the "abnormal session energy" row, from what the sockets
/// reported, in recording order: a case opens at the first sample at which
/// a session's energy is above 1.3 × the median of the energies of the
/// sessions of its tag that had ended when it began (at least 3; the last
/// 10, the rule's window), and closes when the session ends. Every session
/// counts, planted or not: an ordinary one whose battery started emptier
/// than usual is a case too, by the table's definition.
fn energy_truth(mut log: EnergyLog) -> Vec<Case> {
    use std::collections::HashMap;
    struct Live {
        tag: String,
        note: String,
        median: Option<f64>,
        previous: usize,
        wh: f64,
        case: Option<usize>,
    }
    log.sort_by_key(|(ts, pile, order, _)| (*ts, *pile, *order));
    let mut history: HashMap<String, Vec<f32>> = HashMap::new();
    let mut live: HashMap<String, Live> = HashMap::new();
    let mut cases: Vec<Case> = Vec::new();
    let end = |live: &mut HashMap<String, Live>,
               history: &mut HashMap<String, Vec<f32>>,
               cases: &mut Vec<Case>,
               socket: &str,
               ts: i64| {
        let Some(l) = live.remove(socket) else {
            return;
        };
        if let Some(i) = l.case {
            cases[i].end_ms = Some(ts);
            if let Some(m) = l.median {
                cases[i].note = format!(
                    "{}; session {:.0} Wh = {:.2} x the median {:.0} Wh of {} sessions",
                    cases[i].note,
                    l.wh,
                    l.wh / m,
                    m,
                    l.previous
                );
            }
        }
        if l.wh > 0.0 {
            let h = history.entry(l.tag).or_default();
            h.push(l.wh as f32);
            if h.len() > ENERGY_HISTORY {
                h.remove(0);
            }
        }
    };
    for (ts, _, _, obs) in log {
        match obs {
            EnergyObs::Start { socket, tag, note } => {
                end(&mut live, &mut history, &mut cases, &socket, ts);
                let past = history.get(&tag).map_or(&[][..], Vec::as_slice);
                live.insert(
                    socket,
                    Live {
                        median: median_f32(past),
                        previous: past.len(),
                        tag,
                        note,
                        wh: 0.0,
                        case: None,
                    },
                );
            }
            EnergyObs::Energy { socket, wh } => {
                let Some(l) = live.get_mut(&socket) else {
                    continue;
                };
                l.wh = l.wh.max(wh);
                let over = l
                    .median
                    .is_some_and(|m| l.previous >= ENERGY_MIN_SESSIONS && wh > ENERGY_RATIO * m);
                if over && l.case.is_none() {
                    l.case = Some(cases.len());
                    cases.push(Case {
                        kind: kind::PILE_ABNORMAL_SESSION_ENERGY.into(),
                        entity: socket,
                        start_ms: ts,
                        end_ms: None,
                        note: format!("{}; tag {}", l.note, l.tag),
                    });
                }
            }
            EnergyObs::End { socket } => end(&mut live, &mut history, &mut cases, &socket, ts),
        }
    }
    cases
}

/// Median of session energies (the mean of the middle two for an even count).
fn median_f32(v: &[f32]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}
