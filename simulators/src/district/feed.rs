//! Plays a generated district to an MQTT broker the way its gateways would
//! publish it, weeks of event time in seconds, so a running analytics
//! service (the demo's) sees flats and raises its district alerts on the
//! same path as in the field: broker → analytics → store → dashboard.

use super::{generate, Scenario};
use anyhow::Context as _;
use gridwatch_analytics::recording::{Record, RecordReader};
use gridwatch_telemetry::codec;
use gridwatch_telemetry::topic::Topics;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;
/// Readings published between two short pauses: the pauses let the broker
/// and analytics keep up instead of the broker's log growing without bound.
const BATCH: u64 = 500;

/// A district small enough to generate and play in seconds (two buildings,
/// 40 flats, 15-minute electricity readings), with enough days and planted
/// cases for the group-rental and indoor-charging detectors to fire. No
/// yard piles: the demo has its own live pile, and the district's would
/// double the readings to play.
pub fn demo_scenario() -> Scenario {
    Scenario {
        name: "demo".into(),
        days: 21,
        sites: 1,
        buildings_per_site: 2,
        floors: 4,
        flats_per_floor: 5,
        electricity_interval_s: 900,
        group_rental_rate: 0.1,
        indoor_charging_rate: 0.1,
        piles_per_site: 0,
        ..Scenario::default()
    }
}

/// What a feed published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fed {
    /// Flats of the district.
    pub flats: u32,
    /// Readings published.
    pub readings: u64,
    /// Events (tag sightings at gates and lifts) published.
    pub events: u64,
    /// The feed was told to stop before the recording's end.
    pub stopped_early: bool,
}

/// Generates `scenario` with `seed` into `dir` and publishes its readings to
/// `broker` in event-time order, shifted by whole days so that the district's
/// last day ends about now (local times of day, which the detectors look
/// at, are kept). Tag sightings go to the gateways' event topics, as their
/// readers' would, so the sighting and fused indoor-charging rules fire too.
pub async fn play(
    scenario: &Scenario,
    seed: u64,
    dir: &Path,
    broker: SocketAddr,
    now_ms: i64,
    shutdown: CancellationToken,
) -> anyhow::Result<Fed> {
    let summary = generate_in_background(scenario, seed, dir).await?;
    publish(scenario, summary.flats, dir, broker, now_ms, shutdown).await
}

/// Generates `scenario` into `dir` off the async threads (a district takes
/// from milliseconds to minutes).
pub async fn generate_in_background(
    scenario: &Scenario,
    seed: u64,
    dir: &Path,
) -> anyhow::Result<super::Summary> {
    let (scenario, dir) = (scenario.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || generate(&scenario, seed, &dir))
        .await
        .context("generating the demo district")?
}

/// Publishes the readings of a district already generated into `dir` (see
/// [`play`]); `flats` is reported back in [`Fed`].
pub async fn publish(
    scenario: &Scenario,
    flats: u32,
    dir: &Path,
    broker: SocketAddr,
    now_ms: i64,
    shutdown: CancellationToken,
) -> anyhow::Result<Fed> {
    let end_ms = scenario.start_day().unwrap_or(0) * DAY_MS
        - i64::from(scenario.utc_offset_min) * 60_000
        + i64::from(scenario.days) * DAY_MS;
    let shift_ms = (now_ms - end_ms).div_euclid(DAY_MS) * DAY_MS;

    let mut opts = MqttOptions::new(
        format!("gridwatch-demo-district-{}", std::process::id()),
        broker.ip().to_string(),
        broker.port(),
    );
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    let driver_stop = shutdown.clone();
    let driver = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = driver_stop.cancelled() => return,
                r = eventloop.poll() => if r.is_err() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                },
            }
        }
    });
    let path = dir.join("recording.jsonl");
    let file = std::fs::File::open(&path)
        .with_context(|| format!("opening the demo district's {}", path.display()))?;
    let topics = Topics::default();
    let mut fed = Fed {
        flats,
        ..Fed::default()
    };
    let result = async {
        for record in RecordReader::new(std::io::BufReader::new(file)) {
            let record = record.with_context(|| format!("reading {}", path.display()))?;
            if shutdown.is_cancelled() {
                fed.stopped_early = true;
                break;
            }
            let (topic, payload) = match record {
                Record::Reading(mut r) => {
                    r.ts.0 += shift_ms;
                    fed.readings += 1;
                    (
                        topics.reading(r.site.as_str(), r.gateway.as_str(), r.device.as_str()),
                        codec::encode(&r).context("encoding a district reading")?,
                    )
                }
                Record::Event(mut e) => {
                    e.ts.0 += shift_ms;
                    fed.events += 1;
                    (
                        topics.event(e.site.as_str(), e.gateway.as_str(), e.device.as_str()),
                        codec::encode(&e).context("encoding a district sighting")?,
                    )
                }
            };
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await
                .context("publishing a district reading or sighting to the demo broker")?;
            if (fed.readings + fed.events).is_multiple_of(BATCH) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        anyhow::Ok(())
    }
    .await;
    // Give the last publications time to leave before the connection goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = client.disconnect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    driver.abort();
    result.map(|()| fed)
}
