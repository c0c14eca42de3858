//! The district's layout: its sites, buildings and flats, who lives in each
//! flat and what is planted there (group rentals, businesses, indoor
//! charging, leaks), and the register file the housing office would hold.

use super::scenario::{MAX_LEAK_LPH, MAX_THREE_IN_ONE_W};
use super::*;

/// Id of the `n`th site (from 1), as its gateways report it.
fn site_id(n: u32) -> String {
    format!("s{n:02}")
}

/// Id of the `n`th building of a site (from 1).
fn building_id(n: u32) -> String {
    format!("b{n:02}")
}

/// The sites of a scenario's district with their buildings: what a
/// directory must list for the district's alerts to reach someone.
pub fn sites(s: &Scenario) -> Vec<(String, Vec<String>)> {
    (1..=s.sites)
        .map(|si| {
            (
                site_id(si),
                (1..=s.buildings_per_site).map(building_id).collect(),
            )
        })
        .collect()
}

/// Draws every flat's profile.
pub(super) fn layout(s: &Scenario, seed: u64) -> Vec<Flat> {
    let mut flats = Vec::with_capacity(s.flat_count() as usize);
    let mut idx = 0u64;
    let festival = super::broad::festival(s);
    let indoor_given_owner = if s.ebike_owner_rate > 0.0 {
        (s.indoor_charging_rate / s.ebike_owner_rate).min(1.0)
    } else {
        0.0
    };
    for si in 1..=s.sites {
        for bi in 1..=s.buildings_per_site {
            for floor in 1..=s.floors {
                for n in 1..=s.flats_per_floor {
                    idx += 1;
                    let mut rng = Rng::new(seed, idx);
                    let site = site_id(si);
                    let building = building_id(bi);
                    let unit = format!("{floor:02}{n:02}");
                    let key = format!("{site}/{building}/{unit}");
                    let mut registered = match rng.unit() {
                        x if x < 0.15 => 1,
                        x if x < 0.45 => 2,
                        x if x < 0.75 => 3,
                        x if x < 0.90 => 4,
                        x if x < 0.97 => 5,
                        _ => 6,
                    };
                    let mut actual = registered;
                    let mut group_from_day = None;
                    let mut group_size = 0;
                    let mut business = false;
                    if rng.chance(s.group_rental_rate) {
                        registered = rng.int(1, 3) as u8;
                        actual = registered;
                        group_size = rng.int(i64::from(s.group_size_min), 14) as u8;
                        group_from_day = Some(if rng.chance(s.group_rental_onset_share) {
                            rng.int(i64::from(s.days / 6), i64::from(s.days / 2)) as u32
                        } else {
                            0
                        });
                    } else if rng.chance(s.business_rate) {
                        business = true;
                        registered = rng.int(1, 3) as u8;
                        actual = registered + 2;
                    } else if rng.chance(s.under_registered_rate) {
                        actual = registered + rng.int(1, 2) as u8;
                    }
                    let extras = Extras::draw(s, seed, idx, festival);
                    if let Some(n) = extras.shared_flat {
                        if group_from_day.is_none() && !business {
                            registered = 1;
                            actual = n;
                        }
                    }
                    // Its own stream, so planting these moves no other draw.
                    let mut t3 = Rng::new(seed ^ 0x3131, idx);
                    let three_in_one =
                        (group_from_day.is_none() && !business && t3.chance(s.three_in_one_rate))
                            .then(|| {
                                (
                                    t3.int(0, i64::from(s.days / 2)) as u32,
                                    t3.range(s.three_in_one_min_w, MAX_THREE_IN_ONE_W),
                                )
                            });
                    let tag = rng
                        .chance(s.ebike_owner_rate)
                        .then(|| format!("tag-{seed}-{idx:05}"));
                    let indoor_charger =
                        (tag.is_some() && rng.chance(indoor_given_owner)).then(|| {
                            if s.field_charging && rng.chance(0.15) {
                                // Fast chargers.
                                Charger::Lithium {
                                    watts: rng.range(300.0, 450.0),
                                }
                            } else if rng.chance(0.65) {
                                Charger::Lithium {
                                    watts: rng.range(120.0, 320.0),
                                }
                            } else {
                                Charger::LeadAcid {
                                    watts: rng.range(95.0, 135.0),
                                }
                            }
                        });
                    let vacation = (s.days > 12 && rng.chance(s.vacation_rate)).then(|| {
                        let a = rng.int(0, i64::from(s.days) - 10) as u32;
                        (a, a + rng.int(4, 10) as u32)
                    });
                    let leak = (s.days > 12 && rng.chance(s.leak_rate)).then(|| {
                        let day = rng.int(0, i64::from(s.days) - 10) as u32;
                        // One draw either way, so the rest of the district
                        // does not move with the choice.
                        let lph = if s.leak_log_uniform {
                            rng.range(s.leak_min_lph.ln(), MAX_LEAK_LPH.ln()).exp()
                        } else {
                            rng.range(s.leak_min_lph, MAX_LEAK_LPH)
                        };
                        (day, lph)
                    });
                    let profile = Profile {
                        registered,
                        actual,
                        group_from_day,
                        group_size,
                        business,
                        three_in_one,
                        intensity: rng.lognormal(0.3),
                        fridge_phase: rng.int(0, 39),
                        tag,
                        indoor_charger,
                        night_plateau: rng.chance(s.night_plateau_rate),
                        night_cycling: rng.chance(s.night_cycling_rate),
                        confounders: if s.confounder_rate > 0.0 {
                            Confounders::draw(&mut rng, s.confounder_rate)
                        } else {
                            Confounders::default()
                        },
                        vacation,
                        leak,
                        extras,
                    };
                    flats.push(Flat {
                        gateway: format!("gw-{site}-{building}"),
                        site,
                        building,
                        unit,
                        key,
                        profile,
                        rng,
                        events: Vec::new(),
                        gas: Vec::new(),
                        energy_kwh: 0.0,
                        water_m3: 0.0,
                        gas_m3: 0.0,
                        seq: [0; 3],
                        last_register: None,
                        first_charge: false,
                        first_stray: false,
                    });
                }
            }
        }
    }
    flats
}

pub(super) fn write_register(flats: &[Flat], path: &Path) -> anyhow::Result<()> {
    let mut area = Rng::new(0xA4EA, 0);
    let file = RegisterFile {
        flats: flats
            .iter()
            .map(|f| FlatEntry {
                flat: f.key.clone(),
                occupants: f.profile.registered,
                area_m2: (40.0 + 15.0 * f64::from(f.profile.registered) + area.range(-10.0, 20.0))
                    as f32,
                business: f.profile.business,
                ..Default::default()
            })
            .collect(),
        tags: flats
            .iter()
            .filter_map(|f| {
                f.profile.tag.as_ref().map(|t| TagEntry {
                    identity: t.clone(),
                    flat: f.key.clone(),
                })
            })
            .collect(),
        meters: Vec::new(),
    };
    std::fs::write(path, serde_json::to_vec(&file)?)
        .with_context(|| format!("cannot write {}", path.display()))
}
