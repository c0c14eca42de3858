//! Modbus devices described by a profile.
//!
//! One poll reads the device-level registers first; when the profile's
//! channel count comes from a register (a pile's socket count), that value
//! decides which socket blocks the second round reads. Reads go through any
//! [`RegisterReader`], so the logic runs the same over TCP, a future RTU bus
//! or a test double.

pub mod decode;
pub mod encode;
pub mod flat;
pub mod plan;

#[cfg(test)]
mod tests;

use super::{Device, Measurement, PollOutcome};
use crate::bus::modbus_rtu::RtuClient;
use crate::bus::modbus_tcp::ModbusTcpBus;
use crate::bus::{BusError, ReadRequest, RegisterReader};
use crate::profile::Register;
use crate::profile::{ChannelCount, Profile};
use decode::{decode_block, decode_labels, DecodeError, RegisterImage};
use flat::{BlockKeys, FlatValues};
use std::collections::HashMap;
use std::sync::Arc;

/// The poll logic for one profile: plans once, reads, decodes.
#[derive(Debug, Clone)]
pub struct ModbusDevice {
    profile: Arc<Profile>,
    max_gap: u16,
    device_plan: Vec<ReadRequest>,
    channel_plans: HashMap<u16, Vec<ReadRequest>>,
    labels_logged: bool,
    /// The device-level registers and their JSON keys, for the flat path.
    registers: Arc<[Register]>,
    keys: Arc<BlockKeys>,
}

impl ModbusDevice {
    /// Poll logic for `profile`, bridging at most `max_gap` unused registers.
    pub fn new(profile: Arc<Profile>, max_gap: u16) -> Self {
        let device_plan = plan::device_requests(&profile, max_gap);
        let registers: Arc<[Register]> = profile.registers.clone().into();
        let keys = BlockKeys::new(&registers);
        Self {
            profile,
            max_gap,
            device_plan,
            channel_plans: HashMap::new(),
            labels_logged: false,
            registers,
            keys,
        }
    }

    /// The profile polled.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Polls every register once through `bus`.
    pub async fn poll<R: RegisterReader>(&mut self, bus: &mut R) -> PollOutcome {
        let mut image = RegisterImage::new();
        let mut errors = Vec::new();
        let mut measurements = Vec::new();

        if let Err(reason) = read_all(bus, &self.device_plan, &mut image, &mut errors).await {
            return PollOutcome::Unreachable(reason);
        }
        let profile = self.profile.clone();
        if profile.channel.is_none() {
            return self.flat_outcome(&image, errors);
        }
        let device_values = match decode_block(&profile.registers, &image, 0) {
            Ok(values) => Some(values),
            // A register map we do not know: decoding anything would be a guess.
            Err(e @ DecodeError::Unexpected { .. }) => {
                errors.push(e.to_string());
                return PollOutcome::Answered {
                    measurements,
                    errors,
                };
            }
            // Its request failed, which is already in `errors`.
            Err(DecodeError::Missing { .. }) => None,
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        };
        let device_ok = device_values.is_some();
        if device_ok && !self.labels_logged {
            // Serial numbers and firmware versions are text, not values:
            // said once, in the log, when the device first answers.
            self.labels_logged = true;
            for (name, text) in decode_labels(&profile.registers, &image, 0) {
                tracing::info!("{} reports {name} {text:?}", profile.model);
            }
        }
        // The device-level values are needed again only for a channel count.
        let device_map = match &profile.channel {
            Some(_) => device_values.clone().unwrap_or_default(),
            None => Default::default(),
        };
        if let Some(values) = device_values.filter(|v| !v.is_empty()) {
            measurements.push(Measurement {
                kind: profile.kind,
                socket: None,
                values,
                flat: None,
            });
        }

        let Some(ch) = &profile.channel else {
            return PollOutcome::Answered {
                measurements,
                errors,
            };
        };
        let has_checks = profile.registers.iter().any(|r| r.expect.is_some());
        if !device_ok && has_checks {
            // The map version could not be verified: do not guess at sockets.
            return PollOutcome::Answered {
                measurements,
                errors,
            };
        }
        let count = match &ch.count {
            ChannelCount::Fixed(n) => *n,
            ChannelCount::FromRegister { register, max } => {
                let Some(v) = device_map.get(register).copied() else {
                    // The count register was not read: already reported.
                    return PollOutcome::Answered {
                        measurements,
                        errors,
                    };
                };
                if v.fract() != 0.0 || v < 0.0 || v > f64::from(u16::MAX) {
                    errors.push(format!("{register} reads {v}, which is not a count"));
                    return PollOutcome::Answered {
                        measurements,
                        errors,
                    };
                }
                let n = v as u16;
                if n > *max {
                    errors.push(format!(
                        "{register} reads {n}, but profile {} covers at most {max} {}s; \
                         polling {} 1..={max}",
                        profile.model, ch.name, ch.name
                    ));
                }
                n.min(*max)
            }
        };

        let max_gap = self.max_gap;
        let plan = self
            .channel_plans
            .entry(count)
            .or_insert_with(|| plan::channel_requests(&profile, count, max_gap))
            .clone();
        if let Err(reason) = read_all(bus, &plan, &mut image, &mut errors).await {
            return PollOutcome::Unreachable(reason);
        }
        for n in 1..=count {
            match decode_block(&ch.registers, &image, ch.block_start(n)) {
                Ok(values) => measurements.push(Measurement {
                    kind: ch.kind,
                    socket: Some(n),
                    values,
                    flat: None,
                }),
                Err(DecodeError::Missing { .. }) => {}
                Err(e) => errors.push(format!("{} {n}: {e}", ch.name)),
            }
        }
        PollOutcome::Answered {
            measurements,
            errors,
        }
    }
}

impl ModbusDevice {
    /// A device without channels (a meter): its one block decoded without
    /// a map ([`flat`]), the gateway's hot path. Same outcomes as the map
    /// path: a check that fails decodes nothing, a missing block is
    /// already in `errors`.
    fn flat_outcome(&mut self, image: &RegisterImage, mut errors: Vec<String>) -> PollOutcome {
        let mut measurements = Vec::new();
        match FlatValues::decode(&self.keys, &self.registers, image, 0) {
            Ok(values) => {
                if !self.labels_logged {
                    self.labels_logged = true;
                    for (name, text) in decode_labels(&self.registers, image, 0) {
                        tracing::info!("{} reports {name} {text:?}", self.profile.model);
                    }
                }
                if !values.is_empty() {
                    measurements.push(Measurement {
                        kind: self.profile.kind,
                        socket: None,
                        values: Default::default(),
                        flat: Some(values),
                    });
                }
            }
            Err(DecodeError::Missing { .. }) => {}
            Err(e) => errors.push(e.to_string()),
        }
        PollOutcome::Answered {
            measurements,
            errors,
        }
    }
}

/// Executes `plan` into `image`. Exceptions are collected in `errors` and the
/// rest of the plan still runs; a device that does not answer ends the poll.
async fn read_all<R: RegisterReader>(
    bus: &mut R,
    plan: &[ReadRequest],
    image: &mut RegisterImage,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    for request in plan {
        match bus.read(*request).await {
            Ok(words) => image.insert(request, &words),
            Err(e @ BusError::Exception { .. }) => {
                errors.push(format!("reading {request} failed: {e}"));
            }
            Err(BusError::Unreachable(reason)) => return Err(reason),
        }
    }
    Ok(())
}

/// A profile-driven device on Modbus TCP.
#[derive(Debug)]
pub struct ModbusTcpDevice {
    logic: ModbusDevice,
    bus: ModbusTcpBus,
    unit_id: u8,
}

impl ModbusTcpDevice {
    /// Binds `logic` to a Modbus TCP connection.
    pub fn new(logic: ModbusDevice, bus: ModbusTcpBus, unit_id: u8) -> Self {
        Self {
            logic,
            bus,
            unit_id,
        }
    }
}

/// A profile-driven device on an RS-485 bus: the same poll logic, its
/// requests queued to the bus task that owns the serial port.
#[derive(Debug)]
pub struct ModbusRtuDevice {
    logic: ModbusDevice,
    client: RtuClient,
}

impl ModbusRtuDevice {
    /// Binds `logic` to a unit on a running bus.
    pub fn new(logic: ModbusDevice, client: RtuClient) -> Self {
        Self { logic, client }
    }
}

impl Device for ModbusRtuDevice {
    async fn poll(&mut self) -> PollOutcome {
        self.logic.poll(&mut self.client).await
    }

    fn address(&self) -> String {
        self.client.address()
    }

    async fn close(&mut self) {
        // The bus task owns the port and closes it when it stops.
    }
}

impl Device for ModbusTcpDevice {
    async fn poll(&mut self) -> PollOutcome {
        self.logic.poll(&mut self.bus).await
    }

    fn address(&self) -> String {
        format!("{} unit {}", self.bus.address(), self.unit_id)
    }

    async fn close(&mut self) {
        self.bus.close().await;
    }
}
