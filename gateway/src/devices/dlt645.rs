//! DL/T 645-2007 electricity meters: which values to ask a meter for, and
//! how its answers become a reading.
//!
//! A poll reads each value with its own request (DL/T 645 has no
//! "read a range"), one at a time on the meter's line, which other meters
//! may share ([`Dlt645Line`]). Values are named like the Modbus meter
//! profiles' (`voltage_v`, `current_l1_a`, `power_w`, `import_energy_kwh`)
//! so consumers cannot tell which protocol a meter speaks.
//!
//! A meter that answers "no such data" for a value (many single-phase
//! meters lack frequency or export energy) yields a `device_error` once,
//! and its other values are still reported. A meter that does not answer
//! at all, or only with corrupt frames, makes the poll fail: the poller
//! then retries with backoff and reports it offline after
//! `offline_after_failures` polls.

use super::{Device, Measurement, PollOutcome};
use crate::bus::dlt645::Dlt645Line;
use crate::profile::Profile;
use gridwatch_dlt645::{Address, Answer, DataId, Frame};
use gridwatch_telemetry::DeviceKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The baud rate residential DL/T 645 meters ship with.
pub const DEFAULT_BAUD: u32 = 2400;

/// One value a meter is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantity {
    /// Its name in readings, unit in the name.
    pub name: &'static str,
    /// The identifier that reads it.
    pub di: DataId,
    /// Factor from the identifier's unit to the reading's (kW → W: 1000).
    pub scale: f64,
}

const fn q(name: &'static str, di: DataId, scale: f64) -> Quantity {
    Quantity { name, di, scale }
}

/// What every meter is asked for.
const COMMON: [Quantity; 5] = [
    q("import_energy_kwh", DataId::FORWARD_ACTIVE_ENERGY, 1.0),
    q("export_energy_kwh", DataId::REVERSE_ACTIVE_ENERGY, 1.0),
    q("power_w", DataId::ACTIVE_POWER, 1000.0),
    q("power_factor", DataId::POWER_FACTOR, 1.0),
    q("frequency_hz", DataId::FREQUENCY, 1.0),
];

/// Phase A of a single-phase meter.
const SINGLE_PHASE: [Quantity; 2] = [
    q("voltage_v", DataId::VOLTAGE_A, 1.0),
    q("current_a", DataId::CURRENT_A, 1.0),
];

/// Each phase of a three-phase meter.
const THREE_PHASE: [[Quantity; 4]; 3] = {
    const fn phase(p: u8, names: [&'static str; 4]) -> [Quantity; 4] {
        [
            q(names[0], DataId::VOLTAGE_A.phase(p), 1.0),
            q(names[1], DataId::CURRENT_A.phase(p), 1.0),
            q(names[2], DataId::ACTIVE_POWER.phase(p), 1000.0),
            q(names[3], DataId::POWER_FACTOR.phase(p), 1.0),
        ]
    }
    [
        phase(
            1,
            [
                "voltage_l1_v",
                "current_l1_a",
                "power_l1_w",
                "power_factor_l1",
            ],
        ),
        phase(
            2,
            [
                "voltage_l2_v",
                "current_l2_a",
                "power_l2_w",
                "power_factor_l2",
            ],
        ),
        phase(
            3,
            [
                "voltage_l3_v",
                "current_l3_a",
                "power_l3_w",
                "power_factor_l3",
            ],
        ),
    ]
};

/// The values read from a meter with `phases` phases (1 or 3).
pub fn quantities(phases: u8) -> Vec<Quantity> {
    let mut all = Vec::new();
    if phases == 3 {
        all.extend(THREE_PHASE.iter().flatten().copied());
    } else {
        all.extend(SINGLE_PHASE);
    }
    all.extend(COMMON);
    all
}

/// The description `gridwatch-gateway check` and the command layer see for
/// a DL/T 645 meter. It lists no registers: the standard, not a profile
/// file, says what a meter can be asked.
pub fn profile(phases: u8) -> Arc<Profile> {
    Arc::new(Profile {
        model: format!("dlt645-{phases}p"),
        vendor: "any DL/T 645-2007 meter".to_owned(),
        kind: DeviceKind::ElectricityMeter,
        document: "DL/T 645-2007 Multi-function watt-hour meter communication protocol, \
                   Appendix A (data identifiers)"
            .to_owned(),
        max_gap_registers: 0,
        registers: Vec::new(),
        channel: None,
        // DL/T 645 relay control (1CH) needs the meter's password; not offered.
        commands: Vec::new(),
        origin: "built in (DL/T 645-2007)".to_owned(),
    })
}

/// A meter bound to its line.
pub struct Dlt645Device {
    line: Arc<Dlt645Line>,
    address: Address,
    wake_up: usize,
    timeout: Duration,
    quantities: Vec<Quantity>,
}

impl Dlt645Device {
    /// The meter at `address` with `phases` phases on `line`; each request
    /// is preceded by `wake_up` wake-up bytes and waits up to `timeout`.
    pub fn new(
        line: Arc<Dlt645Line>,
        address: Address,
        phases: u8,
        wake_up: usize,
        timeout: Duration,
    ) -> Self {
        Self {
            line,
            address,
            wake_up,
            timeout,
            quantities: quantities(phases),
        }
    }
}

impl Device for Dlt645Device {
    async fn poll(&mut self) -> PollOutcome {
        let mut values = BTreeMap::new();
        let mut errors = Vec::new();
        let mut reasons = Vec::new();
        for q in &self.quantities {
            let request = Frame::read(self.address, q.di);
            let frame = match self
                .line
                .transact(&request, self.wake_up, self.timeout)
                .await
            {
                Ok(frame) => frame,
                Err(e) => {
                    return PollOutcome::Unreachable(format!("reading {} ({}): {e}", q.name, q.di))
                }
            };
            match read_value(&frame, q) {
                Ok(v) => {
                    values.insert(q.name.to_owned(), v);
                }
                Err(why) => {
                    errors.push(format!("{} ({}): {why}", q.name, q.di));
                    reasons.push(why);
                }
            }
        }
        // A meter refusing everything for one reason (a password, a
        // locked port) is one problem, not one per value.
        if values.is_empty() && reasons.len() > 1 && reasons.iter().all(|r| *r == reasons[0]) {
            errors = vec![format!("all {} values: {}", reasons.len(), reasons[0])];
        }
        let measurements = if values.is_empty() {
            Vec::new()
        } else {
            vec![Measurement {
                kind: DeviceKind::ElectricityMeter,
                socket: None,
                values,
                flat: None,
            }]
        };
        PollOutcome::Answered {
            measurements,
            errors,
        }
    }

    fn address(&self) -> String {
        format!("{} meter {}", self.line.path().display(), self.address)
    }

    async fn close(&mut self) {}
}

/// The value of `q` in `frame`, scaled, or why there is none.
fn read_value(frame: &Frame, q: &Quantity) -> Result<f64, String> {
    match frame.answer().map_err(|e| e.to_string())? {
        Answer::Abnormal(e) => Err(format!("the meter answered {e}")),
        Answer::Data { di, .. } if di != q.di => {
            Err(format!("the meter answered for {di} instead"))
        }
        Answer::Data { value, .. } => {
            let format = q.di.format().ok_or_else(|| "no known format".to_owned())?;
            let v = format.decode(value).map_err(|e| e.to_string())?;
            Ok(v.to_f64() * q.scale)
        }
        Answer::Address(_) => Err("the meter answered with its address".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_dlt645::{Control, ErrorWord, Function};

    fn answer(di: DataId, value: &[u8]) -> Frame {
        let mut data = di.to_wire().to_vec();
        data.extend_from_slice(value);
        Frame::new(
            Address::parse("000000000001").unwrap(),
            Control::answer(Function::ReadData, false),
            &data,
        )
        .unwrap()
    }

    #[test]
    fn every_quantity_has_a_format_and_a_unique_name() {
        for phases in [1, 3] {
            let qs = quantities(phases);
            let names: std::collections::BTreeSet<_> = qs.iter().map(|q| q.name).collect();
            assert_eq!(names.len(), qs.len());
            assert!(qs.iter().all(|q| q.di.format().is_some()), "{qs:?}");
        }
        assert_eq!(quantities(1).len(), 7);
        assert_eq!(quantities(3).len(), 17);
        assert_eq!(quantities(3)[4].di, DataId(0x0201_0200), "phase B voltage");
    }

    #[test]
    fn answers_become_scaled_values() {
        let power = q("power_w", DataId::ACTIVE_POWER, 1000.0);
        // -1.2345 kW → -1234.5 W.
        let v = read_value(&answer(DataId::ACTIVE_POWER, &[0x45, 0x23, 0x81]), &power).unwrap();
        assert!((v + 1234.5).abs() < 1e-9, "{v}");
    }

    #[test]
    fn unusable_answers_say_why() {
        let volts = q("voltage_v", DataId::VOLTAGE_A, 1.0);
        let wrong = read_value(&answer(DataId::CURRENT_A, &[0, 0, 0]), &volts).unwrap_err();
        assert!(wrong.contains("02 02 01 00 instead"), "{wrong}");
        let not_bcd = read_value(&answer(DataId::VOLTAGE_A, &[0xFF, 0xFF]), &volts).unwrap_err();
        assert!(not_bcd.contains("not two BCD digits"), "{not_bcd}");
        let abnormal = Frame::new(
            Address::parse("000000000001").unwrap(),
            Control::abnormal(Function::ReadData),
            &[ErrorWord::NO_DATA],
        )
        .unwrap();
        let e = read_value(&abnormal, &volts).unwrap_err();
        assert_eq!(e, "the meter answered no such data (ERR 02H)");
    }
}
