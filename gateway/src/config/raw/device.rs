//! `[[devices]]` as written (serde), and each device checked into a
//! [`DeviceConfig`]: its protocol's fields, its profile, its transport and
//! its report-by-exception policy.

use super::*;

/// `protocol = "..."`: the closed set of ways to reach a device.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Protocol {
    ModbusTcp,
    ModbusRtu,
    Dlt645,
    Cjt188,
}

impl Protocol {
    /// As written in the config.
    pub(super) fn name(self) -> &'static str {
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
pub(super) struct RawDevice {
    pub(super) id: Spanned<String>,
    pub(super) profile: Option<Spanned<String>>,
    pub(super) protocol: Spanned<Protocol>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) bus: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) unit_id: Option<Spanned<u8>>,
    pub(super) poll_interval_ms: Option<Spanned<u64>>,
    pub(super) timeout_ms: Option<Spanned<u64>>,
    pub(super) retry_max_ms: Option<Spanned<u64>>,
    pub(super) offline_after_failures: Option<Spanned<u32>>,
    pub(super) max_gap_registers: Option<Spanned<u16>>,
    pub(super) max_silence_ms: Option<Spanned<u64>>,
    pub(super) deadband: Option<BTreeMap<String, Spanned<f64>>>,
    pub(super) building: Option<Spanned<String>>,
    pub(super) unit: Option<Spanned<String>>,
    // protocol = "dlt645" (see dlt645.rs)
    pub(super) serial_port: Option<Spanned<PathBuf>>,
    pub(super) baud: Option<Spanned<u32>>,
    pub(super) meter_address: Option<Spanned<String>>,
    pub(super) phases: Option<Spanned<u8>>,
    pub(super) wake_up_bytes: Option<Spanned<u8>>,
    // protocol = "cjt188" (see cjt188.rs), with the serial fields above
    pub(super) meter_type: Option<Spanned<String>>,
    pub(super) register_max: Option<Spanned<f64>>,
}

pub(super) fn build_device(
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
        MIN_POLL_INTERVAL_MS,
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
