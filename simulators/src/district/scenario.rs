//! A district scenario: sizes and rates, read from `config/scenarios/*.toml`.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Largest leak planted, L/h: a running cistern.
pub const MAX_LEAK_LPH: f64 = 25.0;
/// Largest three-in-one workshop planted, W of machines.
pub const MAX_THREE_IN_ONE_W: f64 = 3500.0;

/// Everything that shapes a synthetic district. Every field has a default;
/// `config/scenarios/default.toml` documents them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// Simulated days.
    pub days: u32,
    /// First local day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Local time's offset from UTC, minutes.
    pub utc_offset_min: i32,
    /// Sites (residential compounds).
    pub sites: u32,
    /// Buildings per site.
    pub buildings_per_site: u32,
    /// Floors per building.
    pub floors: u32,
    /// Flats per floor.
    pub flats_per_floor: u32,
    /// Electricity meter interval (the reading is the mean power over it), s.
    pub electricity_interval_s: u32,
    /// Water and gas meter interval, s.
    pub water_gas_interval_s: u32,
    /// Share of flats that are group rentals.
    pub group_rental_rate: f64,
    /// Share of group rentals that begin during the run (the rest exist from day 0).
    pub group_rental_onset_share: f64,
    /// Share of flats with one or two people more than registered (not a group rental).
    pub under_registered_rate: f64,
    /// Share of flats with a registered business and heavy use (to be suppressed).
    pub business_rate: f64,
    /// Share of flats that become three-in-one premises (unregistered weekday
    /// daytime machines in a lived-in flat) during the run.
    pub three_in_one_rate: f64,
    /// Smallest three-in-one workshop, W of machines (the largest is
    /// 3,500): the first model planted 1.5–3.5 kW; a few sewing machines or
    /// a packing bench draw well under that.
    pub three_in_one_min_w: f64,
    /// Share of flats with an e-bike (and a registered tag).
    pub ebike_owner_rate: f64,
    /// Share of flats that charge an e-bike battery indoors.
    pub indoor_charging_rate: f64,
    /// Chance an indoor charger charges on a given night.
    pub charge_night_prob: f64,
    /// Chance the tag is seen at the lift when the battery goes up or down.
    pub sighting_prob: f64,
    /// Chance per owner and day that a bike is taken indoors without charging.
    pub stray_indoor_sighting_prob: f64,
    /// Share of households with a night-long constant load (computer, heater) on some nights.
    pub night_plateau_rate: f64,
    /// Share of households with a thermostat-cycling night load (electric blanket).
    pub night_cycling_rate: f64,
    /// Chargers as the field has them (`district::charging`): midday and
    /// after-midnight starts, top-ups, sharp lithium tails, decaying
    /// lead-acid absorption, fast chargers, two packs at once. Off: the
    /// first, narrower model (evening, full charges, long tails).
    pub field_charging: bool,
    /// Chance per flat of each load that looks like a charger (night AC
    /// heating with sleep steps, storage water heater; aquariums at a third
    /// of it, oil heaters at half).
    pub confounder_rate: f64,
    /// Share of flats that go away for a few days during the run.
    pub vacation_rate: f64,
    /// Share of flats that develop a continuous water leak.
    pub leak_rate: f64,
    /// Smallest leak planted, L/h (the largest is 25). The first model
    /// planted 3–25 L/h; a district that tests a leak rule must also plant
    /// leaks below what it can see, which count as misses.
    pub leak_min_lph: f64,
    /// Draw leak sizes evenly on a log scale (as many of 0.5–1 L/h as of
    /// 10–20 L/h, like a dripping tap against a running cistern) instead of
    /// evenly in litres.
    pub leak_log_uniform: bool,
    /// Chance per meter and day of a gap of 1–12 h in its data.
    pub meter_gap_prob: f64,
    /// Chance per building and day of a 1–6 h outage of all its meters.
    pub building_outage_prob: f64,
    /// Share of flats with an electricity or water meter whose register
    /// sticks from some day (for 2–10 days or to the end) while use goes on.
    pub stuck_meter_rate: f64,
    /// Share of flats (without another planted case) with an electricity or
    /// water meter wired backwards from some day (for 2–10 days or to the end).
    pub reversed_meter_rate: f64,
    /// Electricity register step, kWh (the field's 0.01); unset: the
    /// register written to 0.001 kWh, rounded (`district::field_meters`).
    pub energy_register_step_kwh: Option<f64>,
    /// Water register step, litres (the field's 1); unset: 0.1 L, rounded.
    pub water_register_step_l: Option<f64>,
    /// Gas register step, m³ (the field's 0.01); unset: 0.001 m³, rounded.
    pub gas_register_step_m3: Option<f64>,
    /// Largest offset of a meter's clock, either way, s.
    pub meter_clock_offset_s: u32,
    /// Largest drift of a meter's clock, either way, parts per million.
    pub meter_clock_drift_ppm: f64,
    /// Largest delay of a reading's stamp after its due time, s (at most
    /// half the meter's interval).
    pub meter_jitter_s: u32,
    /// Chance per reading that it is delivered again, 1–30 min later,
    /// with the same seq and stamp (an uplink re-sending after a reconnect).
    pub meter_duplicate_prob: f64,
    /// Share of flats where one meter without a planted fault is replaced
    /// during the run: the new register starts near zero, under a new serial.
    pub meter_replacement_rate: f64,
    /// Charging piles in each site's yard (0: none).
    pub piles_per_site: u32,
    /// Sockets per pile (1–12, the EBP-12's register map).
    pub sockets_per_pile: u16,
    /// Chance per charging session that the pile fails one protection in it
    /// (a planted fault of docs/detection.md's pile table).
    pub pile_fault_rate: f64,
    /// Chance per charging session of a near miss that must raise nothing.
    pub pile_near_miss_rate: f64,
    /// Chance per ordinary evening session (from 19:00, no other plant) that
    /// the owner charges a second or bigger pack: about 1.5-2 x the usual
    /// energy (the pile table's "abnormal session energy").
    pub pile_energy_fault_rate: f64,
    /// Chance per ordinary evening session of a slightly bigger charge
    /// (about 1.1-1.25 x), a near miss for the same row.
    pub pile_energy_near_miss_rate: f64,
    /// Chance per pile and day of an afternoon of delivery riders' 1 kW
    /// chargers: half overload the pile, half come close.
    pub pile_heavy_afternoon_prob: f64,
    /// Public holidays, `YYYY-MM-DD`: households live them like a weekend
    /// and workshops and businesses stand still, which a detector that
    /// knows only the weekday must not read as a change of occupancy.
    pub holidays: Vec<String>,
    /// Fewest people in a group rental (most: 14).
    pub group_size_min: u8,
    /// Share of flats with a miner or PC on around the clock (`district::broad`).
    pub miner_rate: f64,
    /// Share of flats whose household leaves for the Spring Festival.
    pub festival_leave_rate: f64,
    /// Share of flats with gas floor heating.
    pub gas_heating_rate: f64,
    /// Share of flats shared by 3–5 adults with one registered.
    pub shared_flat_rate: f64,
    /// Share of group rentals whose people all sleep at night.
    pub quiet_group_share: f64,
    /// Chance per winter day that a 3–7 day cold spell begins.
    pub cold_spell_prob: f64,
    /// Share of electricity meters that report a register only, the power
    /// derived from its change (quantised by `energy_register_step_kwh`).
    pub register_power_share: f64,
}

/// China's statutory holidays of 2026 (Spring Festival, Qingming, Labour
/// Day, Dragon Boat, Mid-Autumn, National Day) as days off; the weekend
/// days worked in exchange (调休) are not modelled.
pub fn china_holidays_2026() -> Vec<String> {
    let mut days = Vec::new();
    for (month, from, to) in [
        (2, 15, 23),
        (4, 4, 6),
        (5, 1, 5),
        (6, 19, 21),
        (9, 25, 27),
        (10, 1, 7),
    ] {
        for d in from..=to {
            days.push(format!("2026-{month:02}-{d:02}"));
        }
    }
    days
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "default".into(),
            days: 60,
            start_date: "2026-03-02".into(),
            utc_offset_min: 480,
            sites: 2,
            buildings_per_site: 5,
            floors: 10,
            flats_per_floor: 5,
            electricity_interval_s: 300,
            water_gas_interval_s: 3600,
            group_rental_rate: 0.04,
            group_rental_onset_share: 0.5,
            under_registered_rate: 0.10,
            business_rate: 0.01,
            three_in_one_rate: 0.01,
            three_in_one_min_w: 1500.0,
            ebike_owner_rate: 0.35,
            indoor_charging_rate: 0.05,
            charge_night_prob: 0.6,
            sighting_prob: 0.5,
            stray_indoor_sighting_prob: 0.003,
            night_plateau_rate: 0.08,
            night_cycling_rate: 0.12,
            field_charging: false,
            confounder_rate: 0.0,
            vacation_rate: 0.05,
            leak_rate: 0.02,
            leak_min_lph: 3.0,
            leak_log_uniform: false,
            meter_gap_prob: 0.01,
            building_outage_prob: 0.002,
            stuck_meter_rate: 0.01,
            reversed_meter_rate: 0.01,
            energy_register_step_kwh: None,
            water_register_step_l: None,
            gas_register_step_m3: None,
            meter_clock_offset_s: 0,
            meter_clock_drift_ppm: 0.0,
            meter_jitter_s: 0,
            meter_duplicate_prob: 0.0,
            meter_replacement_rate: 0.0,
            piles_per_site: 1,
            sockets_per_pile: 12,
            pile_fault_rate: 0.03,
            pile_near_miss_rate: 0.03,
            pile_energy_fault_rate: 0.05,
            pile_energy_near_miss_rate: 0.05,
            pile_heavy_afternoon_prob: 0.03,
            holidays: china_holidays_2026(),
            group_size_min: 6,
            miner_rate: 0.0,
            festival_leave_rate: 0.0,
            gas_heating_rate: 0.0,
            shared_flat_rate: 0.0,
            quiet_group_share: 0.0,
            cold_spell_prob: 0.0,
            register_power_share: 0.0,
        }
    }
}

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// Not a scenario.
    #[error("scenario {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: name.clone(),
            source,
        })?;
        let s: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Invalid {
            path: name.clone(),
            message: e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })?;
        s.check().map_err(|message| ScenarioError::Invalid {
            path: name,
            message,
        })?;
        Ok(s)
    }

    /// Checks sizes, rates and the date.
    pub fn check(&self) -> Result<(), String> {
        if self.start_day().is_none() {
            return Err(format!(
                "start_date {:?} is not YYYY-MM-DD",
                self.start_date
            ));
        }
        for (k, v) in [
            ("days", self.days),
            ("sites", self.sites),
            ("buildings_per_site", self.buildings_per_site),
            ("floors", self.floors),
            ("flats_per_floor", self.flats_per_floor),
        ] {
            if v == 0 {
                return Err(format!("{k} is 0; it must be at least 1"));
            }
        }
        if self.piles_per_site > 9 {
            return Err(format!(
                "piles_per_site is {}; at most 9 piles per yard",
                self.piles_per_site
            ));
        }
        if !(1..=12).contains(&self.sockets_per_pile) {
            return Err(format!(
                "sockets_per_pile is {}; a pile has 1 to 12 sockets",
                self.sockets_per_pile
            ));
        }
        if let Some(bad) = self.holidays.iter().find(|d| days_from_date(d).is_none()) {
            return Err(format!("holidays: {bad:?} is not YYYY-MM-DD"));
        }
        if !(2..=14).contains(&self.group_size_min) {
            return Err(format!(
                "group_size_min is {}; it must be 2 to 14",
                self.group_size_min
            ));
        }
        if self.floors > 99 || self.flats_per_floor > 99 {
            return Err("floors and flats_per_floor must be at most 99".into());
        }
        if !(60..=3600).contains(&self.electricity_interval_s)
            || 86_400 % self.electricity_interval_s != 0
        {
            return Err("electricity_interval_s must divide a day and be 60 to 3600".into());
        }
        if !(300..=3600).contains(&self.water_gas_interval_s)
            || 86_400 % self.water_gas_interval_s != 0
        {
            return Err("water_gas_interval_s must divide a day and be 300 to 3600".into());
        }
        for (k, v) in [
            ("energy_register_step_kwh", self.energy_register_step_kwh),
            ("water_register_step_l", self.water_register_step_l),
            ("gas_register_step_m3", self.gas_register_step_m3),
        ] {
            if v.is_some_and(|v| !(v > 0.0 && v <= 10.0)) {
                return Err(format!(
                    "{k} is {v:?}; a register step is above 0 and at most 10"
                ));
            }
        }
        if !(self.three_in_one_min_w > 0.0 && self.three_in_one_min_w < MAX_THREE_IN_ONE_W) {
            return Err(format!(
                "three_in_one_min_w is {}; it must be above 0 and below {MAX_THREE_IN_ONE_W} W",
                self.three_in_one_min_w
            ));
        }
        if !(self.leak_min_lph > 0.0 && self.leak_min_lph < MAX_LEAK_LPH) {
            return Err(format!(
                "leak_min_lph is {}; it must be above 0 and below {MAX_LEAK_LPH} L/h",
                self.leak_min_lph
            ));
        }
        if !(0.0..=1000.0).contains(&self.meter_clock_drift_ppm) {
            return Err(format!(
                "meter_clock_drift_ppm is {}; it must be 0 to 1000",
                self.meter_clock_drift_ppm
            ));
        }
        for (k, v) in [
            ("meter_duplicate_prob", self.meter_duplicate_prob),
            ("meter_replacement_rate", self.meter_replacement_rate),
            ("group_rental_rate", self.group_rental_rate),
            ("group_rental_onset_share", self.group_rental_onset_share),
            ("under_registered_rate", self.under_registered_rate),
            ("business_rate", self.business_rate),
            ("three_in_one_rate", self.three_in_one_rate),
            ("ebike_owner_rate", self.ebike_owner_rate),
            ("indoor_charging_rate", self.indoor_charging_rate),
            ("charge_night_prob", self.charge_night_prob),
            ("sighting_prob", self.sighting_prob),
            (
                "stray_indoor_sighting_prob",
                self.stray_indoor_sighting_prob,
            ),
            ("night_plateau_rate", self.night_plateau_rate),
            ("night_cycling_rate", self.night_cycling_rate),
            ("confounder_rate", self.confounder_rate),
            ("vacation_rate", self.vacation_rate),
            ("leak_rate", self.leak_rate),
            ("meter_gap_prob", self.meter_gap_prob),
            ("building_outage_prob", self.building_outage_prob),
            ("stuck_meter_rate", self.stuck_meter_rate),
            ("reversed_meter_rate", self.reversed_meter_rate),
            ("pile_fault_rate", self.pile_fault_rate),
            ("pile_near_miss_rate", self.pile_near_miss_rate),
            ("pile_energy_fault_rate", self.pile_energy_fault_rate),
            (
                "pile_energy_near_miss_rate",
                self.pile_energy_near_miss_rate,
            ),
            ("pile_heavy_afternoon_prob", self.pile_heavy_afternoon_prob),
            ("miner_rate", self.miner_rate),
            ("festival_leave_rate", self.festival_leave_rate),
            ("gas_heating_rate", self.gas_heating_rate),
            ("shared_flat_rate", self.shared_flat_rate),
            ("quiet_group_share", self.quiet_group_share),
            ("cold_spell_prob", self.cold_spell_prob),
            ("register_power_share", self.register_power_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{k} is {v}; a rate is 0 to 1"));
            }
        }
        Ok(())
    }

    /// Days since 1970-01-01 of the first local day.
    pub fn start_day(&self) -> Option<i64> {
        days_from_date(&self.start_date)
    }

    /// Days since 1970-01-01 of every holiday (invalid dates left out;
    /// [`Scenario::check`] reports them).
    pub fn holiday_days(&self) -> Vec<i64> {
        self.holidays
            .iter()
            .filter_map(|d| days_from_date(d))
            .collect()
    }

    /// Flats in the district.
    pub fn flat_count(&self) -> u32 {
        self.sites * self.buildings_per_site * self.floors * self.flats_per_floor
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn days_from_date(date: &str) -> Option<i64> {
    let mut it = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(gridwatch_telemetry::time::days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_is_valid_and_dates_convert() {
        let s = Scenario::default();
        assert!(s.check().is_ok());
        assert_eq!(s.flat_count(), 500);
        // 2026-03-02 is day 20514 since the epoch.
        assert_eq!(s.start_day(), Some(20_514));
        let bad = Scenario {
            start_date: "2026-13-01".into(),
            ..Scenario::default()
        };
        assert!(bad.check().is_err());
        let bad = Scenario {
            leak_rate: 1.5,
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("leak_rate"));
        for lph in [0.0, 25.0, f64::NAN] {
            let bad = Scenario {
                leak_min_lph: lph,
                ..Scenario::default()
            };
            assert!(bad.check().unwrap_err().contains("leak_min_lph"), "{lph}");
        }
        let bad = Scenario {
            three_in_one_min_w: 4000.0,
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("three_in_one_min_w"));
        let bad = Scenario {
            stuck_meter_rate: -0.1,
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("stuck_meter_rate"));
        let bad = Scenario {
            water_register_step_l: Some(0.0),
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("water_register_step_l"));
        let bad = Scenario {
            meter_duplicate_prob: 2.0,
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("meter_duplicate_prob"));
        let bad = Scenario {
            sockets_per_pile: 13,
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("sockets_per_pile"));
        let bad = Scenario {
            pile_fault_rate: -0.1,
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("pile_fault_rate"));
        let bad = Scenario {
            holidays: vec!["2026-04-05".into(), "Qingming".into()],
            ..Scenario::default()
        };
        assert!(bad.check().unwrap_err().contains("\"Qingming\""));
        // Qingming 2026 falls in the default run, 34 days after it starts.
        assert!(s.holiday_days().contains(&(20_514 + 34)));
    }
}
