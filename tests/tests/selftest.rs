//! `selftest` against the profile-driven meter simulator (the one behind
//! `gridwatch-sim meter`): a pile, an SDM120 and a DTSU666 at mixed unit ids
//! behind one Modbus TCP address, as behind a TCP-to-RS-485 converter, and
//! a real Mosquitto. Every device passes with one read and no write; a unit
//! id nothing answers fails and is named.

use gridwatch_gateway::cli::selftest::{checks, Options, Status};
use gridwatch_gateway::config::GatewayConfig;
use gridwatch_tests::meters::ServedMeters;
use gridwatch_tests::{Mosquitto, TempDir};
use std::time::Duration;

const LINE: [(u8, &str); 3] = [
    (1, "gridwatch-ebp12"),
    (3, "eastron-sdm120"),
    (5, "chint-dtsu666"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_meter_answers_and_a_missing_unit_is_named() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let meters = ServedMeters::start(&LINE).await;
    let (port, control) = (meters.port, meters.control.clone());

    let outbox = TempDir::new("selftest-outbox");
    let mut text = format!(
        "[gateway]\nid = \"gw-st\"\nsite = \"yard-t\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\n\
         [outbox]\ndir = \"{}\"\n",
        broker.port(),
        outbox.path().display()
    );
    // Unit 7 is not on the line.
    for (unit, profile) in LINE.iter().copied().chain([(7, "eastron-sdm120")]) {
        text.push_str(&format!(
            "[[devices]]\nid = \"m{unit}\"\nprofile = \"{profile}\"\nprotocol = \"modbus_tcp\"\n\
             host = \"127.0.0.1\"\nport = {port}\nunit_id = {unit}\ntimeout_ms = 500\n"
        ));
    }
    let config = GatewayConfig::from_toml_str(&text, "selftest.toml")
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let options = Options {
        json: false,
        outputs: false,
        min_free_mb: 1,
        timeout: Duration::from_secs(2),
    };
    let report = checks(&config, &options).await;
    let status = |name: &str| {
        report
            .iter()
            .find(|c| c.check == name)
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    for (unit, _) in LINE {
        let c = status(&format!("device m{unit}"));
        assert_eq!(c.status, Status::Pass, "{c:?}");
    }
    let missing = status("device m7");
    assert_eq!(missing.status, Status::Fail, "{missing:?}");
    assert!(missing.detail.contains("unit 7"), "{missing:?}");
    assert_eq!(status("mqtt").status, Status::Pass, "{report:?}");
    assert_eq!(status("outbox").status, Status::Pass, "{report:?}");
    assert_eq!(control.writes(), 0, "selftest never writes to a device");

    meters.stop().await;
}
