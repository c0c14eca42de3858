//! `scan` over Modbus TCP against the profile-driven simulator: units at
//! mixed ids behind one address (as behind a TCP-to-RS-485 gateway) are
//! found, matched to the right profile, and no write reaches the devices.

use gridwatch_gateway::profile::{ProfileLibrary, BUILT_IN};
use gridwatch_gateway::scan::{device_tables, scan_tcp};
use gridwatch_tests::meters::ServedMeters;
use std::time::Duration;

const LINE: [(u8, &str); 3] = [
    (1, "gridwatch-ebp12"),
    (3, "eastron-sdm120"),
    (5, "chint-dtsu666"),
];

#[tokio::test]
async fn scan_finds_every_unit_with_its_profile_and_never_writes() {
    let meters = ServedMeters::start(&LINE).await;
    let (port, control) = (meters.port, meters.control.clone());

    let mut library = ProfileLibrary::built_in();
    let profiles: Vec<_> = BUILT_IN
        .iter()
        .map(|(name, _)| library.get(name).expect("built-in profile"))
        .collect();
    let found = scan_tcp(
        "127.0.0.1",
        port,
        1..=8,
        &profiles,
        Duration::from_millis(500),
    )
    .await;

    let got: Vec<(u8, String, f64)> = found
        .iter()
        .map(|f| {
            let best = f.best.as_ref().expect("every simulated unit matches");
            (f.unit_id, best.model.clone(), best.confidence)
        })
        .collect();
    assert_eq!(
        got.iter()
            .map(|(u, m, _)| (*u, m.as_str()))
            .collect::<Vec<_>>(),
        LINE.to_vec(),
        "{got:?}"
    );
    // The pile's map version is an identity check; the meters have none.
    assert_eq!(got[0].2, 1.0);
    assert!(got.iter().all(|(_, _, c)| *c >= 0.8), "{got:?}");
    assert_eq!(control.writes(), 0, "a scan never writes");

    // The found devices make a config that `check` accepts.
    let mut config =
        String::from("[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n");
    config.push_str(&device_tables(&found, "127.0.0.1", port, 0.5));
    let cfg = gridwatch_gateway::config::GatewayConfig::from_toml_str(&config, "scan.toml")
        .unwrap_or_else(|e| panic!("{e}\n{config}"));
    assert_eq!(cfg.devices.len(), 3);

    meters.stop().await;
}
