//! Replay throughput and memory per flat, without a file: a synthetic
//! building stream (electricity every 5 min, water and gas hourly, per flat)
//! generated in memory and fed through the whole pipeline.
//!
//! `cargo bench -p gridwatch-analytics --bench replay` prints readings/s on one
//! core through all detectors and bytes of state per monitored flat. (The
//! district recording's figure, with JSON parsing, comes from
//! `gridwatch-analytics replay`; docs/BENCHMARKS.md has both.)

use gridwatch_analytics::register::{FlatEntry, Register, RegisterFile};
use gridwatch_analytics::{AnalyticsConfig, Pipeline};
use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
use std::time::Instant;

const FLATS: usize = 2_000;
const DAYS: i64 = 7;
const T0: i64 = 1_772_380_800_000;

fn stream() -> Vec<Reading> {
    let mut out = Vec::with_capacity(FLATS * DAYS as usize * (288 + 48));
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut noise = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for step in 0..DAYS * 288 {
        let ts = T0 + step * 300_000;
        for f in 0..FLATS {
            let unit = format!("{:04}", f % 100);
            let building = format!("b{:03}", f / 100);
            // One gateway per building and one device per meter, each with
            // its own sequence, as a district has: the pipeline judges a
            // (gateway, device, seq) once, so shared ids would be dropped as
            // repeats and the benchmark would time the refusals.
            let gateway = format!("gw-b{:03}", f / 100);
            let mut r = Reading::new(
                Timestamp(ts),
                gateway.as_str(),
                format!("em-{f:04}").as_str(),
                DeviceKind::ElectricityMeter,
                step as u64,
            );
            r.site = "s01".into();
            r.building = Some(building.clone());
            r.unit = Some(unit.clone());
            r.values.insert("power_w".into(), 80.0 + 400.0 * noise());
            out.push(r);
            if step % 12 == 0 {
                for (kind, prefix, name, v) in [
                    (DeviceKind::WaterMeter, "wm", "flow_l", 10.0 * noise()),
                    (DeviceKind::GasMeter, "gm", "use_m3", 0.05 * noise()),
                ] {
                    let device = format!("{prefix}-{f:04}");
                    let mut r = Reading::new(
                        Timestamp(ts),
                        gateway.as_str(),
                        device.as_str(),
                        kind,
                        step as u64,
                    );
                    r.site = "s01".into();
                    r.building = Some(building.clone());
                    r.unit = Some(unit.clone());
                    r.values.insert(name.into(), v);
                    out.push(r);
                }
            }
        }
    }
    out
}

fn main() {
    let readings = stream();
    let register = Register::from_file(RegisterFile {
        flats: (0..FLATS)
            .map(|f| FlatEntry {
                flat: format!("s01/b{:03}/{:04}", f / 100, f % 100),
                occupants: 2,
                area_m2: 70.0,
                business: false,
                ..Default::default()
            })
            .collect(),
        tags: Vec::new(),
        meters: Vec::new(),
    });
    let config = AnalyticsConfig::default();
    let mut best = f64::MAX;
    let mut memory = None;
    for _ in 0..3 {
        let mut p = Pipeline::with_register(&config, register.clone());
        let t = Instant::now();
        let mut alerts = 0usize;
        for r in &readings {
            alerts += p.process(r).len();
        }
        best = best.min(t.elapsed().as_secs_f64());
        let stats = p.stats();
        let refused = stats.implausible + stats.unsynced + stats.over_quota + stats.repeats;
        assert_eq!(
            refused, 0,
            "the pipeline refused {refused} of the stream's readings ({stats:?}): the figure would time refusals, not detectors"
        );
        memory = Some((p.flat_memory(), alerts));
    }
    let (m, alerts) = memory.unwrap_or_default();
    assert_eq!(m.flats, FLATS, "every flat must hold state");
    println!(
        "replay (in memory, all detectors): {} readings of {FLATS} flats over {DAYS} days in {:.3} s = {:.0} readings/s; {alerts} alerts",
        readings.len(),
        best,
        readings.len() as f64 / best
    );
    println!(
        "flat state: {} flats, {} bytes = {:.0} bytes per flat",
        m.flats,
        m.bytes,
        m.per_flat()
    );
}
