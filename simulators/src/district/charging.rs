//! E-bike charging sessions as the field has them.
//!
//! A session's timing and shape are drawn from what riders and chargers do,
//! not from what any detector looks for: most plug in in the evening, delivery
//! riders also at midday (13:30–16:30) and after a late shift (00:00–02:00);
//! some only top up for under an hour; some charge two packs at once.
//! Lithium chargers hold a constant current and then taper; the tail lasts
//! anywhere from 10 minutes (a sharp constant-voltage finish) to two hours.
//! Lead-acid chargers hold a bulk current for hours, then either a lower
//! constant second stage (cheap two-step chargers) or an absorption stage
//! whose current decays exponentially, then a small float.

use super::household::{Charger, LoadEvent, Shape};
use super::rng::Rng;

/// Share of sessions started at midday / after midnight (the rest in the evening).
const MIDDAY_SHARE: f64 = 0.15;
const AFTER_MIDNIGHT_SHARE: f64 = 0.15;
/// Share of sessions that are top-ups of a part-charged battery.
const TOP_UP_SHARE: f64 = 0.15;
/// Share of sessions with a second pack on a second charger.
const TWO_PACK_SHARE: f64 = 0.1;

/// The loads of one indoor charging session on the day starting at
/// `day_start` (minutes since the run began): one charger, or two. With
/// `field` off, the project's first, narrower model: evening starts,
/// full charges, long tails, one pack (kept so that earlier figures can be
/// reproduced seed for seed).
pub fn charge_sessions(
    charger: Charger,
    rng: &mut Rng,
    day_start: i64,
    field: bool,
) -> Vec<LoadEvent> {
    if !field {
        return vec![classic(charger, rng, day_start)];
    }
    let u = rng.range(0.0, 1.0);
    let start = day_start
        + if u < MIDDAY_SHARE {
            rng.int(13 * 60 + 30, 16 * 60 + 30)
        } else if u < MIDDAY_SHARE + AFTER_MIDNIGHT_SHARE {
            rng.int(24 * 60, 26 * 60)
        } else {
            rng.int(18 * 60, 24 * 60)
        };
    let top_up = rng.chance(TOP_UP_SHARE);
    let mut out = vec![one_pack(charger, rng, start, top_up)];
    if rng.chance(TWO_PACK_SHARE) {
        let second = start + rng.int(0, 20);
        let top_up = rng.chance(0.5);
        out.push(one_pack(charger, rng, second, top_up));
    }
    out
}

fn one_pack(charger: Charger, rng: &mut Rng, start: i64, top_up: bool) -> LoadEvent {
    match charger {
        Charger::Lithium { watts } => {
            let plateau = if top_up {
                rng.int(15, 55)
            } else {
                rng.int(90, 240)
            };
            // Half the chargers finish with a sharp constant-voltage tail.
            let taper = if rng.chance(0.5) {
                rng.int(8, 20)
            } else {
                rng.int(20, 120)
            };
            LoadEvent {
                start,
                minutes: plateau + taper,
                shape: Shape::Lithium { watts, taper },
            }
        }
        Charger::LeadAcid { watts } => {
            let bulk = if top_up {
                rng.int(30, 60)
            } else {
                rng.int(150, 300)
            };
            let second = rng.int(60, 180);
            // Absorption decays 4–17 % per 5 minutes: a time constant of
            // about 27–120 minutes; 0 is the two-step charger's constant stage.
            let tau_min = if rng.chance(0.5) {
                rng.range(27.0, 120.0)
            } else {
                0.0
            };
            LoadEvent {
                start,
                minutes: bulk + second + 120,
                shape: Shape::LeadAcid {
                    watts,
                    bulk,
                    float_at: bulk + second,
                    tau_min,
                },
            }
        }
    }
}

/// The first model: a start at 19:00–01:00; lithium 90–240 min plateau and
/// 40–120 min taper; lead-acid 3–5 h bulk, 1–3 h second stage at 55 %.
fn classic(charger: Charger, rng: &mut Rng, day_start: i64) -> LoadEvent {
    let start = day_start + rng.int(19 * 60, 25 * 60);
    match charger {
        Charger::Lithium { watts } => {
            let plateau = rng.int(90, 240);
            let taper = rng.int(40, 120);
            LoadEvent {
                start,
                minutes: plateau + taper,
                shape: Shape::Lithium { watts, taper },
            }
        }
        Charger::LeadAcid { watts } => {
            let bulk = rng.int(180, 300);
            let second = rng.int(60, 180);
            LoadEvent {
                start,
                minutes: bulk + second + 120,
                shape: Shape::LeadAcid {
                    watts,
                    bulk,
                    float_at: bulk + second,
                    tau_min: 0.0,
                },
            }
        }
    }
}
