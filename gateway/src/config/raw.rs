//! The config file as written (serde), and its checks into [`GatewayConfig`].
//!
//! Fields checked after parsing are kept as [`Spanned`] so their errors can
//! point at the value; serde itself reports missing fields, wrong types and
//! unknown fields.

use super::*;
use crate::toml_file::bounded;
use device::{build_device, Protocol, RawDevice};
use gridwatch_telemetry::ids::validate_id;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;
use uplinks::{
    build_influx, build_outbox, mqtt_credentials, mqtt_tls, topic_prefix, RawInflux, RawMqtt,
    RawOutbox,
};

mod cjt188;
mod device;
mod dlt645;
mod host;
pub(super) mod remote;
mod uplinks;

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
