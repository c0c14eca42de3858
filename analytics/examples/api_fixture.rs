//! Writes an alert store for the API load measurement (docs/BENCHMARKS.md):
//! `N` open overcurrent cases spread over the sites of
//! config/directory.example.toml (cells cell-07 and cell-08), each folded a
//! few times, so the lists the dashboard asks for look like a busy district.
//!
//! ```sh
//! cargo run --release -p gridwatch-analytics --example api_fixture -- /tmp/gw-load/alerts.db 360
//! ```

use gridwatch_analytics::lifecycle::AlertsConfig;
use gridwatch_analytics::store::Store;
use gridwatch_telemetry::{Alert, AlertState, Evidence, Severity, Timestamp};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: api_fixture STORE.db [CASES]"))?;
    let n: i64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(360);
    let store = Store::open_file(std::path::Path::new(&path))?;
    let config = AlertsConfig::default();
    let sites = [
        ("yard-a", "cell-07"),
        ("yard-b", "cell-07"),
        ("yard-c", "cell-08"),
    ];
    let t0 = 1_764_000_000_000_i64;
    for i in 0..n {
        let (site, cell) = sites[(i % 3) as usize];
        let entity = format!("{site}/gw-{}/pile-{}#{}", i % 7, i / 12, i % 12 + 1);
        for repeat in 0..3 {
            let ts = t0 + i * 60_000 + repeat * 1_000;
            let peak = 5.6 + (i % 20) as f64 * 0.1;
            let mut evidence = Evidence {
                window_start: Timestamp(ts - 30_000),
                window_end: Timestamp(ts),
                ..Evidence::default()
            };
            evidence.values.insert("peak".into(), peak);
            evidence.thresholds.insert("overcurrent_a".into(), 5.5);
            store.record(
                &Alert {
                    schema: 1,
                    id: format!("socket_overcurrent:{entity}:{ts}"),
                    rule: "socket_overcurrent".into(),
                    entity: entity.clone(),
                    cell: cell.into(),
                    site: site.into(),
                    severity: Severity::Critical,
                    state: AlertState::Open,
                    ts: Timestamp(ts),
                    title: format!("Overcurrent on {entity}: {peak:.2} A for 30 s (limit 5.5 A)"),
                    summary: format!(
                        "{entity} drew {peak:.2} A for 30 s (limit 5.5 A). Cut the socket and inspect."
                    ),
                    evidence,
                },
                &config,
            )?;
        }
    }
    println!("{n} cases in {path}");
    Ok(())
}
