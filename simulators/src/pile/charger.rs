//! An e-bike charger and its battery: the load a socket sees.
//!
//! The curve follows docs/detection.md ("E-bike chargers as a load"):
//! - **Lithium** (48 V, 13S): constant current (the plateau, 120–260 W at the
//!   mains, rising slightly with pack voltage) until the pack reaches its
//!   constant-voltage point, then an exponential, monotone taper; when the
//!   current falls below the cut-off the BMS stops the charge and only the
//!   charger's no-load draw (< 1 W) remains.
//! - **Lead-acid** (48 V, 4 × 12 V): bulk at 0.13–0.16 C (~110 W for
//!   12 Ah), then a second stage starting near 60 W (12 Ah) and decaying
//!   until the charger's turn-over current (~41 W), then float at a few
//!   watts, forever.
//!
//! Everything is a function of the charge delivered, so the model integrates
//! exactly whatever step size the caller uses (the pile sub-steps at 1 s).

use serde::Deserialize;

use super::noise::Noise;

/// Which kind of battery (and matching charger) is plugged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargerKind {
    /// 48 V lithium pack with BMS; CC/CV charger of 2–4 A.
    Lithium,
    /// 48 V lead-acid pack; three-stage charger (bulk, second stage, float).
    LeadAcid,
    /// Lithium whose CV tail is sharp: the current falls from ¾ to ¼ of
    /// the plateau in about 7 minutes (a common BMS and charger pairing).
    LithiumSharp,
    /// A fast charger on a lithium pack: 6–8 A DC, 400–550 W at the mains,
    /// under the non-standard charger limit but twice a usual charger.
    Fast,
    /// Two lithium packs charged at once from one socket (a splitter):
    /// twice the plateau, twice the energy.
    TwoPacks,
    /// A lithium charger whose cut-off is broken: its CV tail levels off at
    /// about 40 W and it never stops.
    NeverStops,
    /// An ordinary lithium charger that overheats: the socket warms by
    /// [`OVER_TEMPERATURE_RAMP_C_PER_MIN`](super::OVER_TEMPERATURE_RAMP_C_PER_MIN)
    /// while it charges, as under the over-temperature fault.
    Overheating,
}

impl ChargerKind {
    /// True for the kinds with a lithium pack (CC/CV curve).
    fn lithium(self) -> bool {
        self != Self::LeadAcid
    }

    /// True for a charger that heats its socket as it charges.
    pub(crate) fn overheats(self) -> bool {
        self == Self::Overheating
    }
}

/// One charging session's battery and charger, drawn at plug-in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargerSpec {
    /// Battery kind.
    pub kind: ChargerKind,
    /// Pack capacity in ampere-hours.
    pub capacity_ah: f64,
    /// Charger output current (DC) in the constant-current / bulk stage.
    pub charge_current_a: f64,
    /// State of charge at plug-in, `0.0..1.0`.
    pub start_soc: f64,
}

impl ChargerSpec {
    /// A middle-of-the-range session, for tests and hand-written scenarios.
    pub fn typical(kind: ChargerKind) -> Self {
        match kind {
            ChargerKind::Fast => Self {
                kind,
                capacity_ah: 16.0,
                charge_current_a: 7.0,
                start_soc: 0.2,
            },
            ChargerKind::TwoPacks => Self {
                kind,
                capacity_ah: 26.0,
                charge_current_a: 6.0,
                start_soc: 0.2,
            },
            ChargerKind::Lithium
            | ChargerKind::LithiumSharp
            | ChargerKind::NeverStops
            | ChargerKind::Overheating => Self {
                kind,
                capacity_ah: 13.0,
                charge_current_a: 3.0,
                start_soc: 0.2,
            },
            ChargerKind::LeadAcid => Self {
                kind,
                capacity_ah: 12.0,
                charge_current_a: 1.8,
                start_soc: 0.25,
            },
        }
    }

    /// A random session within the ranges that keep a charge at 2–8 h and
    /// 0.3–2 kWh (see the module docs and the tests).
    pub(crate) fn random(kind: ChargerKind, noise: &mut Noise) -> Self {
        match kind {
            ChargerKind::Fast => {
                let capacity_ah = noise.uniform(14.0, 20.0);
                Self {
                    kind,
                    capacity_ah,
                    charge_current_a: noise.uniform(6.0, 8.0),
                    start_soc: noise.uniform(0.05, 0.4),
                }
            }
            ChargerKind::TwoPacks => {
                let pack_ah = noise.uniform(10.0, 14.0);
                Self {
                    kind,
                    capacity_ah: 2.0 * pack_ah,
                    charge_current_a: 2.0 * pack_ah * noise.uniform(0.2, 0.25),
                    start_soc: noise.uniform(0.05, 0.4),
                }
            }
            ChargerKind::Lithium
            | ChargerKind::LithiumSharp
            | ChargerKind::NeverStops
            | ChargerKind::Overheating => {
                let capacity_ah = noise.uniform(10.0, 16.0);
                Self {
                    kind,
                    capacity_ah,
                    charge_current_a: capacity_ah * noise.uniform(0.2, 0.25),
                    start_soc: noise.uniform(0.05, 0.4),
                }
            }
            ChargerKind::LeadAcid => {
                let capacity_ah = noise.uniform(12.0, 20.0);
                Self {
                    kind,
                    capacity_ah,
                    charge_current_a: capacity_ah * noise.uniform(0.13, 0.16),
                    start_soc: noise.uniform(0.15, 0.4),
                }
            }
        }
    }

    /// Whether the numbers describe a chargeable pack; a spec from outside
    /// (a scenario file) is checked before it is used.
    pub fn is_valid(&self) -> bool {
        self.capacity_ah.is_finite()
            && self.capacity_ah > 0.0
            && self.charge_current_a.is_finite()
            && self.charge_current_a > 0.0
            && self.charge_current_a <= MAX_CHARGE_CURRENT_A
            && (0.0..1.0).contains(&self.start_soc)
    }
}

/// Where the charger is in its curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStage {
    /// Constant current (lithium) or bulk (lead-acid): the plateau.
    Plateau,
    /// Constant voltage (lithium) or second stage (lead-acid): the taper.
    Taper,
    /// BMS stopped (lithium) or float (lead-acid): the battery is full.
    Done,
}

/// Largest charger current a spec may ask for; above that it is not an
/// e-bike charger (use a fault injection for overcurrent instead).
pub const MAX_CHARGE_CURRENT_A: f64 = 10.0;

/// Mains-to-DC efficiency of a typical charger.
const EFFICIENCY: f64 = 0.85;

/// Lithium 13S: pack voltage at 0 % charge and at the CV point.
const LI_EMPTY_V: f64 = 47.0;
const LI_CV_V: f64 = 54.6;
/// State of charge at which the pack reaches its CV voltage.
const LI_CV_SOC: f64 = 0.85;
/// Time constant of the CV current decay.
const LI_TAPER_TAU_S: f64 = 25.0 * 60.0;
/// Time constant of the sharp CV tail ([`ChargerKind::LithiumSharp`]):
/// ¾ to ¼ of the plateau in ln 3 × 6 ≈ 6.6 min.
const LI_SHARP_TAU_S: f64 = 6.0 * 60.0;
/// Where a [`ChargerKind::NeverStops`] tail levels off (DC), about 40 W
/// at the mains.
const NEVER_STOPS_FLOOR_A: f64 = 0.6;
/// DC current below which the BMS ends the charge.
const LI_CUTOFF_A: f64 = 0.12;
/// What a charger draws from the mains with no load.
const NO_LOAD_W: f64 = 0.8;

/// Lead-acid 48 V: voltages of an empty pack, of the second stage, of float.
const LEAD_EMPTY_V: f64 = 50.0;
const LEAD_ABSORB_V: f64 = 58.8;
const LEAD_FLOAT_V: f64 = 55.2;
/// State of charge at which bulk ends.
const LEAD_BULK_END_SOC: f64 = 0.8;
/// Second stage: starting current (× bulk current) and its decay.
const LEAD_STAGE2_START: f64 = 0.55;
const LEAD_STAGE2_TAU_S: f64 = 2.5 * 3600.0;
/// DC current at which the charger turns over to float (its lamp goes
/// green); about 41 W at the mains.
const LEAD_TURNOVER_A: f64 = 0.6;
/// Float current (× bulk current).
const LEAD_FLOAT: f64 = 0.06;

/// A charger connected to its battery, advanced only while the socket is on.
#[derive(Debug, Clone)]
pub(crate) struct Charger {
    spec: ChargerSpec,
    soc: f64,
    stage: ChargeStage,
    /// Seconds spent in the current stage.
    stage_s: f64,
}

impl Charger {
    pub(crate) fn new(spec: ChargerSpec) -> Self {
        Self {
            spec,
            soc: spec.start_soc,
            stage: ChargeStage::Plateau,
            stage_s: 0.0,
        }
    }

    pub(crate) fn spec(&self) -> &ChargerSpec {
        &self.spec
    }

    pub(crate) fn stage(&self) -> ChargeStage {
        self.stage
    }

    pub(crate) fn state_of_charge(&self) -> f64 {
        self.soc
    }

    /// Charges for `dt_s` seconds of powered time.
    pub(crate) fn advance(&mut self, dt_s: f64) {
        let amps = self.dc_current_a();
        self.soc = (self.soc + amps * dt_s / 3600.0 / self.spec.capacity_ah).min(1.0);
        self.stage_s += dt_s;
        let lithium = self.spec.kind.lithium();
        let next = match self.stage {
            ChargeStage::Plateau if lithium && self.soc >= LI_CV_SOC => Some(ChargeStage::Taper),
            ChargeStage::Taper
                if lithium
                    && self.spec.kind != ChargerKind::NeverStops
                    && self.dc_current_a() < LI_CUTOFF_A =>
            {
                Some(ChargeStage::Done)
            }
            ChargeStage::Plateau if !lithium && self.soc >= LEAD_BULK_END_SOC => {
                Some(ChargeStage::Taper)
            }
            ChargeStage::Taper if !lithium && self.dc_current_a() < LEAD_TURNOVER_A => {
                Some(ChargeStage::Done)
            }
            _ => None,
        };
        if let Some(stage) = next {
            self.stage = stage;
            self.stage_s = 0.0;
        }
    }

    /// Current into the battery now.
    fn dc_current_a(&self) -> f64 {
        let i0 = self.spec.charge_current_a;
        let lithium = self.spec.kind.lithium();
        match self.stage {
            ChargeStage::Plateau => i0,
            ChargeStage::Taper if lithium => {
                let tau = match self.spec.kind {
                    ChargerKind::LithiumSharp => LI_SHARP_TAU_S,
                    _ => LI_TAPER_TAU_S,
                };
                let i = i0 * (-self.stage_s / tau).exp();
                match self.spec.kind {
                    ChargerKind::NeverStops => i.max(NEVER_STOPS_FLOOR_A),
                    _ => i,
                }
            }
            ChargeStage::Done if lithium => 0.0,
            ChargeStage::Taper => {
                i0 * LEAD_STAGE2_START * (-self.stage_s / LEAD_STAGE2_TAU_S).exp()
            }
            ChargeStage::Done => i0 * LEAD_FLOAT,
        }
    }

    /// Battery voltage now.
    fn dc_voltage_v(&self) -> f64 {
        match (self.spec.kind.lithium(), self.stage) {
            (true, ChargeStage::Plateau) => {
                (LI_EMPTY_V + (LI_CV_V - LI_EMPTY_V) * self.soc / LI_CV_SOC).min(LI_CV_V)
            }
            (true, _) => LI_CV_V,
            (false, ChargeStage::Plateau) => (LEAD_EMPTY_V
                + (LEAD_ABSORB_V - LEAD_EMPTY_V) * self.soc / LEAD_BULK_END_SOC)
                .min(LEAD_ABSORB_V),
            (false, ChargeStage::Taper) => LEAD_ABSORB_V,
            (false, ChargeStage::Done) => LEAD_FLOAT_V,
        }
    }

    /// Active power the charger draws from the mains now.
    pub(crate) fn mains_power_w(&self) -> f64 {
        let dc = self.dc_current_a() * self.dc_voltage_v();
        if dc <= 0.0 {
            NO_LOAD_W
        } else {
            dc / EFFICIENCY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a charger at 1 s steps until done (or 24 h); returns hours and
    /// mains energy in Wh.
    fn charge_to_full(spec: ChargerSpec) -> (f64, f64) {
        let mut c = Charger::new(spec);
        let mut wh = 0.0;
        for s in 0..24 * 3600 {
            if c.stage() == ChargeStage::Done {
                return (f64::from(s) / 3600.0, wh);
            }
            wh += c.mains_power_w() / 3600.0;
            c.advance(1.0);
        }
        panic!("{spec:?} never finished");
    }

    #[test]
    fn extreme_specs_stay_within_field_ranges() {
        let extremes = [
            (ChargerKind::Lithium, 10.0, 0.25, 0.4),
            (ChargerKind::Lithium, 16.0, 0.2, 0.05),
            (ChargerKind::Lithium, 10.0, 0.2, 0.05),
            (ChargerKind::LeadAcid, 12.0, 0.16, 0.4),
            (ChargerKind::LeadAcid, 20.0, 0.13, 0.15),
            (ChargerKind::LeadAcid, 12.0, 0.13, 0.15),
        ];
        for (kind, ah, rate, soc) in extremes {
            let spec = ChargerSpec {
                kind,
                capacity_ah: ah,
                charge_current_a: ah * rate,
                start_soc: soc,
            };
            let (hours, wh) = charge_to_full(spec);
            assert!((2.0..=8.0).contains(&hours), "{spec:?}: {hours} h");
            assert!((300.0..=2000.0).contains(&wh), "{spec:?}: {wh} Wh");
        }
    }

    #[test]
    fn lead_acid_has_bulk_second_stage_and_float() {
        let mut c = Charger::new(ChargerSpec::typical(ChargerKind::LeadAcid));
        let bulk = c.mains_power_w();
        assert!((100.0..130.0).contains(&bulk), "bulk {bulk} W");
        while c.stage() == ChargeStage::Plateau {
            c.advance(1.0);
        }
        let second = c.mains_power_w();
        assert!((55.0..75.0).contains(&second), "second stage {second} W");
        while c.stage() == ChargeStage::Taper {
            c.advance(1.0);
        }
        let float = c.mains_power_w();
        assert!((2.0..20.0).contains(&float), "float {float} W");
    }

    #[test]
    fn specs_outside_reason_are_invalid() {
        let mut spec = ChargerSpec::typical(ChargerKind::Lithium);
        assert!(spec.is_valid());
        spec.start_soc = 1.0;
        assert!(!spec.is_valid());
        spec.start_soc = 0.2;
        spec.capacity_ah = f64::NAN;
        assert!(!spec.is_valid());
    }
}
