//! `scan`: which devices answer behind a Modbus TCP address, and which
//! profile each one matches.
//!
//! An installer knows the box, rarely the unit ids set on each meter. A scan
//! asks every unit id in a range with short timeouts, reads only (never a
//! write: it may be a live installation), and for each unit that answers
//! reads the registers of every profile in `config/devices/`. A profile
//! matches when every read it plans is answered and its checks (`expect`,
//! `expect_text`) hold; the confidence says how sure that is. Judging is pure
//! ([`judge`]); the reading is a thin loop over any [`RegisterReader`].
//! [`rtu`] does the same on a serial line, for each baud rate and parity.

pub mod cjt188;
pub mod dlt645;
pub mod rtu;

use crate::bus::modbus_tcp::ModbusTcpBus;
use crate::bus::{BusError, ReadRequest, RegisterReader};
use crate::devices::modbus::decode::{decode_block, DecodeError, RegisterImage};
use crate::devices::modbus::plan;
use crate::profile::Profile;
use gridwatch_telemetry::DeviceKind;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

/// Modbus exceptions a TCP-to-RTU gateway sends for a unit that is not
/// there (0x0A path unavailable, 0x0B target did not respond): no device.
const NO_DEVICE_EXCEPTIONS: [u8; 2] = [0x0A, 0x0B];

/// How well one profile fits what a unit answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The profile's model name.
    pub model: String,
    /// 0 (does not fit) to 1 (every read answered and an identity check held).
    pub confidence: f64,
    /// Registers read in all, to prefer the more specific of two full fits.
    pub registers: u32,
}

/// What a scan found at one unit id.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The unit id that answered.
    pub unit_id: u8,
    /// The best-fitting profile, if any fits at all.
    pub best: Option<Judgement>,
}

/// Judges `profile` from the answers to its planned reads: `None` when
/// nothing shows a device is there (no answer, or a gateway's "no such
/// unit" exception to every read).
pub fn judge(
    profile: &Profile,
    answers: &[(ReadRequest, Result<Vec<u16>, BusError>)],
) -> Option<Judgement> {
    let present = answers.iter().any(|(_, r)| match r {
        Ok(_) => true,
        Err(BusError::Exception { code }) => !NO_DEVICE_EXCEPTIONS.contains(code),
        Err(BusError::Unreachable(_)) => false,
    });
    if !present {
        return None;
    }
    let mut image = RegisterImage::new();
    let mut answered = 0usize;
    let mut registers = 0u32;
    for (request, result) in answers {
        if let Ok(words) = result {
            image.insert(request, words);
            answered += 1;
            registers += u32::from(request.count);
        }
    }
    let has_checks = profile
        .registers
        .iter()
        .any(|r| r.expect.is_some() || r.expect_text.is_some());
    let confidence = if answered < answers.len() {
        // Some of its registers are missing: another model, at best a cousin.
        0.5 * answered as f64 / answers.len().max(1) as f64
    } else {
        match decode_block(&profile.registers, &image, 0) {
            Ok(_) if has_checks => 1.0,
            // Every register answered, nothing identifies the model.
            Ok(_) => 0.8,
            Err(DecodeError::Unexpected { .. }) => 0.0,
            Err(_) => 0.3,
        }
    };
    Some(Judgement {
        model: profile.model.clone(),
        confidence,
        registers,
    })
}

/// The best of `judgements`: highest confidence, then the most registers
/// (a three-phase meter also answers a single-phase one's reads).
pub fn best(judgements: Vec<Judgement>) -> Option<Judgement> {
    judgements.into_iter().max_by(|a, b| {
        a.confidence
            .total_cmp(&b.confidence)
            .then(a.registers.cmp(&b.registers))
    })
}

/// Reads `profile`'s device-level registers through `bus`, stopping at the
/// first read nobody answered (a missing unit costs one timeout, not one per
/// request).
pub async fn read_profile<R: RegisterReader>(
    bus: &mut R,
    profile: &Profile,
) -> Vec<(ReadRequest, Result<Vec<u16>, BusError>)> {
    let mut out = Vec::new();
    for request in plan::device_requests(profile, profile.max_gap_registers) {
        let result = bus.read(request).await;
        let silent = matches!(result, Err(BusError::Unreachable(_)));
        out.push((request, result));
        if silent {
            break;
        }
    }
    out
}

/// The profiles a scan tries: every one but the generic ones (they fit
/// anything).
pub fn candidates(profiles: &[Arc<Profile>]) -> Vec<&Arc<Profile>> {
    profiles
        .iter()
        .filter(|p| p.kind != DeviceKind::Generic)
        .collect()
}

/// Asks `unit_id` through `bus` for every candidate profile's registers:
/// `None` when nobody answers there. The first profile's reads decide
/// whether anyone is there, so a missing unit costs one timeout.
pub async fn identify<R: RegisterReader>(
    bus: &mut R,
    unit_id: u8,
    candidates: &[&Arc<Profile>],
) -> Option<Found> {
    let mut judgements = Vec::new();
    for (i, profile) in candidates.iter().enumerate() {
        let answers = read_profile(bus, profile).await;
        match judge(profile, &answers) {
            Some(j) => judgements.push(j),
            None if i == 0 => break,
            None => {}
        }
    }
    if judgements.is_empty() {
        return None;
    }
    Some(Found {
        unit_id,
        best: best(judgements).filter(|j| j.confidence > 0.0),
    })
}

/// Scans `units` behind `host:port` against `profiles` (generic ones are
/// skipped: they fit anything), each read allowed `timeout`.
pub async fn scan_tcp(
    host: &str,
    port: u16,
    units: RangeInclusive<u8>,
    profiles: &[Arc<Profile>],
    timeout: Duration,
) -> Vec<Found> {
    let mut found = Vec::new();
    let candidates = candidates(profiles);
    for unit_id in units {
        let mut bus = ModbusTcpBus::new(host, port, unit_id, timeout);
        found.extend(identify(&mut bus, unit_id, &candidates).await);
        bus.close().await;
    }
    found
}

/// The table a person reads: one line per unit found.
pub fn table(found: &[Found], line: &str) -> String {
    let rows: Vec<(&str, &Found)> = found.iter().map(|f| (line, f)).collect();
    table_of(&rows)
}

/// [`table`] with each unit's own line (an RTU scan finds units at
/// different baud rates and parities).
pub fn table_of(rows: &[(&str, &Found)]) -> String {
    let mut out = format!(
        "{:<5} {:<22} {:<20} {}\n",
        "unit", "line", "profile", "confidence"
    );
    for (line, f) in rows {
        let (model, confidence) = match &f.best {
            Some(j) => (j.model.as_str(), format!("{:.0} %", j.confidence * 100.0)),
            None => ("(none: try generic-holding)", "-".to_owned()),
        };
        let _ = writeln!(
            out,
            "{:<5} {:<22} {:<20} {confidence}",
            f.unit_id, line, model
        );
    }
    if rows.is_empty() {
        out.push_str("no unit answered\n");
    }
    out
}

/// `[[devices]]` tables for the units that matched a profile with at least
/// `min_confidence`, to append to a gateway config.
pub fn device_tables(found: &[Found], host: &str, port: u16, min_confidence: f64) -> String {
    let mut out = String::new();
    for f in found {
        let Some(j) = f.best.as_ref().filter(|j| j.confidence >= min_confidence) else {
            continue;
        };
        let _ = write!(
            out,
            "\n# found by `gridwatch-gateway scan` ({:.0} % sure)\n[[devices]]\n\
             id = \"{}-{}\"\nprofile = \"{}\"\nprotocol = \"modbus_tcp\"\n\
             host = \"{host}\"\nport = {port}\nunit_id = {}\n",
            j.confidence * 100.0,
            j.model,
            f.unit_id,
            j.model,
            f.unit_id
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileLibrary;

    fn request(start: u16, count: u16) -> ReadRequest {
        ReadRequest {
            function: crate::profile::Function::Holding,
            start,
            count,
        }
    }

    #[test]
    fn silence_and_no_such_unit_mean_nobody_is_there() {
        let p = ProfileLibrary::built_in().get("chint-dtsu666").unwrap();
        let silent = [(
            request(0, 2),
            Err(BusError::Unreachable("no answer".into())),
        )];
        assert_eq!(judge(&p, &silent), None);
        let gone = [(request(0, 2), Err(BusError::Exception { code: 0x0B }))];
        assert_eq!(judge(&p, &gone), None);
    }

    #[test]
    fn a_refused_read_is_a_device_that_is_another_model() {
        let p = ProfileLibrary::built_in().get("chint-dtsu666").unwrap();
        let refused = [(request(0, 2), Err(BusError::Exception { code: 0x02 }))];
        let j = judge(&p, &refused).unwrap();
        assert_eq!(j.confidence, 0.0);
    }

    #[test]
    fn the_best_fit_is_the_surest_then_the_largest() {
        let j = |model: &str, confidence, registers| Judgement {
            model: model.into(),
            confidence,
            registers,
        };
        let b = best(vec![j("a", 0.8, 10), j("b", 0.8, 40), j("c", 0.4, 90)]).unwrap();
        assert_eq!(b.model, "b");
    }

    #[test]
    fn found_devices_become_config_tables() {
        let found = [
            Found {
                unit_id: 3,
                best: Some(Judgement {
                    model: "eastron-sdm120".into(),
                    confidence: 0.8,
                    registers: 20,
                }),
            },
            Found {
                unit_id: 9,
                best: None,
            },
        ];
        let text = device_tables(&found, "10.0.0.5", 502, 0.5);
        assert!(text.contains("id = \"eastron-sdm120-3\""));
        assert!(!text.contains("unit_id = 9"));
        assert!(table(&found, "10.0.0.5:502").contains("try generic-holding"));
    }
}
