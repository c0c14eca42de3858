//! Reaching configured devices from the one-off commands (`selftest`,
//! `watch`): the same drivers and buses as `run`, without its schedule,
//! outbox or uplink. Devices that share a wire share it here too (one task
//! per RS-485 line, one line per serial port, one connection per host:port),
//! so asking two meters on one line never opens the port twice. Reads only.

use crate::bus::cjt188::Cjt188Line;
use crate::bus::dlt645::Dlt645Line;
use crate::bus::modbus_rtu::{self, RtuBus};
use crate::bus::modbus_tcp::{ModbusTcpBus, TcpLinks};
use crate::config::{DeviceConfig, GatewayConfig, Transport};
use crate::devices::cjt188::Cjt188Device;
use crate::devices::dlt645::Dlt645Device;
use crate::devices::modbus::{ModbusDevice, ModbusRtuDevice, ModbusTcpDevice};
use crate::devices::{Device, PollOutcome};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A configured device opened for polling, whatever its protocol.
pub(crate) enum Reached {
    ModbusTcp(ModbusTcpDevice),
    ModbusRtu(ModbusRtuDevice),
    Dlt645(Dlt645Device),
    Cjt188(Cjt188Device),
}

impl Reached {
    /// Polls every value of the device once.
    pub(crate) async fn poll(&mut self) -> PollOutcome {
        match self {
            Reached::ModbusTcp(d) => d.poll().await,
            Reached::ModbusRtu(d) => d.poll().await,
            Reached::Dlt645(d) => d.poll().await,
            Reached::Cjt188(d) => d.poll().await,
        }
    }

    /// Releases its connection.
    pub(crate) async fn close(&mut self) {
        match self {
            Reached::ModbusTcp(d) => d.close().await,
            Reached::ModbusRtu(d) => d.close().await,
            Reached::Dlt645(d) => d.close().await,
            Reached::Cjt188(d) => d.close().await,
        }
    }
}

/// The wires opened so far; dropping `stop`'s token ends the RS-485 tasks.
pub(crate) struct Wires<'c> {
    config: &'c GatewayConfig,
    links: TcpLinks,
    buses: HashMap<String, RtuBus>,
    dlt645: HashMap<PathBuf, Arc<Dlt645Line>>,
    cjt188: HashMap<PathBuf, Arc<Cjt188Line>>,
    stop: CancellationToken,
}

impl<'c> Wires<'c> {
    /// Nothing opened yet; RS-485 line tasks end when `stop` is cancelled.
    pub(crate) fn new(config: &'c GatewayConfig, stop: CancellationToken) -> Self {
        Wires {
            config,
            links: TcpLinks::default(),
            buses: HashMap::new(),
            dlt645: HashMap::new(),
            cjt188: HashMap::new(),
            stop,
        }
    }

    /// Opens `d` with request timeouts of at most `limit`. Fails only for a
    /// bus the config does not name (validation rules that out).
    pub(crate) fn open(&mut self, d: &DeviceConfig, limit: Duration) -> Result<Reached, String> {
        Ok(match &d.transport {
            Transport::ModbusTcp {
                host,
                port,
                unit_id,
            } => {
                let logic = ModbusDevice::new(d.profile.clone(), d.max_gap_registers);
                let bus = ModbusTcpBus::on(
                    self.links.get(host, *port),
                    host.clone(),
                    *port,
                    *unit_id,
                    d.timeout().min(limit),
                );
                Reached::ModbusTcp(ModbusTcpDevice::new(logic, bus, *unit_id))
            }
            Transport::ModbusRtu { bus, unit_id } => {
                let line =
                    match self.buses.get(bus) {
                        Some(line) => line,
                        None => {
                            let b = self.config.buses.iter().find(|b| b.id == *bus).ok_or_else(
                                || format!("names bus {bus}, which is not configured"),
                            )?;
                            self.buses
                                .entry(bus.clone())
                                .or_insert(modbus_rtu::spawn(b, self.stop.clone()))
                        }
                    };
                let logic = ModbusDevice::new(d.profile.clone(), d.max_gap_registers);
                let client = line.client(*unit_id).offline_after_failures(1);
                Reached::ModbusRtu(ModbusRtuDevice::new(logic, client))
            }
            Transport::Dlt645 {
                serial_port,
                baud,
                address,
                phases,
                wake_up,
            } => {
                let line = self
                    .dlt645
                    .entry(serial_port.clone())
                    .or_insert_with(|| Arc::new(Dlt645Line::new(serial_port.clone(), *baud)))
                    .clone();
                Reached::Dlt645(Dlt645Device::new(
                    line,
                    *address,
                    *phases,
                    usize::from(*wake_up),
                    d.timeout().min(limit),
                ))
            }
            Transport::Cjt188 {
                serial_port,
                baud,
                meter_type,
                address,
                preamble,
                register_max_milli,
            } => {
                let line = self
                    .cjt188
                    .entry(serial_port.clone())
                    .or_insert_with(|| Arc::new(Cjt188Line::new(serial_port.clone(), *baud)))
                    .clone();
                Reached::Cjt188(Cjt188Device::new(
                    line,
                    *meter_type,
                    *address,
                    usize::from(*preamble),
                    d.timeout().min(limit),
                    register_max_milli.map(|m| m as f64 / 1000.0),
                ))
            }
        })
    }
}

impl Drop for Wires<'_> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
