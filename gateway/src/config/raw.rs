//! The config file as written (serde), and its checks into [`GatewayConfig`].
//!
//! Fields checked after parsing are kept as [`Spanned`] so their errors can
//! point at the value; serde itself reports missing fields, wrong types and
//! unknown fields.

use super::*;
use crate::toml_file::bounded;
use gridwatch_telemetry::ids::validate_id;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

mod cjt188;
mod dlt645;
mod host;
pub(super) mod remote;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: RawGateway,
    mqtt: RawMqtt,
    #[serde(default)]
    outbox: RawOutbox,
    influx: Option<RawInflux>,
    #[serde(default)]
    buses: Vec<Spanned<crate::bus::modbus_rtu::config::RawBus>>,
    #[serde(default)]
    devices: Vec<Spanned<RawDevice>>,
    #[serde(default)]
    readers: Vec<Spanned<super::readers::RawReader>>,
    local_mqtt: Option<super::readers::RawLocalMqtt>,
    pseudonym: Option<super::readers::RawPseudonym>,
    edge: Option<Spanned<crate::edge::EdgeConfig>>,
    remote: Option<remote::RawRemote>,
    metrics: Option<remote::RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    id: Spanned<String>,
    site: Spanned<String>,
    building: Option<Spanned<String>>,
    profiles_dir: Option<Spanned<PathBuf>>,
    require_clock_sync: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMqtt {
    host: Spanned<String>,
    port: Option<Spanned<u16>>,
    client_id: Option<Spanned<String>>,
    topic_prefix: Option<Spanned<String>>,
    keep_alive_s: Option<Spanned<u16>>,
    inflight: Option<Spanned<u16>>,
    max_publish_per_s: Option<Spanned<u32>>,
    reconnect_max_ms: Option<Spanned<u64>>,
    ca_file: Option<Spanned<PathBuf>>,
    client_cert_file: Option<Spanned<PathBuf>>,
    client_key_file: Option<Spanned<PathBuf>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawInfluxApi {
    V1,
    V2,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInflux {
    url: Spanned<String>,
    api: Option<RawInfluxApi>,
    org: Option<Spanned<String>>,
    bucket: Option<Spanned<String>>,
    token_file: Option<Spanned<PathBuf>>,
    db: Option<Spanned<String>>,
    rp: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    batch_max_lines: Option<Spanned<usize>>,
    batch_max_wait_ms: Option<Spanned<u64>>,
    gzip: Option<bool>,
    timeout_ms: Option<Spanned<u64>>,
    retry_max_ms: Option<Spanned<u64>>,
    dead_letter_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    dir: Option<Spanned<PathBuf>>,
    fsync_interval_ms: Option<Spanned<u64>>,
    max_bytes: Option<Spanned<u64>>,
    max_age_s: Option<Spanned<u64>>,
    segment_bytes: Option<Spanned<u64>>,
}

/// `protocol = "..."`: the closed set of ways to reach a device.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Protocol {
    ModbusTcp,
    ModbusRtu,
    Dlt645,
    Cjt188,
}

impl Protocol {
    /// As written in the config.
    fn name(self) -> &'static str {
        match self {
            Protocol::ModbusTcp => "modbus_tcp",
            Protocol::ModbusRtu => "modbus_rtu",
            Protocol::Dlt645 => "dlt645",
            Protocol::Cjt188 => "cjt188",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: Spanned<String>,
    profile: Option<Spanned<String>>,
    protocol: Spanned<Protocol>,
    host: Option<Spanned<String>>,
    bus: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
    unit_id: Option<Spanned<u8>>,
    poll_interval_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    retry_max_ms: Option<Spanned<u64>>,
    offline_after_failures: Option<Spanned<u32>>,
    max_gap_registers: Option<Spanned<u16>>,
    max_silence_ms: Option<Spanned<u64>>,
    deadband: Option<BTreeMap<String, Spanned<f64>>>,
    building: Option<Spanned<String>>,
    unit: Option<Spanned<String>>,
    // protocol = "dlt645" (see dlt645.rs)
    serial_port: Option<Spanned<PathBuf>>,
    baud: Option<Spanned<u32>>,
    meter_address: Option<Spanned<String>>,
    phases: Option<Spanned<u8>>,
    wake_up_bytes: Option<Spanned<u8>>,
    // protocol = "cjt188" (see cjt188.rs), with the serial fields above
    meter_type: Option<Spanned<String>>,
    register_max: Option<Spanned<f64>>,
}

/// Checks an id-like field: one topic level, no wildcards.
pub(super) fn id_field(
    src: &SourceFile,
    value: &Spanned<String>,
    field: &str,
) -> Result<String, FieldError> {
    validate_id(value.get_ref())
        .map(|()| value.get_ref().clone())
        .map_err(|why| src.error(value.span(), field, format!("{:?} {why}", value.get_ref())))
}

pub(super) fn non_empty(
    src: &SourceFile,
    value: &Spanned<String>,
    field: &str,
) -> Result<String, FieldError> {
    let v = value.get_ref().trim();
    if v.is_empty() {
        return Err(src.error(value.span(), field, "must not be empty"));
    }
    Ok(v.to_owned())
}

pub(super) fn build(
    src: &SourceFile,
    base_dir: Option<&Path>,
    library: &mut ProfileLibrary,
) -> Result<GatewayConfig, ConfigError> {
    let raw: RawConfig = src.parse()?;

    let g = &raw.gateway;
    let id = id_field(src, &g.id, "gateway.id")?;
    let site = id_field(src, &g.site, "gateway.site")?;
    let building = g
        .building
        .as_ref()
        .map(|b| id_field(src, b, "gateway.building"))
        .transpose()?;
    let profiles_dir = match &g.profiles_dir {
        None => None,
        Some(dir) => {
            let resolved = match base_dir {
                Some(base) if dir.get_ref().is_relative() => base.join(dir.get_ref()),
                _ => dir.get_ref().clone(),
            };
            if !resolved.is_dir() {
                return Err(src
                    .error(
                        dir.span(),
                        "gateway.profiles_dir",
                        format!("{} is not a folder", resolved.display()),
                    )
                    .into());
            }
            *library = ProfileLibrary::with_dir(&resolved);
            Some(resolved)
        }
    };

    let m = &raw.mqtt;
    let mqtt = MqttConfig {
        host: non_empty(src, &m.host, "mqtt.host")?,
        port: bounded(src, &m.port, DEFAULT_MQTT_PORT, "mqtt.port", 1, u16::MAX)?,
        client_id: match &m.client_id {
            Some(c) => id_field(src, c, "mqtt.client_id")?,
            None => id.clone(),
        },
        topic_prefix: match &m.topic_prefix {
            Some(p) => topic_prefix(src, p)?,
            None => gridwatch_telemetry::topic::DEFAULT_PREFIX.to_owned(),
        },
        keep_alive_s: bounded(
            src,
            &m.keep_alive_s,
            DEFAULT_KEEP_ALIVE_S,
            "mqtt.keep_alive_s",
            5,
            3600,
        )?,
        inflight: bounded(
            src,
            &m.inflight,
            DEFAULT_MQTT_INFLIGHT,
            "mqtt.inflight",
            1,
            1000,
        )?,
        max_publish_per_s: bounded(
            src,
            &m.max_publish_per_s,
            DEFAULT_MQTT_MAX_PUBLISH_PER_S,
            "mqtt.max_publish_per_s",
            1,
            1_000_000,
        )?,
        reconnect_max_ms: bounded(
            src,
            &m.reconnect_max_ms,
            DEFAULT_MQTT_RECONNECT_MAX_MS,
            "mqtt.reconnect_max_ms",
            100,
            3_600_000,
        )?,
        tls: mqtt_tls(src, m, base_dir)?,
        credentials: None,
    };
    let mqtt = MqttConfig {
        credentials: mqtt_credentials(src, m, base_dir, mqtt.tls.is_some())?,
        ..mqtt
    };
    let outbox = build_outbox(src, &raw.outbox, base_dir)?;
    let influx = raw
        .influx
        .as_ref()
        .map(|i| build_influx(src, i, base_dir))
        .transpose()?;

    let readers = super::readers::build(
        &super::readers::Context {
            src,
            base_dir,
            gateway_id: &id,
            uplink: (&mqtt.host, mqtt.port),
        },
        &raw.readers,
        raw.local_mqtt.as_ref(),
        raw.pseudonym.as_ref(),
        raw.edge.as_ref(),
    )?;
    if raw.devices.is_empty() && readers.readers.is_empty() {
        return Err(src
            .error(
                0..0,
                "devices",
                "no [[devices]] or [[readers]] are listed; a gateway with nothing to poll \
                 would only publish its status",
            )
            .into());
    }
    let mut buses: Vec<SerialBusConfig> = Vec::with_capacity(raw.buses.len());
    for (i, b) in raw.buses.iter().enumerate() {
        let bus = crate::bus::modbus_rtu::config::build_bus(src, i, b.get_ref())?;
        if let Some(j) = buses.iter().position(|x| x.id == bus.id) {
            return Err(src
                .error(
                    b.get_ref().id_span(),
                    format!("buses[{i}].id"),
                    format!(
                        "{:?} is already used by buses[{j}]; bus ids must be unique",
                        bus.id
                    ),
                )
                .into());
        }
        if let Some(j) = buses.iter().position(|x| x.port == bus.port) {
            return Err(src
                .error(
                    b.get_ref().id_span(),
                    format!("buses[{i}].port"),
                    format!(
                        "{} is already buses[{j}] ({:?}); one serial port is one bus, \
                         so list every device on it under that bus",
                        bus.port.display(),
                        buses[j].id
                    ),
                )
                .into());
        }
        buses.push(bus);
    }
    let mut devices: Vec<DeviceConfig> = Vec::with_capacity(raw.devices.len());
    let mut id_spans: Vec<Range<usize>> = Vec::new();
    for (i, d) in raw.devices.iter().enumerate() {
        let device = build_device(src, i, d.get_ref(), &buses, library)?;
        remote::refuse_reserved(src, d.get_ref().id.span(), i, device.id.as_str())?;
        if let Transport::ModbusRtu { bus, unit_id } = &device.transport {
            let same = devices.iter().position(|x| {
                matches!(&x.transport, Transport::ModbusRtu { bus: b, unit_id: u } if b == bus && u == unit_id)
            });
            if let Some(j) = same {
                return Err(src
                    .error(
                        d.get_ref()
                            .bus
                            .as_ref()
                            .map_or(d.get_ref().id.span(), |b| b.span()),
                        format!("devices[{i}].unit_id"),
                        format!(
                            "unit {unit_id} on bus {bus:?} is already devices[{j}] ({}); \
                             every device on one RS-485 line needs its own unit id",
                            devices[j].id.as_str()
                        ),
                    )
                    .into());
            }
        }
        if let Transport::Dlt645 { serial_port, .. } | Transport::Cjt188 { serial_port, .. } =
            &device.transport
        {
            // Two tasks on one port would interleave their frames.
            if let Some(b) = buses.iter().find(|b| b.port == *serial_port) {
                return Err(src
                    .error(
                        d.get_ref()
                            .serial_port
                            .as_ref()
                            .map_or(d.get_ref().id.span(), |p| p.span()),
                        format!("devices[{i}].serial_port"),
                        format!(
                            "{} is the port of Modbus RTU bus {:?}; one RS-485 line carries \
                             one protocol, so wire this meter to another port",
                            serial_port.display(),
                            b.id
                        ),
                    )
                    .into());
            }
        }
        if let Some(j) = devices.iter().position(|x| x.id == device.id) {
            let first = src.location(id_spans[j].start);
            return Err(src
                .error(
                    d.get_ref().id.span(),
                    format!("devices[{i}].id"),
                    format!(
                        "{:?} is already used by devices[{j}] at line {}; device ids must \
                         be unique within the gateway",
                        device.id.as_str(),
                        first.line
                    ),
                )
                .into());
        }
        id_spans.push(d.get_ref().id.span());
        devices.push(device);
    }
    dlt645::check_shared_ports(src, &raw.devices, &devices)?;
    cjt188::check_shared_ports(src, &raw.devices, &devices)?;
    for (i, r) in readers.readers.iter().enumerate() {
        let taken = devices.iter().any(|d| d.id == r.id)
            || readers.readers[..i].iter().any(|o| o.id == r.id);
        if taken {
            return Err(src
                .error(
                    raw.readers[i].get_ref().id_span(),
                    format!("readers[{i}].id"),
                    format!(
                        "{:?} is already used by another device or reader; ids must be \
                         unique within the gateway",
                        r.id.as_str()
                    ),
                )
                .into());
        }
    }

    let host_needs = host::needs(src, &raw, base_dir);
    let remote = raw.remote.as_ref();
    let metrics = raw.metrics.as_ref();
    Ok(GatewayConfig {
        remote: remote
            .map(|r| remote::build_remote(src, r, base_dir))
            .transpose()?,
        metrics: metrics.map(|m| remote::build_metrics(src, m)).transpose()?,
        gateway: GatewaySection {
            id: GatewayId(id),
            site: SiteId(site),
            building,
            profiles_dir,
            require_clock_sync: raw.gateway.require_clock_sync.unwrap_or(false),
        },
        mqtt,
        outbox,
        influx,
        buses,
        devices,
        readers: readers.readers,
        local_mqtt: readers.local_mqtt,
        site_key_file: readers.site_key_file,
        edge: readers.edge,
        origin: src.origin().to_owned(),
        host_needs,
    })
}

/// A path from the config, taken relative to the config file's folder.
pub(super) fn resolve(base_dir: Option<&Path>, p: &Path) -> PathBuf {
    match base_dir {
        Some(base) if p.is_relative() => base.join(p),
        _ => p.to_owned(),
    }
}

fn mqtt_tls(
    src: &SourceFile,
    m: &RawMqtt,
    base_dir: Option<&Path>,
) -> Result<Option<MqttTls>, FieldError> {
    let client_auth = match (&m.client_cert_file, &m.client_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((
            resolve(base_dir, c.get_ref()),
            resolve(base_dir, k.get_ref()),
        )),
        (Some(c), None) => {
            return Err(src.error(
                c.span(),
                "mqtt.client_cert_file",
                "a client certificate needs its key: add client_key_file",
            ))
        }
        (None, Some(k)) => {
            return Err(src.error(
                k.span(),
                "mqtt.client_key_file",
                "a client key needs its certificate: add client_cert_file",
            ))
        }
    };
    match &m.ca_file {
        Some(ca) => Ok(Some(MqttTls {
            ca_file: resolve(base_dir, ca.get_ref()),
            client_auth,
        })),
        None => match &m.client_cert_file {
            Some(c) => Err(src.error(
                c.span(),
                "mqtt.client_cert_file",
                "client certificates need TLS: add ca_file (the CA that signed the broker's certificate)",
            )),
            None => Ok(None),
        },
    }
}

fn mqtt_credentials(
    src: &SourceFile,
    m: &RawMqtt,
    base_dir: Option<&Path>,
    tls: bool,
) -> Result<Option<MqttCredentials>, FieldError> {
    match (&m.username, &m.password_file) {
        (None, None) => Ok(None),
        (Some(u), Some(p)) => {
            if !tls {
                return Err(src.error(
                    u.span(),
                    "mqtt.username",
                    "a password is never sent over plain TCP: add ca_file to use TLS",
                ));
            }
            Ok(Some(MqttCredentials {
                username: non_empty(src, u, "mqtt.username")?,
                password_file: resolve(base_dir, p.get_ref()),
            }))
        }
        (Some(u), None) => Err(src.error(
            u.span(),
            "mqtt.username",
            "a user name needs password_file (the password stays out of this file)",
        )),
        (None, Some(p)) => Err(src.error(
            p.span(),
            "mqtt.password_file",
            "a password needs a username",
        )),
    }
}

fn build_influx(
    src: &SourceFile,
    i: &RawInflux,
    base_dir: Option<&Path>,
) -> Result<InfluxConfig, FieldError> {
    let url = non_empty(src, &i.url, "influx.url")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(src.error(
            i.url.span(),
            "influx.url",
            format!("{url:?} is not an http:// or https:// URL"),
        ));
    }
    let required = |v: &Option<Spanned<String>>, field: &str, api: &str| {
        v.as_ref()
            .ok_or_else(|| {
                src.error(
                    i.url.span(),
                    format!("influx.{field}"),
                    format!("api = \"{api}\" needs {field}"),
                )
            })
            .and_then(|v| non_empty(src, v, &format!("influx.{field}")))
    };
    let not_for = |v: Option<Range<usize>>, field: &str, api: &str| match v {
        Some(span) => Err(src.error(
            span,
            format!("influx.{field}"),
            format!("{field} is not used with api = \"{api}\""),
        )),
        None => Ok(()),
    };
    let api = match i.api.unwrap_or(RawInfluxApi::V2) {
        RawInfluxApi::V2 => {
            not_for(i.db.as_ref().map(|v| v.span()), "db", "v2")?;
            not_for(i.rp.as_ref().map(|v| v.span()), "rp", "v2")?;
            not_for(i.username.as_ref().map(|v| v.span()), "username", "v2")?;
            not_for(
                i.password_file.as_ref().map(|v| v.span()),
                "password_file",
                "v2",
            )?;
            InfluxApi::V2 {
                org: required(&i.org, "org", "v2")?,
                bucket: required(&i.bucket, "bucket", "v2")?,
                token_file: i
                    .token_file
                    .as_ref()
                    .map(|t| resolve(base_dir, t.get_ref())),
            }
        }
        RawInfluxApi::V1 => {
            not_for(i.org.as_ref().map(|v| v.span()), "org", "v1")?;
            not_for(i.bucket.as_ref().map(|v| v.span()), "bucket", "v1")?;
            not_for(i.token_file.as_ref().map(|v| v.span()), "token_file", "v1")?;
            let credentials = match (&i.username, &i.password_file) {
                (None, None) => None,
                (Some(u), Some(p)) => Some((
                    non_empty(src, u, "influx.username")?,
                    resolve(base_dir, p.get_ref()),
                )),
                (Some(u), None) => {
                    return Err(src.error(
                        u.span(),
                        "influx.username",
                        "a user name needs password_file",
                    ))
                }
                (None, Some(p)) => {
                    return Err(src.error(
                        p.span(),
                        "influx.password_file",
                        "a password needs a username",
                    ))
                }
            };
            InfluxApi::V1 {
                db: required(&i.db, "db", "v1")?,
                rp: i
                    .rp
                    .as_ref()
                    .map(|r| non_empty(src, r, "influx.rp"))
                    .transpose()?,
                credentials,
            }
        }
    };
    Ok(InfluxConfig {
        url: url.trim_end_matches('/').to_owned(),
        api,
        batch_max_lines: bounded(
            src,
            &i.batch_max_lines,
            DEFAULT_INFLUX_BATCH_LINES,
            "influx.batch_max_lines",
            1,
            100_000,
        )?,
        batch_max_wait_ms: bounded(
            src,
            &i.batch_max_wait_ms,
            DEFAULT_INFLUX_BATCH_WAIT_MS,
            "influx.batch_max_wait_ms",
            0,
            600_000,
        )?,
        gzip: i.gzip.unwrap_or(true),
        timeout_ms: bounded(
            src,
            &i.timeout_ms,
            10_000,
            "influx.timeout_ms",
            100,
            600_000,
        )?,
        retry_max_ms: bounded(
            src,
            &i.retry_max_ms,
            60_000,
            "influx.retry_max_ms",
            100,
            3_600_000,
        )?,
        dead_letter_file: i
            .dead_letter_file
            .as_ref()
            .map(|d| resolve(base_dir, d.get_ref())),
    })
}

fn build_outbox(
    src: &SourceFile,
    o: &RawOutbox,
    base_dir: Option<&Path>,
) -> Result<OutboxConfig, FieldError> {
    let max_bytes = bounded(
        src,
        &o.max_bytes,
        DEFAULT_OUTBOX_MAX_BYTES,
        "outbox.max_bytes",
        64 * 1024,
        u64::MAX,
    )?;
    Ok(OutboxConfig {
        dir: o.dir.as_ref().map(|d| resolve(base_dir, d.get_ref())),
        fsync_interval_ms: bounded(
            src,
            &o.fsync_interval_ms,
            DEFAULT_FSYNC_INTERVAL_MS,
            "outbox.fsync_interval_ms",
            1,
            60_000,
        )?,
        max_bytes,
        max_age_s: match &o.max_age_s {
            None => None,
            Some(_) => Some(bounded(
                src,
                &o.max_age_s,
                0,
                "outbox.max_age_s",
                60,
                u64::MAX / 1000,
            )?),
        },
        segment_bytes: bounded(
            src,
            &o.segment_bytes,
            DEFAULT_SEGMENT_BYTES,
            "outbox.segment_bytes",
            4096,
            1 << 30,
        )?,
    })
}

fn topic_prefix(src: &SourceFile, p: &Spanned<String>) -> Result<String, FieldError> {
    for level in p.get_ref().split('/') {
        if let Err(why) = validate_id(level) {
            return Err(src.error(
                p.span(),
                "mqtt.topic_prefix",
                format!(
                    "{:?}: level {level:?} {why} (levels are separated by '/')",
                    p.get_ref()
                ),
            ));
        }
    }
    Ok(p.get_ref().clone())
}

fn build_device(
    src: &SourceFile,
    i: usize,
    d: &RawDevice,
    buses: &[SerialBusConfig],
    library: &mut ProfileLibrary,
) -> Result<DeviceConfig, ConfigError> {
    let f = |name: &str| format!("devices[{i}].{name}");
    let id = id_field(src, &d.id, &f("id"))?;
    let (profile, transport) = match d.protocol.get_ref() {
        Protocol::Dlt645 => dlt645::build(src, i, d)?,
        Protocol::Cjt188 => cjt188::build(src, i, d)?,
        Protocol::ModbusTcp => {
            let profile = modbus_profile(src, i, d, library)?;
            if let Some(bus) = &d.bus {
                return Err(src
                    .error(
                        bus.span(),
                        f("bus"),
                        "a modbus_tcp device is reached by host and port; bus is for modbus_rtu",
                    )
                    .into());
            }
            let host = d.host.as_ref().ok_or_else(|| {
                src.error(
                    d.protocol.span(),
                    f("host"),
                    "protocol = \"modbus_tcp\" needs host (the device's or its TCP gateway's address)",
                )
            })?;
            let transport = Transport::ModbusTcp {
                host: non_empty(src, host, &f("host"))?,
                port: bounded(src, &d.port, DEFAULT_MODBUS_PORT, &f("port"), 1, u16::MAX)?,
                unit_id: d.unit_id.as_ref().map_or(DEFAULT_UNIT_ID, |u| *u.get_ref()),
            };
            (profile, transport)
        }
        Protocol::ModbusRtu => (
            modbus_profile(src, i, d, library)?,
            rtu_transport(src, &f, d, buses)?,
        ),
    };
    let poll_interval_ms = bounded(
        src,
        &d.poll_interval_ms,
        DEFAULT_POLL_INTERVAL_MS,
        &f("poll_interval_ms"),
        50,
        86_400_000,
    )?;
    let timeout_ms = bounded(
        src,
        &d.timeout_ms,
        DEFAULT_TIMEOUT_MS,
        &f("timeout_ms"),
        10,
        60_000,
    )?;
    let retry_max_ms = bounded(
        src,
        &d.retry_max_ms,
        DEFAULT_RETRY_MAX_MS.max(poll_interval_ms),
        &f("retry_max_ms"),
        poll_interval_ms,
        86_400_000,
    )?;
    let offline_after_failures = bounded(
        src,
        &d.offline_after_failures,
        DEFAULT_OFFLINE_AFTER_FAILURES,
        &f("offline_after_failures"),
        1,
        1000,
    )?;
    let max_gap_registers = bounded(
        src,
        &d.max_gap_registers,
        profile.max_gap_registers,
        &f("max_gap_registers"),
        0,
        crate::profile::MAX_READ_REGISTERS,
    )?;
    let building = d
        .building
        .as_ref()
        .map(|b| id_field(src, b, &f("building")))
        .transpose()?;
    let unit = d
        .unit
        .as_ref()
        .map(|u| id_field(src, u, &f("unit")))
        .transpose()?;

    let values: Vec<(String, f64)> = match &transport {
        // A DL/T 645 meter's values come from the standard, not a profile.
        Transport::Dlt645 { phases, .. } => crate::devices::dlt645::quantities(*phases)
            .iter()
            .map(|q| (q.name.to_owned(), 0.0))
            .collect(),
        Transport::Cjt188 { .. } => crate::devices::cjt188::value_names(profile.kind)
            .iter()
            .map(|name| ((*name).to_owned(), 0.0))
            .collect(),
        _ => profile
            .registers
            .iter()
            .chain(profile.channel.iter().flat_map(|c| c.registers.iter()))
            .filter(|r| r.is_emitted())
            .map(|r| (r.name.clone(), r.deadband))
            .collect(),
    };
    let report = report_policy(src, i, d, &profile.model, &values, poll_interval_ms)?;

    Ok(DeviceConfig {
        id: DeviceId(id),
        profile,
        transport,
        poll_interval_ms,
        timeout_ms,
        retry_max_ms,
        offline_after_failures,
        max_gap_registers,
        report,
        building,
        unit,
    })
}

/// The register map a Modbus device names, after refusing the fields of
/// other protocols.
fn modbus_profile(
    src: &SourceFile,
    i: usize,
    d: &RawDevice,
    library: &mut ProfileLibrary,
) -> Result<Arc<Profile>, ConfigError> {
    dlt645::refuse_fields(src, i, d)?;
    cjt188::refuse_fields(src, i, d)?;
    let field = format!("devices[{i}].profile");
    let name = d.profile.as_ref().ok_or_else(|| {
        src.error(
            d.protocol.span(),
            &field,
            format!(
                "protocol = \"{}\" needs profile (the device's register map, config/devices/<profile>.toml)",
                d.protocol.get_ref().name()
            ),
        )
    })?;
    match library.get(name.get_ref()) {
        Ok(p) => Ok(p),
        Err(ProfileError::Unknown {
            name: unknown,
            known,
        }) => Err(src
            .error(
                name.span(),
                field,
                format!("unknown device profile {unknown:?}; known profiles: {known}"),
            )
            .into()),
        Err(error) => {
            let loc = src.location(name.span().start);
            Err(ConfigError::Profile {
                at: format!("{loc}: {field}"),
                error,
            })
        }
    }
}

/// `protocol = "modbus_rtu"`: a unit on one of the `[[buses]]`.
fn rtu_transport(
    src: &SourceFile,
    f: &dyn Fn(&str) -> String,
    d: &RawDevice,
    buses: &[SerialBusConfig],
) -> Result<Transport, FieldError> {
    if let Some(host) = &d.host {
        return Err(src.error(
            host.span(),
            f("host"),
            "a modbus_rtu device is reached through its bus; host and port are for modbus_tcp",
        ));
    }
    if let Some(port) = &d.port {
        return Err(src.error(
            port.span(),
            f("port"),
            "a modbus_rtu device has no TCP port; its serial port is set on its bus",
        ));
    }
    if let Some(t) = &d.timeout_ms {
        return Err(src.error(
            t.span(),
            f("timeout_ms"),
            "a modbus_rtu device answers within its bus's time: set timeout_ms on its \
             [[buses]] entry (this one would be ignored)",
        ));
    }
    let known = || {
        if buses.is_empty() {
            "no [[buses]] are listed".to_owned()
        } else {
            format!(
                "known buses: {}",
                crate::toml_file::list(buses.iter().map(|b| b.id.as_str()))
            )
        }
    };
    let bus = d.bus.as_ref().ok_or_else(|| {
        src.error(
            d.protocol.span(),
            f("bus"),
            format!(
                "protocol = \"modbus_rtu\" needs bus (the id of a [[buses]] entry); {}",
                known()
            ),
        )
    })?;
    let Some(b) = buses.iter().find(|b| b.id == *bus.get_ref()) else {
        return Err(src.error(
            bus.span(),
            f("bus"),
            format!("no bus {:?}; {}", bus.get_ref(), known()),
        ));
    };
    let unit_id = d.unit_id.as_ref().map_or(DEFAULT_UNIT_ID, |u| *u.get_ref());
    if !(1..=247).contains(&unit_id) {
        return Err(src.error(
            d.unit_id.as_ref().map_or(d.protocol.span(), |u| u.span()),
            f("unit_id"),
            format!("{unit_id} is not a Modbus RTU unit address; use 1 to 247 (0 is broadcast)"),
        ));
    }
    Ok(Transport::ModbusRtu {
        bus: b.id.clone(),
        unit_id,
    })
}

/// `max_silence_ms` and `deadband` of a device: report by exception, with
/// the profile's deadbands overridden by the config's.
fn report_policy(
    src: &SourceFile,
    i: usize,
    d: &RawDevice,
    model: &str,
    values: &[(String, f64)],
    poll_interval_ms: u64,
) -> Result<Option<crate::devices::report::ReportPolicy>, ConfigError> {
    let f = |name: &str| format!("devices[{i}].{name}");
    if d.max_silence_ms.is_none() {
        if let Some(first) = d.deadband.as_ref().and_then(|b| b.values().next()) {
            return Err(src
                .error(
                    first.span(),
                    f("deadband"),
                    "has no effect without `max_silence_ms`, which turns on report by exception",
                )
                .into());
        }
        return Ok(None);
    }
    let max_silence_ms = bounded(
        src,
        &d.max_silence_ms,
        0,
        &f("max_silence_ms"),
        poll_interval_ms,
        86_400_000,
    )?;
    let mut deadbands: std::collections::HashMap<String, f64> = values
        .iter()
        .filter(|(_, band)| *band > 0.0)
        .cloned()
        .collect();
    if let Some(bands) = &d.deadband {
        for (name, band) in bands {
            if !values.iter().any(|(n, _)| n == name) {
                return Err(src
                    .error(
                        band.span(),
                        format!("{}.{name}", f("deadband")),
                        format!(
                            "profile {model} has no value {name:?}; its values are {}",
                            crate::toml_file::list(values.iter().map(|(n, _)| n))
                        ),
                    )
                    .into());
            }
            if !band.get_ref().is_finite() || *band.get_ref() < 0.0 {
                return Err(src
                    .error(
                        band.span(),
                        format!("{}.{name}", f("deadband")),
                        "must be a finite number of at least 0, in the unit of the value's name",
                    )
                    .into());
            }
            deadbands.insert(name.clone(), *band.get_ref());
        }
    }
    Ok(Some(crate::devices::report::ReportPolicy {
        max_silence_ms: i64::try_from(max_silence_ms).unwrap_or(i64::MAX),
        deadbands,
    }))
}
