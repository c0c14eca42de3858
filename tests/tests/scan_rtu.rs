//! `scan --port` over Modbus RTU against the profile-driven devices on a
//! simulated RS-485 line (a pseudo-terminal): units at mixed ids, two set
//! to 19 200 baud and one to 9600, are each found at their own speed among
//! the settings tried, matched to the right profile, and no write request
//! ever reaches the line.
//!
//! A pty carries the speed the gateway sets but not its parity (Linux drops
//! a pseudo-terminal's parity bit), so the simulator tells baud rates apart
//! and every parity tried at the right speed is heard: this test checks the
//! baud rate a unit is found at, not its parity.

use gridwatch_gateway::bus::modbus_rtu::Parity;
use gridwatch_gateway::profile::{ProfileLibrary, BUILT_IN};
use gridwatch_gateway::scan::rtu::{bus_tables, scan_rtu, LineSetting};
use gridwatch_simulators::meter::{self, Behaviour, Control, MeterModel, SharedMeter};
use gridwatch_simulators::rtu::{self, LineControl, PtyLine};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Unit id, profile, and the baud rate the unit was set to.
const LINE: [(u8, &str, u32); 3] = [
    (1, "gridwatch-ebp12", 19_200),
    (3, "eastron-sdm120", 19_200),
    (5, "chint-dtsu666", 9_600),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_each_unit_at_its_baud_rate_with_its_profile_and_never_writes() {
    let units: meter::Units = Arc::new(
        LINE.iter()
            .map(|&(id, profile, _)| {
                let p = ProfileLibrary::built_in().get(profile).expect("built-in");
                let mut m = MeterModel::new(p, u64::from(id));
                m.step(3_600_000);
                (id, SharedMeter::new(m))
            })
            .collect::<BTreeMap<_, _>>(),
    );
    let meter_control = Control::new(Behaviour::Normal);
    let service = meter::MeterService::new(units.clone(), meter_control.clone());
    let services: BTreeMap<u8, _> = units.keys().map(|&u| (u, service.clone())).collect();
    let line = PtyLine::open().expect("open a pseudo-terminal");
    let path = line.path().to_owned();
    let control = LineControl::default();
    for &(id, _, baud) in &LINE {
        control.set_baud(id, baud);
    }
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(rtu::serve(
        line,
        19_200,
        services,
        control.clone(),
        shutdown.clone(),
    ));

    let mut library = ProfileLibrary::built_in();
    let profiles: Vec<_> = BUILT_IN
        .iter()
        .map(|(name, _)| library.get(name).expect("built-in profile"))
        .collect();
    // As `--baud 9600,19200 --parity N,E`.
    let settings: Vec<LineSetting> = [9_600, 19_200]
        .into_iter()
        .flat_map(|baud| {
            [Parity::None, Parity::Even]
                .into_iter()
                .map(move |parity| LineSetting { baud, parity })
        })
        .collect();
    let found = scan_rtu(
        &path,
        &settings,
        1..=8,
        &profiles,
        Duration::from_millis(100),
    )
    .await;

    let mut got: Vec<(u8, String, u32, f64)> = found
        .iter()
        .map(|f| {
            let best = f.found.best.as_ref().expect("every simulated unit matches");
            (
                f.found.unit_id,
                best.model.clone(),
                f.setting.baud,
                best.confidence,
            )
        })
        .collect();
    got.sort_by_key(|g| g.0);
    assert_eq!(
        got.iter()
            .map(|(u, m, b, _)| (*u, m.as_str(), *b))
            .collect::<Vec<_>>(),
        LINE.to_vec(),
        "{got:?}"
    );
    assert!(got.iter().all(|(_, _, _, c)| *c >= 0.8), "{got:?}");
    // Each unit was asked at the wrong speed too, and did not hear it.
    assert!(control.bad_frames() > 0);
    assert_eq!(control.writes(), 0, "a scan never writes");
    assert_eq!(meter_control.writes(), 0, "a scan never writes");

    // The found devices make a config that `check` accepts: one bus at the
    // setting most units answered at, the odd one out as a comment.
    let mut config =
        String::from("[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n");
    let tables = bus_tables(&found, &path, 0.5);
    config.push_str(&tables);
    let cfg = gridwatch_gateway::config::GatewayConfig::from_toml_str(&config, "scan.toml")
        .unwrap_or_else(|e| panic!("{e}\n{config}"));
    assert_eq!(cfg.devices.len(), 2, "{config}");
    assert_eq!(cfg.bus("rs485-19200-8n1").map(|b| b.baud), Some(19_200));
    assert!(tables.contains("at 9600 8N1, not 19200 8N1"), "{tables}");

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
}
