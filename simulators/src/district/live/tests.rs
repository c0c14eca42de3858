//! The live run's pure parts: buildings from the register, the gateway
//! config it writes, the default speed.

use super::*;
use gridwatch_analytics::register::FlatEntry;

fn register(flats: &[&str]) -> RegisterFile {
    RegisterFile {
        flats: flats
            .iter()
            .map(|f| FlatEntry {
                flat: (*f).to_owned(),
                occupants: 2,
                area_m2: 60.0,
                business: false,
                ..Default::default()
            })
            .collect(),
        tags: Vec::new(),
        meters: Vec::new(),
    }
}

#[test]
fn flats_group_into_buildings_and_a_cabinet_holds_at_most_247() {
    let b = buildings(&register(&["s01/b01/0101", "s01/b02/0101", "s01/b01/0102"])).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].flats, ["0101", "0102"]);
    assert_eq!((b[1].site.as_str(), b[1].id.as_str()), ("s01", "b02"));
    let many: Vec<String> = (0..248).map(|i| format!("s01/b01/{i:04}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = buildings(&register(&many)).err().unwrap().to_string();
    assert!(e.contains("248 flats") && e.contains("247"), "{e}");
    let e = buildings(&register(&["s01-b01-0101"]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("s01-b01-0101"), "{e}");
}

#[test]
fn the_gateway_config_is_valid_and_names_every_meter_of_every_flat() {
    let b = Building {
        site: "s01".into(),
        id: "b01".into(),
        flats: vec!["0101".into(), "0102".into()],
    };
    let cab = [
        Wiring::Cabinet(SocketAddr::from(([127, 0, 0, 1], 5001))),
        Wiring::Cabinet(SocketAddr::from(([127, 0, 0, 1], 5002))),
        Wiring::Cabinet(SocketAddr::from(([127, 0, 0, 1], 5003))),
    ];
    let text = gateway_toml(
        &b,
        SocketAddr::from(([127, 0, 0, 1], 1883)),
        &cab,
        &[104, 1248, 1248],
        Path::new("/tmp/outbox \"quoted\""),
    );
    let config = gridwatch_gateway::GatewayConfig::from_toml_str(&text, "test").unwrap();
    assert_eq!(config.devices.len(), 6);
    let d = config
        .devices
        .iter()
        .find(|d| d.id.as_str() == "wm-0102")
        .unwrap();
    assert_eq!(d.unit.as_deref(), Some("0102"));
    // The device inherits the gateway's building.
    assert_eq!(d.building, None);
    assert_eq!(config.gateway.building.as_deref(), Some("b01"));
}

#[test]
fn cjt188_water_and_gas_meters_get_their_own_lines_and_addresses() {
    let b = Building {
        site: "s01".into(),
        id: "b02".into(),
        flats: vec!["0101".into(), "0102".into()],
    };
    let addresses = |k| {
        (0..2)
            .map(|i| cjt188_line::meter_address(k, 1, i).unwrap())
            .collect::<Vec<_>>()
    };
    let wiring = [
        Wiring::Cabinet(SocketAddr::from(([127, 0, 0, 1], 5001))),
        Wiring::Cjt188(PathBuf::from("/dev/pts/7"), addresses(1)),
        Wiring::Cjt188(PathBuf::from("/dev/pts/8"), addresses(2)),
    ];
    let text = gateway_toml(
        &b,
        SocketAddr::from(([127, 0, 0, 1], 1883)),
        &wiring,
        &[104, 1248, 1248],
        Path::new("/tmp/outbox"),
    );
    let config = gridwatch_gateway::GatewayConfig::from_toml_str(&text, "test").unwrap();
    assert_eq!(config.devices.len(), 6);
    let transport = |id: &str| {
        let d = config.devices.iter().find(|d| d.id.as_str() == id).unwrap();
        (d.transport.describe(), d.unit.clone(), d.timeout())
    };
    let (gas, unit, timeout) = transport("gm-0102");
    assert_eq!(
        gas,
        "cjt188 /dev/pts/8 at 19200 baud 8E1, meter 20000200000002 (type 30H)"
    );
    assert_eq!(unit.as_deref(), Some("0102"));
    // 1248 ms between polls, two meters: 312 ms each at most.
    assert_eq!(timeout, Duration::from_millis(312));
    assert!(transport("wm-0101")
        .0
        .contains("meter 10000200000001 (type 10H)"));
    assert!(transport("em-0101").0.starts_with("modbus_tcp"));
}

#[test]
fn cjt188_needs_registers_in_hundredths_of_a_cubic_metre() {
    let fine = Scenario {
        water_register_step_l: Some(10.0),
        gas_register_step_m3: Some(0.01),
        ..Scenario::default()
    };
    assert!(check_scenario(&fine).is_ok());
    for bad in [
        Scenario::default(),
        Scenario {
            water_register_step_l: Some(1.0),
            ..fine.clone()
        },
        Scenario {
            gas_register_step_m3: Some(0.001),
            ..fine.clone()
        },
    ] {
        let e = check_scenario(&bad).unwrap_err().to_string();
        assert!(e.contains("water_register_step_l"), "{e}");
    }
    let swapped = Scenario {
        meter_replacement_rate: 0.1,
        ..fine
    };
    let e = check_scenario(&swapped).unwrap_err().to_string();
    assert!(e.contains("meter_replacement_rate"), "{e}");
}

#[test]
fn the_live_scenario_file_loads_and_fits_one_cabinet_per_building() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/scenarios/live.toml");
    let s = Scenario::load(path).unwrap();
    assert_eq!(s.flat_count(), 40);
    assert!((s.floors * s.flats_per_floor) as usize <= MAX_UNITS);
}

#[test]
fn default_speed_plays_a_day_in_about_30_s_unless_polls_get_too_fast() {
    assert_eq!(default_speed(&Scenario::default()), 2880.0);
    let fast = Scenario {
        electricity_interval_s: 60,
        ..Scenario::default()
    };
    assert_eq!(default_speed(&fast), 600.0);
}

#[test]
fn the_cjt188_live_scenario_file_loads_and_fits_cjt188_meters() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/scenarios/live-cjt188.toml"
    );
    let s = Scenario::load(path).unwrap();
    assert!(check_scenario(&s).is_ok());
}
