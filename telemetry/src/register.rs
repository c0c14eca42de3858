//! Cumulative registers (m³ of water or gas, kWh of heat) and what a fall
//! in one means.
//!
//! A meter's register has a fixed number of digits and wraps to zero past
//! its largest reading: a water meter at 99999.999 m³ that passes one more
//! litre reads 0.000. That is use, not a meter running backwards. The
//! gateway (which knows a register's size from its config or its protocol)
//! and analytics (which infers it from the digits of the value before the
//! fall) must agree on what a wrap is, so the rule lives here once.

/// A fall is a wrap when the register was within this share of its
/// modulus before and is within this share of zero after: 1 % of a
/// 100000 m³ register is 1000 m³, far more than a flat uses between polls,
/// and far less than a register that went back for another reason.
pub const WRAP_BAND: f64 = 0.01;

/// Smallest modulus [`inferred_modulus`] assumes: registers have at least
/// four integer digits (9999), so a small register that falls is judged
/// reversed, not wrapped.
pub const MIN_INFERRED_MODULUS: f64 = 1e4;

/// The value a register whose largest reading is `max` wraps at: the next
/// power of ten (99999.999 → 100000, 999999.99 → 1000000).
pub fn modulus_of_max(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return f64::INFINITY;
    }
    10f64.powf(max.log10().ceil())
}

/// The modulus of a register whose size is not known, inferred from the
/// integer digits of a reading of it (99990.5 has five: 100000), and at
/// least [`MIN_INFERRED_MODULUS`].
pub fn inferred_modulus(reading: f64) -> f64 {
    if !(reading.is_finite() && reading >= 1.0) {
        return MIN_INFERRED_MODULUS;
    }
    10f64
        .powf(reading.log10().floor() + 1.0)
        .max(MIN_INFERRED_MODULUS)
}

/// The use between two readings `before` and `after` of a register that
/// wraps at `modulus`: `after - before` when it rose or stayed; the way
/// round through `modulus` when it fell from within [`WRAP_BAND`] of the
/// modulus to within [`WRAP_BAND`] of zero; `None` for any other fall (a
/// meter reversed, reset or replaced: the caller decides which).
pub fn register_use(before: f64, after: f64, modulus: f64) -> Option<f64> {
    if after >= before {
        return Some(after - before);
    }
    let band = modulus * WRAP_BAND;
    let wrapped = modulus.is_finite() && before >= modulus - band && after < band;
    wrapped.then_some(after + modulus - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: Option<f64>, want: f64) {
        let got = got.expect("a use");
        assert!((got - want).abs() < 1e-6, "{got} != {want}");
    }

    #[test]
    fn moduli_are_the_next_power_of_ten() {
        assert_eq!(modulus_of_max(99_999.999), 100_000.0);
        assert_eq!(modulus_of_max(999_999.99), 1_000_000.0);
        assert_eq!(modulus_of_max(9_999.0), 10_000.0);
        assert_eq!(modulus_of_max(0.0), f64::INFINITY);
        assert_eq!(inferred_modulus(99_990.5), 100_000.0);
        assert_eq!(inferred_modulus(99_999.999), 100_000.0);
        assert_eq!(inferred_modulus(123_456.0), 1_000_000.0);
        assert_eq!(inferred_modulus(12.0), MIN_INFERRED_MODULUS);
    }

    #[test]
    fn a_wrap_exactly_at_the_maximum_is_one_step_of_use() {
        close(register_use(99_999.999, 0.0, 100_000.0), 0.001);
        close(register_use(99_999.5, 0.25, 100_000.0), 0.75);
    }

    #[test]
    fn just_below_the_maximum_is_ordinary_use() {
        close(register_use(99_999.998, 99_999.999, 100_000.0), 0.001);
        close(register_use(5.0, 5.0, 100_000.0), 0.0);
    }

    #[test]
    fn a_fall_outside_the_bands_is_not_a_wrap() {
        // Not near the maximum before.
        assert_eq!(register_use(98_999.0, 0.5, 100_000.0), None);
        // Not near zero after.
        assert_eq!(register_use(99_999.0, 1_000.0, 100_000.0), None);
        // An ordinary fall.
        assert_eq!(register_use(500.0, 499.0, 100_000.0), None);
        assert_eq!(register_use(500.0, 0.0, f64::INFINITY), None);
    }
}
