//! `protocol = "dlt645"` devices: a DL/T 645-2007 meter on a serial line.
//!
//! Such a meter needs no profile: what it can be asked is fixed by the
//! standard's data identifiers, and `phases` says whether to ask for
//! phases B and C too. Meters sharing a `serial_port` share one RS-485
//! pair, so they must agree on its baud rate and differ in address.

use super::*;
use crate::devices::dlt645 as device;
use gridwatch_dlt645::Address;

/// Baud rates DL/T 645-2007 meters are made for (§5.1; 2400 is what most
/// residential meters ship with).
pub const BAUD_RATES: [u32; 6] = [600, 1200, 2400, 4800, 9600, 19200];

const NAME: &str = "dlt645";

/// Refuses `field` (present at `span`) for `protocol`, which does not use it.
pub(super) fn not_used(
    src: &SourceFile,
    span: Option<Range<usize>>,
    field: &str,
    protocol: &str,
) -> Result<(), FieldError> {
    match span {
        Some(span) => Err(src.error(
            span,
            field,
            format!("is not used with protocol = \"{protocol}\""),
        )),
        None => Ok(()),
    }
}

/// A field a serial meter of `protocol` needs: its value, or an error at
/// `protocol`.
pub(super) fn required<'a, T>(
    src: &SourceFile,
    value: &'a Option<Spanned<T>>,
    at: &Range<usize>,
    field: &str,
    protocol: &str,
) -> Result<&'a Spanned<T>, FieldError> {
    value.as_ref().ok_or_else(|| {
        src.error(
            at.clone(),
            field,
            format!("protocol = \"{protocol}\" needs this field"),
        )
    })
}

/// Refuses the DL/T 645 fields on a device of another protocol.
pub(super) fn refuse_fields(src: &SourceFile, i: usize, d: &RawDevice) -> Result<(), FieldError> {
    let protocol = match d.protocol.get_ref() {
        // CJ/T 188 meters use the serial fields too, all but `phases`.
        Protocol::Dlt645 | Protocol::Cjt188 => return Ok(()),
        other => other.name(),
    };
    let f = |name: &str| format!("devices[{i}].{name}");
    not_used(
        src,
        d.serial_port.as_ref().map(|v| v.span()),
        &f("serial_port"),
        protocol,
    )?;
    not_used(src, d.baud.as_ref().map(|v| v.span()), &f("baud"), protocol)?;
    not_used(
        src,
        d.meter_address.as_ref().map(|v| v.span()),
        &f("meter_address"),
        protocol,
    )?;
    not_used(
        src,
        d.phases.as_ref().map(|v| v.span()),
        &f("phases"),
        protocol,
    )?;
    not_used(
        src,
        d.wake_up_bytes.as_ref().map(|v| v.span()),
        &f("wake_up_bytes"),
        protocol,
    )
}

/// The built-in description and the transport of a DL/T 645 device.
pub(super) fn build(
    src: &SourceFile,
    i: usize,
    d: &RawDevice,
) -> Result<(Arc<Profile>, Transport), FieldError> {
    let f = |name: &str| format!("devices[{i}].{name}");
    let whole = d.protocol.span();
    super::cjt188::refuse_fields(src, i, d)?;
    not_used(
        src,
        d.profile.as_ref().map(|v| v.span()),
        &f("profile"),
        NAME,
    )
    .map_err(|e| FieldError {
        message: format!(
            "{}; a DL/T 645 meter needs no profile (set phases = 1 or 3)",
            e.message
        ),
        ..e
    })?;
    not_used(src, d.host.as_ref().map(|v| v.span()), &f("host"), NAME)?;
    not_used(src, d.port.as_ref().map(|v| v.span()), &f("port"), NAME)?;
    not_used(
        src,
        d.unit_id.as_ref().map(|v| v.span()),
        &f("unit_id"),
        NAME,
    )?;
    not_used(src, d.bus.as_ref().map(|v| v.span()), &f("bus"), NAME)?;
    not_used(
        src,
        d.max_gap_registers.as_ref().map(|v| v.span()),
        &f("max_gap_registers"),
        NAME,
    )?;

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
                "{} is not a DL/T 645 baud rate; use one of {BAUD_RATES:?} (meters ship with {})",
                b.get_ref(),
                device::DEFAULT_BAUD
            ),
            ))
        }
    };
    let address = required(src, &d.meter_address, &whole, &f("meter_address"), NAME)?;
    let parsed = Address::parse(address.get_ref().trim()).map_err(|e| {
        src.error(
            address.span(),
            f("meter_address"),
            format!("{:?}: {e}", address.get_ref()),
        )
    })?;
    if parsed == Address::BROADCAST {
        return Err(src.error(
            address.span(),
            f("meter_address"),
            "999999999999 is the broadcast address, which meters obey but never answer; \
             use the meter's own address (printed on its face)",
        ));
    }
    let phases = match &d.phases {
        None => 1,
        Some(p) if matches!(p.get_ref(), 1 | 3) => *p.get_ref(),
        Some(p) => {
            return Err(src.error(
                p.span(),
                f("phases"),
                format!("{} phases: a meter has 1 or 3", p.get_ref()),
            ))
        }
    };
    let wake_up = bounded(
        src,
        &d.wake_up_bytes,
        gridwatch_dlt645::DEFAULT_WAKE_UP as u8,
        &f("wake_up_bytes"),
        0,
        gridwatch_dlt645::MAX_WAKE_UP as u8,
    )?;
    Ok((
        device::profile(phases),
        Transport::Dlt645 {
            serial_port: port.get_ref().clone(),
            baud,
            address: parsed,
            phases,
            wake_up,
        },
    ))
}

/// Meters on one serial port share its baud rate and need distinct
/// addresses; says which device disagrees with which.
pub(super) fn check_shared_ports(
    src: &SourceFile,
    raw: &[Spanned<RawDevice>],
    devices: &[DeviceConfig],
) -> Result<(), FieldError> {
    for (i, d) in devices.iter().enumerate() {
        let Transport::Dlt645 {
            serial_port,
            baud,
            address,
            ..
        } = &d.transport
        else {
            continue;
        };
        for (j, e) in devices[..i].iter().enumerate() {
            let Transport::Dlt645 {
                serial_port: other_port,
                baud: other_baud,
                address: other_address,
                ..
            } = &e.transport
            else {
                continue;
            };
            if other_port != serial_port {
                continue;
            }
            let r = raw[i].get_ref();
            let table = r.protocol.span();
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
mod tests {
    use crate::config::tests::err;
    use crate::config::{GatewayConfig, Transport};

    const HEAD: &str = "[gateway]\nid = \"gw-1\"\nsite = \"s\"\n[mqtt]\nhost = \"h\"\n";

    /// A config with one meter (lines 6-10) whose table ends with `extra`.
    fn meter(extra: &str) -> String {
        format!(
            "{HEAD}[[devices]]\nid = \"meter-1\"\nprotocol = \"dlt645\"\n\
             serial_port = \"/dev/ttyUSB0\"\nmeter_address = \"000000000001\"\n{extra}"
        )
    }

    #[test]
    fn a_meter_needs_only_port_and_address() {
        let cfg = GatewayConfig::from_toml_str(&meter(""), "gw.toml").unwrap();
        let d = &cfg.devices[0];
        assert_eq!(
            d.transport,
            Transport::Dlt645 {
                serial_port: "/dev/ttyUSB0".into(),
                baud: 2400,
                address: gridwatch_dlt645::Address([1, 0, 0, 0, 0, 0]),
                phases: 1,
                wake_up: 4,
            }
        );
        assert_eq!(d.profile.model, "dlt645-1p");
        assert_eq!(
            d.transport.describe(),
            "dlt645 /dev/ttyUSB0 at 2400 baud 8E1, meter 000000000001"
        );
        let cfg = GatewayConfig::from_toml_str(
            &meter("baud = 9600\nphases = 3\nwake_up_bytes = 0\n"),
            "gw.toml",
        )
        .unwrap();
        assert!(matches!(
            cfg.devices[0].transport,
            Transport::Dlt645 {
                baud: 9600,
                phases: 3,
                wake_up: 0,
                ..
            }
        ));
        assert_eq!(cfg.devices[0].profile.model, "dlt645-3p");
    }

    #[test]
    fn a_bad_address_is_named_with_its_line() {
        let e = err(&meter("").replace("000000000001", "00000000001x"));
        assert_eq!(e.field, "devices[0].meter_address");
        assert_eq!(e.location.line, 10);
        assert!(e.message.contains("character 12 is 'x'"), "{e}");
        let e = err(&meter("").replace("000000000001", "12345"));
        assert!(e.message.contains("12 digits"), "{e}");
        let e = err(&meter("").replace("000000000001", "999999999999"));
        assert!(e.message.contains("broadcast"), "{e}");
    }

    #[test]
    fn missing_and_foreign_fields_are_refused() {
        let e = err(&meter("").replace("serial_port = \"/dev/ttyUSB0\"\n", ""));
        assert_eq!(e.field, "devices[0].serial_port");
        assert!(e.message.contains("needs this field"), "{e}");
        let e = err(&meter("profile = \"gridwatch-ebp12\"\n"));
        assert_eq!(e.field, "devices[0].profile");
        assert_eq!(e.location.line, 11);
        assert!(e.message.contains("needs no profile"), "{e}");
        let e = err(&meter("host = \"10.0.0.1\"\n"));
        assert_eq!(e.field, "devices[0].host");
        let e = err(&meter("unit_id = 3\n"));
        assert_eq!(e.field, "devices[0].unit_id");
        let e = err(&format!(
            "{HEAD}[[devices]]\nid = \"p\"\nprofile = \"gridwatch-ebp12\"\nprotocol = \"modbus_tcp\"\n\
             host = \"h\"\nmeter_address = \"000000000001\"\n"
        ));
        assert_eq!(e.field, "devices[0].meter_address");
        assert!(
            e.message
                .contains("not used with protocol = \"modbus_tcp\""),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[devices]]\nid = \"p\"\nprofile = \"gridwatch-ebp12\"\nprotocol = \"modbus_tcp\"\n"
        ));
        assert_eq!(e.field, "devices[0].host");
    }

    #[test]
    fn out_of_range_settings_say_what_is_allowed() {
        let e = err(&meter("baud = 2401\n"));
        assert_eq!(e.field, "devices[0].baud");
        assert!(
            e.message.contains("[600, 1200, 2400, 4800, 9600, 19200]"),
            "{e}"
        );
        let e = err(&meter("phases = 2\n"));
        assert_eq!(e.field, "devices[0].phases");
        assert!(e.message.contains("1 or 3"), "{e}");
        let e = err(&meter("wake_up_bytes = 17\n"));
        assert_eq!(e.field, "devices[0].wake_up_bytes");
    }

    #[test]
    fn report_by_exception_knows_the_meters_values() {
        let cfg = GatewayConfig::from_toml_str(
            &meter("max_silence_ms = 60000\ndeadband = { power_w = 5.0, voltage_v = 1.0 }\n"),
            "gw.toml",
        )
        .unwrap();
        let report = cfg.devices[0].report.as_ref().expect("a report policy");
        assert_eq!(report.deadbands.get("power_w"), Some(&5.0));
        let e = err(&meter(
            "max_silence_ms = 60000\ndeadband = { voltage_l1_v = 1.0 }\n",
        ));
        assert_eq!(e.field, "devices[0].deadband.voltage_l1_v");
        assert!(e.message.contains("dlt645-1p has no value"), "{e}");
        assert!(e.message.contains("import_energy_kwh"), "{e}");
    }

    #[test]
    fn meters_on_one_port_agree_on_baud_and_differ_in_address() {
        let second = |address: &str, baud: u32| {
            format!(
                "[[devices]]\nid = \"meter-2\"\nprotocol = \"dlt645\"\nserial_port = \"/dev/ttyUSB0\"\n\
                 meter_address = \"{address}\"\nbaud = {baud}\n"
            )
        };
        let ok = format!("{}{}", meter(""), second("000000000002", 2400));
        assert_eq!(
            GatewayConfig::from_toml_str(&ok, "gw.toml")
                .unwrap()
                .devices
                .len(),
            2
        );
        let e = err(&format!("{}{}", meter(""), second("000000000002", 9600)));
        assert_eq!(e.field, "devices[1].baud");
        assert_eq!(e.location.line, 16);
        assert!(
            e.message
                .contains("differs from devices[0] (meter-1, 2400 baud)"),
            "{e}"
        );
        let e = err(&format!("{}{}", meter(""), second("000000000001", 2400)));
        assert_eq!(e.field, "devices[1].meter_address");
        assert!(e.message.contains("cannot share an address"), "{e}");
        let other_port = second("000000000001", 9600).replace("ttyUSB0", "ttyUSB1");
        assert!(
            GatewayConfig::from_toml_str(&format!("{}{other_port}", meter("")), "gw.toml").is_ok()
        );
    }
}
