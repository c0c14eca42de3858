//! A district building whose flats' water and gas meters are CJ/T 188
//! meters (`gridwatch-sim district-live --water-gas cjt188`): per kind one
//! pseudo-terminal line of eight meters, read by the real gateway at
//! accelerated time, its readings through a real Mosquitto.
//!
//! What arrives must be what the recording holds: each meter's register as
//! recorded, the gateway's interval values (derived from the register's
//! rise, as a CJ/T 188 meter sends no interval values) the recorded
//! intervals' sum, and the group-rental and night-leak rules must raise on
//! the live stream the alerts they raise on the recording.

use gridwatch_analytics::recording::{Record, RecordReader};
use gridwatch_analytics::register::Register;
use gridwatch_analytics::AnalyticsConfig;
use gridwatch_simulators::district::{live, Scenario};
use gridwatch_telemetry::{DeviceKind, Reading};
use gridwatch_tests::{Mosquitto, TempDir};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const HOUR_MS: i64 = 3_600_000;
const RULES: [&str; 2] = ["group_rental", "night_water_leak"];

/// Days played of the thirteen generated (the district plants leaks only
/// in runs of more than twelve days).
const DAYS: u32 = 5;

/// Eight flats, some of them crowded and some leaking early on (seed 6: two
/// group rentals, a leak from day 3), meters read hourly with registers in
/// hundredths of m³ (what a CJ/T 188 meter sends); no gaps, outages or
/// faulty meters, which the two rules are not about.
fn building() -> Scenario {
    Scenario {
        name: "live-cjt188".into(),
        days: 13,
        sites: 1,
        buildings_per_site: 1,
        floors: 2,
        flats_per_floor: 4,
        electricity_interval_s: 3600,
        water_gas_interval_s: 3600,
        group_rental_rate: 0.2,
        group_rental_onset_share: 0.0,
        leak_rate: 0.3,
        vacation_rate: 0.0,
        three_in_one_rate: 0.0,
        business_rate: 0.0,
        meter_gap_prob: 0.0,
        building_outage_prob: 0.0,
        stuck_meter_rate: 0.0,
        reversed_meter_rate: 0.0,
        water_register_step_l: Some(10.0),
        gas_register_step_m3: Some(0.01),
        piles_per_site: 0,
        ..Scenario::default()
    }
}

/// The rules over the few days played: persistence and peers scaled to a
/// five-day, eight-flat building, the same for recording and live stream.
fn analytics() -> AnalyticsConfig {
    let mut c = AnalyticsConfig::default();
    c.detect.group_rental.min_peers = 6;
    c.detect.group_rental.smoothing_days = 2;
    c.detect.group_rental.persistence_days = 2;
    c.detect.night_water.nights = 3;
    // The hours after midnight only: a poll the loaded machine makes late
    // merges two hourly intervals live but not in the recording, and over
    // the default 16-hour window that can turn a dry hour wet in one and
    // not the other. This test is about the meters arriving as recorded.
    c.detect.night_water.night_start_h = 1;
    c.detect.night_water.night_end_h = 5;
    c
}

/// The readings of a recording stamped up to `until_ms`.
fn records(path: &Path, until_ms: i64) -> Vec<Reading> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    RecordReader::new(std::io::BufReader::new(file))
        .filter_map(|r| match r.expect("recording parses") {
            Record::Reading(r) if r.ts.0 <= until_ms => Some(r),
            _ => None,
        })
        .collect()
}

/// Writes `readings` as a recording at `path`.
fn write(path: &Path, readings: &[Reading]) {
    let mut out = String::new();
    for r in readings {
        out.push_str(&serde_json::to_string(&Record::Reading(r.clone())).unwrap());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn by_device(readings: Vec<Reading>) -> BTreeMap<String, Vec<Reading>> {
    let mut out: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    for r in readings {
        out.entry(r.device.as_str().to_owned()).or_default().push(r);
    }
    for v in out.values_mut() {
        v.sort_by_key(|r| r.ts);
    }
    out
}

/// (rule, entity) of every alert of [`RULES`] a replay of `path` raises.
fn alerts(dir: &Path, path: &Path) -> BTreeSet<(String, String)> {
    let register = Register::load(dir.join("register.json")).expect("register loads");
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let replay =
        gridwatch_analytics::replay::replay(&analytics(), register, std::io::BufReader::new(file))
            .expect("replays");
    assert_eq!(replay.malformed, 0, "{:?}", replay.malformed_lines);
    replay
        .alerts
        .iter()
        .filter(|a| RULES.contains(&a.rule.as_str()))
        .map(|a| (a.rule.clone(), a.entity.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cjt188_water_and_gas_meters_play_live_as_recorded_and_raise_the_same_alerts() {
    let Some(mosquitto) = Mosquitto::start() else {
        return;
    };
    let dir = TempDir::new("district-live-cjt188");
    let scenario = building();
    let truth = live::prepare(&scenario, 6, dir.path(), false).expect("district generated");
    let capture = dir.path().join("capture.jsonl");
    let opts = live::LiveOptions {
        broker: SocketAddr::from(([127, 0, 0, 1], mosquitto.port())),
        // An hour every 150 ms: five days in 18 s.
        speed: Some(24_000.0),
        days: Some(DAYS),
        progress_every: Duration::from_secs(60),
        capture: Some(capture.clone()),
        water_gas: live::WaterGas::Cjt188,
    };
    let summary = live::run(
        &scenario,
        dir.path(),
        &truth,
        &opts,
        &mut std::io::sink(),
        CancellationToken::new(),
    )
    .await
    .expect("live run completes");
    assert_eq!((summary.flats, summary.buildings), (8, 1), "{summary:?}");
    assert!(summary.polls_answered > 0, "{summary:?}");

    // What was played: the recording up to the end of the last day.
    let played = records(
        &dir.path().join("recording.jsonl"),
        truth.start_ms + i64::from(DAYS) * 24 * HOUR_MS,
    );
    let recording = dir.path().join("played.jsonl");
    write(&recording, &played);
    let rec = by_device(played);
    let got = by_device(records(&capture, i64::MAX));
    let mut interval_values = 0;
    for (prefix, kind, interval, factor, digit) in [
        ("wm", DeviceKind::WaterMeter, "flow_l", 1000.0, '1'),
        ("gm", DeviceKind::GasMeter, "use_m3", 1.0, '2'),
    ] {
        let devices: Vec<&String> = rec.keys().filter(|d| d.starts_with(prefix)).collect();
        assert_eq!(devices.len(), 8, "{devices:?}");
        for device in devices {
            let want = &rec[device];
            let live = got
                .get(device)
                .unwrap_or_else(|| panic!("no reading of {device} reached the broker"));
            // Every hour polled once, give or take one a loaded machine
            // polls late.
            assert!(
                live.len() * 10 >= want.len() * 9,
                "{device}: {} readings arrived for {} recorded",
                live.len(),
                want.len()
            );
            let serial = live[0].meter_serial.clone().expect("the meter's address");
            assert!(serial.len() == 14 && serial.starts_with(digit), "{serial}");
            let mut previous: Option<i64> = None;
            for r in live {
                assert_eq!(r.kind, kind, "{r:?}");
                assert_eq!(r.meter_serial.as_ref(), Some(&serial), "{r:?}");
                assert_eq!(r.values["valve_state"], 0.0, "{r:?}");
                assert_eq!(r.values["battery_low"], 0.0, "{r:?}");
                // The recorded reading the meter held when polled: at or
                // before the gateway's stamp, within two intervals of it.
                let source = want
                    .iter()
                    .rev()
                    .filter(|w| w.ts.0 <= r.ts.0 && w.ts.0 >= r.ts.0 - 2 * HOUR_MS)
                    .find(|w| (w.values["volume_m3"] - r.values["volume_m3"]).abs() < 1e-9)
                    .unwrap_or_else(|| {
                        panic!(
                            "{device} at {}: register {} is no recorded reading of the two \
                             intervals before",
                            r.ts, r.values["volume_m3"]
                        )
                    });
                // The interval value: what the recording counted between
                // the readings the two polls showed.
                if let (Some(since), Some(v)) = (previous, r.values.get(interval)) {
                    let counted: f64 = want
                        .iter()
                        .filter(|w| w.ts.0 > since && w.ts.0 <= source.ts.0)
                        .map(|w| w.values[interval])
                        .sum();
                    assert!(
                        (counted - v).abs() < 1e-6 * factor,
                        "{device} at {}: {interval} {v}, recorded {counted}",
                        r.ts
                    );
                    interval_values += 1;
                }
                previous = Some(source.ts.0);
            }
        }
    }
    assert!(interval_values > 16 * 24 * 4, "{interval_values}");

    let recorded = alerts(dir.path(), &recording);
    for rule in RULES {
        assert!(
            recorded.iter().any(|(r, _)| r == rule),
            "the recording raises no {rule}: {recorded:?}"
        );
    }
    assert_eq!(alerts(dir.path(), &capture), recorded);
}
