//! Physical plausibility: a reading whose values cannot be true is kept out
//! of every detector.
//!
//! The codec checks only that numbers are finite, so a gateway or device
//! with a broken register map (or a forged message) could report a 10 A
//! socket drawing 1.7e308 A and raise critical over-current alerts. Each
//! value's unit is in its name (`current_a`, `power_w`, `temperature_c`,
//! docs/telemetry.md), so the ranges here go by that suffix, with tighter
//! ones for the e-bike charging sockets; `[ingest.plausible]` overrides or
//! adds a range for any exact value name.
//!
//! The ranges are deliberately wide: they refuse what no device of the kind
//! can measure, not what is merely alarming. A socket at 60 A is a fault to
//! report; a socket at 10,000 A is a broken reading.

use gridwatch_telemetry::{DeviceKind, Reading};
use std::collections::BTreeMap;

/// The range of a value name by its unit suffix, for any device.
const BY_SUFFIX: [(&str, f64, f64); 9] = [
    ("_a", -2_000.0, 2_000.0),
    ("_w", -2_000_000.0, 2_000_000.0),
    ("_v", -1.0, 1_000.0),
    ("_c", -60.0, 250.0),
    ("_hz", 0.0, 100.0),
    // Registers: a meter wired backwards, or a simulator of one, counts
    // down through zero, so only the magnitude is bounded.
    ("_kwh", -1e10, 1e10),
    ("_m3", -1e9, 1e9),
    ("_l", -1e12, 1e12),
    ("_pct", 0.0, 100.0),
];

/// Tighter ranges for one socket of an e-bike charging pile (a 10–16 A
/// outlet behind a 32 A breaker at most).
const SOCKET: [(&str, f64, f64); 3] = [
    ("current_a", 0.0, 100.0),
    ("power_w", 0.0, 25_000.0),
    ("voltage_v", 0.0, 500.0),
];

/// Why a reading was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Implausible {
    /// The value's name.
    pub name: String,
    /// What the reading said.
    pub value: f64,
    /// The range it had to be in.
    pub range: (f64, f64),
}

impl std::fmt::Display for Implausible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} = {} is outside the physically possible range {} to {} ([ingest.plausible] sets it)",
            self.name, self.value, self.range.0, self.range.1
        )
    }
}

/// The plausibility check: built-in ranges plus the configured overrides.
#[derive(Debug, Clone, Default)]
pub struct Plausibility {
    overrides: BTreeMap<String, (f64, f64)>,
}

impl Plausibility {
    /// A check with `overrides` (value name → `[min, max]`) taking
    /// precedence over the built-in ranges.
    pub fn new(overrides: &BTreeMap<String, [f64; 2]>) -> Self {
        Self {
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.clone(), (v[0], v[1])))
                .collect(),
        }
    }

    /// The range a value must be in, if any applies.
    pub fn range(&self, kind: DeviceKind, name: &str) -> Option<(f64, f64)> {
        if let Some(r) = self.overrides.get(name) {
            return Some(*r);
        }
        if kind == DeviceKind::ChargingSocket {
            if let Some((_, lo, hi)) = SOCKET.iter().find(|(n, _, _)| *n == name) {
                return Some((*lo, *hi));
            }
        }
        BY_SUFFIX
            .iter()
            .find(|(suffix, _, _)| name.ends_with(suffix))
            .map(|(_, lo, hi)| (*lo, *hi))
    }

    /// `Ok` when every value is inside its range; else the first one that
    /// is not.
    pub fn check(&self, reading: &Reading) -> Result<(), Implausible> {
        for (name, &value) in &reading.values {
            if let Some((lo, hi)) = self.range(reading.kind, name) {
                if !(lo..=hi).contains(&value) {
                    return Err(Implausible {
                        name: name.clone(),
                        value,
                        range: (lo, hi),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Checks the `[ingest.plausible]` table: each range must have min < max.
pub fn validate(
    overrides: &BTreeMap<String, [f64; 2]>,
) -> Result<(), crate::toml_file::FieldError> {
    for (name, [lo, hi]) in overrides {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(crate::toml_file::FieldError::at(
                crate::toml_file::locate::FieldPath::keys(&["plausible", name]),
                format!("is [{lo}, {hi}]; give [min, max] with min below max"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::Timestamp;

    fn reading(kind: DeviceKind, name: &str, v: f64) -> Reading {
        let mut r = Reading::new(Timestamp(1), "gw-1", "d", kind, 1);
        r.values.insert(name.into(), v);
        r
    }

    #[test]
    fn impossible_values_are_refused_and_named() {
        let p = Plausibility::default();
        let e = p
            .check(&reading(DeviceKind::ChargingSocket, "current_a", 1.7e308))
            .unwrap_err();
        assert_eq!(e.name, "current_a");
        assert!(e.to_string().contains("current_a = "), "{e}");
        for (kind, name, v) in [
            (DeviceKind::ElectricityMeter, "power_w", 1.7e308),
            (DeviceKind::ElectricityMeter, "energy_kwh", -5e12),
            (DeviceKind::WaterMeter, "volume_m3", 1e300),
            (DeviceKind::ChargingSocket, "temperature_c", 900.0),
            (DeviceKind::ChargingSocket, "power_w", 30_000.0),
        ] {
            assert!(p.check(&reading(kind, name, v)).is_err(), "{name} {v}");
        }
    }

    #[test]
    fn alarming_but_possible_values_pass() {
        let p = Plausibility::default();
        for (kind, name, v) in [
            (DeviceKind::ChargingSocket, "current_a", 7.0),
            (DeviceKind::ChargingSocket, "current_a", 60.0),
            (DeviceKind::ChargingSocket, "temperature_c", 95.0),
            (DeviceKind::ElectricityMeter, "power_w", -3_000.0),
            (DeviceKind::ElectricityMeter, "energy_kwh", 123_456.7),
            (DeviceKind::GasMeter, "volume_m3", 99_999.999),
            (DeviceKind::WaterMeter, "valve_open", 1.0),
        ] {
            assert_eq!(p.check(&reading(kind, name, v)), Ok(()), "{name} {v}");
        }
    }

    #[test]
    fn overrides_win_and_are_validated() {
        let mut o = BTreeMap::new();
        o.insert("current_a".to_owned(), [0.0, 20.0]);
        let p = Plausibility::new(&o);
        assert!(p
            .check(&reading(DeviceKind::ChargingSocket, "current_a", 25.0))
            .is_err());
        assert!(validate(&o).is_ok());
        o.insert("power_w".to_owned(), [5.0, 1.0]);
        let e = validate(&o).unwrap_err();
        assert_eq!(
            e.path,
            crate::toml_file::locate::FieldPath::keys(&["plausible", "power_w"])
        );
        assert!(e.message.contains("min below max"), "{}", e.message);
    }
}
