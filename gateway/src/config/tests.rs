use super::*;

const GOOD: &str = r#"[gateway]
id = "gw-yard-a"
site = "yard-a"

[mqtt]
host = "127.0.0.1"

[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
port = 5020
"#;

pub(super) fn err(text: &str) -> FieldError {
    match GatewayConfig::from_toml_str(text, "gw.toml") {
        Err(ConfigError::Invalid(e)) => e,
        Err(other) => panic!("expected a field error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn the_shipped_example_config_loads() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/gateway.example.toml"
    );
    let cfg = GatewayConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.gateway.id.as_str(), "gw-yard-a");
    assert_eq!(cfg.devices.len(), 1);
    assert_eq!(cfg.devices[0].profile.model, "gridwatch-ebp12");
    assert!(cfg.origin.ends_with("gateway.example.toml"));
}

#[test]
fn defaults_fill_what_is_left_out() {
    let cfg = GatewayConfig::from_toml_str(GOOD, "gw.toml").unwrap();
    assert_eq!(cfg.mqtt.port, DEFAULT_MQTT_PORT);
    assert_eq!(
        cfg.mqtt.client_id, "gw-yard-a",
        "client id defaults to the gateway id"
    );
    assert_eq!(cfg.mqtt.topic_prefix, "gw");
    assert_eq!(cfg.mqtt.keep_alive_s, DEFAULT_KEEP_ALIVE_S);
    let d = &cfg.devices[0];
    assert_eq!(
        d.transport,
        Transport::ModbusTcp {
            host: "127.0.0.1".into(),
            port: 5020,
            unit_id: 1
        }
    );
    assert_eq!(d.poll_interval_ms, DEFAULT_POLL_INTERVAL_MS);
    assert_eq!(d.timeout_ms, DEFAULT_TIMEOUT_MS);
    assert_eq!(d.max_gap_registers, 8, "from the profile");
    assert_eq!(
        cfg.topics().status("yard-a", "gw-yard-a"),
        "gw/yard-a/gw-yard-a/status"
    );
}

#[test]
fn a_missing_field_names_file_line_and_field() {
    let e = err(&GOOD.replace("host = \"127.0.0.1\"\n\n[[devices]]", "\n[[devices]]"));
    assert_eq!(e.location.origin, "gw.toml");
    assert_eq!(e.field, "mqtt");
    assert!(e.message.contains("missing field `host`"), "{e}");
    assert_eq!(e.location.line, 5, "{e}");
    assert!(e.to_string().starts_with("gw.toml:5:"), "{e}");
}

#[test]
fn a_wrong_type_names_file_line_and_field() {
    let e = err(&GOOD.replace("port = 5020", "port = \"5020\""));
    assert_eq!(e.field, "devices[0].port");
    assert_eq!(e.location.line, 13);
    assert!(e.message.contains("invalid type: string"), "{e}");
    let e = err(&GOOD.replace("port = 5020", "port = 70000"));
    assert_eq!(e.field, "devices[0].port");
}

#[test]
fn an_unknown_profile_lists_the_known_ones() {
    let e = err(&GOOD.replace("gridwatch-ebp12", "ebp-99"));
    assert_eq!(e.field, "devices[0].profile");
    assert_eq!((e.location.line, e.location.column), (10, 11));
    assert!(
        e.message.contains("unknown device profile \"ebp-99\""),
        "{e}"
    );
    assert!(e.message.contains("known profiles: chint-dtsu666, "), "{e}");
    assert!(e.message.contains(", gridwatch-ebp12, "), "{e}");
}

#[test]
fn a_duplicate_device_id_names_both_places() {
    let second = "\n[[devices]]\nid = \"pile-1\"\nprofile = \"gridwatch-ebp12\"\nprotocol = \"modbus_tcp\"\nhost = \"10.0.0.2\"\n";
    let e = err(&format!("{GOOD}{second}"));
    assert_eq!(e.field, "devices[1].id");
    assert_eq!(e.location.line, 16);
    assert!(
        e.message.contains("already used by devices[0] at line 9"),
        "{e}"
    );
}

#[test]
fn ids_that_would_break_topics_are_refused() {
    let e = err(&GOOD.replace("id = \"gw-yard-a\"", "id = \"gw/yard+a\""));
    assert_eq!((e.field.as_str(), e.location.line), ("gateway.id", 2));
    assert!(e.message.contains("'/'"), "{e}");
    let e = err(&GOOD.replace("id = \"pile-1\"", "id = \"pile 1\""));
    assert_eq!(e.field, "devices[0].id");
}

#[test]
fn unknown_fields_are_refused() {
    let e = err(&GOOD.replace("port = 5020", "port = 5020\npoll_interval = 5"));
    assert!(e.message.contains("unknown field `poll_interval`"), "{e}");
    assert_eq!(e.location.line, 14);
}

#[test]
fn a_syntax_error_names_its_line() {
    let e = err(&GOOD.replace("site = \"yard-a\"", "site = yard-a"));
    assert_eq!(e.location.line, 3);
    assert!(e.message.starts_with("TOML syntax error"), "{e}");
}

#[test]
fn unknown_protocols_list_the_known_ones() {
    let e = err(&GOOD.replace("modbus_tcp", "bacnet"));
    assert_eq!(e.field, "devices[0].protocol");
    assert!(e.message.contains("modbus_tcp"), "{e}");
}

#[test]
fn a_config_without_devices_is_refused() {
    let text = GOOD.split("[[devices]]").next().unwrap();
    let e = err(text);
    assert_eq!(e.field, "devices");
}

#[test]
fn out_of_range_timing_is_refused_with_the_range() {
    let e = err(&GOOD.replace("port = 5020", "port = 5020\npoll_interval_ms = 0"));
    assert_eq!(e.field, "devices[0].poll_interval_ms");
    assert!(e.message.contains("use 10 to"), "{e}");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let e = GatewayConfig::load("/nonexistent/gw.toml").unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e.to_string().contains("/nonexistent/gw.toml"), "{e}");
}

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gw-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("devices")).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn profiles_dir_adds_profiles_relative_to_the_config_file() {
    let scratch = Scratch::new("dir");
    let meter = "model = \"meter-x\"\nvendor = \"v\"\nkind = \"electricity_meter\"\ndocument = \"d\"\n\
                 [[registers]]\nname = \"energy_wh\"\naddress = 0\ntype = \"u32\"\nfunction = \"input\"\n";
    std::fs::write(scratch.0.join("devices/meter-x.toml"), meter).unwrap();
    let text = GOOD
        .replace(
            "site = \"yard-a\"",
            "site = \"yard-a\"\nprofiles_dir = \"devices\"",
        )
        .replace("gridwatch-ebp12", "meter-x");
    let path = scratch.0.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = GatewayConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.devices[0].profile.model, "meter-x");
    assert!(cfg.devices[0].profile.origin.ends_with("meter-x.toml"));

    // A broken profile in the folder is reported with its own file and line,
    // and where the config uses it.
    std::fs::write(
        scratch.0.join("devices/meter-x.toml"),
        meter.replace("u32", "u48"),
    )
    .unwrap();
    let e = GatewayConfig::load(&path).unwrap_err().to_string();
    assert!(e.contains("gw.toml:11:11: devices[0].profile"), "{e}");
    assert!(e.contains("meter-x.toml:8:"), "{e}");
    assert!(e.contains("registers[0].type"), "{e}");
}

#[test]
fn a_missing_profiles_dir_is_refused() {
    let e = err(&GOOD.replace(
        "site = \"yard-a\"",
        "site = \"yard-a\"\nprofiles_dir = \"/nonexistent\"",
    ));
    assert_eq!(e.field, "gateway.profiles_dir");
}

#[test]
fn outbox_and_delivery_defaults_fill_what_is_left_out() {
    let cfg = GatewayConfig::from_toml_str(GOOD, "gw.toml").unwrap();
    assert_eq!(cfg.outbox, OutboxConfig::default());
    assert_eq!(cfg.outbox.fsync_interval_ms, 1000);
    assert_eq!(cfg.mqtt.inflight, DEFAULT_MQTT_INFLIGHT);
    assert!(cfg.mqtt.tls.is_none() && cfg.influx.is_none());
}

#[test]
fn a_password_over_plain_tcp_is_refused() {
    let text = GOOD.replace(
        "[mqtt]\n",
        "[mqtt]\nusername = \"gw\"\npassword_file = \"pw\"\n",
    );
    let e = err(&text);
    assert_eq!(e.field, "mqtt.username");
    assert!(e.message.contains("plain TCP"), "{e}");
}

#[test]
fn tls_keeps_its_file_paths_and_needs_both_client_files() {
    let text = GOOD.replace(
        "[mqtt]\n",
        "[mqtt]\nca_file = \"/etc/ca.pem\"\nclient_cert_file = \"c.pem\"\nclient_key_file = \"k.pem\"\n",
    );
    let cfg = GatewayConfig::from_toml_str(&text, "gw.toml").unwrap();
    let tls = cfg.mqtt.tls.unwrap();
    assert_eq!(tls.ca_file, PathBuf::from("/etc/ca.pem"));
    assert_eq!(tls.client_auth, Some(("c.pem".into(), "k.pem".into())));
    let half = GOOD.replace(
        "[mqtt]\n",
        "[mqtt]\nca_file = \"ca.pem\"\nclient_cert_file = \"c.pem\"\n",
    );
    assert_eq!(err(&half).field, "mqtt.client_cert_file");
}

#[test]
fn influx_v1_needs_db_and_v2_refuses_v1_fields() {
    let v1 = format!("{GOOD}[influx]\nurl = \"http://i:8086\"\napi = \"v1\"\n");
    assert_eq!(err(&v1).field, "influx.db");
    let mixed = format!(
        "{GOOD}[influx]\nurl = \"http://i:8086\"\norg = \"o\"\nbucket = \"b\"\ndb = \"x\"\n"
    );
    assert_eq!(err(&mixed).field, "influx.db");
    let ok = format!("{GOOD}[influx]\nurl = \"http://i:8086/\"\norg = \"o\"\nbucket = \"b\"\n");
    let cfg = GatewayConfig::from_toml_str(&ok, "gw.toml").unwrap();
    let influx = cfg.influx.unwrap();
    assert_eq!(influx.url, "http://i:8086");
    assert!(influx.gzip);
    assert!(matches!(influx.api, InfluxApi::V2 { ref org, .. } if org == "o"));
}

#[test]
fn a_tiny_outbox_cap_is_refused_with_its_range() {
    let text = format!("{GOOD}[outbox]\nmax_bytes = 100\n");
    let e = err(&text);
    assert_eq!(e.field, "outbox.max_bytes");
}

const RTU: &str = r#"[gateway]
id = "gw-yard-a"
site = "yard-a"

[mqtt]
host = "127.0.0.1"

[[buses]]
id = "rs485-1"
port = "/dev/ttyUSB0"
baud = 19200
parity = "none"
stop_bits = 2

[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_rtu"
bus = "rs485-1"
unit_id = 3
"#;

#[test]
fn an_rtu_device_names_its_bus_and_unit() {
    let cfg = GatewayConfig::from_toml_str(RTU, "gw.toml").unwrap();
    let bus = cfg.bus("rs485-1").unwrap();
    assert_eq!(bus.port, PathBuf::from("/dev/ttyUSB0"));
    assert_eq!(
        (bus.baud, bus.parity, bus.data_bits, bus.stop_bits),
        (19_200, Parity::None, 8, 2)
    );
    assert_eq!(bus.timeout_ms, DEFAULT_RTU_TIMEOUT_MS);
    assert_eq!(bus.retries, DEFAULT_RTU_RETRIES);
    assert_eq!(bus.probe_interval_ms, DEFAULT_PROBE_INTERVAL_MS);
    assert_eq!(bus.describe(), "/dev/ttyUSB0 19200 8N2");
    assert_eq!(
        cfg.devices[0].transport,
        Transport::ModbusRtu {
            bus: "rs485-1".into(),
            unit_id: 3
        }
    );
}

#[test]
fn a_bus_defaults_to_the_modbus_serial_line_settings() {
    let text = RTU.replace("baud = 19200\nparity = \"none\"\nstop_bits = 2\n", "");
    let cfg = GatewayConfig::from_toml_str(&text, "gw.toml").unwrap();
    assert_eq!(cfg.buses[0].describe(), "/dev/ttyUSB0 9600 8E1");
    assert_eq!(cfg.buses[0].bits_per_char(), 11);
}

#[test]
fn rtu_config_mistakes_name_line_and_field() {
    let e = err(&RTU.replace("bus = \"rs485-1\"", "bus = \"rs485-2\""));
    assert_eq!(e.field, "devices[0].bus");
    assert!(
        e.to_string()
            .contains("no bus \"rs485-2\"; known buses: rs485-1"),
        "{e}"
    );
    assert!(e.to_string().starts_with("gw.toml:19:7:"), "{e}");

    let e = err(&RTU.replace("bus = \"rs485-1\"\n", ""));
    assert_eq!(e.field, "devices[0].bus");

    let e = err(&RTU.replace("unit_id = 3", "unit_id = 0"));
    assert_eq!(e.field, "devices[0].unit_id");
    assert!(e.to_string().contains("use 1 to 247"), "{e}");

    let e = err(&RTU.replace(
        "bus = \"rs485-1\"\n",
        "bus = \"rs485-1\"\nhost = \"10.0.0.2\"\n",
    ));
    assert_eq!(e.field, "devices[0].host");

    let e = err(&RTU.replace("stop_bits = 2", "data_bits = 7"));
    assert_eq!(e.field, "buses[0].data_bits");
    assert!(e.to_string().contains("8 data bits"), "{e}");

    let e = err(&RTU.replace("baud = 19200", "baud = 12"));
    assert_eq!(e.field, "buses[0].baud");

    let e = err(&RTU.replace("parity = \"none\"", "parity = \"mark\""));
    assert!(e.to_string().contains("parity"), "{e}");

    let e = err(&format!(
        "{RTU}\n[[devices]]\nid = \"pile-2\"\nprofile = \"gridwatch-ebp12\"\nprotocol = \"modbus_rtu\"\nbus = \"rs485-1\"\nunit_id = 3\n"
    ));
    assert_eq!(e.field, "devices[1].unit_id");
    assert!(
        e.to_string()
            .contains("unit 3 on bus \"rs485-1\" is already devices[0] (pile-1)"),
        "{e}"
    );

    let two_buses = RTU.replace(
        "[[devices]]",
        "[[buses]]\nid = \"rs485-2\"\nport = \"/dev/ttyUSB0\"\n\n[[devices]]",
    );
    let e = err(&two_buses);
    assert_eq!(e.field, "buses[1].port");

    let e = err(&RTU.replace("protocol = \"modbus_rtu\"", "protocol = \"modbus_tcp\""));
    assert_eq!(e.field, "devices[0].bus");
}

#[test]
fn report_by_exception_takes_deadbands_from_profile_and_config() {
    let cfg = GatewayConfig::from_toml_str(
        &format!(
            "{GOOD}max_silence_ms = 60000\ndeadband = {{ current_a = 0.05, power_w = 2.0 }}\n"
        ),
        "gw.toml",
    )
    .unwrap();
    let policy = cfg.devices[0]
        .report
        .clone()
        .expect("report by exception on");
    assert_eq!(policy.max_silence_ms, 60_000);
    assert_eq!(policy.deadbands["current_a"], 0.05);
    assert_eq!(policy.deadbands["power_w"], 2.0);
    let plain = GatewayConfig::from_toml_str(GOOD, "gw.toml").unwrap();
    assert!(plain.devices[0].report.is_none(), "off unless configured");
}

#[test]
fn report_by_exception_settings_are_checked() {
    let e = err(&format!("{GOOD}deadband = {{ power_w = 2.0 }}\n"));
    assert_eq!(
        (e.field.as_str(), e.location.line),
        ("devices[0].deadband", 14)
    );
    assert!(e.message.contains("without `max_silence_ms`"), "{e}");
    let e = err(&format!(
        "{GOOD}max_silence_ms = 60000\ndeadband = {{ powr_w = 2.0 }}\n"
    ));
    assert_eq!(e.field, "devices[0].deadband.powr_w");
    assert!(e.message.contains("has no value \"powr_w\""), "{e}");
    assert!(e.message.contains("power_w"), "lists the values: {e}");
    let e = err(&format!(
        "{GOOD}max_silence_ms = 60000\ndeadband = {{ power_w = -1.0 }}\n"
    ));
    assert!(e.message.contains("at least 0"), "{e}");
    let e = err(&format!("{GOOD}max_silence_ms = 100\n"));
    assert_eq!(e.field, "devices[0].max_silence_ms");
}

#[test]
fn a_dlt645_meter_cannot_share_a_modbus_rtu_port() {
    let text = format!(
        "{RTU}\n[[devices]]\nid = \"meter-1\"\nprotocol = \"dlt645\"\nserial_port = \"/dev/ttyUSB0\"\nmeter_address = \"000000001302\"\n"
    );
    let e = err(&text);
    assert_eq!(e.field, "devices[1].serial_port");
    assert!(
        e.message
            .contains("is the port of Modbus RTU bus \"rs485-1\""),
        "{e}"
    );
}

#[test]
fn stamps_carry_the_gateway_and_the_building_it_lends_its_devices() {
    let cfg = GatewayConfig::from_toml_str(
        r#"
[gateway]
id = "gw-1"
site = "yard-a"
building = "b1"
[mqtt]
host = "localhost"
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
unit = "lot-3"
[[devices]]
id = "pile-2"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
building = "b2"
"#,
        "test",
    )
    .unwrap();
    let reading = |cfg: &GatewayConfig, i: usize| {
        cfg.device_stamp(&cfg.devices[i], 7).reading(
            gridwatch_telemetry::Timestamp(11),
            crate::devices::Measurement {
                kind: gridwatch_telemetry::DeviceKind::ChargingSocket,
                socket: Some(1),
                values: Default::default(),
                flat: None,
            },
        )
    };
    let r = reading(&cfg, 0);
    assert_eq!(
        (r.seq, r.site.as_str(), r.gateway.as_str()),
        (7, "yard-a", "gw-1")
    );
    assert_eq!(r.building.as_deref(), Some("b1"));
    assert_eq!(r.unit.as_deref(), Some("lot-3"));
    let r = reading(&cfg, 1);
    assert_eq!(r.building.as_deref(), Some("b2"));
    assert_eq!(r.unit, None);
}

#[test]
fn a_non_standard_baud_rate_is_refused_with_the_nearest_standard_one() {
    let e = err(&RTU.replace("baud = 19200", "baud = 96000"));
    assert_eq!(e.field, "buses[0].baud");
    assert_eq!((e.location.line, e.location.column), (11, 8));
    assert!(
        e.message
            .contains("96000 is not a standard baud rate; did you mean 115200, or 9600"),
        "{}",
        e.message
    );
    let e = err(&RTU.replace("baud = 19200", "baud = 19000"));
    assert!(e.message.contains("did you mean 19200?"), "{}", e.message);
    for ok in ["1200", "4800", "38400", "115200"] {
        let text = RTU.replace("baud = 19200", &format!("baud = {ok}"));
        GatewayConfig::from_toml_str(&text, "gw.toml").unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_timeout_on_an_rtu_device_is_refused_because_the_bus_sets_it() {
    let e = err(&format!("{RTU}timeout_ms = 300\n"));
    assert_eq!(e.field, "devices[0].timeout_ms");
    assert!(e.message.contains("set timeout_ms on its [[buses]] entry"));
}
