//! One simulated CJ/T 188 meter: water, gas or heat, with registers that
//! advance with simulated time, a valve, a battery, and the misbehaviour a
//! test or an installer asks for.
//!
//! Registers integrate a constant rate while the valve is open, so a test
//! that moves a manual clock knows exactly what the gateway must read; a
//! closed valve stops the flow (and the heat), as it does in a flat.

use gridwatch_cjt188::{
    Address, FlowData, HeatData, MeterData, MeterFamily, MeterTime, MeterType, Reading, Status,
    Unit, Valve,
};
use gridwatch_telemetry::time::civil_from_days;

/// How the meter treats the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answers as the standard says.
    #[default]
    Normal,
    /// Answers every request abnormally (D6 set).
    Abnormal,
    /// Does not answer (unplugged, or gone from the bus until set back).
    Silent,
    /// Answers with a wrong checksum.
    BadChecksum,
    /// Sends only the first half of each answer.
    Truncated,
    /// Sends line noise, with stray start bytes, before each answer.
    Noise,
}

/// What a command word changes: the way it answers, or a state the
/// meter reports in its status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new [`Behaviour`].
    Behaviour(Behaviour),
    /// The battery is low (`true`) or fine again.
    BatteryLow(bool),
    /// The valve as if commanded: closed stops the registers.
    Valve(Valve),
}

impl Change {
    /// Parses a word of the simulator's command line and stdin: `normal`,
    /// `abnormal`, `silent`, `bad-checksum`, `truncated`, `noise`,
    /// `low-battery`, `battery-ok`, `valve-closed`, `valve-open`,
    /// `valve-stuck`.
    pub fn parse(word: &str) -> Result<Self, String> {
        Ok(match word {
            "normal" => Change::Behaviour(Behaviour::Normal),
            "abnormal" => Change::Behaviour(Behaviour::Abnormal),
            "silent" | "gone" => Change::Behaviour(Behaviour::Silent),
            "bad-checksum" => Change::Behaviour(Behaviour::BadChecksum),
            "truncated" => Change::Behaviour(Behaviour::Truncated),
            "noise" => Change::Behaviour(Behaviour::Noise),
            "low-battery" => Change::BatteryLow(true),
            "battery-ok" => Change::BatteryLow(false),
            "valve-closed" => Change::Valve(Valve::Closed),
            "valve-open" => Change::Valve(Valve::Open),
            "valve-stuck" => Change::Valve(Valve::Abnormal),
            other => {
                return Err(crate::control::unknown_word(
                    "behaviour",
                    other,
                    &[
                        "normal",
                        "abnormal",
                        "silent",
                        "bad-checksum",
                        "truncated",
                        "noise",
                        "low-battery",
                        "battery-ok",
                        "valve-closed",
                        "valve-open",
                        "valve-stuck",
                    ],
                ))
            }
        })
    }
}

/// One meter on the bus.
#[derive(Debug, Clone)]
pub struct Meter {
    /// Its type byte (10H water, 20H heat, 30H gas, …).
    pub meter_type: MeterType,
    /// Its address.
    pub address: Address,
    /// How it answers.
    pub behaviour: Behaviour,
    /// Whether its status word reports a low battery.
    pub battery_low: bool,
    /// Its valve.
    pub valve: Valve,
    /// Main register (m³ for water and gas, kWh for heat), hundredths.
    register: f64,
    /// Register value on the last settlement day, hundredths.
    settlement: u32,
    /// Main register's rate while the valve is open, per hour (m³/h or kW).
    rate_per_h: f64,
    /// Heat meters: water through the meter, m³ hundredths.
    volume: f64,
    /// Heat meters: hours worked.
    hours: f64,
    /// Simulated time of the last update.
    last_ms: Option<i64>,
}

/// China Standard Time: meters keep local time.
const UTC_OFFSET_MS: i64 = 8 * 3_600_000;

impl Meter {
    /// A meter whose main register reads `start` (m³ or kWh) and advances
    /// by `rate_per_h` an hour while its valve is open.
    pub fn new(meter_type: MeterType, address: Address, start: f64, rate_per_h: f64) -> Self {
        let register = (start * 100.0).round();
        Self {
            meter_type,
            address,
            behaviour: Behaviour::Normal,
            battery_low: false,
            valve: Valve::Open,
            register,
            settlement: register as u32,
            rate_per_h,
            volume: start * 10.0,
            hours: 1000.0,
            last_ms: None,
        }
    }

    /// Applies a command word's change.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Behaviour(b) => self.behaviour = b,
            Change::BatteryLow(low) => self.battery_low = low,
            Change::Valve(v) => self.valve = v,
        }
    }

    /// Sets the main register to `value` (m³ or kWh), which must be whole
    /// hundredths from 0 to 999999.99 (what the protocol's XXXXXX.XX
    /// carries): a live player shows a recorded register this way, on a
    /// meter whose rate is 0 so that it holds the value until the next.
    pub fn set_register(&mut self, value: f64) -> Result<(), String> {
        let hundredths = (value * 100.0).round();
        if !(0.0..1e8).contains(&hundredths) || (value * 100.0 - hundredths).abs() > 1e-6 {
            return Err(format!(
                "register {value} is not whole hundredths from 0 to 999999.99, as a CJ/T 188 \
                 meter sends it"
            ));
        }
        self.register = hundredths;
        Ok(())
    }

    /// The main register at `t_ms` in its unit (m³ or kWh).
    pub fn register_at(&mut self, t_ms: i64) -> f64 {
        self.advance(t_ms);
        (self.register.floor()) / 100.0
    }

    fn advance(&mut self, t_ms: i64) {
        let last = self.last_ms.replace(t_ms).unwrap_or(t_ms);
        let hours = (t_ms - last).max(0) as f64 / 3_600_000.0;
        self.hours += hours;
        if self.valve == Valve::Open {
            self.register = (self.register + self.rate_per_h * 100.0 * hours) % 1e8;
            self.volume = (self.volume + self.flow_m3_per_h() * 100.0 * hours) % 1e8;
        }
    }

    /// Heat meters: water flow, from heat power and a 15 K temperature drop.
    fn flow_m3_per_h(&self) -> f64 {
        self.rate_per_h / (1.163 * 15.0)
    }

    /// The status word as the meter reports it.
    pub fn status(&self) -> Status {
        Status::new(self.valve, self.battery_low)
    }

    /// The `901FH` data at `t_ms`.
    pub fn meter_data(&mut self, t_ms: i64) -> MeterData {
        self.advance(t_ms);
        let time = meter_time(t_ms);
        let status = self.status();
        let register = self.register.floor() as u32;
        match self.meter_type.family() {
            Some(MeterFamily::Heat) => {
                let open = self.valve == Valve::Open;
                let rate = if open { self.rate_per_h } else { 0.0 };
                MeterData::Heat(HeatData {
                    settlement_heat: Reading::hundredths(self.settlement, Unit::KWH),
                    current_heat: Reading::hundredths(register, Unit::KWH),
                    power: Reading::hundredths((rate * 100.0).round() as u32, Unit::KW),
                    flow_rate: Reading {
                        register: if open {
                            (self.flow_m3_per_h() * 1e4).round() as u32
                        } else {
                            0
                        },
                        decimals: 4,
                        unit: Unit::M3_PER_H,
                    },
                    cumulative_flow: Reading::hundredths(self.volume.floor() as u32, Unit::M3),
                    supply_centi_c: 5500,
                    return_centi_c: 4000,
                    working_hours: self.hours as u32,
                    time,
                    status,
                })
            }
            _ => MeterData::Flow(FlowData {
                current: Reading::hundredths(register, Unit::M3),
                settlement: Reading::hundredths(self.settlement, Unit::M3),
                time,
                status,
            }),
        }
    }
}

/// `t_ms` (Unix milliseconds) as a meter's local clock.
pub fn meter_time(t_ms: i64) -> MeterTime {
    let local = t_ms + UTC_OFFSET_MS;
    let days = local.div_euclid(86_400_000);
    let ms = local.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    MeterTime {
        year: y as u16,
        month: m as u8,
        day: d as u8,
        hour: (ms / 3_600_000) as u8,
        minute: (ms / 60_000 % 60) as u8,
        second: (ms / 1000 % 60) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn water() -> Meter {
        Meter::new(
            MeterType::COLD_WATER,
            Address::parse("00000000000001").unwrap(),
            123.45,
            0.5,
        )
    }

    #[test]
    fn registers_advance_while_the_valve_is_open() {
        let mut m = water();
        let t0 = 1_764_000_000_000;
        assert_eq!(m.register_at(t0), 123.45);
        assert_eq!(m.register_at(t0 + 3_600_000), 123.95);
        m.apply(Change::Valve(Valve::Closed));
        assert_eq!(m.register_at(t0 + 3 * 3_600_000), 123.95);
        m.apply(Change::Valve(Valve::Open));
        assert_eq!(m.register_at(t0 + 5 * 3_600_000), 124.95);
    }

    #[test]
    fn a_set_register_holds_whole_hundredths_only() {
        let mut m = Meter::new(MeterType::GAS, Address([1, 0, 0, 0, 0, 0, 0]), 0.0, 0.0);
        m.set_register(123.45).unwrap();
        assert_eq!(m.register_at(0), 123.45);
        assert_eq!(m.register_at(3_600_000), 123.45, "a rate of 0 holds it");
        for bad in [123.456, -0.01, 1e6, f64::NAN] {
            assert!(
                m.set_register(bad).unwrap_err().contains("hundredths"),
                "{bad}"
            );
        }
        assert_eq!(m.register_at(0), 123.45);
    }

    #[test]
    fn the_register_wraps_past_its_eight_digits() {
        let mut m = Meter::new(
            MeterType::GAS,
            Address([1, 0, 0, 0, 0, 0, 0]),
            999_999.0,
            2.0,
        );
        let t0 = 0;
        m.register_at(t0);
        assert!((m.register_at(t0 + 3_600_000) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_clock_is_china_standard_time() {
        // 2025-11-24 16:00:00 UTC is 2025-11-25 00:00:00 in Beijing.
        let t = meter_time(1_764_000_000_000);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2025, 11, 25, 0, 0, 0)
        );
    }

    #[test]
    fn heat_meters_report_heat_and_flow() {
        let mut m = Meter::new(
            MeterType::HEAT,
            Address::parse("00000000000020").unwrap(),
            5000.0,
            3.5,
        );
        let MeterData::Heat(h) = m.meter_data(0) else {
            panic!()
        };
        assert_eq!(h.current_heat, Reading::hundredths(500_000, Unit::KWH));
        assert_eq!(h.power, Reading::hundredths(350, Unit::KW));
        assert!(h.flow_rate.value() > 0.19 && h.flow_rate.value() < 0.21);
        m.apply(Change::BatteryLow(true));
        assert!(m.meter_data(0).status().battery_low());
    }

    #[test]
    fn words_parse() {
        assert_eq!(Change::parse("low-battery"), Ok(Change::BatteryLow(true)));
        assert_eq!(
            Change::parse("valve-closed"),
            Ok(Change::Valve(Valve::Closed))
        );
        assert!(Change::parse("explode")
            .unwrap_err()
            .contains("valve-closed"));
    }
}
