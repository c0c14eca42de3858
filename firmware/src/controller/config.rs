//! The protections of one socket and of the whole pile, as configuration.
//!
//! Defaults are the field values of `docs/detection.md` ("Charging piles —
//! protections and alerts"). Every cut-off is an `Option`: `None` disables
//! it, which is how [`Protections::legacy`] describes an old pile that
//! measures but never protects itself.

/// Over-temperature trip with the field's false-trigger filter: the
/// temperature must stay above `limit_c` for `persistence_ms` **and** have
/// risen faster than `min_rise_c_per_min` over that time. A plain threshold
/// false-triggered in the field (sun on the enclosure, a sensor glitch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverTemperature {
    /// Trip level, strictly above (default 65 °C).
    pub limit_c: f32,
    /// How long the temperature must stay above the limit (default 60 s).
    pub persistence_ms: u64,
    /// Rise over the persistence window, in °C per minute, that must be
    /// exceeded (default 1 °C/min). `0.0` trips on persistence alone.
    pub min_rise_c_per_min: f32,
}

/// "Full": power below `below_w` for `hold_ms` ends the session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoStop {
    /// Power under which the battery counts as full (default 45 W).
    pub below_w: f32,
    /// How long it must stay under (default 45 min).
    pub hold_ms: u64,
}

/// "Unplugged / abandoned": the mean power over a window below `below_w`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Abandon {
    /// Mean power under which nothing is charging (default 2.5 W).
    pub below_w: f32,
    /// Window length; windows are consecutive from the session start
    /// (default 5 min).
    pub window_ms: u64,
}

/// Per-socket protections. `None` disables a cut-off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protections {
    /// Current above which the socket is cut off at once (default 5.5 A).
    pub overcurrent_a: Option<f32>,
    /// Power above which the socket is cut off at once (default 1200 W).
    pub overpower_w: Option<f32>,
    /// Over-temperature with persistence and rate of rise.
    pub over_temperature: Option<OverTemperature>,
    /// Residual current at or above which the socket trips (default 30 mA).
    /// When enabled, a fault input (the RCD module's own output) trips
    /// whatever current is measured; `None` ignores both.
    pub residual_trip_ma: Option<u16>,
    /// Auto-stop when full (regulation for high-rise residential buildings).
    pub auto_stop: Option<AutoStop>,
    /// Unplug / abandon detection.
    pub abandon: Option<Abandon>,
    /// Most relay-on time in one session before it is stopped with
    /// `SessionTooLong` (default 12 h, the session cap).
    pub max_charging_ms: Option<u64>,
    /// Most time since plug-in with the relay on before a forced stop
    /// (default 24 h).
    pub forced_stop_ms: Option<u64>,
    /// Power under which the socket reports `Full` rather than `Charging`
    /// (display only, never a cut-off; default 45 W, older firmware 20 W).
    pub full_below_w: f32,
}

impl Default for Protections {
    fn default() -> Self {
        Self {
            overcurrent_a: Some(5.5),
            overpower_w: Some(1200.0),
            over_temperature: Some(OverTemperature {
                limit_c: 65.0,
                persistence_ms: 60_000,
                min_rise_c_per_min: 1.0,
            }),
            residual_trip_ma: Some(30),
            auto_stop: Some(AutoStop {
                below_w: 45.0,
                hold_ms: 45 * 60_000,
            }),
            abandon: Some(Abandon {
                below_w: 2.5,
                window_ms: 5 * 60_000,
            }),
            max_charging_ms: Some(12 * 3_600_000),
            forced_stop_ms: Some(24 * 3_600_000),
            full_below_w: 45.0,
        }
    }
}

impl Protections {
    /// An old pile that measures but never cuts anything off; it reports
    /// `Full` below 20 W as older firmware did. Detection is then the job
    /// of the gateway and analytics (the demo's yard uses this).
    pub const fn legacy() -> Self {
        Self {
            overcurrent_a: None,
            overpower_w: None,
            over_temperature: None,
            residual_trip_ma: None,
            auto_stop: None,
            abandon: None,
            max_charging_ms: None,
            forced_stop_ms: None,
            full_below_w: 20.0,
        }
    }

    /// Checks that every enabled limit is a finite, positive number.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |name, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ConfigError { field: name })
            }
        };
        if let Some(a) = self.overcurrent_a {
            positive("overcurrent_a", a)?;
        }
        if let Some(w) = self.overpower_w {
            positive("overpower_w", w)?;
        }
        if let Some(t) = self.over_temperature {
            positive("over_temperature.limit_c", t.limit_c)?;
            if !(t.min_rise_c_per_min.is_finite() && t.min_rise_c_per_min >= 0.0) {
                return Err(ConfigError {
                    field: "over_temperature.min_rise_c_per_min",
                });
            }
        }
        if self.residual_trip_ma == Some(0) {
            return Err(ConfigError {
                field: "residual_trip_ma",
            });
        }
        if let Some(a) = self.auto_stop {
            positive("auto_stop.below_w", a.below_w)?;
        }
        if let Some(a) = self.abandon {
            positive("abandon.below_w", a.below_w)?;
            if a.window_ms == 0 {
                return Err(ConfigError {
                    field: "abandon.window_ms",
                });
            }
        }
        positive("full_below_w", self.full_below_w)
    }
}

/// Whole-pile limits (default for a 12-socket pile: no new session above
/// 7.8 kW, cut at 8.7 kW). `None` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PileLimits {
    /// Rated power of the pile: above it the pile sets
    /// [`PILE_FAULT_OVERLOAD`](crate::pile_map::PILE_FAULT_OVERLOAD), even
    /// when nothing is cut (default 8.7 kW).
    pub rated_power_w: f32,
    /// Above this total power, `start` is refused.
    pub no_new_session_above_w: Option<f32>,
    /// Above this total power, the most recently started sessions are
    /// stopped until the total is back under it.
    pub cut_above_w: Option<f32>,
}

impl Default for PileLimits {
    fn default() -> Self {
        Self {
            rated_power_w: 8700.0,
            no_new_session_above_w: Some(7800.0),
            cut_above_w: Some(8700.0),
        }
    }
}

impl PileLimits {
    /// No whole-pile cut-off: a legacy pile that only reports overload.
    pub const fn legacy(rated_power_w: f32) -> Self {
        Self {
            rated_power_w,
            no_new_session_above_w: None,
            cut_above_w: None,
        }
    }
}

/// A protection setting that cannot work (NaN, zero or negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "protection setting {} must be a positive number",
            self.field
        )
    }
}

impl core::error::Error for ConfigError {}
