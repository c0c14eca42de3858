//! A device's measured values at one instant.

use crate::ids::{DeviceId, GatewayId, SiteId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What kind of device produced a reading. Closed set: it names the InfluxDB
/// measurement and tells analytics which detectors apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// One socket of a charging pile (the reading's `socket` says which).
    ChargingSocket,
    /// A charging pile as a whole (total power, pile faults).
    ChargingPile,
    /// An electricity meter of a flat or a building.
    ElectricityMeter,
    /// A water meter.
    WaterMeter,
    /// A gas meter.
    GasMeter,
    /// A heat meter (district heating), `heat_meter` on the wire. Added
    /// after the other kinds; consumers that do not know it skip its
    /// readings rather than fail.
    HeatMeter,
    /// The gateway's own measurements (CPU temperature, outbox size, …).
    Gateway,
    /// A device no kind fits (an inverter, a sensor, a model not yet
    /// described): its values are published by name and stored, and no
    /// detector reads them.
    Generic,
}

impl DeviceKind {
    /// The wire and measurement name (`charging_socket`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::ChargingSocket => "charging_socket",
            DeviceKind::ChargingPile => "charging_pile",
            DeviceKind::ElectricityMeter => "electricity_meter",
            DeviceKind::WaterMeter => "water_meter",
            DeviceKind::GasMeter => "gas_meter",
            DeviceKind::HeatMeter => "heat_meter",
            DeviceKind::Gateway => "gateway",
            DeviceKind::Generic => "generic",
        }
    }

    /// Every kind, for listing valid choices in config errors.
    pub const ALL: [DeviceKind; 8] = [
        DeviceKind::ChargingSocket,
        DeviceKind::ChargingPile,
        DeviceKind::ElectricityMeter,
        DeviceKind::WaterMeter,
        DeviceKind::GasMeter,
        DeviceKind::HeatMeter,
        DeviceKind::Gateway,
        DeviceKind::Generic,
    ];
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's measured values at one instant.
///
/// `seq` counts per device and survives gateway restarts, so a consumer can
/// detect gaps and drop duplicates after an uplink replay. Values carry their
/// unit in the name (`current_a`, `power_w`, `temperature_c`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Payload schema version ([`crate::SCHEMA_VERSION`]).
    #[serde(default = "crate::codec::default_schema")]
    pub schema: u32,
    /// When the values were measured (UTC ms).
    pub ts: Timestamp,
    /// The gateway that polled the device.
    pub gateway: GatewayId,
    /// The site the gateway serves.
    #[serde(default)]
    pub site: SiteId,
    /// The building, where the device is bound to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<String>,
    /// The flat or unit the device meters, where it meters one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The device, unique within its gateway.
    pub device: DeviceId,
    /// What the device is.
    pub kind: DeviceKind,
    /// For multi-socket piles: the socket number (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<u16>,
    /// Per-device sequence number.
    pub seq: u64,
    /// The serial number of the meter behind the device id, where the
    /// protocol tells it (a CJ/T 188 meter's address). A device id keeps
    /// its history when a meter is swapped; a new serial with a register
    /// starting again near zero is then a new meter, not one running
    /// backwards. Absent in older payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_serial: Option<String>,
    /// Set when the gateway stamped this reading before its clock was
    /// synchronised (a Pi has no battery-backed clock): the time may be
    /// anything, so analytics keeps it out of every detector. Absent
    /// (false) in older payloads and whenever the clock was trusted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock_unsynced: bool,
    /// Measured values by name, units in the name. A whole number is
    /// written as a JSON integer (`21407`, not `21407.0`): shorter, as a
    /// register holds it; every JSON reader takes it as a number still.
    #[serde(serialize_with = "whole_as_integers")]
    pub values: BTreeMap<String, f64>,
}

/// Largest magnitude below which every whole f64 is exact as an i64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Writes `values` with whole numbers as integers (see [`Reading::values`]).
fn whole_as_integers<S: serde::Serializer>(
    values: &BTreeMap<String, f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(values.len()))?;
    for (k, &v) in values {
        // -0.0 stays a float, so its sign survives a round trip.
        if v.fract() == 0.0 && v.abs() < EXACT_INT && !(v == 0.0 && v.is_sign_negative()) {
            map.serialize_entry(k, &(v as i64))?;
        } else {
            map.serialize_entry(k, &v)?;
        }
    }
    map.end()
}

impl Reading {
    /// A reading with no values and no binding; fill in the rest field by field.
    pub fn new(
        ts: Timestamp,
        gateway: impl Into<GatewayId>,
        device: impl Into<DeviceId>,
        kind: DeviceKind,
        seq: u64,
    ) -> Self {
        Reading {
            schema: crate::SCHEMA_VERSION,
            ts,
            gateway: gateway.into(),
            site: SiteId::default(),
            building: None,
            unit: None,
            device: device.into(),
            kind,
            socket: None,
            seq,
            meter_serial: None,
            clock_unsynced: false,
            values: BTreeMap::new(),
        }
    }

    /// A value by name, if present.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// The entity this reading describes, as analytics keys its state:
    /// `site/gateway/device[#socket]`.
    pub fn entity(&self) -> String {
        let (site, gateway, device) = (
            self.site.as_str(),
            self.gateway.as_str(),
            self.device.as_str(),
        );
        // Built by hand: analytics asks for it for every reading, where
        // `format!` took about a tenth of a replay's time.
        let mut e = String::with_capacity(site.len() + gateway.len() + device.len() + 8);
        e.push_str(site);
        e.push('/');
        e.push_str(gateway);
        e.push('/');
        e.push_str(device);
        if let Some(s) = self.socket {
            use std::fmt::Write;
            let _ = write!(e, "#{s}");
        }
        e
    }
}
