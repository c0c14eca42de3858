//! One flat's use over one local day, accumulated reading by reading.

use gridwatch_telemetry::{DeviceKind, Reading};

/// The daily features compared between flats, per registered occupant.
pub const FEATURES: [&str; 4] = [
    "electricity_kwh_per_occupant",
    "water_l_per_occupant",
    "gas_m3_per_occupant",
    "night_base_w_per_occupant",
];

/// Accumulators for the current local day: 28 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DayUse {
    /// The local day these belong to.
    pub day: i32,
    /// Electricity, kWh (interval mean power × interval).
    pub kwh: f32,
    /// Water, litres.
    pub water_l: f32,
    /// Gas, m³.
    pub gas_m3: f32,
    /// Lowest interval power between 00:00 and 05:00 local, W.
    pub night_min_w: f32,
    /// Minutes covered by electricity readings.
    pub elec_min: u16,
    /// Minutes covered by water readings.
    pub water_min: u16,
    /// Minutes covered by gas readings.
    pub gas_min: u16,
}

impl DayUse {
    /// A fresh day.
    pub fn new(day: i32) -> Self {
        Self {
            day,
            night_min_w: f32::INFINITY,
            ..Self::default()
        }
    }

    /// Adds a reading. `dt_min` is the minutes since the meter's previous
    /// reading (0 for the first, capped by the caller), `night` whether the
    /// reading lies in 00:00–05:00 local.
    pub fn add(&mut self, r: &Reading, dt_min: u16, night: bool) {
        match r.kind {
            DeviceKind::ElectricityMeter => {
                if let Some(p) = r.value("power_w").filter(|v| v.is_finite() && *v >= 0.0) {
                    self.kwh += (p * f64::from(dt_min) / 60_000.0) as f32;
                    self.elec_min = self.elec_min.saturating_add(dt_min);
                    if night {
                        self.night_min_w = self.night_min_w.min(p as f32);
                    }
                }
            }
            DeviceKind::WaterMeter => {
                if let Some(l) = r.value("flow_l").filter(|v| v.is_finite() && *v >= 0.0) {
                    self.water_l += l as f32;
                    self.water_min = self.water_min.saturating_add(dt_min);
                }
            }
            DeviceKind::GasMeter => {
                if let Some(m3) = r.value("use_m3").filter(|v| v.is_finite() && *v >= 0.0) {
                    self.gas_m3 += m3 as f32;
                    self.gas_min = self.gas_min.saturating_add(dt_min);
                }
            }
            _ => {}
        }
    }

    /// The day's features per registered occupant, or `None` when too little
    /// of the day was seen to judge it (no data is not low use).
    pub fn features(&self, occupants: f32, min_coverage: f32) -> Option<[f32; 4]> {
        let elec_ok = f32::from(self.elec_min) >= 1440.0 * min_coverage;
        let water_ok = f32::from(self.water_min) >= 1440.0 * min_coverage;
        if !(elec_ok && water_ok && self.night_min_w.is_finite()) {
            return None;
        }
        let gas_ok = f32::from(self.gas_min) >= 1440.0 * min_coverage;
        let occ = occupants.max(1.0);
        Some([
            self.kwh / occ,
            self.water_l / occ,
            if gas_ok { self.gas_m3 / occ } else { f32::NAN },
            self.night_min_w / occ,
        ])
    }
}
