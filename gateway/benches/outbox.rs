//! Outbox figures for docs/BENCHMARKS.md: append throughput with group
//! commit, bytes written per reading, and recovery time on start.
//!
//! ```sh
//! cargo bench -p gridwatch-gateway --bench outbox
//! ```

use gridwatch_gateway::outbox::{frame, Outbox, OutboxOptions};
use gridwatch_gateway::uplink::Record;
use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
use std::path::Path;

fn main() {
    divan::main();
}

/// A socket reading as the ebp12 pile produces it (11 values).
fn reading(seq: u64) -> Vec<u8> {
    let mut r = Reading::new(
        Timestamp(1_764_000_000_000 + seq as i64),
        "gw-yard-a",
        "pile-1",
        DeviceKind::ChargingSocket,
        seq,
    );
    r.site = gridwatch_telemetry::SiteId("yard-a".to_owned());
    r.building = Some("b1".into());
    r.socket = Some(3);
    for (name, v) in [
        ("state", 2.0),
        ("voltage_v", 230.1),
        ("current_a", 2.45),
        ("power_w", 563.7),
        ("energy_wh", 1234.5),
        ("temperature_c", 31.2),
        ("relay_on", 1.0),
        ("session_s", 3600.0),
        ("fault", 0.0),
        ("leakage_ma", 0.4),
        ("cp_duty", 0.0),
    ] {
        r.values.insert(name.into(), v);
    }
    Record::Reading(r).to_payload().unwrap()
}

fn options(dir: &Path) -> OutboxOptions {
    OutboxOptions {
        dir: dir.to_owned(),
        segment_bytes: 8 << 20,
        max_bytes: 1 << 34,
        max_age_ms: None,
    }
}

/// Appending one reading, with a group commit (fsync) every `N` records:
/// 1,000 is one second of a busy gateway at the default 1 s fsync interval.
#[divan::bench(args = [100, 1_000, 10_000], sample_count = 20, sample_size = 10_000)]
fn append_with_commit_every(bencher: divan::Bencher, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
    let payload = reading(1);
    let mut i = 0usize;
    bencher
        .counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| {
            o.append(&payload, Some(("pile-1", i as u64)), 0).unwrap();
            i += 1;
            if i % n == 0 {
                o.commit().unwrap();
            }
        });
    o.commit().unwrap();
    let per = o.stats().bytes_appended as f64 / i.max(1) as f64;
    eprintln!(
        "bytes appended per reading: {per:.0} (payload {}, record header {})",
        payload.len(),
        frame::HEADER_LEN
    );
}

/// Opening an outbox of 1,000,000 readings: every record's checksum is
/// verified and the sequence and cursor files are read.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn open_after_1m_records(bencher: divan::Bencher) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut o, _) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
        let payload = reading(1);
        for i in 0..1_000_000u64 {
            o.append(&payload, Some(("pile-1", i)), 0).unwrap();
            if i % 10_000 == 0 {
                o.commit().unwrap();
            }
        }
        o.commit().unwrap();
    }
    bencher.bench_local(|| {
        let (o, rec) = Outbox::open(options(dir.path()), &["mqtt"]).unwrap();
        assert_eq!(rec.records, 1_000_000);
        o
    });
}
