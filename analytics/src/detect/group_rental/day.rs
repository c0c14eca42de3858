//! One flat's use over one local day, accumulated reading by reading.

use gridwatch_telemetry::{DeviceKind, Reading};

/// The daily features compared between flats, per registered occupant.
pub const FEATURES: [&str; 4] = [
    "electricity_kwh_per_occupant",
    "water_l_per_occupant",
    "gas_m3_per_occupant",
    "night_activity_w_per_occupant",
];

/// Water below this over a whole day: nobody lived there that day (away
/// for a holiday, between tenants), which says nothing about crowding.
const EMPTY_DAY_WATER_L: f32 = 10.0;

/// Accumulators for the current local day: 44 bytes.
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
    /// Sum and count of interval powers between 00:00 and 05:00, W: their
    /// mean above the lowest is people up at night; a load that runs
    /// around the clock (a miner, a PC, a fridge's standby) is in both.
    pub night_sum_w: f32,
    /// Readings summed in `night_sum_w`.
    pub night_n: u16,
    /// Gas between 00:00 and 05:00, m³, and the minutes it covers: nobody
    /// cooks then, so gas that flows at night is heating, and its rate
    /// over the whole day is taken off the day's gas.
    pub gas_night_m3: f32,
    /// Minutes covered by gas readings between 00:00 and 05:00.
    pub gas_night_min: u16,
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
                        self.night_sum_w += p as f32;
                        self.night_n = self.night_n.saturating_add(1);
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
                    if night {
                        self.gas_night_m3 += m3 as f32;
                        self.gas_night_min = self.gas_night_min.saturating_add(dt_min);
                    }
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
        if !(elec_ok && water_ok && self.night_min_w.is_finite() && self.night_n > 0) {
            return None;
        }
        if self.water_l < EMPTY_DAY_WATER_L {
            return None;
        }
        let gas_ok = f32::from(self.gas_min) >= 1440.0 * min_coverage;
        let heating = if self.gas_night_min > 0 {
            self.gas_night_m3 / f32::from(self.gas_night_min) * f32::from(self.gas_min)
        } else {
            0.0
        };
        let cooking = (self.gas_m3 - heating).max(0.0);
        let occ = occupants.max(1.0);
        let night_mean = self.night_sum_w / f32::from(self.night_n);
        Some([
            self.kwh / occ,
            self.water_l / occ,
            if gas_ok { cooking / occ } else { f32::NAN },
            (night_mean - self.night_min_w).max(0.0) / occ,
        ])
    }
}
