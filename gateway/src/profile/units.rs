//! The units a profile may name.
//!
//! A unit is for people (dashboards, docs); machines read the unit from the
//! value's name (`power_w`). A closed list still matters: a typo such as
//! `"kwh"` or `"Wh "` in a profile would otherwise reach every dashboard
//! label, and a unit nobody here knows usually means a value transcribed
//! wrongly from a datasheet. Add to the list when a real device needs it.

/// Every unit a profile may use, SI spelling.
pub const KNOWN: &[&str] = &[
    // electricity
    "V", "mV", "A", "mA", "W", "kW", "VA", "kVA", "var", "kvar", "Wh", "kWh", "varh", "kvarh",
    "VAh", "kVAh", "Hz", // temperature, angle, ratio
    "°C", "°", "%", // time
    "ms", "s", "min", "h", "d", // flow and volume
    "L", "m³", "L/h", "m³/h", "L/min", "m/s", "kg/h", // pressure
    "Pa", "kPa", "MPa", "bar", "mbar", // counts
    "pulses",
];

/// Whether `unit` is on the list.
pub fn is_known(unit: &str) -> bool {
    KNOWN.contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_case_and_space_exact() {
        assert!(is_known("kWh"));
        assert!(is_known("m³"));
        assert!(!is_known("kwh"));
        assert!(!is_known("kWh "));
        assert!(!is_known("furlongs"));
    }
}
