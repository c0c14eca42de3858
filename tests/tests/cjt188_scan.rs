//! `scan --protocol cjt188` against simulated meters sharing one
//! pseudo-terminal line: wildcard address reads collide when several
//! meters answer (the simulator ANDs their bytes, as the bus does), the
//! search narrows the wildcard byte by byte, and every meter is found with
//! its type, two of them only after narrowing a second byte. Nothing is
//! ever written to a meter.

use gridwatch_cjt188::{Address, MeterType};
use gridwatch_gateway::bus::cjt188::Cjt188Line;
use gridwatch_gateway::scan::cjt188::{scan, FoundMeter};
use gridwatch_simulators::cjt188::{Behaviour, Change, Line, Meter, PtyLine, SharedLine};
use gridwatch_simulators::dlt645::LineTiming;
use gridwatch_telemetry::{ManualClock, Timestamp};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn address(text: &str) -> Address {
    Address::parse(text).unwrap()
}

/// Two water meters whose last bytes are equal (101 and 201), a gas and a
/// heat meter, and a silent water meter that is there but dead.
const METERS: [(MeterType, &str); 5] = [
    (MeterType::COLD_WATER, "00000000000101"),
    (MeterType::COLD_WATER, "00000000000201"),
    (MeterType::GAS, "00000000000002"),
    (MeterType::HEAT, "00000000000003"),
    (MeterType::COLD_WATER, "00000000000004"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_finds_every_meter_on_a_shared_line_by_narrowing_and_never_writes() {
    let clock = ManualClock::new(Timestamp(1_764_000_000_000));
    let shutdown = CancellationToken::new();
    let line: SharedLine = Arc::new(Mutex::new(Line::new(
        METERS
            .iter()
            .map(|(t, a)| Meter::new(*t, address(a), 100.0, 0.1))
            .collect(),
    )));
    line.lock().unwrap().apply(
        Some(address("00000000000004")),
        Change::Behaviour(Behaviour::Silent),
    );
    let timing = LineTiming {
        pace: false,
        turnaround: Duration::from_millis(2),
        ..LineTiming::default()
    };
    let pty = PtyLine::open(line.clone(), Arc::new(clock), timing, shutdown.clone())
        .expect("a pseudo-terminal pair");

    let bus = Cjt188Line::new(pty.path().to_owned(), 19_200);
    let mut heard = Vec::new();
    let scanned = scan(&bus, 4, Duration::from_millis(40), |m: &FoundMeter| {
        heard.push(*m)
    })
    .await
    .expect("the scan runs");

    let found: Vec<(MeterType, String)> = scanned
        .meters
        .iter()
        .map(|m| (m.meter_type, m.address.to_string()))
        .collect();
    assert_eq!(
        found,
        [
            (MeterType::GAS, "00000000000002".to_owned()),
            (MeterType::HEAT, "00000000000003".to_owned()),
            (MeterType::COLD_WATER, "00000000000101".to_owned()),
            (MeterType::COLD_WATER, "00000000000201".to_owned()),
        ]
    );
    assert_eq!(heard.len(), 4, "each meter reported as found: {heard:?}");
    assert!(scanned.shared.is_empty(), "{:?}", scanned.shared);
    // The whole line, A0's 100 values, A1's under 01; the rest confirmations.
    assert_eq!(scanned.asked, 1 + 100 + 100);
    let (writes, answered) = {
        let l = line.lock().unwrap();
        (l.writes, l.answered)
    };
    assert_eq!(writes, 0, "a scan only reads");
    // Collisions were heard and resolved, not avoided.
    assert!(answered > 4, "{answered}");
    shutdown.cancel();
    pty.join().await.unwrap();
}
