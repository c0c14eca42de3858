//! The synthetic district live: its meters on Modbus TCP, the real gateway
//! polling them at accelerated time, readings through a real Mosquitto.
//! What arrives must be every flat's three meters, named and stamped as the
//! detectors expect, carrying values the recording holds for that meter at
//! or shortly before the instant the gateway stamped.

use gridwatch_analytics::recording::{Record, RecordReader};
use gridwatch_simulators::district::{live, Scenario};
use gridwatch_telemetry::{codec, DeviceKind, Reading};
use gridwatch_tests::{Mosquitto, Subscriber, TempDir};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn tiny() -> Scenario {
    Scenario {
        name: "live-tiny".into(),
        days: 2,
        sites: 1,
        buildings_per_site: 1,
        floors: 2,
        flats_per_floor: 3,
        electricity_interval_s: 300,
        water_gas_interval_s: 3600,
        // No meter wired backwards, so every counter must only go up.
        reversed_meter_rate: 0.0,
        ..Scenario::default()
    }
}

/// Recorded readings by device, in time order.
fn recorded(dir: &std::path::Path) -> BTreeMap<String, Vec<Reading>> {
    let file = std::fs::File::open(dir.join("recording.jsonl")).expect("recording written");
    let mut out: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    for r in RecordReader::new(std::io::BufReader::new(file)) {
        if let Record::Reading(r) = r.expect("recording parses") {
            out.entry(r.device.as_str().to_owned()).or_default().push(r);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flat_meter_arrives_through_modbus_and_the_gateway_as_recorded() {
    let Some(mosquitto) = Mosquitto::start() else {
        return;
    };
    let mut sub = Subscriber::connect(
        mosquitto.port(),
        "district-live-test",
        &["gw/+/+/reading/+"],
    )
    .await;
    let dir = TempDir::new("district-live");
    let scenario = tiny();
    let truth = live::prepare(&scenario, 4, dir.path(), false).expect("district generated");
    let opts = live::LiveOptions {
        broker: SocketAddr::from(([127, 0, 0, 1], mosquitto.port())),
        speed: Some(3000.0),
        days: Some(1),
        progress_every: Duration::from_secs(60),
        capture: None,
        water_gas: live::WaterGas::Modbus,
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
    assert_eq!(summary.flats, 6);
    assert_eq!(summary.buildings, 1);
    assert!(
        summary.applied > 0 && summary.polls_answered > 0,
        "{summary:?}"
    );

    let live: Vec<Reading> = sub
        .collect_for(Duration::from_secs(2))
        .await
        .iter()
        .map(|m| codec::decode::<Reading>(&m.payload).expect("reading payload decodes"))
        .collect();
    let rec = recorded(dir.path());
    let day_end = truth.start_ms + 86_400_000;
    let units: BTreeSet<String> = rec
        .values()
        .flatten()
        .filter_map(|r| r.unit.clone())
        .collect();
    assert_eq!(units.len(), 6, "{units:?}");

    let mut by_device: BTreeMap<String, Vec<&Reading>> = BTreeMap::new();
    for r in &live {
        by_device
            .entry(r.device.as_str().to_owned())
            .or_default()
            .push(r);
    }
    for unit in &units {
        for (prefix, kind, names, interval_ms) in [
            (
                "em",
                DeviceKind::ElectricityMeter,
                ["energy_kwh", "power_w"],
                300_000,
            ),
            (
                "wm",
                DeviceKind::WaterMeter,
                ["flow_l", "volume_m3"],
                3_600_000,
            ),
            (
                "gm",
                DeviceKind::GasMeter,
                ["use_m3", "volume_m3"],
                3_600_000,
            ),
        ] {
            let device = format!("{prefix}-{unit}");
            let mut got = by_device
                .get(&device)
                .unwrap_or_else(|| panic!("no reading of {device} reached the broker"))
                .clone();
            got.sort_by_key(|r| r.ts);
            let want = &rec[&device];
            let want_day = want.iter().filter(|w| w.ts.0 <= day_end).count();
            // Every interval is polled once, give or take the ones a poll
            // landing on an interval's end reads twice or skips.
            assert!(
                got.len() * 2 >= want_day,
                "{device}: {} readings arrived for {want_day} recorded",
                got.len()
            );
            let mut last: Option<&Reading> = None;
            for r in &got {
                assert_eq!(r.site.as_str(), "s01", "{r:?}");
                assert_eq!(r.gateway.as_str(), "gw-s01-b01", "{r:?}");
                assert_eq!(r.building.as_deref(), Some("b01"), "{r:?}");
                assert_eq!(r.unit.as_deref(), Some(unit.as_str()), "{r:?}");
                assert_eq!(r.kind, kind, "{r:?}");
                let got_names: Vec<&str> = r.values.keys().map(String::as_str).collect();
                assert_eq!(got_names, names, "{device}");
                // The recorded reading the meter held when polled: at or
                // before the gateway's stamp, within two intervals of it.
                let source = want
                    .iter()
                    .rev()
                    .filter(|w| w.ts.0 <= r.ts.0 && w.ts.0 >= r.ts.0 - 2 * interval_ms)
                    .find(|w| {
                        names
                            .iter()
                            .all(|n| (w.values[*n] - r.values[*n]).abs() < 1e-6)
                    });
                assert!(
                    source.is_some(),
                    "{device} at {}: {:?} is no recorded reading of the two intervals before",
                    r.ts,
                    r.values
                );
                if let Some(prev) = last {
                    let c = if prefix == "em" {
                        "energy_kwh"
                    } else {
                        "volume_m3"
                    };
                    assert!(r.ts > prev.ts, "{device}: two readings stamped {}", r.ts);
                    assert!(
                        r.values[c] >= prev.values[c],
                        "{device}: counter {c} went back from {} to {}",
                        prev.values[c],
                        r.values[c]
                    );
                }
                last = Some(r);
            }
        }
    }
}
