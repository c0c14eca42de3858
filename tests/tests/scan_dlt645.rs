//! `scan --port DEV --protocol dlt645` against the simulated DL/T 645 line of
//! `gridwatch-sim dlt645` over a real pseudo-terminal: the one meter on the
//! line is found by the read-address request to the wildcard address, with
//! its phases and energy, and the config table appended for it is one the
//! gateway runs; an empty line finds nothing and says what each baud rate
//! gave.

use gridwatch_dlt645::Address;
use gridwatch_gateway::config::{GatewayConfig, Transport};
use gridwatch_gateway::scan::dlt645::{device_table, scan_dlt645};
use gridwatch_simulators::dlt645::{Line, LineTiming, Meter, PtyLine, SharedLine};
use gridwatch_telemetry::{ManualClock, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn line_of(meters: Vec<Meter>, shutdown: &CancellationToken) -> PtyLine {
    let line: SharedLine = Arc::new(Mutex::new(Line::new(meters)));
    let timing = LineTiming {
        pace: false,
        turnaround: Duration::from_millis(2),
        ..LineTiming::default()
    };
    PtyLine::open(
        line,
        Arc::new(ManualClock::new(Timestamp(1_764_000_000_000))),
        timing,
        shutdown.clone(),
    )
    .expect("a pseudo-terminal pair")
}

#[tokio::test]
async fn the_meter_on_a_line_is_found_with_its_address_phases_and_energy() {
    let shutdown = CancellationToken::new();
    let address = Address::parse("210987654321").expect("address");
    let pty = line_of(vec![Meter::new(address, 3, 4321.5, 3.0)], &shutdown);
    let (found, notes) = scan_dlt645(pty.path(), &[], Duration::from_millis(500))
        .await
        .expect("the port opens");
    let found = found.unwrap_or_else(|| panic!("no meter found: {notes:?}"));
    assert_eq!(found.address, address);
    assert_eq!((found.baud, found.phases), (2400, 3));
    let energy = found.energy_kwh.expect("energy read");
    assert!((energy - 4321.5).abs() < 0.01, "{energy}");
    assert!(found.voltage_v.is_some_and(|v| v > 100.0));

    let text = format!(
        "[gateway]\nid = \"gw\"\nsite = \"s\"\n[mqtt]\nhost = \"127.0.0.1\"\n{}",
        device_table(&found, pty.path())
    );
    let config = GatewayConfig::from_toml_str(&text, "scan.toml").expect("a config it runs");
    assert!(matches!(
        &config.devices[0].transport,
        Transport::Dlt645 { address: a, phases: 3, baud: 2400, .. } if *a == address
    ));
    shutdown.cancel();
}

#[tokio::test]
async fn a_single_phase_meter_is_told_from_a_three_phase_one() {
    let shutdown = CancellationToken::new();
    let address = Address::parse("000000000007").expect("address");
    let pty = line_of(vec![Meter::new(address, 1, 10.0, 1.0)], &shutdown);
    let (found, _) = scan_dlt645(pty.path(), &[2400], Duration::from_millis(500))
        .await
        .expect("the port opens");
    assert_eq!(found.map(|f| (f.address, f.phases)), Some((address, 1)));
    shutdown.cancel();
}

#[tokio::test]
async fn an_empty_line_finds_nothing_and_says_so_per_baud_rate() {
    let shutdown = CancellationToken::new();
    let pty = line_of(vec![], &shutdown);
    let (found, notes) = scan_dlt645(pty.path(), &[2400, 9600], Duration::from_millis(200))
        .await
        .expect("the port opens");
    assert_eq!(found, None);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("2400 baud:") && notes[1].starts_with("9600 baud:"));
    let missing = scan_dlt645(
        std::path::Path::new("/dev/no-such-port"),
        &[2400],
        Duration::from_millis(100),
    )
    .await;
    assert!(missing.is_err_and(|e| e.contains("/dev/no-such-port")));
    shutdown.cancel();
}
