//! Meter faults and data gaps: what a stuck or backwards-wired meter shows,
//! and the ground truth that scores the `meter_health` rules (issue 6:
//! "meters that stick or go offline; outages").
//!
//! Faults are planted per flat from streams of their own
//! (`Rng::new(seed ^ salt, flat)`), so planting them moves no other draw: the
//! rest of the district is the same with or without them.
//!
//! Labels are episodes that begin when the rule is *due* under the default
//! `[detect.meter_health]` config, worked out from the readings the meters
//! actually wrote (a gap that runs into midnight, two gaps that touch, a gap
//! inside an outage are all seen as the detector sees them):
//! - `meter_gap`: a meter silent for more than `no_data_min`, from its last
//!   reading + `no_data_min` to its next reading. A shorter silence is not a
//!   case (the rule is never due). A silence of exactly `no_data_min` is not
//!   one either: whether the rule sees it depends on where its sweeps fall.
//! - `building_outage`: from the first instant a meter of the building has
//!   been silent for `no_data_min` while `building_share` of its meters have
//!   been silent for half of it, to the last of those meters' next reading.
//!   The meters quiet at that instant are held back by the rule (one root
//!   cause, one alert), so their silences are not `meter_gap` cases; a
//!   meter that was already due on its own before is.
//! - `meter_stuck`: the register unchanged for `stuck_h` while the register
//!   is stuck and the meter's interval values show use (from the reading
//!   where it last moved + `stuck_h`, or the first use after that), to the
//!   reading where it moves again. A stuck meter in a flat that uses
//!   nothing is not a case: it cannot be told from a vacant flat.
//! - `meter_reversed`: from the first reading at which the register fell by
//!   more than `reverse_tolerance` or the interval value was negative, to
//!   when the wiring was put right.

use super::rng::Rng;
use super::Scenario;
use gridwatch_analytics::detect::meter_health::MeterHealthConfig;
use gridwatch_analytics::evaluate::truth::{kind, Case};
use std::collections::HashSet;

const MIN_MS: i64 = 60_000;
/// Salt of the stuck-meter stream.
const STUCK_STREAM: u64 = 0x5717_C4ED;
/// Salt of the reversed-meter stream.
const REVERSED_STREAM: u64 = 0x4E7E_45ED;

/// A planted meter fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The register stops moving while the meter goes on measuring use.
    Stuck,
    /// Wired backwards: the register counts down and interval values are negative.
    Reversed,
}

/// One fault of one meter of a flat, in run minutes.
#[derive(Debug, Clone)]
pub struct Planted {
    /// What.
    pub fault: Fault,
    /// Which meter: 0 electricity, 1 water.
    pub meter: usize,
    /// The first reading stamped after this minute is faulty.
    pub from: i64,
    /// The last reading stamped at or before this minute is faulty
    /// (`i64::MAX`: to the end of the run).
    pub to: i64,
    /// The register the meter shows once the fault has begun.
    shown: Option<f64>,
}

/// Draws a flat's faults: at most one stuck meter and one reversed meter
/// (never the same one). `may_reverse` is false for a flat with a planted
/// case of another kind: its negative readings would blind the load
/// detectors to that case, scoring them on data nobody can read.
pub fn plant(s: &Scenario, seed: u64, flat: u64, may_reverse: bool) -> Vec<Planted> {
    let draw = |salt: u64, rate: f64| {
        let mut rng = Rng::new(seed ^ salt, flat);
        if !rng.chance(rate) {
            return None;
        }
        let meter = rng.int(0, 1) as usize;
        let last_day = (i64::from(s.days) - 2).max(1);
        let from = rng.int(0, last_day * 1440 - 1);
        let to = if rng.chance(0.5) {
            i64::MAX
        } else {
            from + rng.int(2 * 1440, 10 * 1440)
        };
        Some(Planted {
            fault: Fault::Stuck,
            meter,
            from,
            to,
            shown: None,
        })
    };
    let mut out: Vec<Planted> = draw(STUCK_STREAM, s.stuck_meter_rate).into_iter().collect();
    if let Some(mut r) = draw(REVERSED_STREAM, s.reversed_meter_rate) {
        if may_reverse {
            r.fault = Fault::Reversed;
            if out.iter().any(|p| p.meter == r.meter) {
                r.meter = 1 - r.meter;
            }
            out.push(r);
        }
    }
    out
}

/// What meter `meter` shows for the interval ending at run minute `m`: its
/// register and interval value, given the true register `total` (after the
/// interval), the true increase `inc` over it and the true interval value.
/// Called for every interval, written or not, so a faulty register keeps
/// its own count through gaps.
pub fn show(
    faults: &mut [Planted],
    meter: usize,
    m: i64,
    total: f64,
    inc: f64,
    interval: f64,
) -> (f64, f64) {
    let Some(p) = faults.iter_mut().find(|p| p.meter == meter) else {
        return (total, interval);
    };
    if m <= p.from {
        return (total, interval);
    }
    let shown = p.shown.get_or_insert(total - inc);
    if m > p.to {
        *shown += inc;
        return (*shown, interval);
    }
    match p.fault {
        Fault::Stuck => (*shown, interval),
        Fault::Reversed => {
            *shown -= inc;
            (*shown, -interval)
        }
    }
}

/// A silence: the meter's last reading and its next one (`None`: none
/// until the end of the run).
type Silence = (i64, Option<i64>);

/// Everything one meter wrote that its labels depend on.
#[derive(Debug, Clone)]
pub struct Watch {
    entity: String,
    building: usize,
    interval_ms: i64,
    first: Option<i64>,
    last: Option<i64>,
    silences: Vec<Silence>,
    total: f64,
    changed_at: i64,
    /// The first reading since the register last moved whose interval value
    /// showed use (with a register step: once what truly flowed since
    /// reached a step, so the register would have shown it).
    used_at: Option<i64>,
    /// The register's step (register units), when quantised.
    step: Option<f64>,
    /// What truly flowed since the register last moved, in steps counted.
    unshown: f64,
    fault: Option<(Fault, i64, i64)>,
    case: Option<Case>,
    cases: Vec<Case>,
}

impl Watch {
    /// A meter `entity` (the reading's `entity()`) of building number
    /// `building`, reporting every `interval_min`, with its planted fault
    /// (`t0` is the run's start, ms).
    pub fn new(
        entity: String,
        building: usize,
        interval_min: i64,
        fault: Option<&Planted>,
        t0: i64,
    ) -> Self {
        let at = |m: i64| t0.saturating_add(m.saturating_mul(MIN_MS));
        Self {
            entity,
            building,
            interval_ms: interval_min * MIN_MS,
            first: None,
            last: None,
            silences: Vec::new(),
            total: f64::NAN,
            changed_at: 0,
            used_at: None,
            step: None,
            unshown: 0.0,
            fault: fault.map(|p| (p.fault, at(p.from), at(p.to))),
            case: None,
            cases: Vec::new(),
        }
    }

    /// A meter whose register shows whole steps of `step` (register units).
    pub fn with_step(mut self, step: Option<f64>) -> Self {
        self.step = step;
        self
    }

    /// Notes a reading written at `ts` with the register and interval
    /// value it carries; `counted` is what the working register would have
    /// added over the interval (register units).
    pub fn record(
        &mut self,
        cfg: &MeterHealthConfig,
        ts: i64,
        total: f64,
        interval: f64,
        counted: f64,
    ) {
        match self.last {
            Some(last) if ts - last > self.interval_ms => self.silences.push((last, Some(ts))),
            Some(_) => {}
            None => self.first = Some(ts),
        }
        self.last = Some(ts);
        let before = self.total;
        // The detector's test of a moving register.
        let moved =
            !(before.is_finite() && (total - before).abs() <= f64::EPSILON * total.abs().max(1.0));
        let backwards =
            (before.is_finite() && total < before - cfg.reverse_tolerance) || interval < 0.0;
        if moved {
            self.total = total;
            self.changed_at = ts;
            self.used_at = None;
            self.unshown = 0.0;
        } else {
            self.unshown += counted.max(0.0);
            // Quantised: use is known once a working register would have
            // moved a step; less could hide between two steps.
            let used = match self.step {
                Some(step) => self.unshown >= step * (1.0 - 1e-9),
                None => interval > 0.0,
            };
            if used && self.used_at.is_none() {
                self.used_at = Some(ts);
            }
        }
        let Some((fault, from, to)) = self.fault else {
            return;
        };
        match fault {
            Fault::Stuck => {
                let stuck_ms = i64::from(cfg.stuck_h) * 3_600_000;
                if let Some(mut c) = self.case.take() {
                    if moved {
                        c.end_ms = Some(ts);
                        self.cases.push(c);
                    } else {
                        self.case = Some(c);
                    }
                } else if let (true, false, Some(used_at)) =
                    (self.cases.is_empty(), moved, self.used_at)
                {
                    if ts > from && self.changed_at < to && ts - self.changed_at >= stuck_ms {
                        self.case = Some(Case {
                            kind: kind::METER_STUCK.into(),
                            entity: self.entity.clone(),
                            // Due once it has rested that long and use was measured meanwhile.
                            start_ms: (self.changed_at + stuck_ms).max(used_at),
                            end_ms: None,
                            note: format!("register stuck at {total}"),
                            traits: Default::default(),
                        });
                    }
                }
            }
            Fault::Reversed => {
                if self.case.is_none() && backwards && ts > from && ts <= to {
                    self.case = Some(Case {
                        kind: kind::METER_REVERSED.into(),
                        entity: self.entity.clone(),
                        start_ms: ts,
                        end_ms: (to < i64::MAX / 2).then_some(to),
                        note: "wired backwards".into(),
                        traits: Default::default(),
                    });
                }
            }
        }
    }

    /// Closes the run at `end_ms`: a meter silent at the end has a silence
    /// without an end, a fault still on has a case without one.
    fn finish(&mut self, end_ms: i64) {
        if let Some(last) = self.last {
            if last < end_ms {
                self.silences.push((last, None));
            }
        }
        self.cases.extend(self.case.take());
    }
}

/// One building outage as drawn: building number, from, to (ms).
pub type Outage = (usize, i64, i64);

/// The ground truth of every meter: stuck and reversed registers, meter
/// gaps and building outages. `gateways` gives each building's alert entity
/// (`site/gateway`, what `building_no_data` carries); the run ends at
/// `end_ms`.
pub fn cases(
    cfg: &MeterHealthConfig,
    mut watches: Vec<Watch>,
    gateways: &[String],
    outages: &[Outage],
    end_ms: i64,
) -> Vec<Case> {
    let limit = i64::from(cfg.no_data_min) * MIN_MS;
    let half = limit / 2;
    // Sweeps go on as long as any meter reports (electricity every few
    // minutes), so a silence running to the end counts if the rule was due
    // at least one sweep before the end.
    let sweep = i64::from(cfg.sweep_min) * MIN_MS;
    let mut out = Vec::new();
    for w in &mut watches {
        w.finish(end_ms);
        out.append(&mut w.cases);
    }
    // A silence is due when it outlasts the limit.
    let due = |s: &Silence| -> Option<i64> {
        let at = s.0 + limit;
        match s.1 {
            Some(resume) => (resume > at).then_some(at),
            None => (end_ms - at >= sweep).then_some(at),
        }
    };
    let silent_at = |s: &Silence, t: i64| s.0 < t && s.1.is_none_or(|r| r > t);
    let mut held: HashSet<(usize, usize)> = HashSet::new();
    for &(b, from, to) in outages {
        let members: Vec<usize> = (0..watches.len())
            .filter(|&i| watches[i].building == b)
            .collect();
        let mut candidates: Vec<i64> = Vec::new();
        for &i in &members {
            for (j, s) in watches[i].silences.iter().enumerate() {
                if s.0 < to && s.1.is_none_or(|r| r > from) && !held.contains(&(i, j)) {
                    candidates.extend(due(s));
                }
            }
        }
        candidates.sort_unstable();
        let fires = candidates.into_iter().find(|&t| {
            let count = members
                .iter()
                .filter(|&&i| watches[i].first.is_some_and(|f| f <= t))
                .count();
            let quiet = members
                .iter()
                .filter(|&&i| {
                    watches[i]
                        .silences
                        .iter()
                        .any(|s| silent_at(s, t) && t - s.0 >= half)
                })
                .count();
            count > 1 && quiet as f64 >= cfg.building_share * count as f64
        });
        let Some(t) = fires else {
            continue;
        };
        let mut resumed = t;
        let mut quiet = 0;
        for &i in &members {
            for (j, s) in watches[i].silences.iter().enumerate() {
                // Held back: quiet at the building alert and not due on its own before.
                if silent_at(s, t) && t - s.0 >= half && s.0 + limit >= t {
                    held.insert((i, j));
                    quiet += 1;
                    resumed = resumed.max(s.1.unwrap_or(end_ms));
                }
            }
        }
        out.push(Case {
            kind: kind::BUILDING_OUTAGE.into(),
            entity: gateways[b].clone(),
            start_ms: t,
            end_ms: Some(resumed),
            note: format!(
                "dark {:.0} min, {quiet} of {} meters held back",
                (to - from) as f64 / MIN_MS as f64,
                members.len()
            ),
            traits: Default::default(),
        });
    }
    for (i, w) in watches.iter().enumerate() {
        for (j, s) in w.silences.iter().enumerate() {
            if held.contains(&(i, j)) {
                continue;
            }
            if let Some(at) = due(s) {
                out.push(Case {
                    kind: kind::METER_GAP.into(),
                    entity: w.entity.clone(),
                    start_ms: at,
                    end_ms: s.1,
                    note: format!(
                        "silent {:.0} min",
                        (s.1.unwrap_or(end_ms) - s.0) as f64 / MIN_MS as f64
                    ),
                    traits: Default::default(),
                });
            }
        }
    }
    out
}
