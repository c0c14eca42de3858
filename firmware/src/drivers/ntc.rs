//! An NTC thermistor read through an ADC, converted with the Beta equation.
//!
//! embedded-hal 1.0 has no ADC trait, so this driver takes the ADC's raw
//! value: the thermistor sits between the ADC input and ground, a fixed
//! resistor between the input and the ADC's reference (the usual divider
//! on socket boards). Then `R = R_series · raw / (full_scale − raw)` and
//! `1/T = 1/T₀ + ln(R/R₀)/B`.

/// Absolute zero offset, °C to K.
const KELVIN: f32 = 273.15;

/// Why a raw value gives no temperature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The ADC reads full scale: the thermistor is disconnected.
    Open,
    /// The ADC reads 0: the thermistor is shorted.
    Short,
    /// The raw value is above the ADC's full scale.
    OutOfRange(u16),
}

/// A thermistor and its divider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ntc {
    /// Resistance at `t0_c`, in ohms (e.g. 10 kΩ).
    pub r0_ohm: f32,
    /// Reference temperature of `r0_ohm` (usually 25 °C).
    pub t0_c: f32,
    /// Beta constant in kelvin (e.g. 3950 K).
    pub beta_k: f32,
    /// The divider's fixed resistor, in ohms.
    pub series_ohm: f32,
    /// The ADC's full-scale value (4095 for 12 bits).
    pub full_scale: u16,
}

impl Default for Ntc {
    /// 10 kΩ / B 3950 thermistor, 10 kΩ series resistor, 12-bit ADC.
    fn default() -> Self {
        Self {
            r0_ohm: 10_000.0,
            t0_c: 25.0,
            beta_k: 3950.0,
            series_ohm: 10_000.0,
            full_scale: 4095,
        }
    }
}

impl Ntc {
    /// The thermistor's resistance for an ADC value.
    pub fn resistance_ohm(&self, raw: u16) -> Result<f32, Error> {
        if raw > self.full_scale {
            return Err(Error::OutOfRange(raw));
        }
        if raw == 0 {
            return Err(Error::Short);
        }
        if raw == self.full_scale {
            return Err(Error::Open);
        }
        let raw = f32::from(raw);
        Ok(self.series_ohm * raw / (f32::from(self.full_scale) - raw))
    }

    /// The temperature for an ADC value.
    pub fn celsius(&self, raw: u16) -> Result<f32, Error> {
        let r = self.resistance_ohm(raw)?;
        let inv_t = 1.0 / (self.t0_c + KELVIN) + libm::logf(r / self.r0_ohm) / self.beta_k;
        Ok(1.0 / inv_t - KELVIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw value a resistance gives on the default divider.
    fn raw_for(r: f32) -> u16 {
        let x = 4095.0 * r / (r + 10_000.0);
        (x + 0.5) as u16
    }

    #[test]
    fn equal_resistors_read_the_reference_temperature() {
        // Mid-scale: R = R0, so T = T0.
        let t = Ntc::default().celsius(2048).expect("in range");
        assert!((t - 25.0).abs() < 0.05, "{t}");
    }

    #[test]
    fn beta_curve_gives_the_known_points() {
        // 10 kΩ B3950 by the Beta model: 0 °C → 33.62 kΩ, 65 °C → 2.086 kΩ
        // (the over-temperature trip level).
        let ntc = Ntc::default();
        let zero = ntc.celsius(raw_for(33_620.0)).expect("in range");
        assert!(zero.abs() < 0.2, "{zero}");
        let hot = ntc.celsius(raw_for(2_086.4)).expect("in range");
        assert!((hot - 65.0).abs() < 0.2, "{hot}");
    }

    #[test]
    fn open_and_short_are_errors() {
        let ntc = Ntc::default();
        assert_eq!(ntc.celsius(4095), Err(Error::Open));
        assert_eq!(ntc.celsius(0), Err(Error::Short));
        assert_eq!(ntc.celsius(5000), Err(Error::OutOfRange(5000)));
        assert!(ntc.celsius(1).is_ok() && ntc.celsius(4094).is_ok());
    }
}
