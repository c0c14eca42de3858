//! What a simulated pile looks like: sockets, seed, climate and mains.

use gridwatch_firmware::controller::{PileLimits, Protections};
use gridwatch_firmware::pile_map::MAX_SOCKETS;
use serde::Deserialize;

/// Which firmware protections the simulated pile runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// An old pile that measures but never cuts anything off (its fault
    /// codes stay 0): detection is left to the gateway and analytics. The
    /// demo's yard and the end-to-end tests use this.
    #[default]
    Legacy,
    /// The firmware's protections with the defaults of docs/detection.md:
    /// overcurrent, overpower, over-temperature, residual current,
    /// auto-stop when full, abandon detection, session caps and the
    /// whole-pile limit.
    Protected,
}

/// Configuration of one simulated charging pile, e.g. from a scenario file:
///
/// ```toml
/// sockets = 12
/// seed = 42
/// ambient_c = 31.0
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PileConfig {
    /// Number of sockets, 1..=[`MAX_SOCKETS`].
    pub sockets: u16,
    /// Seed for measurement noise and for the battery drawn at each plug-in;
    /// the same seed and the same operations give the same registers.
    pub seed: u64,
    /// Air temperature around the pile; sockets start here and cool to it.
    pub ambient_c: f64,
    /// Nominal mains voltage.
    pub mains_voltage_v: f64,
    /// Peak measurement noise on the voltage reading.
    pub voltage_noise_v: f64,
    /// Steady-state temperature rise per watt drawn through a socket.
    pub thermal_rise_c_per_w: f64,
    /// How quickly a socket's temperature follows its load.
    pub thermal_time_constant_s: f64,
    /// Rated power of the whole pile; above it the pile sets
    /// [`PILE_FAULT_OVERLOAD`](gridwatch_firmware::pile_map::PILE_FAULT_OVERLOAD)
    /// (a legacy pile still does not cut anything off).
    pub rated_power_w: f64,
    /// Legacy (no cut-offs) or protected firmware.
    pub protection: Protection,
    /// Modbus unit id the pile answers to (it also answers 0 and 255, the
    /// usual "whoever is at this TCP address" ids).
    pub unit_id: u8,
}

impl Default for PileConfig {
    fn default() -> Self {
        Self {
            sockets: 10,
            seed: 1,
            ambient_c: 25.0,
            mains_voltage_v: 230.0,
            voltage_noise_v: 0.8,
            thermal_rise_c_per_w: 0.02,
            thermal_time_constant_s: 1200.0,
            rated_power_w: 8700.0,
            unit_id: 1,
            protection: Protection::Legacy,
        }
    }
}

/// A [`PileConfig`] value that cannot describe a pile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PileConfigError {
    /// Socket count outside 1..=[`MAX_SOCKETS`].
    #[error("a pile needs 1 to {MAX_SOCKETS} sockets, not {0}")]
    Sockets(u16),
    /// The firmware refused its protection settings.
    #[error("the pile firmware refused its protection setting {0}")]
    Firmware(&'static str),
    /// A physical value outside what the model can represent sensibly.
    #[error("{name} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// Field name.
        name: &'static str,
        /// Value given.
        value: f64,
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
}

impl PileConfig {
    /// The firmware protections of each socket and of the pile.
    pub fn firmware(&self) -> (Protections, PileLimits) {
        let rated = self.rated_power_w as f32;
        match self.protection {
            Protection::Legacy => (Protections::legacy(), PileLimits::legacy(rated)),
            Protection::Protected => (
                Protections::default(),
                PileLimits {
                    rated_power_w: rated,
                    ..PileLimits::default()
                },
            ),
        }
    }

    /// Checks every field once, so the model can trust them.
    pub fn validate(&self) -> Result<(), PileConfigError> {
        if self.sockets == 0 || self.sockets > MAX_SOCKETS {
            return Err(PileConfigError::Sockets(self.sockets));
        }
        let ranges = [
            ("ambient_c", self.ambient_c, -40.0, 60.0),
            ("mains_voltage_v", self.mains_voltage_v, 90.0, 300.0),
            ("voltage_noise_v", self.voltage_noise_v, 0.0, 20.0),
            ("thermal_rise_c_per_w", self.thermal_rise_c_per_w, 0.0, 1.0),
            (
                "thermal_time_constant_s",
                self.thermal_time_constant_s,
                1.0,
                86_400.0,
            ),
            ("rated_power_w", self.rated_power_w, 1.0, 1.0e6),
        ];
        for (name, value, min, max) in ranges {
            // `contains` is false for NaN, so NaN is rejected too.
            if !(min..=max).contains(&value) {
                return Err(PileConfigError::OutOfRange {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(PileConfig::default().validate(), Ok(()));
        assert_eq!(PileConfig::default().sockets, 10);
    }

    #[test]
    fn bad_values_are_rejected() {
        let zero = PileConfig {
            sockets: 0,
            ..PileConfig::default()
        };
        assert_eq!(zero.validate(), Err(PileConfigError::Sockets(0)));
        let nan = PileConfig {
            ambient_c: f64::NAN,
            ..PileConfig::default()
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let ok: PileConfig = serde_json::from_str(r#"{"sockets": 4, "seed": 9}"#).expect("parses");
        assert_eq!((ok.sockets, ok.seed, ok.ambient_c), (4, 9, 25.0));
        assert_eq!(ok.protection, Protection::Legacy);
        let protected: PileConfig =
            serde_json::from_str(r#"{"protection": "protected"}"#).expect("parses");
        assert_eq!(protected.firmware().0, Protections::default());
        let typo = serde_json::from_str::<PileConfig>(r#"{"socket": 4}"#);
        assert!(typo.is_err());
    }
}
