//! How households live, beyond the first model (issue 12 item 2): the
//! people and machines that make a flat look crowded, empty or busy by day
//! without being a case, and the physical shape of the cases themselves.
//! On only in scenarios with `household_field = true`, so districts of the
//! other scenarios are unchanged.
//!
//! - crypto miners: a flat 0.3–1.5 kW around the clock (a night base load
//!   that is machines, not people);
//! - gas floor heating: a boiler burning 0.04–0.25 m³/h through winter days
//!   and nights (gas that is heating, not cooking);
//! - shift workers: the household's day runs 9 h late (people up at night);
//! - short-term rentals: 0–5 guests, changing every night;
//! - migrant households emptied for the Spring Festival, 7–21 days;
//! - a district cold spell: on a run of winter nights most households run a
//!   heater;
//! - three-in-one workshops as motors: 10–80 runs a weekday of 0.3–2 kW for
//!   1–30 minutes between 09:00 and 18:00, with a little workshop water;
//! - people's water at night in discrete draws (a flush, a glass), not a
//!   trickle, on registers quantised to 1 L.
//!
//! Shared flats (2–4 people on one registration) are drawn with the
//! household in `layout`. Every magnitude spans below and above what a
//! detector could be expected to see; truth is what is planted here.

use super::household::{LoadEvent, Shape};
use super::rng::Rng;
use super::scenario::Scenario;

/// The lifestyle of flat `idx` (1-based) in a `household_field` scenario,
/// from a stream of its own so that no other draw moves; the default (none)
/// otherwise. An `ordinary` flat (no group rental, no business) may become a
/// shared flat: registered as one, lived in by 2–4. A `three_in_one` flat
/// gets its workshop's motors.
pub fn for_flat(
    s: &Scenario,
    seed: u64,
    idx: u64,
    registered: &mut u8,
    actual: &mut u8,
    ordinary: bool,
    three_in_one: bool,
) -> Lifestyle {
    if !s.household_field {
        return Lifestyle::default();
    }
    let mut rng = Rng::new(seed ^ 0x4C1F_E57E, idx);
    let mut life = Lifestyle::draw(&mut rng, s.lifestyle_rate, s.festival_day());
    if ordinary && rng.chance(s.lifestyle_rate) {
        life.shared_flat = true;
        *registered = 1;
        *actual = rng.int(2, 4) as u8;
    }
    if three_in_one {
        life.motors = Some(Motors::draw(&mut rng));
    }
    life
}

/// Run days of the district's winter cold spell (5–8 days from a day in the
/// first two thirds of the run) in a `household_field` scenario; empty
/// otherwise.
pub fn cold_spell(s: &Scenario, seed: u64) -> std::ops::Range<u32> {
    if !s.household_field || s.days < 10 {
        return 0..0;
    }
    let mut rng = Rng::new(seed ^ 0xC01D, 0);
    let from = rng.int(0, i64::from(s.days) * 2 / 3) as u32;
    from..from + rng.int(5, 8) as u32
}

/// Motor-driven work by day in a dwelling (a three-in-one premises).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motors {
    /// Runs per working day, lowest and highest.
    pub runs: (i64, i64),
    /// Power of a run, W.
    pub watts: f64,
    /// Longest run, minutes (the shortest is 1).
    pub max_minutes: i64,
    /// Workshop water through working hours, L/h.
    pub water_lph: f64,
}

impl Motors {
    /// A workshop drawn across magnitudes from barely visible to heavy.
    pub fn draw(rng: &mut Rng) -> Self {
        let lo = rng.int(10, 50);
        Self {
            runs: (lo, lo + rng.int(0, 30)),
            watts: rng.range(300.0, 2000.0),
            max_minutes: rng.int(3, 30),
            water_lph: rng.range(0.0, 6.0),
        }
    }

    /// Mean power the motors add over 09:00–18:00 on a working day, W.
    pub fn mean_w(&self) -> f64 {
        let runs = (self.runs.0 + self.runs.1) as f64 / 2.0;
        let minutes = (1 + self.max_minutes) as f64 / 2.0;
        (runs * minutes * self.watts / 540.0).min(self.watts)
    }
}

/// The lifestyle traits of one flat.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Lifestyle {
    /// Water in discrete draws and a register quantised to 1 L.
    pub field_water: bool,
    /// A crypto miner drawing this many watts around the clock.
    pub miner_w: Option<f64>,
    /// Gas floor heating burning this many m³ an hour in winter.
    pub floor_heating_m3h: Option<f64>,
    /// The household's day runs this many hours late (0: none).
    pub shift_h: i64,
    /// Let night by night to 0–5 guests.
    pub short_term_rental: bool,
    /// Registered as one, lived in by 2–4 (drawn in `layout`).
    pub shared_flat: bool,
    /// Emptied for the Spring Festival on these run days, half-open.
    pub festival_away: Option<(u32, u32)>,
    /// A three-in-one workshop's motors (with the profile's `three_in_one`
    /// giving the day it starts).
    pub motors: Option<Motors>,
    /// Salt for the rental's guests per night.
    pub salt: u64,
}

impl Lifestyle {
    /// Each trait independently with probability `rate` (miners at a third
    /// of it); `festival` is the run day of the Spring Festival, if in the
    /// run, when 35 % of households (migrant workers) leave.
    pub fn draw(rng: &mut Rng, rate: f64, festival: Option<u32>) -> Self {
        let miner_w = rng.chance(rate / 3.0).then(|| rng.range(300.0, 1500.0));
        let floor_heating_m3h = rng.chance(rate).then(|| rng.range(0.04, 0.25));
        let shift_h = if rng.chance(rate) { 9 } else { 0 };
        let short_term_rental = rng.chance(rate / 2.0);
        let festival_away = festival.and_then(|f| {
            rng.chance(0.35).then(|| {
                let from = f.saturating_sub(rng.int(1, 6) as u32);
                (from, from + rng.int(7, 21) as u32)
            })
        });
        Self {
            field_water: true,
            miner_w,
            floor_heating_m3h,
            shift_h,
            short_term_rental,
            shared_flat: false,
            festival_away,
            motors: None,
            salt: rng.next_u64(),
        }
    }

    /// Names for the ground truth's traits.
    pub fn traits(&self) -> Vec<&'static str> {
        [
            (self.miner_w.is_some(), "crypto_miner"),
            (self.floor_heating_m3h.is_some(), "gas_floor_heating"),
            (self.shift_h != 0, "shift_worker"),
            (self.short_term_rental, "short_term_rental"),
            (self.shared_flat, "shared_flat"),
            (self.festival_away.is_some(), "emptied_spring_festival"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// People on `day` when the lifestyle decides it: 0 while away for the
    /// festival, the night's guests in a short-term rental.
    pub fn people(&self, day: u32) -> Option<f64> {
        if self
            .festival_away
            .is_some_and(|(a, b)| (a..b).contains(&day))
        {
            return Some(0.0);
        }
        self.short_term_rental.then(|| {
            let mut r = Rng::new(self.salt, u64::from(day));
            r.int(0, 5) as f64
        })
    }

    /// The hour of the household's own day at run-local `hour`.
    pub fn own_hour(&self, hour: i64) -> i64 {
        (hour - self.shift_h).rem_euclid(24)
    }

    /// Machines and heaters of the day starting at `day_start` (run
    /// minutes): the miner whatever happens, the workshop's motor runs on
    /// working days from `motors_from`, a heater on a cold-spell night.
    pub fn day_events(
        &self,
        rng: &mut Rng,
        day_start: i64,
        working_day: bool,
        home: bool,
        cold_night: bool,
    ) -> Vec<LoadEvent> {
        let mut ev = Vec::new();
        if let Some(w) = self.miner_w {
            ev.push(LoadEvent {
                start: day_start,
                minutes: 1440,
                shape: Shape::Flat(w),
            });
        }
        if let (Some(m), true, true) = (self.motors, working_day, home) {
            for _ in 0..rng.int(m.runs.0, m.runs.1) {
                let minutes = rng.int(1, m.max_minutes);
                ev.push(LoadEvent {
                    start: day_start + rng.int(9 * 60, 18 * 60 - minutes),
                    minutes,
                    shape: Shape::Flat(m.watts * rng.range(0.8, 1.2)),
                });
            }
        }
        if cold_night && home && rng.chance(0.6) {
            ev.push(LoadEvent {
                start: day_start + rng.int(21 * 60, 23 * 60),
                minutes: rng.int(6 * 60, 9 * 60),
                shape: Shape::Cycling {
                    watts: rng.range(400.0, 1200.0),
                    on: rng.int(10, 25),
                    off: rng.int(5, 20),
                },
            });
        }
        ev
    }

    /// Gas the floor heating burns in `minutes`, m³.
    pub fn heating_gas(&self, winter: bool, minutes: i64, rng: &mut Rng) -> f64 {
        match (self.floor_heating_m3h, winter) {
            (Some(m3h), true) => m3h * minutes as f64 / 60.0 * rng.range(0.7, 1.3),
            _ => 0.0,
        }
    }
}

/// People's water in an interval as discrete draws: `expected` litres
/// become a Poisson number of draws of 3–12 L (a flush, a wash, a kettle),
/// so quiet hours are mostly dry and the day's total keeps its mean.
pub fn draws(rng: &mut Rng, expected: f64) -> f64 {
    const MEAN_DRAW: f64 = 7.5;
    let mut left = expected / MEAN_DRAW;
    let mut litres = 0.0;
    // Poisson by exponential gaps, bounded.
    for _ in 0..200 {
        left += rng.unit().max(1e-12).ln();
        if left < 0.0 {
            break;
        }
        litres += rng.range(3.0, 12.0);
    }
    litres
}

/// Whole litres a register quantised to 1 L shows between `before` and
/// `after` litres of true flow.
pub fn quantised_l(before: f64, after: f64) -> f64 {
    after.floor() - before.floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_keep_the_mean_and_leave_quiet_hours_mostly_dry() {
        let mut rng = Rng::new(7, 1);
        let n = 20_000;
        let big: f64 = (0..n).map(|_| draws(&mut rng, 40.0)).sum::<f64>() / f64::from(n);
        assert!((big - 40.0).abs() < 1.5, "mean {big}");
        let dry = (0..n).filter(|_| draws(&mut rng, 0.6) == 0.0).count();
        assert!(dry > n as usize * 8 / 10, "{dry} dry of {n}");
    }

    #[test]
    fn a_quantised_register_shows_whole_litres() {
        assert_eq!(quantised_l(10.7, 12.2), 2.0);
        assert_eq!(quantised_l(10.2, 10.9), 0.0);
    }

    #[test]
    fn festival_and_rental_set_the_people() {
        let life = Lifestyle {
            festival_away: Some((10, 20)),
            ..Lifestyle::default()
        };
        assert_eq!(life.people(9), None);
        assert_eq!(life.people(10), Some(0.0));
        assert_eq!(life.people(20), None);
        let rental = Lifestyle {
            short_term_rental: true,
            salt: 3,
            ..Lifestyle::default()
        };
        let guests: Vec<f64> = (0..40).filter_map(|d| rental.people(d)).collect();
        assert_eq!(guests.len(), 40);
        assert!(guests.contains(&0.0) && guests.iter().any(|&g| g >= 4.0));
    }

    #[test]
    fn only_household_field_scenarios_get_lifestyles() {
        let mut s = Scenario {
            lifestyle_rate: 1.0,
            ..Scenario::default()
        };
        let (mut reg, mut act) = (3, 3);
        let none = for_flat(&s, 1, 1, &mut reg, &mut act, true, true);
        assert_eq!(none, Lifestyle::default());
        assert_eq!((reg, act), (3, 3));
        assert!(cold_spell(&s, 1).is_empty());
        s.household_field = true;
        let life = for_flat(&s, 1, 1, &mut reg, &mut act, true, true);
        assert!(
            life.shared_flat && life.motors.is_some() && life.miner_w.is_none_or(|w| w >= 300.0)
        );
        assert_eq!(reg, 1);
        assert!((2..=4).contains(&act));
        let spell = cold_spell(&s, 1);
        assert!((5..=8).contains(&spell.len()), "{spell:?}");
    }

    #[test]
    fn motors_run_on_working_days_only_within_working_hours() {
        let life = Lifestyle {
            motors: Some(Motors {
                runs: (20, 20),
                watts: 900.0,
                max_minutes: 10,
                water_lph: 0.0,
            }),
            ..Lifestyle::default()
        };
        let mut rng = Rng::new(1, 1);
        let ev = life.day_events(&mut rng, 0, true, true, false);
        assert_eq!(ev.len(), 20);
        assert!(ev
            .iter()
            .all(|e| e.start >= 540 && e.start + e.minutes <= 1080));
        assert!(life.day_events(&mut rng, 0, false, true, false).is_empty());
    }
}
