//! The scenario file (TOML): simulators, a timeline and the alerts
//! expected. docs/scenarios.md describes every key for engineers.

use crate::pile::command;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// One test scenario as written in its file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, printed with the result.
    pub name: String,
    /// What the scenario shows, for people reading the folder.
    #[serde(default)]
    pub description: String,
    /// Simulated seconds per wall-clock second, for the simulators, the
    /// gateway's clock and analytics alike.
    #[serde(default = "default_speed")]
    pub speed: f64,
    /// Simulated seconds the scenario runs; default: the last expectation's
    /// deadline or the last timeline step, whichever is later.
    pub duration_s: Option<f64>,
    /// Site id of the generated gateway (first level of alert entities).
    #[serde(default = "default_site")]
    pub site: String,
    /// Gateway id (second level of alert entities).
    #[serde(default = "default_gateway")]
    pub gateway: String,
    /// How often the gateway polls each device, in wall-clock ms.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Extra analytics configuration (TOML text appended to the generated
    /// config), e.g. a `[detect.socket_session]` threshold.
    #[serde(default)]
    pub analytics: String,
    /// What an alert no expectation names does: `fail` (the default) or
    /// `ignore`.
    #[serde(default)]
    pub other_alerts: OtherAlerts,
    /// The simulated devices.
    pub simulators: Vec<Simulator>,
    /// Commands sent to simulators at given times.
    #[serde(default)]
    pub timeline: Vec<Step>,
    /// Alerts that must be seen.
    #[serde(default)]
    pub expect: Vec<Expect>,
}

fn default_speed() -> f64 {
    30.0
}
fn default_site() -> String {
    "yard-a".into()
}
fn default_gateway() -> String {
    "gw-a".into()
}
fn default_poll() -> u64 {
    500
}
fn default_sockets() -> u16 {
    4
}
fn default_one() -> u8 {
    1
}
fn default_seed() -> u64 {
    1
}
fn default_charger() -> String {
    "lithium".into()
}

/// What to do with an alert that no expectation names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherAlerts {
    /// The scenario fails and the alert is listed.
    #[default]
    Fail,
    /// The alert is listed but does not fail the scenario.
    Ignore,
}

/// How a simulator is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimKind {
    /// `gridwatch-sim pile`: a charging pile on Modbus TCP.
    Pile,
    /// `gridwatch-sim rtu`: a charging pile as a Modbus RTU unit on a pty.
    Rtu,
}

/// One simulated device, run as its own `gridwatch-sim` process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulator {
    /// Device id in the gateway config (third level of alert entities).
    pub id: String,
    /// `pile` or `rtu`.
    pub kind: SimKind,
    /// Sockets on the pile.
    #[serde(default = "default_sockets")]
    pub sockets: u16,
    /// Sockets with a charger plugged in at start.
    #[serde(default)]
    pub charging: Vec<u16>,
    /// The kind of those chargers.
    #[serde(default = "default_charger")]
    pub charger: String,
    /// Faults from the start, as `--fault` takes them
    /// (`overcurrent,socket=2,at=30s,for=60s`; simulated time from the
    /// simulator's start).
    #[serde(default)]
    pub faults: Vec<String>,
    /// Modbus unit id.
    #[serde(default = "default_one")]
    pub unit: u8,
    /// Seed of the measurement noise.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// A command sent to a simulator's control endpoint at a given time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Simulated seconds from the scenario's start.
    pub at_s: f64,
    /// The simulator's id.
    pub simulator: String,
    /// The command, as typed on the simulator's stdin.
    pub command: String,
}

/// An alert that must be raised in a window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The rule, e.g. `socket_overcurrent`.
    pub rule: String,
    /// The simulator (device) it concerns.
    pub device: String,
    /// The socket, for socket rules; left out for pile-wide rules.
    pub socket: Option<u16>,
    /// Start of the window, simulated seconds from the scenario's start.
    #[serde(default)]
    pub after_s: f64,
    /// Length of the window in simulated seconds.
    pub within_s: f64,
}

impl Expect {
    /// Last moment the alert may arrive.
    pub fn deadline_s(&self) -> f64 {
        self.after_s + self.within_s
    }
}

impl Scenario {
    /// Reads and checks a scenario file; errors name the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and checks scenario text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.check()?;
        Ok(s)
    }

    /// Entity of an alert on `device` (and `socket`), as analytics names it.
    pub fn entity(&self, device: &str, socket: Option<u16>) -> String {
        match socket {
            Some(s) => format!("{}/{}/{device}#{s}", self.site, self.gateway),
            None => format!("{}/{}/{device}", self.site, self.gateway),
        }
    }

    /// The analytics config: the yard's (site → grid cell, defaults) with
    /// the scenario's `analytics` text appended.
    pub fn analytics_toml(&self, broker: std::net::SocketAddr) -> String {
        let mut yard = crate::yard::YardOptions::new(broker);
        yard.site = self.site.clone();
        yard.gateway = self.gateway.clone();
        yard.cell = "cell-scenario".into();
        format!("{}\n{}\n", yard.analytics_toml(), self.analytics)
    }

    /// Simulated seconds the scenario runs.
    pub fn duration(&self) -> f64 {
        self.duration_s.unwrap_or_else(|| {
            let last_expect = self.expect.iter().map(Expect::deadline_s);
            let last_step = self.timeline.iter().map(|s| s.at_s);
            last_expect.chain(last_step).fold(1.0, f64::max)
        })
    }

    fn check(&self) -> Result<(), String> {
        let seconds = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{key} = {v}: must be a number of seconds ≥ 0"))
            }
        };
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 100_000.0) {
            return Err(format!(
                "speed = {}: must be above 0 (at most 100000)",
                self.speed
            ));
        }
        if let Some(d) = self.duration_s {
            seconds("duration_s", d)?;
        }
        if !(50..=60_000).contains(&self.poll_interval_ms) {
            return Err(format!(
                "poll_interval_ms = {}: must be 50 to 60000",
                self.poll_interval_ms
            ));
        }
        // The whole analytics config, checked now rather than at run time.
        let probe = std::net::SocketAddr::from(([127, 0, 0, 1], 1883));
        gridwatch_analytics::AnalyticsConfig::from_toml_str(
            &self.analytics_toml(probe),
            "analytics",
        )
        .map_err(|e| format!("analytics (with the generated config before it): {e:#}"))?;
        if self.simulators.is_empty() {
            return Err("no [[simulators]]: a scenario needs at least one".into());
        }
        let mut ids = BTreeSet::new();
        for (i, sim) in self.simulators.iter().enumerate() {
            let at = format!("simulators[{i}] ({})", sim.id);
            let id_ok = !sim.id.is_empty()
                && sim
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(format!("{at}: id must be letters, digits, - or _"));
            }
            if !ids.insert(sim.id.as_str()) {
                return Err(format!("{at}: id {:?} is used twice", sim.id));
            }
            if !(1..=64).contains(&sim.sockets) {
                return Err(format!("{at}: sockets = {} must be 1 to 64", sim.sockets));
            }
            if !(1..=247).contains(&sim.unit) {
                return Err(format!("{at}: unit = {} must be 1 to 247", sim.unit));
            }
            if let Some(s) = sim.charging.iter().find(|s| **s == 0 || **s > sim.sockets) {
                return Err(format!(
                    "{at}: charging socket {s} is not on a {}-socket pile",
                    sim.sockets
                ));
            }
            command::parse_charger(&sim.charger).map_err(|e| format!("{at}: charger: {e}"))?;
            for f in &sim.faults {
                command::parse(&format!("fault {f}"))
                    .map_err(|e| format!("{at}: faults {f:?}: {e}"))?;
            }
        }
        for (i, step) in self.timeline.iter().enumerate() {
            let at = format!("timeline[{i}]");
            seconds(&format!("{at}: at_s"), step.at_s)?;
            if !ids.contains(step.simulator.as_str()) {
                return Err(format!(
                    "{at}: simulator {:?} is not one of {ids:?}",
                    step.simulator
                ));
            }
            command::parse(&step.command).map_err(|e| format!("{at}: command: {e}"))?;
        }
        for (i, e) in self.expect.iter().enumerate() {
            let at = format!("expect[{i}] ({})", e.rule);
            if e.rule.trim().is_empty() {
                return Err(format!("{at}: rule is empty"));
            }
            seconds(&format!("{at}: after_s"), e.after_s)?;
            seconds(&format!("{at}: within_s"), e.within_s)?;
            if !ids.contains(e.device.as_str()) {
                return Err(format!(
                    "{at}: device {:?} is not one of the simulators {ids:?}",
                    e.device
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "overcurrent"
speed = 60
[[simulators]]
id = "p1"
kind = "pile"
charging = [2]
[[timeline]]
at_s = 30
simulator = "p1"
command = "fault overcurrent socket=2"
[[expect]]
rule = "socket_overcurrent"
device = "p1"
socket = 2
after_s = 30
within_s = 60
"#;

    #[test]
    fn a_scenario_reads_with_its_defaults() {
        let s = Scenario::parse(GOOD).unwrap();
        assert_eq!(s.entity("p1", Some(2)), "yard-a/gw-a/p1#2");
        assert_eq!(s.duration(), 90.0);
        assert_eq!(s.other_alerts, OtherAlerts::Fail);
        assert_eq!(s.simulators[0].sockets, 4);
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let cases = [
            (
                GOOD.replace("speed = 60", "sped = 60"),
                "unknown field `sped`",
            ),
            (
                GOOD.replace("\"fault overcurrent", "\"fault overcurent"),
                "did you mean \"overcurrent\"",
            ),
            (
                GOOD.replace("simulator = \"p1\"", "simulator = \"p9\""),
                "timeline[0]: simulator \"p9\"",
            ),
            (
                GOOD.replace("device = \"p1\"", "device = \"p2\""),
                "expect[0] (socket_overcurrent): device \"p2\"",
            ),
            (
                GOOD.replace("charging = [2]", "charging = [9]"),
                "charging socket 9",
            ),
            (
                GOOD.replace("kind = \"pile\"", "kind = \"pil\""),
                "unknown variant `pil`",
            ),
            (
                GOOD.replace("within_s = 60", "within_s = -1"),
                "within_s = -1",
            ),
            (
                GOOD.replace(
                    "speed = 60",
                    "speed = 60\nanalytics = \"[detect.socket_session]\\nmax_gap = 5\"",
                ),
                "unknown field `max_gap`",
            ),
        ];
        for (text, want) in cases {
            let e = Scenario::parse(&text).unwrap_err();
            assert!(e.contains(want), "{want:?} not in {e}");
        }
    }
}
