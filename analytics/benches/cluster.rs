//! City scale on this machine: a generated district fed into a partitioned
//! JetStream stream (a nats-server of the bench's own) and judged by 1, 2
//! and 4 worker processes (the release binary) with leases, checkpoints
//! and alerts in a PostgreSQL of the bench's own.
//!
//! `cargo bench -p gridwatch-analytics --bench cluster` prints, per worker
//! count: the feed rate into the stream, the time for the workers to drain
//! it (records/s in all and per worker), each worker's peak resident memory
//! and that per flat, and — with two or more workers — the recovery time:
//! from a SIGKILL of one worker until every partition it owned is owned
//! again and caught up. Sizes: `GRIDWATCH_BENCH_SITES` (default 16) sites of
//! 24 flats, `GRIDWATCH_BENCH_DAYS` (default 7) days. docs/BENCHMARKS.md
//! has the figures.

use async_nats::jetstream;
use gridwatch_analytics::cluster::{pg, stream};
use gridwatch_simulators::district::{generate, Scenario};
use gridwatch_testkit::{NatsOptions, NatsServer, Postgres, TempDir};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 8;
const STREAM: &str = "GRIDWATCH";

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn drained(client: &tokio_postgres::Client, since: Instant, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(rows) = pg::progress(client, STREAM).await {
            let age = since.elapsed().as_millis() as i64;
            if rows.len() == PARTITIONS as usize
                && rows.iter().all(|r| r.pending == Some(0) && r.age_ms < age)
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn main() {
    let sites = env_or("GRIDWATCH_BENCH_SITES", 16);
    let days = env_or("GRIDWATCH_BENCH_DAYS", 7);
    let dir = TempDir::new("bench-cluster");
    let scenario = Scenario {
        name: "bench-cluster".into(),
        days,
        sites,
        buildings_per_site: 1,
        floors: 4,
        flats_per_floor: 6,
        ..Scenario::default()
    };
    let summary = generate(&scenario, 11, dir.path()).expect("district generated");
    let records = summary.readings + summary.events;
    println!(
        "district: {sites} sites, {} flats, {days} days, {records} records, {PARTITIONS} partitions",
        summary.flats
    );
    let recording = dir.path().join("recording.jsonl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    for workers in [1u32, 2, 4] {
        let Some(nats) = NatsServer::start(NatsOptions {
            mqtt: false,
            mappings: stream::partition_mappings("gw", PARTITIONS),
        }) else {
            return;
        };
        let Some(postgres) = Postgres::start() else {
            return;
        };
        rt.block_on(async {
            let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
            stream::ensure_stream(&js, STREAM).await.unwrap();
            let t = Instant::now();
            let input = std::io::BufReader::new(std::fs::File::open(&recording).unwrap());
            let fed = stream::publish_recording(&js, "gw", input, 0, usize::MAX)
                .await
                .unwrap();
            let feed_s = t.elapsed().as_secs_f64();
            let lost = tokio_util::sync::CancellationToken::new();
            let client = pg::connect(&postgres.url(), lost).await.unwrap();
            let start = Instant::now();
            let mut children: Vec<Child> = (0..workers)
                .map(|i| {
                    Command::new(env!("CARGO_BIN_EXE_gridwatch-analytics"))
                        .args(["worker", "--nats", &nats.url(), "--postgres", &postgres.url()])
                        .args(["--partitions", &PARTITIONS.to_string()])
                        .args(["--name", &format!("w{i}"), "--register"])
                        .arg(dir.path().join("register.json"))
                        .env("RUST_LOG", "warn")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("worker starts")
                })
                .collect();
            assert!(drained(&client, start, Duration::from_secs(1800)).await, "drained");
            let drain_s = start.elapsed().as_secs_f64();
            let rss: Vec<u64> = children.iter().map(|c| peak_rss_kb(c.id())).collect();
            let total_kb: u64 = rss.iter().sum();
            let rate = fed.published as f64 / drain_s;
            println!(
                "{workers} worker(s): fed {} msgs in {feed_s:.1} s ({:.0}/s); drained in {drain_s:.1} s: \
                 {rate:.0} records/s, {:.0} per worker; peak RSS per worker {:?} kB, \
                 {:.0} bytes per flat in all",
                fed.published,
                fed.published as f64 / feed_s,
                rate / workers as f64,
                rss,
                total_kb as f64 * 1024.0 / summary.flats as f64
            );
            if workers >= 2 {
                let before = pg::progress(&client, STREAM).await.unwrap();
                let victim: Vec<u32> = before
                    .iter()
                    .filter(|r| r.owner == "w0")
                    .map(|r| r.partition)
                    .collect();
                let killed = Instant::now();
                children[0].kill().unwrap();
                children[0].wait().unwrap();
                let mut recovered = None;
                while killed.elapsed() < Duration::from_secs(120) {
                    let rows = pg::progress(&client, STREAM).await.unwrap();
                    let age = killed.elapsed().as_millis() as i64;
                    let back = victim.iter().all(|p| {
                        rows.iter().any(|r| {
                            r.partition == *p && r.owner != "w0" && r.pending == Some(0) && r.age_ms < age
                        })
                    });
                    if back {
                        recovered = Some(killed.elapsed());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                println!(
                    "  recovery after SIGKILL of w0 (partitions {victim:?}): {}",
                    recovered.map_or("not within 120 s".into(), |d| format!("{:.2} s", d.as_secs_f64()))
                );
            }
            for c in &mut children {
                let _ = c.kill();
                let _ = c.wait();
            }
        });
    }
}
