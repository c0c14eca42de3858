//! `protocol = "cjt188"` devices: a CJ/T 188 water, gas or heat meter on a
//! serial line.
//!
//! Like a DL/T 645 meter it needs no profile: `meter_type` says what it
//! is and the standard says what it sends. Meters sharing a `serial_port`
//! share one RS-485 pair, so they must agree on its baud rate and differ
//! in address; a port carries one protocol.

use super::dlt645::{not_used, required};
use super::*;
use crate::devices::cjt188 as device;
use gridwatch_cjt188::{Address, MeterType};

const NAME: &str = "cjt188";

use device::BAUD_RATES;

/// `meter_type` words and their type bytes.
const TYPES: [(&str, MeterType); 7] = [
    ("cold_water", MeterType::COLD_WATER),
    ("hot_water", MeterType::HOT_WATER),
    ("drinking_water", MeterType::DRINKING_WATER),
    ("reclaimed_water", MeterType::RECLAIMED_WATER),
    ("heat", MeterType::HEAT),
    ("cooling", MeterType::COOLING),
    ("gas", MeterType::GAS),
];

/// Refuses the CJ/T 188-only fields on a device of another protocol.
pub(super) fn refuse_fields(src: &SourceFile, i: usize, d: &RawDevice) -> Result<(), FieldError> {
    let protocol = match d.protocol.get_ref() {
        Protocol::Cjt188 => return Ok(()),
        other => other.name(),
    };
    let f = |name: &str| format!("devices[{i}].{name}");
    not_used(
        src,
        d.meter_type.as_ref().map(|v| v.span()),
        &f("meter_type"),
        protocol,
    )?;
    not_used(
        src,
        d.register_max.as_ref().map(|v| v.span()),
        &f("register_max"),
        protocol,
    )
}

/// The type byte of a `meter_type` word, or a hex byte in 10-39.
fn meter_type(text: &str) -> Option<MeterType> {
    if let Some((_, t)) = TYPES.iter().find(|(w, _)| *w == text) {
        return Some(*t);
    }
    let t = MeterType(u8::from_str_radix(text, 16).ok()?);
    device::kind(t).map(|_| t)
}

/// The built-in description and the transport of a CJ/T 188 meter.
pub(super) fn build(
    src: &SourceFile,
    i: usize,
    d: &RawDevice,
) -> Result<(Arc<Profile>, Transport), FieldError> {
    let f = |name: &str| format!("devices[{i}].{name}");
    let whole = d.protocol.span();
    not_used(
        src,
        d.profile.as_ref().map(|v| v.span()),
        &f("profile"),
        NAME,
    )
    .map_err(|e| FieldError {
        message: format!(
            "{}; a CJ/T 188 meter needs no profile (set meter_type)",
            e.message
        ),
        ..e
    })?;
    for (span, field) in [
        (d.host.as_ref().map(|v| v.span()), "host"),
        (d.port.as_ref().map(|v| v.span()), "port"),
        (d.unit_id.as_ref().map(|v| v.span()), "unit_id"),
        (d.bus.as_ref().map(|v| v.span()), "bus"),
        (d.phases.as_ref().map(|v| v.span()), "phases"),
        (
            d.max_gap_registers.as_ref().map(|v| v.span()),
            "max_gap_registers",
        ),
    ] {
        not_used(src, span, &f(field), NAME)?;
    }
    let port = required(src, &d.serial_port, &whole, &f("serial_port"), NAME)?;
    if port.get_ref().as_os_str().is_empty() {
        return Err(src.error(port.span(), f("serial_port"), "must not be empty"));
    }
    let baud = match &d.baud {
        None => device::DEFAULT_BAUD,
        Some(b) if BAUD_RATES.contains(b.get_ref()) => *b.get_ref(),
        Some(b) => {
            return Err(src.error(
                b.span(),
                f("baud"),
                format!(
                    "{} is not a CJ/T 188 baud rate; use one of {BAUD_RATES:?} (meters ship \
                     with {})",
                    b.get_ref(),
                    device::DEFAULT_BAUD
                ),
            ))
        }
    };
    let t = required(src, &d.meter_type, &whole, &f("meter_type"), NAME)?;
    let words = || crate::toml_file::list(TYPES.iter().map(|(w, _)| *w));
    let parsed_type = meter_type(t.get_ref().trim()).ok_or_else(|| {
        src.error(
            t.span(),
            f("meter_type"),
            format!(
                "{:?} is not a meter type the gateway reads; use one of {} (or the type \
                 byte in hex, 10 to 39)",
                t.get_ref(),
                words()
            ),
        )
    })?;
    let address = required(src, &d.meter_address, &whole, &f("meter_address"), NAME)?;
    let parsed = Address::parse(address.get_ref().trim()).map_err(|e| {
        src.error(
            address.span(),
            f("meter_address"),
            format!("{:?}: {e}", address.get_ref()),
        )
    })?;
    if parsed.has_wildcard() {
        return Err(src.error(
            address.span(),
            f("meter_address"),
            "AA bytes are wildcards that every meter on the line answers; use the meter's own \
             14-digit address (printed on it)",
        ));
    }
    let preamble = bounded(
        src,
        &d.wake_up_bytes,
        gridwatch_cjt188::DEFAULT_PREAMBLE as u8,
        &f("wake_up_bytes"),
        0,
        gridwatch_cjt188::MAX_PREAMBLE as u8,
    )?;
    let register_max_milli = match &d.register_max {
        None => None,
        Some(m) => {
            let v = *m.get_ref();
            if !(0.001..=1e9).contains(&v) {
                return Err(src.error(
                    m.span(),
                    f("register_max"),
                    format!(
                        "{v} is not a register's largest reading; give it in the reading's \
                         unit (m³ or kWh), e.g. 99999.999"
                    ),
                ));
            }
            Some((v * 1000.0).round() as u64)
        }
    };
    // `meter_type` was checked above: every accepted type has a kind.
    let kind = device::kind(parsed_type).unwrap_or(gridwatch_telemetry::DeviceKind::WaterMeter);
    Ok((
        device::profile(parsed_type, kind),
        Transport::Cjt188 {
            serial_port: port.get_ref().clone(),
            baud,
            meter_type: parsed_type,
            address: parsed,
            preamble,
            register_max_milli,
        },
    ))
}

/// Meters on one serial port share its baud rate and need distinct
/// addresses, and a port carries only one protocol; says which device
/// disagrees with which.
pub(super) fn check_shared_ports(
    src: &SourceFile,
    raw: &[Spanned<RawDevice>],
    devices: &[DeviceConfig],
) -> Result<(), FieldError> {
    for (i, d) in devices.iter().enumerate() {
        let Transport::Cjt188 {
            serial_port,
            baud,
            address,
            ..
        } = &d.transport
        else {
            continue;
        };
        let r = raw[i].get_ref();
        let table = r.protocol.span();
        for (j, e) in devices.iter().enumerate() {
            let (other_port, other_baud, other_address) = match &e.transport {
                Transport::Cjt188 {
                    serial_port,
                    baud,
                    address,
                    ..
                } if j < i => (serial_port, baud, address),
                Transport::Dlt645 { serial_port: p, .. } if p == serial_port => {
                    let span = r.serial_port.as_ref().map_or(table.clone(), |p| p.span());
                    return Err(src.error(
                        span,
                        format!("devices[{i}].serial_port"),
                        format!(
                            "{} is the port of DL/T 645 meter devices[{j}] ({}); one line \
                             carries one protocol, so wire this meter to another port",
                            serial_port.display(),
                            e.id
                        ),
                    ));
                }
                _ => continue,
            };
            if other_port != serial_port {
                continue;
            }
            if other_baud != baud {
                let span = r.baud.as_ref().map_or(table.clone(), |b| b.span());
                return Err(src.error(
                    span,
                    format!("devices[{i}].baud"),
                    format!(
                        "{baud} differs from devices[{j}] ({}, {other_baud} baud) on the same \
                         serial_port {}; meters on one line share its baud rate",
                        e.id,
                        serial_port.display()
                    ),
                ));
            }
            if other_address == address {
                let span = r.meter_address.as_ref().map_or(table, |a| a.span());
                return Err(src.error(
                    span,
                    format!("devices[{i}].meter_address"),
                    format!(
                        "{address} is already devices[{j}] ({}) on serial_port {}; two meters \
                         on one line cannot share an address",
                        e.id,
                        serial_port.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "cjt188_tests.rs"]
mod tests;
