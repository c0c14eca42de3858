//! Behaviour models of one flat: who lives there, what they switch on and
//! when, and what the meters see.
//!
//! Loads are modelled as a base (standby), a fridge that cycles, a daily
//! activity profile per person (weekday and weekend), and discrete
//! appliance events (cooking, kettle, washing machine, night loads, an
//! e-bike charger). Each meter reading is the mean power over its interval.

use super::broad::Extras;
use super::confounders::Confounders;
use super::rng::Rng;

/// What is planted in a flat.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Registered occupants.
    pub registered: u8,
    /// People actually living there in normal times.
    pub actual: u8,
    /// From this day on (index into the run), `group_size` people live there.
    pub group_from_day: Option<u32>,
    /// People in the group rental.
    pub group_size: u8,
    /// A registered business with heavy use.
    pub business: bool,
    /// Three-in-one premises: from this day on, machines of this many watts
    /// run 09–18 on weekdays (not registered as a business).
    pub three_in_one: Option<(u32, f64)>,
    /// Multiplies all use (people differ).
    pub intensity: f64,
    /// Fridge cycle phase, minutes.
    pub fridge_phase: i64,
    /// Owns an e-bike with a registered tag.
    pub tag: Option<String>,
    /// Charges it indoors with this charger.
    pub indoor_charger: Option<Charger>,
    /// Runs a constant night load on some nights.
    pub night_plateau: bool,
    /// Runs a thermostat-cycling night load.
    pub night_cycling: bool,
    /// Loads that look like a charger to a careless eye.
    pub confounders: Confounders,
    /// Away on these days (index into the run), half-open.
    pub vacation: Option<(u32, u32)>,
    /// A leak of this many litres per hour from this day.
    pub leak: Option<(u32, f64)>,
    /// The broad household's traits (`district::broad`).
    pub extras: Extras,
}

/// An e-bike charger type (docs/detection.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Charger {
    /// Lithium, constant current then a taper to 0.
    Lithium {
        /// Plateau power, W.
        watts: f64,
    },
    /// Lead-acid 48 V: bulk, second stage, float.
    LeadAcid {
        /// Bulk power, W.
        watts: f64,
    },
}

impl Charger {
    /// The truth file's `charger` trait: the chemistry, so that an
    /// evaluation's misses group by charger type rather than one group per
    /// drawn wattage.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Charger::Lithium { .. } => "lithium",
            Charger::LeadAcid { .. } => "lead_acid",
        }
    }

    /// The truth file's `charger_w` trait: the charger's power class as
    /// sold (small lead-acid chargers, ordinary lithium ones, fast
    /// chargers), from its rating alone.
    pub fn power_class(&self) -> &'static str {
        let (Charger::Lithium { watts } | Charger::LeadAcid { watts }) = *self;
        if watts < 150.0 {
            "under_150"
        } else if watts < 300.0 {
            "150_to_300"
        } else {
            "300_and_over"
        }
    }
}

/// A load switched on for a while, minutes since the run started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadEvent {
    /// Start, minutes since the run began.
    pub start: i64,
    /// Duration, minutes.
    pub minutes: i64,
    /// What it draws.
    pub shape: Shape,
}

/// How a load's power varies over its duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Constant.
    Flat(f64),
    /// On `on` minutes, off `off` minutes, repeating.
    Cycling { watts: f64, on: i64, off: i64 },
    /// A lithium charge: plateau, then a linear taper over `taper` minutes.
    Lithium { watts: f64, taper: i64 },
    /// A lead-acid charge: bulk for `bulk` minutes, then until `float_at`
    /// either 55 % (`tau_min` 0, a two-step charger) or an absorption that
    /// decays from 90 % with time constant `tau_min`, then an 8 W float.
    LeadAcid {
        watts: f64,
        bulk: i64,
        float_at: i64,
        tau_min: f64,
    },
}

impl LoadEvent {
    /// Power at minute `m` since the run began (0 outside the event).
    pub fn power_at(&self, m: f64) -> f64 {
        let x = m - self.start as f64;
        if x < 0.0 || x >= self.minutes as f64 {
            return 0.0;
        }
        match self.shape {
            Shape::Flat(w) => w,
            Shape::Cycling { watts, on, off } => {
                if (x as i64) % (on + off) < on {
                    watts
                } else {
                    0.0
                }
            }
            Shape::Lithium { watts, taper } => {
                let left = self.minutes as f64 - x;
                if left < taper as f64 {
                    watts * left / taper as f64
                } else {
                    watts
                }
            }
            Shape::LeadAcid {
                watts,
                bulk,
                float_at,
                tau_min,
            } => {
                if x < bulk as f64 {
                    watts
                } else if x < float_at as f64 {
                    if tau_min > 0.0 {
                        (0.9 * watts * (-(x - bulk as f64) / tau_min).exp()).max(8.0)
                    } else {
                        0.55 * watts
                    }
                } else {
                    8.0
                }
            }
        }
    }

    /// Mean power over minutes [from, to), sampled each minute.
    pub fn mean_over(&self, from: i64, to: i64) -> f64 {
        if to <= self.start || from >= self.start + self.minutes {
            return 0.0;
        }
        let n = (to - from).max(1);
        (from..to)
            .map(|m| self.power_at(m as f64 + 0.5))
            .sum::<f64>()
            / n as f64
    }
}

impl Profile {
    /// People living in the flat on `day`.
    pub fn people(&self, day: u32) -> f64 {
        if self.vacation.is_some_and(|(a, b)| (a..b).contains(&day)) || self.extras.away(day) {
            return 0.0;
        }
        match self.group_from_day {
            Some(d) if day >= d => f64::from(self.group_size),
            _ => f64::from(self.actual),
        }
    }

    /// Names of what this flat plants or does that a detector might
    /// mistake for (or that explains) a case, for the ground truth's
    /// `traits`: the evaluation counts false positives by these.
    pub fn traits(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.group_from_day.is_some() {
            out.push("group_rental");
        }
        if self.actual > self.registered && self.group_from_day.is_none() {
            out.push("under_registered");
        }
        if self.business {
            out.push("business");
        }
        if self.three_in_one.is_some() {
            out.push("three_in_one");
        }
        if self.tag.is_some() {
            out.push("ebike_owner");
        }
        if self.indoor_charger.is_some() {
            out.push("indoor_charger");
        }
        if self.night_plateau {
            out.push("night_plateau");
        }
        if self.night_cycling {
            out.push("night_cycling");
        }
        out.extend(self.confounders.traits());
        if self.vacation.is_some() {
            out.push("vacation");
        }
        if self.leak.is_some() {
            out.push("leak");
        }
        if self.group_from_day.is_none() && self.actual >= 5 {
            out.push("large_household");
        }
        out.extend(self.extras.traits(self.group_from_day.is_some()));
        out
    }

    /// Whether the flat is a group rental on `day`.
    pub fn is_group(&self, day: u32) -> bool {
        self.group_from_day.is_some_and(|d| day >= d)
    }
}

/// Per-person activity load by local hour, W, on a weekday and a weekend day.
fn activity_w(hour: i64, weekend: bool) -> f64 {
    match hour {
        0..=5 => 4.0,
        6..=7 => 45.0,
        8..=16 if weekend => 40.0,
        8..=16 => 12.0,
        17..=22 => 70.0,
        _ => 25.0,
    }
}

/// Water share by local hour (sums to 1 over a day).
pub fn water_share(hour: i64) -> f64 {
    const W: [f64; 24] = [
        0.005, 0.003, 0.002, 0.002, 0.003, 0.01, 0.06, 0.10, 0.08, 0.04, 0.03, 0.04, 0.05, 0.03,
        0.025, 0.025, 0.03, 0.04, 0.06, 0.08, 0.10, 0.09, 0.07, 0.027,
    ];
    W[(hour.rem_euclid(24)) as usize]
}

/// The appliance events of one flat that start on local day `day` (run
/// index), with `day_start` its first minute since the run began.
pub fn day_events(
    p: &Profile,
    rng: &mut Rng,
    day: u32,
    day_start: i64,
    weekend: bool,
    winter: bool,
    cold: bool,
) -> (Vec<LoadEvent>, Vec<(i64, f64)>) {
    let people = p.people(day);
    let mut ev = Vec::new();
    let mut gas = Vec::new(); // (minute, m³)
    if people == 0.0 {
        return (ev, gas);
    }
    let group = p.is_group(day);
    let meals: &[(i64, f64)] = if weekend || group {
        &[(7 * 60, 0.5), (12 * 60, 0.7), (18 * 60 + 30, 0.9)]
    } else {
        &[(7 * 60, 0.4), (12 * 60, 0.15), (18 * 60 + 30, 0.85)]
    };
    // Kitchens: a group of 10 cooks in shifts.
    let kitchens = if group { (people / 3.0).ceil() } else { 1.0 };
    for &(at, prob) in meals {
        for _ in 0..kitchens as usize {
            if rng.chance(prob * (people / 2.0).clamp(0.5, 1.0)) {
                let start = day_start + at + rng.int(-40, 60);
                ev.push(LoadEvent {
                    start,
                    minutes: rng.int(25, 45),
                    shape: Shape::Flat(700.0),
                });
                gas.push((start, 0.06 + 0.03 * people.min(4.0) * rng.range(0.7, 1.3)));
            }
        }
    }
    for _ in 0..(people.sqrt().ceil() as usize) {
        if rng.chance(0.8) {
            let start = day_start + rng.int(6 * 60, 23 * 60);
            ev.push(LoadEvent {
                start,
                minutes: rng.int(3, 5),
                shape: Shape::Flat(1800.0),
            });
        }
    }
    if rng.chance(0.2 * people.max(1.0) / 2.0) {
        let start = day_start + rng.int(8 * 60, 21 * 60);
        ev.push(LoadEvent {
            start,
            minutes: rng.int(50, 80),
            shape: Shape::Flat(450.0),
        });
    }
    if winter && rng.chance(0.3) {
        let start = day_start + rng.int(18 * 60, 21 * 60);
        ev.push(LoadEvent {
            start,
            minutes: rng.int(60, 180),
            shape: Shape::Cycling {
                watts: 900.0,
                on: rng.int(8, 15),
                off: rng.int(8, 20),
            },
        });
    }
    if group && !p.extras.quiet_group {
        // Several people's evening loads at once: heaters, cookers, chargers of phones and laptops.
        let start = day_start + rng.int(19 * 60, 21 * 60);
        ev.push(LoadEvent {
            start,
            minutes: rng.int(120, 240),
            shape: Shape::Flat(60.0 * people),
        });
    }
    if p.night_plateau && rng.chance(0.3) {
        let start = day_start + rng.int(20 * 60, 24 * 60);
        ev.push(LoadEvent {
            start,
            minutes: rng.int(120, 480),
            shape: Shape::Flat(rng.range(90.0, 260.0)),
        });
    }
    ev.extend(p.confounders.day_events(rng, day_start, winter));
    if cold || p.extras.gas_heating {
        let (more, g) = p.extras.day_events(rng, day_start, winter, cold);
        ev.extend(more);
        gas.extend(g);
    }
    if p.night_cycling && winter && rng.chance(0.7) {
        let start = day_start + rng.int(21 * 60 + 30, 23 * 60 + 30);
        ev.push(LoadEvent {
            start,
            minutes: rng.int(240, 420),
            shape: Shape::Cycling {
                watts: rng.range(60.0, 120.0),
                on: rng.int(8, 20),
                off: rng.int(8, 25),
            },
        });
    }
    (ev, gas)
}

/// Standing load at minute-of-day `mod_min`: base, fridge and activity, W.
pub fn standing_w(
    p: &Profile,
    day: u32,
    minute: i64,
    mod_min: i64,
    weekend: bool,
    rng: &mut Rng,
) -> f64 {
    let people = p.people(day);
    let base =
        25.0 + if people > 0.0 { 8.0 * people } else { 0.0 } + p.extras.miner_w.unwrap_or(0.0);
    let fridge = if (minute + p.fridge_phase).rem_euclid(40) < 14 {
        110.0
    } else {
        0.0
    };
    let mut act = activity_w(mod_min / 60, weekend) * people.powf(0.8) * p.intensity;
    if p.is_group(day) && !p.extras.quiet_group && !(6 * 60..22 * 60).contains(&mod_min) {
        // Shift workers and late nights: a dormitory never sleeps at once,
        // and its people come and go at all hours.
        act += 18.0 * people * rng.range(0.3, 1.7);
    }
    if p.business && (9 * 60..18 * 60).contains(&mod_min) && !weekend {
        act += 800.0;
    }
    if let Some((from, watts)) = p.three_in_one {
        if day >= from && (9 * 60..18 * 60).contains(&mod_min) && !weekend {
            // Motors cycling: full load most minutes, idle in some.
            act += if (minute / 7) % 4 == 3 {
                0.3 * watts
            } else {
                watts
            };
        }
    }
    base + fridge + act * rng.lognormal(0.25)
}
