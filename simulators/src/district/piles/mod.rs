//! Charging piles in the district's yards, with planted faulty sessions and
//! the ground truth of every pile fault (docs/detection.md, "Charging piles").
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

mod pile;
mod plants;
mod socket;
mod truth;

use plants::{count, new_session_for};
use truth::{energy_truth, truth_hold};

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

// The thresholds of docs/detection.md's pile table, which the truth follows.
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
            ChargerKind::LeadAcid => (rng.range(12.0, 20.0), rng.range(0.13, 0.16)),
            _ => (rng.range(10.0, 16.0), rng.range(0.2, 0.25)),
        };
        Self {
            kind,
            capacity_ah,
            charge_current_a: capacity_ah * c_rate,
        }
    }

    fn charger(&self, rng: &mut Rng) -> Charger {
        let start_soc = match self.kind {
            ChargerKind::LeadAcid => rng.range(0.15, 0.4),
            _ => rng.range(0.05, 0.4),
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
