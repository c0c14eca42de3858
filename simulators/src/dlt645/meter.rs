//! One simulated DL/T 645-2007 meter: plausible values that change with
//! time, and the misbehaviour a test or an installer asks for.
//!
//! Values are a pure function of the simulated time (plus the energy
//! register, which integrates power), so a test that freezes the clock
//! knows exactly what the gateway must read.

use gridwatch_dlt645::{Address, DataId, ErrorWord, Format};
use std::f64::consts::TAU;

/// How the meter treats the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answers as the standard says.
    #[default]
    Normal,
    /// Answers every read abnormally with this error word.
    Abnormal(ErrorWord),
    /// Does not answer (unplugged, or gone from the line until set back).
    Silent,
    /// Answers with a wrong checksum.
    BadChecksum,
    /// Sends only the first half of each answer.
    Truncated,
    /// Sends line noise, with a stray start byte, before each answer.
    Noise,
}

impl Behaviour {
    /// Parses the words of the simulator's command line and stdin:
    /// `normal`, `abnormal[:ERR]` (hex, default 01), `silent`,
    /// `bad-checksum`, `truncated`, `noise`.
    pub fn parse(word: &str) -> Result<Self, String> {
        let (name, arg) = word.split_once(':').unwrap_or((word, ""));
        Ok(match name {
            "normal" => Behaviour::Normal,
            "silent" | "gone" => Behaviour::Silent,
            "bad-checksum" => Behaviour::BadChecksum,
            "truncated" => Behaviour::Truncated,
            "noise" => Behaviour::Noise,
            "abnormal" => Behaviour::Abnormal(ErrorWord(if arg.is_empty() {
                ErrorWord::OTHER
            } else {
                u8::from_str_radix(arg, 16)
                    .map_err(|_| format!("{arg:?} is not a hex error word (e.g. 02)"))?
            })),
            other => {
                return Err(crate::control::unknown_word(
                    "behaviour",
                    other,
                    &[
                        "normal",
                        "abnormal[:ERR]",
                        "silent",
                        "bad-checksum",
                        "truncated",
                        "noise",
                    ],
                ))
            }
        })
    }
}

/// A single- or three-phase meter.
#[derive(Debug, Clone)]
pub struct Meter {
    /// Its address.
    pub address: Address,
    /// 1 or 3.
    pub phases: u8,
    /// What it does with requests.
    pub behaviour: Behaviour,
    /// Load of phase A in amperes around which the current swings.
    base_current_a: f64,
    energy_kwh: f64,
    last_ms: Option<i64>,
}

/// Period of the simulated load swing.
const LOAD_PERIOD_MS: f64 = 120_000.0;
/// Period of the simulated voltage swing.
const VOLTAGE_PERIOD_MS: f64 = 600_000.0;

impl Meter {
    /// A meter at `address` with `phases` phases, `energy_kwh` on its
    /// register and a load of about `base_current_a` per phase.
    pub fn new(address: Address, phases: u8, energy_kwh: f64, base_current_a: f64) -> Self {
        Self {
            address,
            phases: if phases == 3 { 3 } else { 1 },
            behaviour: Behaviour::Normal,
            base_current_a,
            energy_kwh,
            last_ms: None,
        }
    }

    /// Phase voltage at `t_ms`, volts (phase 1..=3).
    pub fn voltage_v(&self, t_ms: i64, phase: u8) -> f64 {
        let shift = f64::from(phase - 1) * TAU / 3.0;
        230.0 + 4.0 * (TAU * t_ms as f64 / VOLTAGE_PERIOD_MS + shift).sin()
    }

    /// Phase current at `t_ms`, amperes.
    pub fn current_a(&self, t_ms: i64, phase: u8) -> f64 {
        let shift = f64::from(phase - 1);
        self.base_current_a * (1.0 + 0.3 * (TAU * t_ms as f64 / LOAD_PERIOD_MS + shift).sin())
    }

    /// Phase power factor at `t_ms`.
    pub fn power_factor(&self, t_ms: i64, phase: u8) -> f64 {
        0.93 + 0.04 * (TAU * t_ms as f64 / LOAD_PERIOD_MS + f64::from(phase)).cos()
    }

    /// Phase active power at `t_ms`, kilowatts.
    pub fn power_kw(&self, t_ms: i64, phase: u8) -> f64 {
        self.voltage_v(t_ms, phase) * self.current_a(t_ms, phase) * self.power_factor(t_ms, phase)
            / 1000.0
    }

    /// Total active power at `t_ms`, kilowatts.
    pub fn total_power_kw(&self, t_ms: i64) -> f64 {
        (1..=self.phases).map(|p| self.power_kw(t_ms, p)).sum()
    }

    /// Grid frequency at `t_ms`, hertz.
    pub fn frequency_hz(&self, t_ms: i64) -> f64 {
        50.0 + 0.03 * (TAU * t_ms as f64 / 30_000.0).sin()
    }

    /// The energy register, kWh, after integrating power up to `t_ms`.
    pub fn energy_kwh(&mut self, t_ms: i64) -> f64 {
        if let Some(last) = self.last_ms {
            if t_ms > last {
                let hours = (t_ms - last) as f64 / 3_600_000.0;
                self.energy_kwh += self.total_power_kw(t_ms) * hours;
            }
        }
        self.last_ms = Some(self.last_ms.map_or(t_ms, |l| l.max(t_ms)));
        self.energy_kwh
    }

    /// The value of `di` at `t_ms` in the identifier's format (plain
    /// bytes), or the error word a real meter answers with.
    pub fn read(&mut self, di: DataId, t_ms: i64) -> Result<Vec<u8>, ErrorWord> {
        let no_data = ErrorWord(ErrorWord::NO_DATA);
        let format = di.format().ok_or(no_data)?;
        let [_, _, di1, _] = di.0.to_be_bytes();
        let phase = |family: DataId| -> Result<Option<u8>, ErrorWord> {
            if di.0 & 0xFFFF_00FF != family.0 & 0xFFFF_00FF {
                return Ok(None);
            }
            match di1 {
                0 => Ok(Some(0)),
                p if p <= self.phases => Ok(Some(p)),
                _ => Err(no_data),
            }
        };
        let value = if di == DataId::FORWARD_ACTIVE_ENERGY || di == DataId::COMBINED_ACTIVE_ENERGY {
            self.energy_kwh(t_ms)
        } else if di == DataId::REVERSE_ACTIVE_ENERGY {
            0.0
        } else if let Some(p) = phase(DataId::VOLTAGE_A)? {
            self.voltage_v(t_ms, p)
        } else if let Some(p) = phase(DataId::CURRENT_A)? {
            self.current_a(t_ms, p)
        } else if let Some(p) = phase(DataId::ACTIVE_POWER)? {
            if p == 0 {
                self.total_power_kw(t_ms)
            } else {
                self.power_kw(t_ms, p)
            }
        } else if let Some(p) = phase(DataId::POWER_FACTOR)? {
            if p == 0 {
                let total = self.total_power_kw(t_ms);
                let apparent: f64 = (1..=self.phases)
                    .map(|p| self.voltage_v(t_ms, p) * self.current_a(t_ms, p) / 1000.0)
                    .sum();
                total / apparent
            } else {
                self.power_factor(t_ms, p)
            }
        } else if di == DataId::FREQUENCY {
            self.frequency_hz(t_ms)
        } else if di == DataId::METER_TEMPERATURE {
            31.5
        } else {
            return Err(no_data);
        };
        Ok(encode(format, value))
    }
}

fn encode(format: Format, value: f64) -> Vec<u8> {
    let mut out = [0u8; 8];
    let raw = format
        .raw_of(value)
        .clamp(-format.max_raw(), format.max_raw());
    let raw = if format.signed { raw } else { raw.max(0) };
    match format.encode(raw, &mut out) {
        Ok(n) => out[..n].to_vec(),
        // Clamped to the format above, so encoding cannot fail.
        Err(e) => unreachable!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(phases: u8) -> Meter {
        Meter::new(Address::parse("000000000001").unwrap(), phases, 1000.0, 5.0)
    }

    fn value(m: &mut Meter, di: DataId, t: i64) -> f64 {
        let bytes = m.read(di, t).unwrap();
        di.format().unwrap().decode(&bytes).unwrap().to_f64()
    }

    #[test]
    fn values_are_plausible_and_consistent() {
        let mut m = meter(1);
        for t in (0..600_000).step_by(7_000) {
            let v = value(&mut m, DataId::VOLTAGE_A, t);
            let i = value(&mut m, DataId::CURRENT_A, t);
            let p = value(&mut m, DataId::ACTIVE_POWER, t);
            let pf = value(&mut m, DataId::POWER_FACTOR, t);
            assert!((225.0..=235.0).contains(&v), "{v}");
            assert!((3.0..=7.0).contains(&i), "{i}");
            assert!(
                (p - v * i * pf / 1000.0).abs() < 0.01,
                "{p} vs {v} {i} {pf}"
            );
            let hz = value(&mut m, DataId::FREQUENCY, t);
            assert!((49.9..=50.1).contains(&hz));
        }
    }

    #[test]
    fn energy_only_grows() {
        let mut m = meter(3);
        let mut last = value(&mut m, DataId::FORWARD_ACTIVE_ENERGY, 0);
        assert!((last - 1000.0).abs() < 1e-9);
        for t in (60_000..3_600_000).step_by(60_000) {
            let e = value(&mut m, DataId::FORWARD_ACTIVE_ENERGY, t);
            assert!(e >= last);
            last = e;
        }
        // About 3 × 230 V × 5 A × 0.93 ≈ 3.2 kW for an hour.
        assert!((last - 1003.2).abs() < 0.3, "{last}");
    }

    #[test]
    fn a_single_phase_meter_has_no_phase_b() {
        let mut m = meter(1);
        assert_eq!(
            m.read(DataId::VOLTAGE_A.phase(2), 0),
            Err(ErrorWord(ErrorWord::NO_DATA))
        );
        assert!(meter(3).read(DataId::VOLTAGE_A.phase(3), 0).is_ok());
        assert_eq!(
            m.read(DataId(0x0401_0000), 0),
            Err(ErrorWord(ErrorWord::NO_DATA))
        );
    }

    #[test]
    fn behaviours_parse_from_words() {
        assert_eq!(Behaviour::parse("silent"), Ok(Behaviour::Silent));
        assert_eq!(
            Behaviour::parse("abnormal:04"),
            Ok(Behaviour::Abnormal(ErrorWord(4)))
        );
        assert_eq!(
            Behaviour::parse("abnormal"),
            Ok(Behaviour::Abnormal(ErrorWord(1)))
        );
        assert!(Behaviour::parse("abnormal:zz").unwrap_err().contains("hex"));
        assert!(Behaviour::parse("sleepy").unwrap_err().contains("unknown"));
    }
}
