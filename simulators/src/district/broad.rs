//! The broad household: what issue 12 found on an independent district that
//! the first generator lacked (config/scenarios/broad.toml turns it on).
//!
//! - Crypto miners and PCs left on around the clock: a constant load day
//!   and night, home or away.
//! - Migrant households that leave for the Spring Festival: the flat is
//!   empty (a fridge and standby alone) for two to three weeks around it.
//! - Cold spells: for a few days everyone's evening and night load rises
//!   (space heaters cycling, a heated mattress pad on low all night).
//! - Gas floor heating: hours of gas on winter evenings and nights.
//! - Shared flats: three to five adults where one is registered (not a
//!   group rental, but far above the building per registered person).
//! - Quiet group rentals: day-shift workers who all sleep at night and cook
//!   once, so that the dormitory's night activity is missing.
//! - Meters that report only a register: the power a gateway derives from
//!   the register's change over the interval (quantised to the register
//!   step: 0.01 kWh in 5 minutes is 120 W).
//!
//! Every draw here comes from streams of its own, and none happens when
//! the rates are 0, so the other scenarios stay the same seed for seed.

use super::household::{LoadEvent, Shape};
use super::rng::Rng;
use super::scenario::Scenario;

/// Which of the broad traits a flat has.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extras {
    /// A constant load around the clock, W.
    pub miner_w: Option<f64>,
    /// Away for the Spring Festival on these run days, half-open.
    pub festival_away: Option<(u32, u32)>,
    /// Gas floor heating in winter.
    pub gas_heating: bool,
    /// People living in a shared flat registered for one.
    pub shared_flat: Option<u8>,
    /// A group rental of day workers, asleep at night.
    pub quiet_group: bool,
    /// The electricity meter reports a register only; power is derived.
    pub register_power: bool,
}

impl Extras {
    /// Draws flat `idx`'s traits; `festival` is the Spring Festival's run
    /// days (half-open) when the run holds it.
    pub fn draw(s: &Scenario, seed: u64, idx: u64, festival: Option<(u32, u32)>) -> Self {
        let mut rng = Rng::new(seed ^ 0xB40A_D000, idx);
        let mut x = Self::default();
        if s.miner_rate > 0.0 && rng.chance(s.miner_rate) {
            x.miner_w = Some(rng.range(80.0, 450.0));
        }
        if let Some((a, b)) = festival {
            if s.festival_leave_rate > 0.0 && rng.chance(s.festival_leave_rate) {
                let from = i64::from(a) - rng.int(1, 7);
                let to = i64::from(b) + rng.int(2, 10);
                x.festival_away = Some((from.max(0) as u32, to.min(i64::from(s.days)) as u32));
            }
        }
        if s.gas_heating_rate > 0.0 && rng.chance(s.gas_heating_rate) {
            x.gas_heating = true;
        }
        if s.shared_flat_rate > 0.0 && rng.chance(s.shared_flat_rate) {
            x.shared_flat = Some(rng.int(3, 5) as u8);
        }
        if s.quiet_group_share > 0.0 && rng.chance(s.quiet_group_share) {
            x.quiet_group = true;
        }
        if s.register_power_share > 0.0 && rng.chance(s.register_power_share) {
            x.register_power = true;
        }
        x
    }

    /// Whether the household is away on run day `day`.
    pub fn away(&self, day: u32) -> bool {
        self.festival_away
            .is_some_and(|(a, b)| (a..b).contains(&day))
    }

    /// Names for the ground truth's traits.
    pub fn traits(&self, group: bool) -> Vec<&'static str> {
        [
            (self.miner_w.is_some(), "miner"),
            (self.festival_away.is_some(), "festival_away"),
            (self.gas_heating, "gas_heating"),
            (self.shared_flat.is_some() && !group, "shared_flat"),
            (self.quiet_group && group, "quiet_group"),
            (self.register_power, "register_power"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// Extra loads and gas on a day the household is home; `cold` when a
    /// cold spell is on.
    pub fn day_events(
        &self,
        rng: &mut Rng,
        day_start: i64,
        winter: bool,
        cold: bool,
    ) -> (Vec<LoadEvent>, Vec<(i64, f64)>) {
        let mut ev = Vec::new();
        let mut gas = Vec::new();
        if cold {
            if rng.chance(0.6) {
                // A fan heater on its thermostat through the evening and night.
                ev.push(LoadEvent {
                    start: day_start + rng.int(19 * 60, 23 * 60),
                    minutes: rng.int(4 * 60, 9 * 60),
                    shape: Shape::Cycling {
                        watts: rng.range(400.0, 1200.0),
                        on: rng.int(8, 25),
                        off: rng.int(5, 15),
                    },
                });
            }
            if rng.chance(0.3) {
                // A heated mattress pad or a heater on low, all night, off
                // at rising: a step up and a step down, no taper.
                ev.push(LoadEvent {
                    start: day_start + rng.int(21 * 60, 24 * 60),
                    minutes: rng.int(5 * 60, 9 * 60),
                    shape: Shape::Flat(rng.range(60.0, 250.0)),
                });
            }
        }
        if self.gas_heating && winter {
            let per_h = rng.range(0.12, 0.35) * if cold { 1.4 } else { 1.0 };
            for h in (0..7).chain(17..24) {
                gas.push((day_start + h * 60 + 30, per_h * rng.range(0.7, 1.3)));
            }
        }
        (ev, gas)
    }
}

/// The Spring Festival's run days (half-open): the longest stretch of
/// consecutive holidays in January or February inside the run.
pub fn festival(s: &Scenario) -> Option<(u32, u32)> {
    let start = s.start_day()?;
    let holidays = s.holiday_days();
    let mut best: Option<(u32, u32)> = None;
    let mut run: Option<(u32, u32)> = None;
    for d in 0..s.days {
        let day = start + i64::from(d);
        let month = gridwatch_telemetry::time::civil_from_days(day).1;
        if holidays.contains(&day) && (1..=2).contains(&month) {
            let r = run.map_or((d, d + 1), |(a, _)| (a, d + 1));
            run = Some(r);
            if best.is_none_or(|(a, b)| r.1 - r.0 > b - a) {
                best = Some(r);
            }
        } else {
            run = None;
        }
    }
    best.filter(|(a, b)| b - a >= 3)
}

/// Which run days are in a cold spell: spells of 3–7 days start with
/// `cold_spell_prob` per day, in winter months only.
pub fn cold_days(s: &Scenario, seed: u64) -> Vec<bool> {
    let mut out = vec![false; s.days as usize];
    if s.cold_spell_prob <= 0.0 {
        return out;
    }
    let mut rng = Rng::new(seed ^ 0xC01D, 0);
    let start = s.start_day().unwrap_or(0);
    let mut left = 0;
    for (d, cold) in out.iter_mut().enumerate() {
        let month = gridwatch_telemetry::time::civil_from_days(start + d as i64).1;
        let winter = matches!(month, 11 | 12 | 1 | 2 | 3);
        if left == 0 && winter && rng.chance(s.cold_spell_prob) {
            left = rng.int(3, 7);
        }
        if left > 0 {
            *cold = true;
            left -= 1;
        }
    }
    out
}

/// Power a gateway derives from a register-only meter: the register's
/// change since the previous reading over the time between them, W; `None`
/// for the first reading or when the register went back (a new meter).
pub fn power_from_register(prev: Option<(i64, f64)>, now_min: i64, kwh: f64) -> Option<f64> {
    let (at, was) = prev?;
    let minutes = now_min - at;
    (minutes > 0 && kwh >= was).then(|| (kwh - was) * 60_000.0 / minutes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_festival_is_the_long_run_of_winter_holidays() {
        let s = Scenario {
            start_date: "2026-01-20".into(),
            days: 60,
            ..Scenario::default()
        };
        // 2026-02-15 is 26 days after 2026-01-20; nine days off.
        assert_eq!(festival(&s), Some((26, 35)));
        // March's run holds no festival (Qingming is in April).
        assert_eq!(festival(&Scenario::default()), None);
    }

    #[test]
    fn register_power_is_quantised_by_the_register() {
        // 0.01 kWh in 5 minutes is 120 W.
        assert_eq!(
            power_from_register(Some((0, 1.00)), 5, 1.01).map(f64::round),
            Some(120.0)
        );
        assert_eq!(power_from_register(Some((0, 1.00)), 5, 1.00), Some(0.0));
        assert_eq!(power_from_register(Some((0, 5.0)), 5, 0.02), None);
        assert_eq!(power_from_register(None, 5, 0.02), None);
    }

    #[test]
    fn nothing_is_drawn_at_zero_rates() {
        let s = Scenario::default();
        assert_eq!(Extras::draw(&s, 1, 7, Some((2, 9))), Extras::default());
        assert!(cold_days(&s, 1).iter().all(|c| !c));
        let cold = Scenario {
            cold_spell_prob: 0.2,
            start_date: "2026-01-05".into(),
            ..Scenario::default()
        };
        let days = cold_days(&cold, 1);
        assert!(days.iter().any(|c| *c));
        assert_eq!(days, cold_days(&cold, 1));
    }
}
