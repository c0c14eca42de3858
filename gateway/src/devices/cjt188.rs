//! CJ/T 188 water, gas and heat meters: one `901FH` (metering data)
//! request per poll, and how its answer becomes a reading.
//!
//! Meters share their line with others ([`Cjt188Line`]), one request at a
//! time. Values are normalised from the meter's unit codes (litres, MWh,
//! GJ, …) to the units in their names, so a consumer never sees a unit
//! code. Valve and battery from the status word are values too
//! (`valve_state` 0 open, 1 closed, 2 abnormal; `battery_low` 0 or 1), so
//! an edge rule or a detector can use them like any other.
//!
//! The meter reports a cumulative register only; the interval value the
//! flat detectors read (`flow_l` for water, `use_m3` for gas,
//! `heat_use_kwh` for heat) is the register's rise since the previous
//! poll, counted the way round when the register wraps past its largest
//! reading ([`gridwatch_telemetry::register`]). A fall that is not a wrap
//! gives no interval value: the register itself goes out, and analytics
//! judges it.
//!
//! A meter that answers abnormally, or with a register in a unit that does
//! not fit its type, yields a `device_error`; one that does not answer, or
//! only with corrupt frames, fails the poll, and the poller reports it
//! offline after `offline_after_failures` polls.
//!
//! Valve commands (`valve_open`, `valve_close`) are in [`valve`].

pub mod valve;

use super::{Device, Measurement, PollOutcome};
use crate::bus::cjt188::Cjt188Line;
use crate::profile::Profile;
use gridwatch_cjt188::{
    Address, Answer, Command, Frame, MeterData, MeterFamily, MeterType, Quantity, Reading, Request,
    Status, Valve,
};
use gridwatch_telemetry::register::{modulus_of_max, register_use};
use gridwatch_telemetry::DeviceKind;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The baud rate residential CJ/T 188 meters ship with.
pub const DEFAULT_BAUD: u32 = 2400;

/// Baud rates CJ/T 188 meters use (config check and `scan`).
pub const BAUD_RATES: [u32; 5] = [1200, 2400, 4800, 9600, 19200];

/// The reading kind of a meter type, or `None` for types the gateway does
/// not read (40H-49H, "other meters").
pub fn kind(meter_type: MeterType) -> Option<DeviceKind> {
    match meter_type.family()? {
        MeterFamily::Water => Some(DeviceKind::WaterMeter),
        MeterFamily::Gas => Some(DeviceKind::GasMeter),
        MeterFamily::Heat => Some(DeviceKind::HeatMeter),
        MeterFamily::Other => None,
    }
}

/// Values of a water meter's readings.
pub const WATER_VALUES: [&str; 5] = [
    "volume_m3",
    "settlement_volume_m3",
    "flow_l",
    "valve_state",
    "battery_low",
];
/// Values of a gas meter's readings.
pub const GAS_VALUES: [&str; 5] = [
    "volume_m3",
    "settlement_volume_m3",
    "use_m3",
    "valve_state",
    "battery_low",
];
/// Values of a heat meter's readings.
pub const HEAT_VALUES: [&str; 11] = [
    "heat_kwh",
    "settlement_heat_kwh",
    "heat_use_kwh",
    "heat_power_kw",
    "flow_rate_m3_h",
    "volume_m3",
    "supply_temperature_c",
    "return_temperature_c",
    "working_time_h",
    "valve_state",
    "battery_low",
];

/// The names of the values a meter of `kind` reports.
pub fn value_names(kind: DeviceKind) -> &'static [&'static str] {
    match kind {
        DeviceKind::GasMeter => &GAS_VALUES,
        DeviceKind::HeatMeter => &HEAT_VALUES,
        _ => &WATER_VALUES,
    }
}

/// The description `gridwatch-gateway check` and the command layer see for
/// a CJ/T 188 meter. Like DL/T 645 it lists no registers: the standard,
/// not a profile file, says what a meter sends.
pub fn profile(meter_type: MeterType, kind: DeviceKind) -> Arc<Profile> {
    let family = match kind {
        DeviceKind::GasMeter => "gas",
        DeviceKind::HeatMeter => "heat",
        _ => "water",
    };
    Arc::new(Profile {
        model: format!("cjt188-{family}"),
        vendor: format!("any CJ/T 188 meter of type {meter_type}"),
        kind,
        document: "CJ/T 188-2004/2018 Data transmission technical conditions for household \
                   meters, metering data 901FH"
            .to_owned(),
        max_gap_registers: 0,
        registers: Vec::new(),
        channel: None,
        // Valve commands (A017H) are fixed by the standard, not profile
        // data: the command layer offers them to every meter ([`valve`]).
        commands: Vec::new(),
        origin: "built in (CJ/T 188)".to_owned(),
    })
}

/// A meter bound to its line.
pub struct Cjt188Device {
    line: Arc<Cjt188Line>,
    meter_type: MeterType,
    kind: DeviceKind,
    address: Address,
    preamble: usize,
    timeout: Duration,
    ser: u8,
    /// The configured largest register reading, if any.
    register_max: Option<f64>,
    /// The main register at the previous answer.
    last_register: Option<f64>,
}

impl Cjt188Device {
    /// The meter of `meter_type` at `address` on `line`; each request is
    /// preceded by `preamble` `FEH` bytes and waits up to `timeout`.
    /// `register_max` is the main register's largest reading (99999.999
    /// for a five-digit m³ register); without it, the 8 digits the
    /// protocol carries.
    pub fn new(
        line: Arc<Cjt188Line>,
        meter_type: MeterType,
        address: Address,
        preamble: usize,
        timeout: Duration,
        register_max: Option<f64>,
    ) -> Self {
        Self {
            line,
            meter_type,
            kind: kind(meter_type).unwrap_or(DeviceKind::WaterMeter),
            address,
            preamble,
            timeout,
            ser: 0,
            register_max,
            last_register: None,
        }
    }
}

impl Device for Cjt188Device {
    async fn poll(&mut self) -> PollOutcome {
        self.ser = self.ser.wrapping_add(1);
        let request = Request {
            meter_type: self.meter_type,
            address: self.address,
            ser: self.ser,
            command: Command::ReadMeterData,
        }
        .frame();
        let frame = match self
            .line
            .transact(&request, self.preamble, self.timeout)
            .await
        {
            Ok(frame) => frame,
            Err(e) => return PollOutcome::Unreachable(format!("reading 901FH: {e}")),
        };
        match meter_values(&frame, self.kind) {
            Ok((mut values, register)) => {
                if let Some((reg, interval_name, factor)) = register {
                    let modulus = self.register_max.map_or(reg.1, modulus_of_max);
                    if let Some(used) = interval_use(&mut self.last_register, reg.0, modulus) {
                        values.insert(interval_name.to_owned(), used * factor);
                    }
                }
                PollOutcome::Answered {
                    measurements: vec![Measurement {
                        kind: self.kind,
                        socket: None,
                        values,
                        flat: None,
                    }],
                    errors: Vec::new(),
                }
            }
            Err(why) => PollOutcome::Answered {
                measurements: Vec::new(),
                errors: vec![format!("901FH: {why}")],
            },
        }
    }

    fn address(&self) -> String {
        format!(
            "{} meter {} (type {})",
            self.line.path().display(),
            self.address,
            self.meter_type
        )
    }

    async fn close(&mut self) {}
}

/// The main register: (value, modulus it wraps at) in the reading's unit,
/// the interval value's name, and the factor from the register's unit to
/// the interval value's (m³ → L: 1000).
type MainRegister = ((f64, f64), &'static str, f64);

/// The values in a `901FH` answer for a meter of `kind`, and its main
/// register; or why there are none.
pub fn meter_values(
    frame: &Frame,
    kind: DeviceKind,
) -> Result<(BTreeMap<String, f64>, Option<MainRegister>), String> {
    let data = match frame.answer().map_err(|e| e.to_string())? {
        Answer::MeterData { data, .. } => data,
        Answer::Abnormal { status, .. } => {
            return Err(match status {
                Some(s) => format!(
                    "the meter answered abnormally (status {:02X} {:02X})",
                    s.0[0], s.0[1]
                ),
                None => "the meter answered abnormally".to_owned(),
            })
        }
        other => return Err(format!("the meter answered something else: {other:?}")),
    };
    let mut values = BTreeMap::new();
    let mut put = |name: &str, v: f64| {
        values.insert(name.to_owned(), v);
    };
    let main = match (data, kind) {
        (MeterData::Flow(d), DeviceKind::WaterMeter | DeviceKind::GasMeter) => {
            let current = normalised(&d.current, Quantity::Volume, "current flow")?;
            put("volume_m3", current);
            let settlement = normalised(&d.settlement, Quantity::Volume, "settlement flow")?;
            put("settlement_volume_m3", settlement);
            let (name, factor) = if kind == DeviceKind::GasMeter {
                ("use_m3", 1.0)
            } else {
                ("flow_l", 1000.0)
            };
            ((current, modulus(&d.current)), name, factor)
        }
        (MeterData::Heat(d), DeviceKind::HeatMeter) => {
            let heat = normalised(&d.current_heat, Quantity::Energy, "current heat")?;
            put("heat_kwh", heat);
            let settlement = normalised(&d.settlement_heat, Quantity::Energy, "settlement heat")?;
            put("settlement_heat_kwh", settlement);
            put(
                "heat_power_kw",
                normalised(&d.power, Quantity::Power, "heat power")?,
            );
            put(
                "flow_rate_m3_h",
                normalised(&d.flow_rate, Quantity::Flow, "flow rate")?,
            );
            put(
                "volume_m3",
                normalised(&d.cumulative_flow, Quantity::Volume, "cumulative flow")?,
            );
            put("supply_temperature_c", f64::from(d.supply_centi_c) / 100.0);
            put("return_temperature_c", f64::from(d.return_centi_c) / 100.0);
            put("working_time_h", f64::from(d.working_hours));
            ((heat, modulus(&d.current_heat)), "heat_use_kwh", 1.0)
        }
        (MeterData::Flow(_), _) => {
            return Err(format!(
                "a water or gas meter's data from a meter configured as {kind}"
            ))
        }
        (MeterData::Heat(_), _) => {
            return Err(format!(
                "a heat meter's data from a meter configured as {kind}"
            ))
        }
    };
    let status = data.status();
    put("valve_state", valve_state(status));
    put("battery_low", f64::from(u8::from(status.battery_low())));
    Ok((values, Some(main)))
}

/// The use since the register read `last` (which becomes `now`): `None`
/// on the first answer and after a fall that is not a wrap at `modulus`.
pub fn interval_use(last: &mut Option<f64>, now: f64, modulus: f64) -> Option<f64> {
    register_use(last.replace(now)?, now, modulus)
}

/// `valve_state`: 0 open, 1 closed, 2 abnormal (stuck or unknown).
pub fn valve_state(status: Status) -> f64 {
    match status.valve() {
        Valve::Open => 0.0,
        Valve::Closed => 1.0,
        Valve::Abnormal => 2.0,
    }
}

/// `r` in kWh, kW, m³ or m³/h, or why not (`field` names it).
fn normalised(r: &Reading, want: Quantity, field: &str) -> Result<f64, String> {
    match r.normalised() {
        Some((q, v)) if q == want => Ok(v),
        Some((q, _)) => Err(format!(
            "{field} is in {}, a unit of {q:?}, not of {want:?}",
            r.unit
        )),
        None => Err(format!(
            "{field} has unit code {}, not in the standard",
            r.unit
        )),
    }
}

/// Where `r`'s register wraps, in the normalised unit: its 8 digits.
fn modulus(r: &Reading) -> f64 {
    let top = Reading {
        register: Reading::MAX_REGISTER,
        ..*r
    };
    let step = Reading { register: 1, ..*r };
    match (top.normalised(), step.normalised()) {
        (Some((_, max)), Some((_, step))) => max + step,
        _ => f64::INFINITY,
    }
}

#[cfg(test)]
#[path = "cjt188_tests.rs"]
mod tests;
