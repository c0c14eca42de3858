//! Meters as the field has them (issue 12: "registers quantised, clock
//! offsets and drift, gaps, duplicates, meter replacement"): what a flat's
//! three meters write, given what truly flowed through them.
//!
//! - **Quantised registers.** A register shows whole steps (0.01 kWh, 1 L,
//!   0.01 m³), cut down, never rounded up: it has not counted a step until
//!   the step is through. Water and gas interval values are what the
//!   register counted over the interval (pulses), so they are whole steps
//!   too; electricity's mean power is measured apart (0.1 W).
//! - **Clocks.** Each meter's clock is off by a fixed offset and drifts at
//!   its own rate; each reading is stamped a few seconds late on top.
//! - **Duplicates.** A reading is delivered again later (an uplink
//!   re-sending from its cursor after a reconnect), same seq and stamp.
//! - **Replacement.** One meter of a flat is swapped for a new one whose
//!   register starts near zero; the gateway reads the new meter's serial.
//!   Not a fault: no case, a trait of the flat.
//!
//! Every key's default leaves the district as it was (registers rounded to
//! 0.001 kWh, 0.1 L, 0.001 m³; exact clocks; no duplicates or swaps). Each
//! flat draws from a stream of its own, so these move no other draw.

use super::rng::Rng;
use super::Scenario;
use gridwatch_analytics::recording::Record;

/// Salt of the field-meter stream.
const FIELD_STREAM: u64 = 0xF1E1_D3E7;
/// Decimals of the registers when no step is set (what the district
/// always wrote): kWh, m³ of water, m³ of gas.
const LEGACY_DECIMALS: [i32; 3] = [3, 4, 3];

/// A meter swapped during the run.
#[derive(Debug, Clone, Copy)]
struct Swap {
    meter: usize,
    /// Run minute of the swap.
    at: i64,
    /// The new meter's register when fitted.
    start: f64,
    /// The true total when it was fitted (set on the first reading after).
    base: Option<f64>,
}

/// One flat's meters as fitted.
#[derive(Debug, Clone)]
pub struct FieldMeters {
    rng: Rng,
    /// Register step per meter (register units), `None`: legacy rounding.
    step: [Option<f64>; 3],
    /// The shown register after the previous interval, per meter.
    shown: [f64; 3],
    offset_ms: [f64; 3],
    drift: [f64; 3],
    jitter_ms: [i64; 3],
    duplicate_prob: f64,
    swap: Option<Swap>,
    serial: u64,
}

impl FieldMeters {
    /// The meters of flat number `flat` (from 1); `faulty[m]` is true for a
    /// meter with a planted fault (never swapped: the swap would hide it).
    pub fn new(
        s: &Scenario,
        seed: u64,
        flat: u64,
        faulty: [bool; 3],
        t0_interval_min: [i64; 3],
    ) -> Self {
        let mut rng = Rng::new(seed ^ FIELD_STREAM, flat);
        let step = [
            s.energy_register_step_kwh,
            s.water_register_step_l.map(|l| l / 1000.0),
            s.gas_register_step_m3,
        ];
        let offset_ms = std::array::from_fn(|_| {
            rng.range(-1.0, 1.0) * f64::from(s.meter_clock_offset_s) * 1000.0
        });
        let drift = std::array::from_fn(|_| rng.range(-1.0, 1.0) * s.meter_clock_drift_ppm * 1e-6);
        // Late by at most half an interval: a meter's readings stay in order.
        let jitter_ms = std::array::from_fn(|m| {
            (i64::from(s.meter_jitter_s) * 1000).min(t0_interval_min[m] * 30_000)
        });
        let candidates: Vec<usize> = (0..3).filter(|&m| !faulty[m]).collect();
        let swap = (!candidates.is_empty() && rng.chance(s.meter_replacement_rate)).then(|| {
            let meter = candidates[rng.int(0, candidates.len() as i64 - 1) as usize];
            let last_day = (i64::from(s.days) - 2).max(1);
            Swap {
                meter,
                at: rng.int(1440, last_day * 1440),
                start: rng.range(0.0, 0.05),
                base: None,
            }
        });
        Self {
            serial: 10_000_000 + rng.int(0, 89_999_999) as u64,
            rng,
            step,
            shown: [0.0; 3],
            offset_ms,
            drift,
            jitter_ms,
            duplicate_prob: s.meter_duplicate_prob,
            swap,
        }
    }

    /// The register step of meter `meter` (register units), if set.
    pub fn step(&self, meter: usize) -> Option<f64> {
        self.step[meter]
    }

    /// Whether a meter of this flat is swapped during the run.
    pub fn swapped(&self) -> bool {
        self.swap.is_some()
    }

    /// What meter `meter` counts at run minute `m` given the true total,
    /// its true increase `inc` over the interval and the true interval
    /// value (power for electricity, litres or m³ for water and gas): the
    /// register, its increase and the interval value, as
    /// [`super::meters::show`] takes them.
    pub fn count(
        &mut self,
        meter: usize,
        m: i64,
        total: f64,
        inc: f64,
        interval: f64,
    ) -> (f64, f64, f64) {
        let mut total = total;
        if let Some(sw) = self
            .swap
            .as_mut()
            .filter(|sw| sw.meter == meter && m > sw.at)
        {
            let base = *sw.base.get_or_insert(total);
            total = total - base + sw.start;
        }
        let Some(step) = self.step[meter] else {
            return (total, inc, interval);
        };
        let shown = round((total / step + 1e-9).floor() * step, digits(step));
        let inc = shown - self.shown[meter];
        self.shown[meter] = shown;
        let interval = match meter {
            0 => interval,
            // Water's interval value is in litres.
            1 => inc.max(0.0) * 1000.0,
            _ => inc.max(0.0),
        };
        (shown, inc, interval)
    }

    /// A register and interval value as written: to the register's step
    /// (or the legacy rounding), interval values to 0.1 W, 1 L or 0.001 m³.
    pub fn written(&self, meter: usize, register: f64, interval: f64) -> (f64, f64) {
        let digits = self.step[meter].map_or(LEGACY_DECIMALS[meter], digits);
        let interval_digits = match meter {
            0 | 1 => 1,
            _ => digits.max(3),
        };
        (round(register, digits), round(interval, interval_digits))
    }

    /// The stamp of the reading due at `nominal_ms`, `since_start_ms` into
    /// the run, by meter `meter`'s clock.
    pub fn stamp(&mut self, meter: usize, nominal_ms: i64, since_start_ms: i64) -> i64 {
        let jitter = if self.jitter_ms[meter] > 0 {
            self.rng.int(0, self.jitter_ms[meter])
        } else {
            0
        };
        nominal_ms
            + (self.offset_ms[meter] + self.drift[meter] * since_start_ms as f64).round() as i64
            + jitter
    }

    /// When a reading stamped `ts` is delivered again, if it is.
    pub fn duplicate_at(&mut self, ts: i64) -> Option<i64> {
        (self.duplicate_prob > 0.0 && self.rng.chance(self.duplicate_prob))
            .then(|| ts + self.rng.int(1, 30) * 60_000)
    }

    /// The serial the gateway reads from meter `meter` at run minute `m`:
    /// only a swapped meter's readings carry one (old, then new).
    pub fn serial(&self, meter: usize, m: i64) -> Option<String> {
        let sw = self.swap.filter(|sw| sw.meter == meter)?;
        let n = if m > sw.at {
            self.serial + 1
        } else {
            self.serial
        };
        Some(format!("{n:014}"))
    }
}

/// The day's records (in time order) with the readings delivered again
/// before `until` slotted in after everything stamped up to their delivery;
/// later ones stay in `late` for the next day.
pub fn deliver(records: Vec<Record>, late: &mut Vec<(i64, Record)>, until: i64) -> Vec<Record> {
    late.sort_by_key(|x| x.0);
    let due = late.partition_point(|x| x.0 < until);
    if due == 0 {
        return records;
    }
    let mut again = late.drain(..due).peekable();
    let mut out = Vec::with_capacity(records.len() + due);
    for r in records {
        while let Some((_, d)) = again.next_if(|x| x.0 < r.ts().0) {
            out.push(d);
        }
        out.push(r);
    }
    out.extend(again.map(|x| x.1));
    out
}

/// Decimals of a register step (0.01 → 2).
fn digits(step: f64) -> i32 {
    (-step.log10() - 1e-9).ceil().max(0.0) as i32
}

fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario {
            energy_register_step_kwh: Some(0.01),
            water_register_step_l: Some(1.0),
            gas_register_step_m3: Some(0.01),
            ..Scenario::default()
        }
    }

    #[test]
    fn a_quantised_register_shows_whole_steps_and_counts_every_one() {
        let mut f = FieldMeters::new(&scenario(), 1, 1, [false; 3], [5, 60, 60]);
        // 0.1 W for a day on 0.01 kWh: 2.4 Wh, the register stays at 0.
        let (mut shown, mut total) = (0.0, 0.0);
        for k in 1..=288 {
            total += 0.1 * 5.0 / 60_000.0;
            let (r, _, w) = f.count(0, k * 5, total, 0.1 * 5.0 / 60_000.0, 0.1);
            shown = r;
            assert_eq!(w, 0.1);
        }
        assert_eq!(shown, 0.0);
        // Water: 1.6 L then 0.7 L: one litre counted, then one more.
        let (r, inc, l) = f.count(1, 60, 0.0016, 0.0016, 1.6);
        assert_eq!(f.written(1, r, l), (0.001, 1.0));
        assert!((inc - 0.001).abs() < 1e-12);
        let (r, _, l) = f.count(1, 120, 0.0023, 0.0007, 0.7);
        assert_eq!(f.written(1, r, l), (0.002, 1.0));
    }

    #[test]
    fn defaults_leave_the_district_as_it_was() {
        let mut f = FieldMeters::new(&Scenario::default(), 1, 1, [false; 3], [5, 60, 60]);
        assert_eq!(
            f.count(1, 60, 0.00163, 0.00163, 1.63),
            (0.00163, 0.00163, 1.63)
        );
        assert_eq!(f.written(1, 0.00163, 1.63), (0.0016, 1.6));
        assert_eq!(f.stamp(0, 300_000, 300_000), 300_000);
        assert_eq!(f.duplicate_at(300_000), None);
        assert!(!f.swapped());
        assert_eq!(f.serial(0, 10), None);
    }

    #[test]
    fn a_swapped_meter_restarts_near_zero_under_a_new_serial() {
        let s = Scenario {
            meter_replacement_rate: 1.0,
            ..scenario()
        };
        // Electricity and water faulty: the gas meter is the one swapped.
        let mut f = FieldMeters::new(&s, 3, 7, [true, true, false], [5, 60, 60]);
        let sw = f.swap.expect("a swap");
        assert_eq!(sw.meter, 2);
        let before = f.serial(2, sw.at).expect("a serial");
        let (r, _, _) = f.count(2, sw.at, 812.345, 0.0, 0.0);
        assert_eq!(r, 812.34);
        let (r, inc, _) = f.count(2, sw.at + 60, 812.5, 0.155, 0.155);
        assert!(r < 0.06 && inc < -800.0, "{r} {inc}");
        assert_ne!(f.serial(2, sw.at + 60), Some(before));
    }

    #[test]
    fn clocks_are_off_and_drift_but_a_meter_stays_in_order() {
        let s = Scenario {
            meter_clock_offset_s: 90,
            meter_clock_drift_ppm: 50.0,
            meter_jitter_s: 20,
            ..scenario()
        };
        let mut f = FieldMeters::new(&s, 1, 2, [false; 3], [1, 60, 60]);
        let mut last = i64::MIN;
        for k in 1..=60 * 24 * 30 {
            let ts = f.stamp(0, k * 60_000, k * 60_000);
            assert!(ts > last);
            assert!((ts - k * 60_000).abs() <= 90_000 + 30_000 + 130_000);
            last = ts;
        }
    }
}
