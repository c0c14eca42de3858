//! A synthetic district with labelled ground truth, to measure the detectors
//! against (docs/detection-evaluation.md: "quality is measured, not asserted").
//!
//! Sites hold buildings, buildings hold flats; every flat has an electricity
//! meter (interval mean power and energy), a water meter and a gas meter;
//! every building has tag readers at the gate and the lift lobby. Flats are
//! ordinary households of 1–6 registered people, some with one or two more
//! living there than registered, some away for days, some with a computer
//! or an electric blanket on at night; planted among them are group rentals
//! (from day 0 or from a day during the run), registered businesses, owners
//! who charge an e-bike battery indoors (charger signature in the load, tag
//! sometimes seen at the lift), bikes taken indoors without charging, and
//! leaks. Meters drop out for hours; whole buildings go dark. Weekdays,
//! weekends and public holidays (lived like weekends) set the weekly
//! rhythm; heating in the cold months sets the season. Each site's yard has
//! charging piles used by its e-bike owners, with planted faulty sessions
//! and near misses (`piles.rs`).
//!
//! [`generate`] is deterministic for a scenario and seed and writes three
//! files: `recording.jsonl` (readings and events in event-time order, the
//! format of `gridwatch_analytics::recording`), `truth.json`
//! (`gridwatch_analytics::evaluate::truth::GroundTruth`) and `register.json`
//! (`gridwatch_analytics::register::RegisterFile`).
//!
//! ```no_run
//! use gridwatch_simulators::district::{generate, Scenario};
//! let summary = generate(&Scenario::default(), 1, std::path::Path::new("/tmp/district"))?;
//! println!("{} readings, {} cases", summary.readings, summary.cases);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod broad;
pub mod charging;
pub mod confounders;
pub mod feed;
pub mod field_meters;
pub mod household;
mod layout;
pub mod live;
pub mod meters;
mod piles;
pub mod rng;
pub mod scenario;

use anyhow::Context;
use broad::Extras;
use charging::charge_sessions;
use confounders::Confounders;
use gridwatch_analytics::evaluate::truth::{kind, Case, GroundTruth};
use gridwatch_analytics::recording::Record;
use gridwatch_analytics::register::{FlatEntry, RegisterFile, TagEntry};
use gridwatch_telemetry::{DeviceKind, Event, EventKind, Reading, Timestamp};
use household::{day_events, standing_w, water_share, Charger, LoadEvent, Profile};
pub use layout::sites;
use layout::{layout, write_register};
use rng::Rng;
pub use scenario::{Scenario, ScenarioError};
use std::io::Write;
use std::path::Path;

const MIN_MS: i64 = 60_000;

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Flats.
    pub flats: u32,
    /// Readings written.
    pub readings: u64,
    /// Events written.
    pub events: u64,
    /// Ground-truth cases.
    pub cases: u64,
}

struct Flat {
    site: String,
    building: String,
    unit: String,
    gateway: String,
    key: String,
    profile: Profile,
    rng: Rng,
    events: Vec<LoadEvent>,
    gas: Vec<(i64, f64)>,
    energy_kwh: f64,
    water_m3: f64,
    gas_m3: f64,
    seq: [u64; 3],
    /// The electricity register last written, and when (run minute): a
    /// register-only meter's power is derived from it.
    last_register: Option<(i64, f64)>,
    first_charge: bool,
    first_stray: bool,
}

/// Generates the district of `scenario` with `seed` into `out_dir`.
pub fn generate(scenario: &Scenario, seed: u64, out_dir: &Path) -> anyhow::Result<Summary> {
    scenario
        .check()
        .map_err(|e| anyhow::anyhow!("scenario {}: {e}", scenario.name))?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let start_day = scenario.start_day().unwrap_or(0);
    let offset_ms = i64::from(scenario.utc_offset_min) * MIN_MS;
    let t0 = start_day * 86_400_000 - offset_ms;
    let mut flats = layout(scenario, seed);
    let mut yard = piles::Yard::new(scenario, seed, t0, &flats);
    let mut truth = GroundTruth {
        scenario: scenario.name.clone(),
        seed,
        flats: flats.len() as u32,
        days: scenario.days,
        start_ms: t0,
        end_ms: t0 + i64::from(scenario.days) * 86_400_000,
        cases: Vec::new(),
        traits: Default::default(),
    };
    // Meter faults, from streams of their own; what each meter wrote, for its labels.
    let health = gridwatch_analytics::detect::meter_health::MeterHealthConfig::default();
    let per_building = (scenario.floors * scenario.flats_per_floor) as usize;
    let mut faults: Vec<Vec<meters::Planted>> = flats
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = &f.profile;
            let other_case = p.group_from_day.is_some()
                || p.three_in_one.is_some()
                || p.indoor_charger.is_some()
                || p.leak.is_some()
                || p.business;
            meters::plant(scenario, seed, i as u64 + 1, !other_case)
        })
        .collect();
    let e_int = i64::from(scenario.electricity_interval_s) / 60;
    let w_int = i64::from(scenario.water_gas_interval_s) / 60;
    let mut fitted: Vec<field_meters::FieldMeters> = faults
        .iter()
        .enumerate()
        .map(|(i, planted)| {
            let faulty = std::array::from_fn(|m| planted.iter().any(|p| p.meter == m));
            field_meters::FieldMeters::new(
                scenario,
                seed,
                i as u64 + 1,
                faulty,
                [e_int, w_int, w_int],
            )
        })
        .collect();
    let mut watches: Vec<[meters::Watch; 3]> = flats
        .iter()
        .zip(&faults)
        .enumerate()
        .map(|(i, (f, planted))| {
            std::array::from_fn(|m| {
                let prefix = ["em", "wm", "gm"][m];
                let interval = if m == 0 {
                    scenario.electricity_interval_s
                } else {
                    scenario.water_gas_interval_s
                };
                meters::Watch::new(
                    format!("{}/{}/{prefix}-{}", f.site, f.gateway, f.unit),
                    i / per_building,
                    i64::from(interval) / 60,
                    planted.iter().find(|p| p.meter == m),
                    t0,
                )
                .with_step(fitted[i].step(m))
            })
        })
        .collect();
    let gateways: Vec<String> = flats
        .iter()
        .step_by(per_building)
        .map(|f| format!("{}/{}", f.site, f.gateway))
        .collect();
    let mut outages: Vec<meters::Outage> = Vec::new();
    for ((f, planted), fitted) in flats.iter().zip(&faults).zip(&fitted) {
        let mut traits = f.profile.traits();
        if fitted.swapped() {
            // A replaced meter is not a fault: a trait, never a case.
            traits.push("meter_replaced");
        }
        for p in planted {
            traits.push(match p.fault {
                meters::Fault::Stuck => "stuck_meter",
                meters::Fault::Reversed => "reversed_meter",
            });
        }
        if !traits.is_empty() {
            truth.traits.insert(
                f.key.clone(),
                traits.into_iter().map(str::to_owned).collect(),
            );
        }
        if let Some(d) = f.profile.group_from_day {
            truth.cases.push(Case {
                kind: kind::GROUP_RENTAL.into(),
                entity: f.key.clone(),
                start_ms: t0 + i64::from(d) * 86_400_000,
                end_ms: None,
                note: format!(
                    "{} people, {} registered",
                    f.profile.group_size, f.profile.registered
                ),
                traits: [
                    ("people".to_owned(), f.profile.group_size.to_string()),
                    ("registered".to_owned(), f.profile.registered.to_string()),
                ]
                .into(),
            });
        }
        if let Some((d, watts)) = f.profile.three_in_one {
            truth.cases.push(Case {
                kind: kind::THREE_IN_ONE.into(),
                entity: f.key.clone(),
                start_ms: t0 + i64::from(d) * 86_400_000,
                end_ms: None,
                note: format!("{:.1} kW weekdays 09-18", watts / 1000.0),
                // Half-kilowatts of machines, so that misses group by size.
                traits: [(
                    "machines_kw".to_owned(),
                    format!("{:.1}", (watts / 500.0).floor() / 2.0),
                )]
                .into(),
            });
        }
        if let Some((d, lph)) = f.profile.leak {
            truth.cases.push(Case {
                kind: kind::LEAK.into(),
                entity: f.key.clone(),
                start_ms: t0 + i64::from(d) * 86_400_000,
                end_ms: None,
                note: format!("{lph:.1} L/h"),
                // Whole litres per hour, so that misses group by size.
                traits: [("leak_l_per_h".to_owned(), format!("{:.0}", lph.floor()))].into(),
            });
        }
    }
    write_register(&flats, &out_dir.join("register.json"))?;
    let path = out_dir.join("recording.jsonl");
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut summary = Summary {
        flats: flats.len() as u32,
        ..Summary::default()
    };
    let mut world = Rng::new(seed, 0);
    let mut reader_seq = 0u64;
    // Records generated for one day that fall after its end (a battery carried
    // down the next morning) wait for the next day's batch.
    let mut pending: Vec<Record> = Vec::new();
    // Readings delivered again, with when.
    let mut late: Vec<(i64, Record)> = Vec::new();
    let holidays = scenario.holiday_days();
    let cold_days = broad::cold_days(scenario, seed);
    for day in 0..scenario.days {
        let day_start = i64::from(day) * 1440;
        let epoch_day = start_day + i64::from(day);
        // A holiday is lived like a weekend.
        let weekend = (epoch_day + 3).rem_euclid(7) >= 5 || holidays.contains(&epoch_day);
        let winter = matches!(month_of(epoch_day), 11 | 12 | 1 | 2 | 3);
        let mut records: Vec<Record> =
            Vec::with_capacity(flats.len() * (1440 / e_int as usize + 60));
        records.append(&mut pending);
        // Building outages: one draw per building and day, (from, to) in run minutes.
        let dark_today: Vec<Option<(i64, i64)>> = gateways
            .iter()
            .map(|_| {
                world.chance(scenario.building_outage_prob).then(|| {
                    let from = day_start + world.int(0, 1380);
                    (from, from + world.int(60, 360))
                })
            })
            .collect();
        for (b, o) in dark_today.iter().enumerate() {
            if let Some((from, to)) = *o {
                outages.push((b, t0 + from * MIN_MS, t0 + to * MIN_MS));
            }
        }
        for (i, f) in flats.iter_mut().enumerate() {
            let ts = |m: i64| Timestamp(t0 + m * MIN_MS);
            let dark = dark_today[i / per_building];
            let cold = cold_days[day as usize];
            let (mut ev, gas) = day_events(
                &f.profile, &mut f.rng, day, day_start, weekend, winter, cold,
            );
            f.events.retain(|e| e.start + e.minutes > day_start);
            f.events.append(&mut ev);
            f.gas.retain(|g| g.0 >= day_start - 60);
            f.gas.extend(gas);
            let mut sightings: Vec<(i64, &str)> = Vec::new();
            let home = f.profile.people(day) > 0.0;
            if let (Some(charger), true) = (f.profile.indoor_charger, home) {
                if f.rng.chance(scenario.charge_night_prob) {
                    let packs =
                        charge_sessions(charger, &mut f.rng, day_start, scenario.field_charging);
                    let s = packs[0];
                    let carried_up = f
                        .rng
                        .chance(scenario.sighting_prob)
                        .then(|| s.start - f.rng.int(5, 40));
                    if !f.first_charge {
                        f.first_charge = true;
                        // The case begins when the battery comes in: its lift
                        // sighting when there was one, else the first charge.
                        truth.cases.push(Case {
                            kind: kind::INDOOR_CHARGING.into(),
                            entity: f.key.clone(),
                            start_ms: ts(carried_up.unwrap_or(s.start).min(s.start)).0,
                            end_ms: None,
                            note: format!("{charger:?}"),
                            traits: [
                                ("charger".to_owned(), charger.kind_name().to_owned()),
                                ("charger_w".to_owned(), charger.power_class().to_owned()),
                                (
                                    "start_hour".to_owned(),
                                    ((s.start - day_start).div_euclid(60)).to_string(),
                                ),
                                ("registered".to_owned(), f.profile.registered.to_string()),
                            ]
                            .into(),
                        });
                    }
                    if let Some(at) = carried_up {
                        sightings.push((at, "lift_lobby"));
                    }
                    if f.rng.chance(scenario.sighting_prob) {
                        let morning = (s.start + s.minutes).max(day_start + 1440 + 390);
                        sightings.push((morning + f.rng.int(0, 120), "lift_lobby"));
                    }
                    f.events.extend(packs);
                }
            }
            if f.profile.tag.is_some() && home {
                for (from, to) in [(7 * 60, 9 * 60), (17 * 60, 20 * 60)] {
                    if f.rng.chance(0.8) {
                        sightings.push((day_start + f.rng.int(from, to), "gate"));
                    }
                }
                if f.profile.indoor_charger.is_none()
                    && f.rng.chance(scenario.stray_indoor_sighting_prob)
                {
                    let at = day_start + f.rng.int(8 * 60, 22 * 60);
                    sightings.push((at, "lift_lobby"));
                    if !f.first_stray {
                        f.first_stray = true;
                        truth.cases.push(Case {
                            kind: kind::BIKE_INDOORS.into(),
                            entity: f.key.clone(),
                            start_ms: ts(at).0,
                            end_ms: None,
                            note: "bike taken indoors, not charged".into(),
                            traits: Default::default(),
                        });
                    }
                }
            }
            if let Some(tag) = &f.profile.tag {
                for (at, location) in sightings {
                    reader_seq += 1;
                    records.push(Record::Event(Event {
                        schema: gridwatch_telemetry::SCHEMA_VERSION,
                        ts: ts(at),
                        gateway: f.gateway.as_str().into(),
                        site: f.site.as_str().into(),
                        device: format!("reader-{location}").into(),
                        seq: reader_seq,
                        kind: EventKind::Sighting {
                            location: location.to_owned(),
                            identity: tag.clone(),
                            direction: None,
                        },
                    }));
                }
            }
            let gaps: [Option<(i64, i64)>; 3] = std::array::from_fn(|_| {
                f.rng.chance(scenario.meter_gap_prob).then(|| {
                    let from = day_start + f.rng.int(0, 1380);
                    (from, from + f.rng.int(60, 720))
                })
            });
            let silent = |m: i64, meter: usize| {
                dark.is_some_and(|(a, b)| (a..b).contains(&m))
                    || gaps[meter].is_some_and(|(a, b)| (a..b).contains(&m))
            };
            // Electricity: mean power over each interval, stamped at its end.
            let mut k = day_start;
            while k < day_start + 1440 {
                let end = k + e_int;
                let mid = k + e_int / 2;
                let mut w = standing_w(&f.profile, day, mid, mid - day_start, weekend, &mut f.rng);
                w += f.events.iter().map(|e| e.mean_over(k, end)).sum::<f64>();
                w = (w + 4.0 * f.rng.normal()).max(0.0);
                let inc = w * e_int as f64 / 60_000.0;
                f.energy_kwh += inc;
                let (total, inc, w) = fitted[i].count(0, end, f.energy_kwh, inc, w);
                let (kwh, w) = meters::show(&mut faults[i], 0, end, total, inc, w);
                if !silent(end, 0) {
                    f.seq[0] += 1;
                    let (kwh, mut w) = fitted[i].written(0, kwh, w);
                    if f.profile.extras.register_power && faults[i].is_empty() {
                        // The gateway derives it from the register's change.
                        let derived = broad::power_from_register(f.last_register, end, kwh);
                        w = derived.map_or(w, |d| (d * 10.0).round() / 10.0);
                        f.last_register = Some((end, kwh));
                    }
                    let at = fitted[i].stamp(0, ts(end).0, end * MIN_MS);
                    watches[i][0].record(&health, at, kwh, w, inc);
                    let mut r = f.reading(DeviceKind::ElectricityMeter, "em", 0, Timestamp(at));
                    r.meter_serial = fitted[i].serial(0, end);
                    r.values.insert("power_w".into(), w);
                    r.values.insert("energy_kwh".into(), kwh);
                    if let Some(again) = fitted[i].duplicate_at(at) {
                        late.push((again, Record::Reading(r.clone())));
                    }
                    records.push(Record::Reading(r));
                }
                k = end;
            }
            // Water and gas.
            let people = f.profile.people(day);
            let per_person = if f.profile.is_group(day) {
                115.0
            } else {
                140.0
            };
            let mut k = day_start;
            while k < day_start + 1440 {
                let end = k + w_int;
                let hour = (k - day_start) / 60;
                let share = water_share(hour) * w_int as f64 / 60.0;
                let mut litres =
                    people * per_person * f.profile.intensity * share * f.rng.lognormal(0.35);
                if f.profile.business && !weekend && (9..18).contains(&hour) {
                    litres += 30.0 * w_int as f64 / 60.0;
                }
                if let Some((d, lph)) = f.profile.leak {
                    if day >= d {
                        litres += lph * w_int as f64 / 60.0;
                    }
                }
                let gas: f64 = f
                    .gas
                    .iter()
                    .filter(|g| (k..end).contains(&g.0))
                    .map(|g| g.1)
                    .sum();
                f.water_m3 += litres / 1000.0;
                f.gas_m3 += gas;
                let (total, inc, litres) =
                    fitted[i].count(1, end, f.water_m3, litres / 1000.0, litres);
                let (m3, litres) = meters::show(&mut faults[i], 1, end, total, inc, litres);
                if !silent(end, 1) {
                    f.seq[1] += 1;
                    let (m3, litres) = fitted[i].written(1, m3, litres);
                    let at = fitted[i].stamp(1, ts(end).0, end * MIN_MS);
                    watches[i][1].record(&health, at, m3, litres, inc);
                    let mut r = f.reading(DeviceKind::WaterMeter, "wm", 1, Timestamp(at));
                    r.meter_serial = fitted[i].serial(1, end);
                    r.values.insert("flow_l".into(), litres);
                    r.values.insert("volume_m3".into(), m3);
                    if let Some(again) = fitted[i].duplicate_at(at) {
                        late.push((again, Record::Reading(r.clone())));
                    }
                    records.push(Record::Reading(r));
                }
                let (total, inc, gas) = fitted[i].count(2, end, f.gas_m3, gas, gas);
                if !silent(end, 2) {
                    f.seq[2] += 1;
                    let (m3, gas) = fitted[i].written(2, total, gas);
                    let at = fitted[i].stamp(2, ts(end).0, end * MIN_MS);
                    watches[i][2].record(&health, at, m3, gas, inc);
                    let mut r = f.reading(DeviceKind::GasMeter, "gm", 2, Timestamp(at));
                    r.meter_serial = fitted[i].serial(2, end);
                    r.values.insert("use_m3".into(), gas);
                    r.values.insert("volume_m3".into(), m3);
                    if let Some(again) = fitted[i].duplicate_at(at) {
                        late.push((again, Record::Reading(r.clone())));
                    }
                    records.push(Record::Reading(r));
                }
                k = end;
            }
        }
        yard.day(day, &mut records);
        records.sort_by_key(Record::ts);
        let next_day = Timestamp(t0 + (i64::from(day) + 1) * 86_400_000);
        let cut = records.partition_point(|r| r.ts() < next_day);
        pending = records.split_off(cut);
        if day + 1 == scenario.days {
            records.append(&mut pending);
        }
        let until = if day + 1 == scenario.days {
            i64::MAX
        } else {
            next_day.0
        };
        let records = field_meters::deliver(records, &mut late, until);
        for r in &records {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
            match r {
                Record::Reading(_) => summary.readings += 1,
                Record::Event(_) => summary.events += 1,
            }
        }
    }
    out.flush()?;
    truth.cases.extend(meters::cases(
        &health,
        watches.into_iter().flatten().collect(),
        &gateways,
        &outages,
        truth.end_ms,
    ));
    truth.cases.extend(yard.finish());
    summary.cases = truth.cases.len() as u64;
    truth
        .cases
        .sort_by(|a, b| (a.start_ms, &a.entity).cmp(&(b.start_ms, &b.entity)));
    let tpath = out_dir.join("truth.json");
    std::fs::write(&tpath, serde_json::to_vec_pretty(&truth)?)
        .with_context(|| format!("cannot write {}", tpath.display()))?;
    Ok(summary)
}

impl Flat {
    fn reading(&self, kind: DeviceKind, prefix: &str, meter: usize, ts: Timestamp) -> Reading {
        let mut r = Reading::new(
            ts,
            self.gateway.as_str(),
            format!("{prefix}-{}", self.unit).as_str(),
            kind,
            self.seq[meter],
        );
        r.site = self.site.as_str().into();
        r.building = Some(self.building.clone());
        r.unit = Some(self.unit.clone());
        r
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (v * k).round() / k
}

/// Month (1–12) of a day since the epoch.
fn month_of(days: i64) -> i64 {
    i64::from(gridwatch_telemetry::time::civil_from_days(days).1)
}

#[cfg(test)]
mod tests;
