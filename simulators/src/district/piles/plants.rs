//! What a session brings to a socket: an owner's battery, and perhaps a
//! planted fault or near miss (drawn from the piles' own stream).

use super::*;

pub(super) fn count(planted: &mut Vec<(Plant, u32)>, p: Plant) {
    match planted.iter_mut().find(|x| x.0 == p) {
        Some(x) => x.1 += 1,
        None => planted.push((p, 1)),
    }
}

/// A session starting at minute `m`: an owner, a battery, perhaps a plant.
pub(super) fn new_session_for(
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
