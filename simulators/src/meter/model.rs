//! Plausible, changing values for any profile, written into an [`Image`].
//!
//! Values are picked from the unit (mains volts near 230 V, currents of a
//! few amperes, frequency near 50 Hz, counters that only go up), wander
//! slowly with simulated time, and are stored exactly as the profile says
//! the device encodes them (type, byte and word order, scale). The model
//! remembers each value as the gateway should decode it, so a test can
//! compare what came through the wire with what was meant.

use super::image::Image;
use gridwatch_gateway::devices::modbus::decode::decode_value;
use gridwatch_gateway::devices::modbus::encode::{encode, encode_text, merge_bit};
use gridwatch_gateway::profile::{ChannelCount, Profile, Register, ValueType};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Which reading a value belongs to: the device (`None`) or a socket.
pub type Block = Option<u16>;

/// A simulated device of one profile.
#[derive(Debug, Clone)]
pub struct MeterModel {
    profile: Arc<Profile>,
    image: Image,
    values: BTreeMap<(Block, String), f64>,
    seed: u64,
}

impl MeterModel {
    /// A device of `profile` at simulated time 0; `seed` varies the values
    /// between devices of one model.
    pub fn new(profile: Arc<Profile>, seed: u64) -> Self {
        let image = Image::for_profile(&profile);
        let mut m = Self {
            profile,
            image,
            values: BTreeMap::new(),
            seed,
        };
        m.step(0);
        m
    }

    /// The profile served.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Sets every value for simulated time `t_ms`.
    pub fn step(&mut self, t_ms: u64) {
        let profile = self.profile.clone();
        let t_s = t_ms as f64 / 1000.0;
        for (i, reg) in profile.registers.iter().enumerate() {
            self.put(None, 0, reg, t_s, i);
        }
        let Some(ch) = &profile.channel else {
            return;
        };
        let channels = ch.max_count();
        if let ChannelCount::FromRegister { register, .. } = &ch.count {
            if let Some(reg) = profile.register(register) {
                self.store(None, 0, reg, f64::from(channels));
            }
        }
        for n in 1..=channels {
            for (i, reg) in ch.registers.iter().enumerate() {
                let salt = usize::from(n) * 1000 + i;
                self.put(Some(n), ch.block_start(n), reg, t_s, salt);
            }
        }
    }

    fn put(&mut self, block: Block, base: u16, reg: &Register, t_s: f64, salt: usize) {
        if let Some(expected) = reg.expect {
            self.store(block, base, reg, expected as f64);
        } else if reg.value_type.is_text() {
            let text = reg
                .expect_text
                .clone()
                .unwrap_or_else(|| format!("SIM{:04}", self.seed % 10_000));
            if let Ok(words) = encode_text(reg, &text) {
                self.image.set(reg.function, base + reg.address, &words);
            }
        } else {
            let phase = (self.seed as f64 * 0.37 + salt as f64 * 1.3) % std::f64::consts::TAU;
            let v = plausible(reg, t_s, phase, self.seed);
            self.store(block, base, reg, v);
        }
    }

    /// Encodes `value` into the image and remembers it as the gateway will
    /// decode it (after the type's rounding).
    fn store(&mut self, block: Block, base: u16, reg: &Register, value: f64) {
        let address = base + reg.address;
        let Ok(mut words) = encode(reg, value) else {
            return;
        };
        if reg.bit.is_some() {
            let old = self.image.get(reg.function, address).unwrap_or(0);
            words = vec![merge_bit(reg, old, value != 0.0)];
        }
        self.image.set(reg.function, address, &words);
        if reg.is_emitted() {
            if let Ok(Some(decoded)) = decode_value(reg, &words) {
                self.values.insert((block, reg.name.clone()), decoded);
            }
        }
    }

    /// Sets one device-level value by its register name, for a driver that
    /// knows the true value (the live district replays recorded readings)
    /// rather than letting the model invent one. Refused when the profile has
    /// no such register or the value does not fit its type.
    pub fn set(&mut self, name: &str, value: f64) -> Result<(), String> {
        let profile = self.profile.clone();
        let reg = profile
            .registers
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| format!("profile {} has no register {name:?}", profile.model))?;
        encode(reg, value).map_err(|e| {
            format!(
                "{name} = {value} does not fit profile {}: {e}",
                profile.model
            )
        })?;
        self.store(None, 0, reg, value);
        Ok(())
    }

    /// Every emitted value as the gateway should read it, by block and name.
    pub fn values(&self) -> &BTreeMap<(Block, String), f64> {
        &self.values
    }

    /// The values of one block (the device, or a socket), as a reading
    /// would carry them.
    pub fn reading(&self, block: Block) -> BTreeMap<String, f64> {
        self.values
            .iter()
            .filter(|((b, _), _)| *b == block)
            .map(|((_, name), v)| (name.clone(), *v))
            .collect()
    }

    /// The register image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The register image, for client writes.
    pub fn image_mut(&mut self) -> &mut Image {
        &mut self.image
    }
}

/// A value that looks like what such a device reports, by unit and name.
fn plausible(reg: &Register, t_s: f64, phase: f64, seed: u64) -> f64 {
    let wave = (t_s / 60.0 + phase).sin();
    let counter = |rate_per_h: f64| 1000.0 + (seed % 100) as f64 * 10.0 + rate_per_h * t_s / 3600.0;
    if !reg.meanings.is_empty() {
        // The first meaning (usually "idle"/"off"/"none").
        return reg.meanings.keys().next().copied().unwrap_or(0) as f64;
    }
    if reg.value_type == ValueType::Bool {
        return f64::from(((t_s / 30.0) as u64 + seed) % 2 == 1);
    }
    let v = match reg.unit.as_deref() {
        Some("V")
            if reg.name.contains("_l1_l2")
                || reg.name.contains("_l2_l3")
                || reg.name.contains("_l3_l1") =>
        {
            400.0 + 4.0 * wave
        }
        Some("V") => 230.0 + 3.0 * wave,
        Some("A") => 5.0 + 2.0 * wave,
        Some("mA") => 8.0 + 4.0 * wave,
        Some("W") | Some("VA") => 1100.0 + 400.0 * wave,
        Some("var") => 150.0 + 50.0 * wave,
        Some("Hz") => 50.0 + 0.05 * wave,
        Some("°C") => 22.0 + 3.0 * wave,
        Some("°") => 15.0 + 5.0 * wave,
        Some("m³/h") => 1.5 + 0.5 * wave,
        Some("m/s") if reg.name.contains("sound") => 1480.0 + 5.0 * wave,
        Some("m/s") => 1.2 + 0.3 * wave,
        Some("kg/h") => 30.0 + 5.0 * wave,
        Some("kWh") | Some("kvarh") => counter(1.2),
        Some("Wh") => counter(1200.0),
        Some("m³") if reg.name.contains("fraction") => 0.5 + 0.4 * wave,
        Some("m³") if reg.name.contains("reverse") => 0.0,
        Some("m³") => counter(0.05),
        Some("s") => counter(3600.0),
        _ if reg.name.starts_with("power_factor") => 0.95 + 0.03 * wave,
        _ => 0.0,
    };
    // Keep within unsigned types' range (e.g. a u16 of 0.1 V).
    if matches!(
        reg.value_type,
        ValueType::U16 | ValueType::U32 | ValueType::U64
    ) {
        v.max(0.0)
    } else {
        v
    }
}

/// A model shared by the server's connections and the clock task.
#[derive(Debug, Clone)]
pub struct SharedMeter(Arc<Mutex<MeterModel>>);

impl SharedMeter {
    /// Shares `model`.
    pub fn new(model: MeterModel) -> Self {
        Self(Arc::new(Mutex::new(model)))
    }

    /// Runs `f` with the model locked (a poisoned lock is used as left: a
    /// simulator serving slightly stale numbers beats one that stops).
    pub fn with<R>(&self, f: impl FnOnce(&mut MeterModel) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_gateway::devices::modbus::decode::{decode_block, RegisterImage};
    use gridwatch_gateway::devices::modbus::plan;
    use gridwatch_gateway::profile::{ProfileLibrary, BUILT_IN};

    /// Decodes the model's image the way the gateway's poll does, without a socket.
    fn decoded(m: &MeterModel) -> BTreeMap<String, f64> {
        let p = m.profile();
        let mut image = RegisterImage::new();
        for r in plan::device_requests(p, p.max_gap_registers) {
            image.insert(&r, &m.image().read(r.function, r.start, r.count).unwrap());
        }
        decode_block(&p.registers, &image, 0).unwrap()
    }

    #[test]
    fn every_built_in_profile_gets_plausible_values_the_gateway_decodes() {
        let mut lib = ProfileLibrary::built_in();
        for (name, _) in BUILT_IN {
            let m = MeterModel::new(lib.get(name).unwrap(), 3);
            let got = decoded(&m);
            assert_eq!(got, m.reading(None), "{name}");
        }
        let sdm = MeterModel::new(lib.get("eastron-sdm630").unwrap(), 1);
        let v = sdm.reading(None);
        assert!((220.0..240.0).contains(&v["voltage_l1_v"]), "{v:?}");
        assert!((395.0..405.0).contains(&v["voltage_l1_l2_v"]), "{v:?}");
        assert!((49.9..50.1).contains(&v["frequency_hz"]), "{v:?}");
    }

    #[test]
    fn set_writes_what_the_gateway_decodes_and_refuses_what_does_not_fit() {
        let p = ProfileLibrary::built_in().get("gridwatch-flat-wm").unwrap();
        let mut m = MeterModel::new(p, 1);
        m.set("flow_l", 12.3).unwrap();
        m.set("volume_m3", 104.0567).unwrap();
        let got = decoded(&m);
        assert_eq!(got["flow_l"], 12.3);
        assert_eq!(got["volume_m3"], 104.0567);
        let e = m.set("power_w", 1.0).unwrap_err();
        assert!(e.contains("no register \"power_w\""), "{e}");
        // A backwards-wired meter's negative interval fits its i32 register...
        m.set("flow_l", -1.5).unwrap();
        assert_eq!(decoded(&m)["flow_l"], -1.5);
        // ...a value beyond it does not, and leaves the register as it was.
        let e = m.set("flow_l", 1e12).unwrap_err();
        assert!(e.contains("flow_l"), "{e}");
        assert_eq!(
            decoded(&m)["flow_l"],
            -1.5,
            "a refused value leaves the register"
        );
    }

    #[test]
    fn counters_only_go_up_and_gauges_move() {
        let p = ProfileLibrary::built_in().get("eastron-sdm120").unwrap();
        let mut m = MeterModel::new(p, 1);
        let before = m.reading(None);
        m.step(600_000);
        let after = m.reading(None);
        assert!(after["import_energy_kwh"] > before["import_energy_kwh"]);
        assert_ne!(after["voltage_v"], before["voltage_v"]);
    }
}
