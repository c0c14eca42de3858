//! Downlink commands: `…/cmd/{device}` in, `…/cmd-ack/{device}` out.
//!
//! A command is a small JSON object naming an action. What an action writes
//! is data in the device's profile (`[[commands]]`: a coil or holding
//! register, per socket or for the device, and the value), so switching a
//! socket off on another pile model needs a profile, not code. Every
//! command gets exactly one ack, with the result or a clear error: an
//! unknown device, a payload that is not a command, an action the device's
//! profile does not define, a socket the device does not have, a device
//! that did not answer.
//!
//! ```json
//! {"id": "c-17", "action": "socket_off", "socket": 3}
//! {"schema": 1, "ts": 1764000000000, "device": "pile-1", "id": "c-17", "ok": true,
//!  "result": "socket 3 switched off"}
//! {"schema": 1, "ts": 1764000000000, "device": "ghost", "id": "c-18", "ok": false,
//!  "error": "no device \"ghost\" on gateway gw-yard-a"}
//! ```
//!
//! CJ/T 188 meters take `valve_open` and `valve_close`
//! ([`crate::devices::cjt188::valve`]), sent on the meter's serial line
//! between polls.
//!
//! Parsing and the ack are pure ([`parse`], [`Ack`]); [`Commands::execute`]
//! does the Modbus write or the meter exchange.

use crate::bus::cjt188::Cjt188Line;
use crate::bus::modbus_rtu::RtuBus;
use crate::bus::modbus_tcp::ModbusTcpBus;
use crate::config::{GatewayConfig, Transport};
use crate::devices::cjt188::valve;
use crate::profile::{Function, Profile};
use crate::toml_file::list;
use gridwatch_telemetry::{Timestamp, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use gridwatch_telemetry::topic::CONFIG_DEVICE;

/// A command as sent by an operator or analytics.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The sender's id for the command, echoed in the ack.
    #[serde(default)]
    pub id: Option<String>,
    /// What to do: an action of the device's profile (`socket_off`).
    pub action: String,
    /// The socket (from 1), for per-socket actions.
    pub socket: Option<u16>,
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Payload schema version.
    pub schema: u32,
    /// When the gateway answered.
    pub ts: Timestamp,
    /// The device the command was for.
    pub device: String,
    /// The command's id, if it had one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// Whether it was carried out.
    pub ok: bool,
    /// What was done, when `ok`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<String>,
    /// Why not, when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

impl Ack {
    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Reads a command payload; the error says what is wrong in words.
pub fn parse(payload: &[u8]) -> Result<Command, String> {
    let c: Command = serde_json::from_slice(payload).map_err(|e| {
        format!("not a command ({e}); expected {{\"action\": \"socket_off\", \"socket\": n}}")
    })?;
    Ok(c)
}

/// The id of a payload that failed to parse, if it has one (for the ack).
fn loose_id(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

/// How a command reaches a device.
#[derive(Debug, Clone)]
enum Link {
    /// A fresh Modbus TCP connection: host, port, unit, timeout.
    Tcp(String, u16, u8, Duration),
    /// Through the task of a running RS-485 bus: bus id, unit.
    Rtu(String, u8),
    /// A DL/T 645 meter: its built-in description offers no commands (relay
    /// control needs the meter's password), so nothing is ever written.
    None,
    /// A CJ/T 188 meter on the line of its serial port: valve commands.
    Cjt188 {
        port: PathBuf,
        meter_type: gridwatch_cjt188::MeterType,
        address: gridwatch_cjt188::Address,
        preamble: usize,
        timeout: Duration,
    },
}

/// The running CJ/T 188 lines, by port (their pollers' lines: a command
/// waits its turn between polls).
#[derive(Clone, Default)]
struct Cjt188Lines(HashMap<PathBuf, Arc<Cjt188Line>>);

impl std::fmt::Debug for Cjt188Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// How to reach each device that can take commands.
#[derive(Debug, Clone)]
struct Target {
    bus: Link,
    profile: Arc<Profile>,
}

/// Executes commands for the devices of one gateway.
#[derive(Debug, Clone)]
pub struct Commands {
    gateway: String,
    targets: BTreeMap<String, Target>,
    rtu: BTreeMap<String, RtuBus>,
    cjt188: Cjt188Lines,
    /// Sequence numbers of CJ/T 188 commands (the meter echoes them).
    ser: Arc<AtomicU8>,
}

impl Commands {
    /// The devices of `config`.
    pub fn new(config: &GatewayConfig) -> Self {
        let targets = config
            .devices
            .iter()
            .map(|d| {
                let bus = match &d.transport {
                    Transport::ModbusTcp {
                        host,
                        port,
                        unit_id,
                    } => Link::Tcp(host.clone(), *port, *unit_id, d.timeout()),
                    Transport::ModbusRtu { bus, unit_id } => Link::Rtu(bus.clone(), *unit_id),
                    Transport::Dlt645 { .. } => Link::None,
                    Transport::Cjt188 {
                        serial_port,
                        meter_type,
                        address,
                        preamble,
                        ..
                    } => Link::Cjt188 {
                        port: serial_port.clone(),
                        meter_type: *meter_type,
                        address: *address,
                        preamble: usize::from(*preamble),
                        timeout: d.timeout(),
                    },
                };
                (
                    d.id.as_str().to_owned(),
                    Target {
                        bus,
                        profile: d.profile.clone(),
                    },
                )
            })
            .collect();
        Self {
            gateway: config.gateway.id.as_str().to_owned(),
            targets,
            rtu: BTreeMap::new(),
            cjt188: Cjt188Lines::default(),
            ser: Arc::new(AtomicU8::new(0)),
        }
    }

    /// Lets valve commands reach CJ/T 188 meters through the `lines` their
    /// pollers use, by serial port.
    pub fn with_cjt188_lines(mut self, lines: &HashMap<PathBuf, Arc<Cjt188Line>>) -> Self {
        self.cjt188 = Cjt188Lines(lines.clone());
        self
    }

    /// Lets commands reach RTU devices through their running `buses`.
    pub fn with_rtu_buses(mut self, buses: &BTreeMap<String, RtuBus>) -> Self {
        self.rtu = buses.clone();
        self
    }

    /// Carries out `payload` for `device` and says how it went.
    pub async fn execute(&self, device: &str, payload: &[u8], now: Timestamp) -> Ack {
        let mut ack = Ack {
            schema: SCHEMA_VERSION,
            ts: now,
            device: device.to_owned(),
            id: None,
            ok: false,
            result: None,
            error: None,
        };
        if device == CONFIG_DEVICE {
            // A signed config reaches here only when [remote] is off.
            ack.error = Some(format!(
                "gateway {} takes no remote configs: its config has no [remote] table",
                self.gateway
            ));
            return ack;
        }
        let command = match parse(payload) {
            Ok(c) => c,
            Err(e) => {
                ack.id = loose_id(payload);
                ack.error = Some(e);
                return ack;
            }
        };
        ack.id = command.id.clone();
        match self.switch(device, &command).await {
            Ok(done) => {
                ack.ok = true;
                ack.result = Some(done);
            }
            Err(e) => ack.error = Some(e),
        }
        ack
    }

    async fn switch(&self, device: &str, command: &Command) -> Result<String, String> {
        let target = self
            .targets
            .get(device)
            .ok_or_else(|| format!("no device {device:?} on gateway {}", self.gateway))?;
        let profile = &target.profile;
        let action = command.action.as_str();
        if let Link::Cjt188 { .. } = &target.bus {
            return self.cjt188(device, &target.bus, command).await;
        }
        let Some(point) = profile.command(action) else {
            return Err(if profile.commands.is_empty() {
                format!(
                    "{action:?} is not a command {device} ({}) takes: its profile defines none",
                    profile.model
                )
            } else {
                format!(
                    "{action:?} is not a command {device} ({}) takes; it takes {}",
                    profile.model,
                    list(profile.commands.iter().map(|c| &c.action))
                )
            });
        };
        let socket = match (point.socket_stride, command.socket) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(format!(
                    "{action} acts on the whole device; leave out \"socket\""
                ))
            }
            (Some(_), None) => {
                return Err(format!("{action} needs \"socket\": n (from 1)"));
            }
            (Some(_), Some(n)) => {
                let sockets = profile.channel.as_ref().map_or(0, |c| c.max_count());
                if n == 0 || n > sockets {
                    return Err(format!(
                        "{device} has sockets 1 to {sockets}; there is no socket {n}"
                    ));
                }
                Some(n)
            }
        };
        let address = point.address_for(socket);
        let coil = matches!(point.function, Function::Coils);
        let (written, at) = match &target.bus {
            Link::None | Link::Cjt188 { .. } => {
                return Err(format!("{device} takes no commands over its protocol"))
            }
            Link::Tcp(host, port, unit, timeout) => {
                let mut bus = ModbusTcpBus::new(host.clone(), *port, *unit, *timeout);
                let written = if coil {
                    bus.write_coil(address, point.value != 0).await
                } else {
                    bus.write_register(address, point.value).await
                };
                (written, format!("at {}", bus.address()))
            }
            Link::Rtu(bus, unit) => {
                let client = self
                    .rtu
                    .get(bus)
                    .ok_or_else(|| format!("{device}'s bus {bus} is not running"))?
                    .client(*unit);
                let written = if coil {
                    client.write_coil(address, point.value != 0).await
                } else {
                    client.write_register(address, point.value).await
                };
                (written, format!("({})", client.address()))
            }
        };
        let what = match socket {
            Some(n) => format!("socket {n}"),
            None => device.to_owned(),
        };
        written.map_err(|e| format!("{device} {at} did not carry out {action} on {what}: {e}"))?;
        Ok(match &point.result {
            Some(done) => format!("{what} {done}"),
            None => format!(
                "{action} done on {what} ({} {address} set to {})",
                point.function, point.value
            ),
        })
    }

    /// A valve command to the CJ/T 188 meter `device` reached by `link`.
    async fn cjt188(&self, device: &str, link: &Link, command: &Command) -> Result<String, String> {
        let Link::Cjt188 {
            port,
            meter_type,
            address,
            preamble,
            timeout,
        } = link
        else {
            return Err(format!("{device} is not a CJ/T 188 meter"));
        };
        let action = command.action.as_str();
        let Some(asked) = valve::command(action) else {
            return Err(format!(
                "{action:?} is not a command {device} (CJ/T 188 meter {address}) takes; it takes {}",
                list(valve::ACTIONS)
            ));
        };
        if command.socket.is_some() {
            return Err(format!(
                "{action} acts on the whole meter; leave out \"socket\""
            ));
        }
        let line =
            self.cjt188.0.get(port).ok_or_else(|| {
                format!("{device}'s serial line {} is not running", port.display())
            })?;
        let ser = self.ser.fetch_add(1, Ordering::Relaxed);
        valve::set_valve(line, *meter_type, *address, *preamble, *timeout, ser, asked)
            .await
            .map(|done| format!("{device} (meter {address}): {done}"))
            .map_err(|why| {
                format!(
                    "{device} (meter {address} on {}) did not carry out {action}: {why}",
                    port.display()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_command_parses() {
        let c = parse(br#"{"id":"c-1","action":"socket_off","socket":3}"#).unwrap();
        assert_eq!(
            c,
            Command {
                id: Some("c-1".into()),
                action: "socket_off".into(),
                socket: Some(3)
            }
        );
    }

    #[test]
    fn bad_payloads_are_refused_in_words() {
        assert!(parse(b"off").unwrap_err().contains("not a command"));
        assert!(parse(br#"{"action":7}"#)
            .unwrap_err()
            .contains("invalid type"));
        assert!(parse(br#"{"action":"socket_on","sokcet":1}"#)
            .unwrap_err()
            .contains("unknown field"));
        assert_eq!(loose_id(br#"{"id":"x","action":"?"}"#), Some("x".into()));
    }

    #[tokio::test]
    async fn cjt188_meters_take_valve_commands_only() {
        let config = GatewayConfig::from_toml_str(
            r#"
[gateway]
id = "gw-1"
site = "s"
[mqtt]
host = "127.0.0.1"
[[devices]]
id = "wm-1"
protocol = "cjt188"
serial_port = "/dev/ttyUSB7"
meter_type = "cold_water"
meter_address = "00000000000001"
"#,
            "test",
        )
        .unwrap();
        let c = Commands::new(&config);
        let error = |payload: &'static [u8]| {
            let c = c.clone();
            async move {
                c.execute("wm-1", payload, Timestamp(5))
                    .await
                    .error
                    .unwrap()
            }
        };
        let e = error(br#"{"action":"socket_off"}"#).await;
        assert!(e.contains("valve_open, valve_close"), "{e}");
        let e = error(br#"{"action":"valve_close","socket":1}"#).await;
        assert!(e.contains("leave out \"socket\""), "{e}");
        // Without the daemon's lines the command cannot go out.
        let e = error(br#"{"action":"valve_close"}"#).await;
        assert!(e.contains("/dev/ttyUSB7 is not running"), "{e}");
    }

    #[tokio::test]
    async fn unknown_devices_and_missing_sockets_get_error_acks() {
        let config = GatewayConfig::from_toml_str(
            r#"
[gateway]
id = "gw-1"
site = "s"
[mqtt]
host = "127.0.0.1"
[[devices]]
id = "pile-1"
profile = "gridwatch-ebp12"
protocol = "modbus_tcp"
host = "127.0.0.1"
"#,
            "test",
        )
        .unwrap();
        let c = Commands::new(&config);
        let ack = c
            .execute(
                "ghost",
                br#"{"id":"a","action":"socket_off","socket":1}"#,
                Timestamp(5),
            )
            .await;
        assert!(!ack.ok);
        assert_eq!(ack.id.as_deref(), Some("a"));
        assert!(ack.error.unwrap().contains("no device \"ghost\""));
        let ack = c
            .execute(
                "pile-1",
                br#"{"action":"socket_on","socket":13}"#,
                Timestamp(5),
            )
            .await;
        assert!(ack.error.unwrap().contains("there is no socket 13"));
        let ack = c
            .execute("pile-1", br#"{"action":"socket_on"}"#, Timestamp(5))
            .await;
        assert!(ack.error.unwrap().contains("needs \"socket\""));
        let ack = c.execute("_config", b"{}", Timestamp(5)).await;
        assert!(ack
            .error
            .unwrap()
            .contains("takes no remote configs: its config has no [remote]"));
        let ack = c
            .execute("pile-1", br#"{"action":"explode"}"#, Timestamp(5))
            .await;
        let e = ack.error.unwrap();
        assert!(
            e.contains("not a command") && e.contains("socket_off, socket_on"),
            "names the actions the profile defines: {e}"
        );
    }
}
