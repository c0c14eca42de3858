//! One flat's recent days: water, electricity and gas per local day over
//! the last [`FLAT_DAYS`], and the water that ran in the quiet hours of each
//! night, for the group-rental and leak charts.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Days kept per flat: eight weeks, enough to see a flat change.
pub const FLAT_DAYS: usize = 56;

/// A flat's totals for one local day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DayTotals {
    /// Local day number (days since 1970-01-01 in the site's zone).
    pub day: i32,
    /// Electricity, kWh (interval mean power × interval).
    pub kwh: f32,
    /// Water, litres.
    pub water_l: f32,
    /// Gas, m³.
    pub gas_m3: f32,
    /// Water that ran in the night's quiet hours, litres.
    pub night_water_l: f32,
    /// Minutes of the quiet hours covered by water readings.
    pub night_water_min: u16,
}

impl DayTotals {
    fn new(day: i32) -> Self {
        Self {
            day,
            kwh: 0.0,
            water_l: 0.0,
            gas_m3: 0.0,
            night_water_l: 0.0,
            night_water_min: 0,
        }
    }
}

/// What one reading adds to a day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DayUse {
    /// kWh.
    pub kwh: f64,
    /// Litres of water.
    pub water_l: f64,
    /// m³ of gas.
    pub gas_m3: f64,
    /// Litres of water in the quiet hours.
    pub night_water_l: f64,
    /// Minutes of water readings in the quiet hours.
    pub night_water_min: u16,
}

/// A flat's days, oldest first; at most [`FLAT_DAYS`], none older than
/// that before the newest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlatDays {
    days: VecDeque<DayTotals>,
}

impl FlatDays {
    /// Adds `use_` to local day `day`; `false` when the day is older than
    /// the flat keeps (the caller counts it).
    pub fn add(&mut self, day: i32, u: DayUse) -> bool {
        let newest = self.days.back().map(|d| d.day);
        let i = match newest {
            Some(n) if n >= day => match self.days.binary_search_by_key(&day, |d| d.day) {
                Ok(i) => i,
                Err(_) => return false,
            },
            _ => {
                self.days.push_back(DayTotals::new(day));
                let oldest_kept = day - FLAT_DAYS as i32;
                while self
                    .days
                    .front()
                    .is_some_and(|f| f.day <= oldest_kept || self.days.len() > FLAT_DAYS)
                {
                    self.days.pop_front();
                }
                self.days.len() - 1
            }
        };
        let d = &mut self.days[i];
        d.kwh += u.kwh as f32;
        d.water_l += u.water_l as f32;
        d.gas_m3 += u.gas_m3 as f32;
        d.night_water_l += u.night_water_l as f32;
        d.night_water_min = d.night_water_min.saturating_add(u.night_water_min);
        true
    }

    /// The days held, oldest first.
    pub fn days(&self) -> impl Iterator<Item = &DayTotals> {
        self.days.iter()
    }

    /// One day's totals, if held.
    pub fn day(&self, day: i32) -> Option<&DayTotals> {
        self.days
            .binary_search_by_key(&day, |d| d.day)
            .ok()
            .map(|i| &self.days[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn water(l: f64) -> DayUse {
        DayUse {
            water_l: l,
            ..DayUse::default()
        }
    }

    #[test]
    fn sums_per_day_and_keeps_eight_weeks() {
        let mut f = FlatDays::default();
        for day in 0..100 {
            assert!(f.add(day, water(10.0)));
            assert!(f.add(day, water(5.0)));
        }
        assert_eq!(f.days().count(), FLAT_DAYS);
        assert_eq!(f.days().next().unwrap().day, 100 - FLAT_DAYS as i32);
        assert_eq!(f.day(99).unwrap().water_l, 15.0);
        assert!(f.add(98, water(1.0)), "a late reading of a kept day counts");
        assert_eq!(f.day(98).unwrap().water_l, 16.0);
        assert!(!f.add(3, water(1.0)), "a day no longer kept");
    }
}
