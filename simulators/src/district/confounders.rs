//! Loads that detectors can mistake for an e-bike charger (issue reports
//! from the field): air-conditioning heating at night with sleep-mode steps,
//! storage water heaters on off-peak timers and thermostats, aquariums and
//! oil heaters. (Electric blankets and computers left on are the household's
//! `night_cycling` and `night_plateau`; a flat emptied for a holiday is its
//! `vacation`.)

use super::household::{LoadEvent, Shape};
use super::rng::Rng;

/// Which of these loads a flat has.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Confounders {
    /// An inverter air-conditioner heating the bedroom on winter nights,
    /// stepping down in its sleep mode.
    pub heating_ac: bool,
    /// A storage water heater on an off-peak timer, kept hot by a thermostat.
    pub water_heater: bool,
    /// An aquarium: a heater on a thermostat and a pump, all day.
    pub aquarium: bool,
    /// An oil-filled radiator on a thermostat on winter evenings and nights.
    pub oil_heater: bool,
}

impl Confounders {
    /// Each load independently with probability `rate`.
    pub fn draw(rng: &mut Rng, rate: f64) -> Self {
        Self {
            heating_ac: rng.chance(rate),
            water_heater: rng.chance(rate),
            aquarium: rng.chance(rate / 3.0),
            oil_heater: rng.chance(rate / 2.0),
        }
    }

    /// Names for the ground truth's traits.
    pub fn traits(&self) -> Vec<&'static str> {
        [
            (self.heating_ac, "heating_ac"),
            (self.water_heater, "water_heater"),
            (self.aquarium, "aquarium"),
            (self.oil_heater, "oil_heater"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// The loads of the day starting at `day_start` (minutes since the run
    /// began) when someone is home.
    pub fn day_events(&self, rng: &mut Rng, day_start: i64, winter: bool) -> Vec<LoadEvent> {
        let mut ev = Vec::new();
        let flat = |start: i64, minutes: i64, w: f64| LoadEvent {
            start,
            minutes,
            shape: Shape::Flat(w),
        };
        if self.heating_ac && winter && rng.chance(0.7) {
            // Full heat at bedtime, then sleep mode steps the set point
            // down: each hour a lower, steady inverter draw, off at rising.
            let mut at = day_start + rng.int(21 * 60 + 30, 23 * 60 + 30);
            let mut w = rng.range(600.0, 1100.0);
            let until = day_start + 24 * 60 + rng.int(6 * 60, 7 * 60 + 30);
            while at < until {
                let minutes = rng.int(50, 70).min(until - at);
                ev.push(flat(at, minutes, w));
                at += minutes;
                w = (w * rng.range(0.55, 0.8)).max(rng.range(150.0, 300.0));
            }
        }
        if self.water_heater {
            // The off-peak timer heats the tank from 23:00; the thermostat
            // then tops it up in short bursts; showers empty it at evening.
            let w = rng.range(1500.0, 2500.0);
            let night = day_start + 23 * 60;
            let heat = rng.int(30, 90);
            ev.push(flat(night, heat, w));
            ev.push(LoadEvent {
                start: night + heat,
                minutes: 7 * 60 - heat,
                shape: Shape::Cycling {
                    watts: w,
                    on: rng.int(3, 6),
                    off: rng.int(60, 120),
                },
            });
            if rng.chance(0.6) {
                ev.push(flat(
                    day_start + rng.int(19 * 60, 22 * 60),
                    rng.int(20, 50),
                    w,
                ));
            }
        }
        if self.aquarium {
            ev.push(flat(day_start, 1440, rng.range(10.0, 30.0)));
            ev.push(LoadEvent {
                start: day_start + rng.int(0, 30),
                minutes: 1440,
                shape: Shape::Cycling {
                    watts: rng.range(50.0, 150.0),
                    on: rng.int(10, 30),
                    off: rng.int(10, 40),
                },
            });
        }
        if self.oil_heater && winter && rng.chance(0.6) {
            ev.push(LoadEvent {
                start: day_start + rng.int(19 * 60, 23 * 60),
                minutes: rng.int(4 * 60, 10 * 60),
                shape: Shape::Cycling {
                    watts: rng.range(600.0, 2000.0),
                    on: rng.int(10, 30),
                    off: rng.int(5, 20),
                },
            });
        }
        ev
    }
}
