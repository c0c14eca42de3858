//! Edge rules: which sightings fire which outputs.

use serde::Deserialize;

use super::gpio::{self, Pin};
use super::output::{HeldOutput, OutputConfig};
use super::EdgeError;

/// One rule: a sighting at any of `when_sighted_at` (location kinds such as
/// `lift_lobby`, `lift_car`, `stairwell`) fires every output in `fire`.
/// Tags are issued to e-bikes, so any sighting is an e-bike's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Name in `rule_fired` events and logs; `rule-1`, `rule-2`, … by
    /// position when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Location kinds that trigger the rule.
    pub when_sighted_at: Vec<String>,
    /// Output names to fire.
    pub fire: Vec<String>,
}

/// The edge section of a gateway: its outputs and rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Outputs on the Pi's header.
    pub outputs: Vec<OutputConfig>,
    /// Rules over sightings.
    pub rules: Vec<RuleConfig>,
}

/// The running edge: outputs and the rules that fire them.
#[derive(Debug)]
pub struct Edge<P = Pin> {
    outputs: Vec<HeldOutput<P>>,
    rules: Vec<Rule>,
}

/// A checked rule: its name, location kinds, and the outputs it fires.
#[derive(Debug)]
struct Rule {
    name: String,
    at: Vec<String>,
    fire: Vec<usize>,
    /// `buzzer, lift-relay`, for the `rule_fired` event.
    outputs: String,
}

impl Edge<Pin> {
    /// Opens every output's pin (see [`gpio::open`]) and checks the rules.
    pub fn build(config: &EdgeConfig) -> Result<Self, EdgeError> {
        Self::build_with(config, gpio::open)
    }
}

impl<P> Edge<P>
where
    P: embedded_hal::digital::OutputPin,
    P::Error: core::fmt::Debug,
{
    /// Like [`Edge::build`] with pins from `open` (tests pass mocks).
    pub fn build_with(
        config: &EdgeConfig,
        mut open: impl FnMut(&OutputConfig) -> Result<P, EdgeError>,
    ) -> Result<Self, EdgeError> {
        let mut outputs: Vec<HeldOutput<P>> = Vec::new();
        for c in &config.outputs {
            if outputs.iter().any(|o| o.name() == c.name) {
                return Err(EdgeError::DuplicateOutput(c.name.clone()));
            }
            let pin = open(c)?;
            outputs.push(HeldOutput::new(c.clone(), pin).map_err(|e| switch_error(&c.name, e))?);
        }
        let mut rules = Vec::new();
        for (i, r) in config.rules.iter().enumerate() {
            let fire = r
                .fire
                .iter()
                .map(|name| {
                    outputs
                        .iter()
                        .position(|o| o.name() == name)
                        .ok_or_else(|| EdgeError::UnknownOutput {
                            rule: i,
                            output: name.clone(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                name: r.name.clone().unwrap_or_else(|| format!("rule-{}", i + 1)),
                at: r.when_sighted_at.clone(),
                fire,
                outputs: r.fire.join(", "),
            });
        }
        Ok(Self { outputs, rules })
    }

    /// A sighting at a location of kind `location` at `now_ms`: fires the
    /// outputs of every matching rule. Returns each fired rule's name and
    /// the outputs it switched (`buzzer, lift-relay`), for events and logs.
    pub fn on_sighting(
        &mut self,
        location: &str,
        now_ms: u64,
    ) -> Result<Vec<(String, String)>, EdgeError> {
        let mut fired = Vec::new();
        for rule in &self.rules {
            if rule.at.iter().any(|l| l == location) {
                for &i in &rule.fire {
                    let out = &mut self.outputs[i];
                    out.fire(now_ms).map_err(|e| switch_error(out.name(), e))?;
                }
                fired.push((rule.name.clone(), rule.outputs.clone()));
            }
        }
        Ok(fired)
    }

    /// Whether any rule is configured (no rules: no edge task is needed).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Releases every output whose hold has run out at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), EdgeError> {
        for out in &mut self.outputs {
            out.tick(now_ms).map_err(|e| switch_error(out.name(), e))?;
        }
        Ok(())
    }

    /// Whether output `name` is on (false for an unknown name).
    pub fn is_on(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| o.name() == name && o.is_on())
    }
}

fn switch_error(name: &str, e: impl core::fmt::Debug) -> EdgeError {
    EdgeError::Switch {
        name: name.to_owned(),
        reason: format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction};

    const CONFIG: &str = r#"
        [[outputs]]
        name = "buzzer"
        gpio_bcm = 17
        hold_ms = 10000

        [[outputs]]
        name = "lift-relay"
        gpio_bcm = 27
        active_low = true
        hold_ms = 120000

        [[rules]]
        when_sighted_at = ["lift_lobby", "lift_car"]
        fire = ["buzzer", "lift-relay"]
    "#;

    #[test]
    fn a_lobby_sighting_sounds_the_buzzer_and_holds_the_lift() {
        let config: EdgeConfig = toml::from_str(CONFIG).expect("parses");
        let mut pins = vec![
            Mock::new(&[
                Transaction::set(State::Low),
                Transaction::set(State::High),
                Transaction::set(State::Low),
            ]),
            Mock::new(&[
                Transaction::set(State::High),
                Transaction::set(State::Low),
                Transaction::set(State::High),
            ]),
        ];
        let handles = pins.clone();
        let mut edge = Edge::build_with(&config, |_| Ok(pins.remove(0))).expect("valid");
        let fired = edge.on_sighting("gate", 0).expect("switches");
        assert!(
            !edge.is_on("buzzer") && fired.is_empty(),
            "a sighting at the gate fires nothing"
        );
        let fired = edge.on_sighting("lift_lobby", 1_000).expect("switches");
        assert_eq!(
            fired,
            vec![("rule-1".to_owned(), "buzzer, lift-relay".to_owned())]
        );
        assert!(edge.is_on("buzzer") && edge.is_on("lift-relay"));
        edge.tick(11_000).expect("switches");
        assert!(!edge.is_on("buzzer") && edge.is_on("lift-relay"));
        edge.tick(121_000).expect("switches");
        assert!(!edge.is_on("lift-relay"));
        for mut pin in handles {
            pin.done();
        }
    }

    #[test]
    fn rules_must_name_configured_outputs() {
        let config: EdgeConfig =
            toml::from_str(&CONFIG.replace("\"buzzer\", \"lift-relay\"]", "\"siren\"]"))
                .expect("parses");
        let err = Edge::build(&config).expect_err("siren is not configured");
        assert!(
            matches!(err, EdgeError::UnknownOutput { rule: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn without_gpio_the_outputs_log_and_still_follow_the_rules() {
        let config: EdgeConfig = toml::from_str(CONFIG).expect("parses");
        let mut edge = Edge::build(&config).expect("valid");
        edge.on_sighting("lift_car", 0).expect("logs");
        assert!(edge.is_on("lift-relay"));
        edge.tick(120_000).expect("logs");
        assert!(!edge.is_on("lift-relay"));
    }
}
