use crate::config::tests::err;
use crate::config::{GatewayConfig, Transport};
use gridwatch_cjt188::{Address, MeterType};
use gridwatch_telemetry::DeviceKind;

const HEAD: &str = "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"h\"\n";

/// A config with one meter (lines 6-11) whose table ends with `extra`.
fn meter(extra: &str) -> String {
    format!(
        "{HEAD}[[devices]]\nid = \"wm-1\"\nprotocol = \"cjt188\"\n\
         serial_port = \"/dev/ttyUSB1\"\nmeter_address = \"00000000000001\"\n\
         meter_type = \"cold_water\"\n{extra}"
    )
}

#[test]
fn a_meter_needs_port_address_and_type() {
    let cfg = GatewayConfig::from_toml_str(&meter(""), "gw.toml").unwrap();
    let d = &cfg.devices[0];
    assert_eq!(
        d.transport,
        Transport::Cjt188 {
            serial_port: "/dev/ttyUSB1".into(),
            baud: 2400,
            meter_type: MeterType::COLD_WATER,
            address: Address([1, 0, 0, 0, 0, 0, 0]),
            preamble: 4,
            register_max_milli: None,
        }
    );
    assert_eq!(d.profile.kind, DeviceKind::WaterMeter);
    assert_eq!(d.profile.model, "cjt188-water");
    assert_eq!(
        d.transport.describe(),
        "cjt188 /dev/ttyUSB1 at 2400 baud 8E1, meter 00000000000001 (type 10H)"
    );
    let reading = cfg.device_stamp(d, 1).reading(
        gridwatch_telemetry::Timestamp(0),
        crate::devices::Measurement {
            kind: DeviceKind::WaterMeter,
            socket: None,
            values: Default::default(),
            flat: None,
        },
    );
    assert_eq!(reading.meter_serial.as_deref(), Some("00000000000001"));
    let heat = meter("register_max = 99999.999\nbaud = 9600\nwake_up_bytes = 0\n")
        .replace("cold_water", "heat");
    let cfg = GatewayConfig::from_toml_str(&heat, "gw.toml").unwrap();
    assert_eq!(cfg.devices[0].profile.kind, DeviceKind::HeatMeter);
    assert!(matches!(
        cfg.devices[0].transport,
        Transport::Cjt188 {
            baud: 9600,
            preamble: 0,
            register_max_milli: Some(99_999_999),
            meter_type: MeterType::HEAT,
            ..
        }
    ));
    let gas = GatewayConfig::from_toml_str(&meter("").replace("cold_water", "30"), "gw.toml");
    assert_eq!(gas.unwrap().devices[0].profile.kind, DeviceKind::GasMeter);
}

#[test]
fn bad_values_are_named_with_their_line() {
    let e = err(&meter("").replace("cold_water", "steam"));
    assert_eq!(e.field, "devices[0].meter_type");
    assert_eq!(e.location.line, 11);
    assert!(e.message.contains("cold_water"), "{e}");
    let e = err(&meter("").replace("cold_water", "40"));
    assert_eq!(e.field, "devices[0].meter_type");
    let e = err(&meter("").replace("00000000000001", "000000000001"));
    assert_eq!(e.field, "devices[0].meter_address");
    assert_eq!(e.location.line, 10);
    assert!(e.message.contains("14 digits"), "{e}");
    let e = err(&meter("").replace("00000000000001", "AAAAAAAAAAAAAA"));
    assert!(e.message.contains("wildcards"), "{e}");
    let e = err(&meter("register_max = -1.0\n"));
    assert_eq!(e.field, "devices[0].register_max");
    assert_eq!(e.location.line, 12);
    let e = err(&meter("baud = 600\n"));
    assert_eq!(e.field, "devices[0].baud");
    assert!(e.message.contains("[1200, 2400, 4800, 9600, 19200]"), "{e}");
}

#[test]
fn missing_and_foreign_fields_are_refused() {
    let e = err(&meter("").replace("meter_type = \"cold_water\"\n", ""));
    assert_eq!(e.field, "devices[0].meter_type");
    assert!(e.message.contains("needs this field"), "{e}");
    let e = err(&meter("phases = 3\n"));
    assert_eq!(e.field, "devices[0].phases");
    let e = err(&meter("profile = \"tuf-2000m\"\n"));
    assert!(e.message.contains("needs no profile"), "{e}");
    let e = err(&format!(
        "{HEAD}[[devices]]\nid = \"m\"\nprotocol = \"dlt645\"\nserial_port = \"/dev/ttyUSB0\"\n\
         meter_address = \"000000000001\"\nmeter_type = \"gas\"\n"
    ));
    assert_eq!(e.field, "devices[0].meter_type");
    assert!(
        e.message.contains("not used with protocol = \"dlt645\""),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}[[devices]]\nid = \"p\"\nprofile = \"gridwatch-ebp12\"\nprotocol = \"modbus_tcp\"\n\
         host = \"h\"\nregister_max = 9999.0\n"
    ));
    assert_eq!(e.field, "devices[0].register_max");
}

#[test]
fn meters_on_one_port_share_baud_and_protocol_and_differ_in_address() {
    let second = |address: &str, extra: &str| {
        format!(
            "[[devices]]\nid = \"gm-1\"\nprotocol = \"cjt188\"\nserial_port = \"/dev/ttyUSB1\"\n\
             meter_address = \"{address}\"\nmeter_type = \"gas\"\n{extra}"
        )
    };
    let ok = format!("{}{}", meter(""), second("00000000000002", ""));
    assert_eq!(
        GatewayConfig::from_toml_str(&ok, "gw.toml")
            .unwrap()
            .devices
            .len(),
        2
    );
    let e = err(&format!("{}{}", meter(""), second("00000000000001", "")));
    assert_eq!(e.field, "devices[1].meter_address");
    assert!(e.message.contains("cannot share an address"), "{e}");
    let e = err(&format!(
        "{}{}",
        meter(""),
        second("00000000000002", "baud = 9600\n")
    ));
    assert_eq!(e.field, "devices[1].baud");
    let dlt = "[[devices]]\nid = \"em-1\"\nprotocol = \"dlt645\"\nserial_port = \"/dev/ttyUSB1\"\n\
               meter_address = \"000000000001\"\n";
    let e = err(&format!("{}{dlt}", meter("")));
    assert_eq!(e.field, "devices[0].serial_port");
    assert!(e.message.contains("one line carries one protocol"), "{e}");
}

#[test]
fn report_by_exception_knows_the_meters_values() {
    let cfg = GatewayConfig::from_toml_str(
        &meter("max_silence_ms = 3600000\ndeadband = { volume_m3 = 0.01 }\n"),
        "gw.toml",
    )
    .unwrap();
    assert!(cfg.devices[0].report.is_some());
    let e = err(&meter(
        "max_silence_ms = 3600000\ndeadband = { heat_kwh = 1.0 }\n",
    ));
    assert!(e.message.contains("cjt188-water has no value"), "{e}");
}

#[test]
fn the_shipped_example_loads() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/gateway-cjt188.example.toml"
    );
    let cfg = GatewayConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<_> = cfg.devices.iter().map(|d| d.profile.kind).collect();
    assert_eq!(
        kinds,
        [
            DeviceKind::WaterMeter,
            DeviceKind::GasMeter,
            DeviceKind::HeatMeter
        ]
    );
}
