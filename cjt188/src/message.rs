//! What the frames say: the requests a master sends ([`Request`], written
//! by [`encode`]) and the answers a meter gives ([`Answer`], read by
//! [`Frame::answer`]), plus the meter's side ([`Frame::request`] and the
//! answer constructors) for simulators and tests.
//!
//! Data fields start with DI (2 bytes, DI0 first) and SER (echoed). The
//! metering data of `901FH` has one layout for water and gas meters and one
//! for heat meters:
//!
//! | water, gas (22 bytes) | heat (46 bytes) |
//! |---|---|
//! | DI SER | DI SER |
//! | current cumulative flow, 4 + unit | settlement-day heat, 4 + unit |
//! | settlement-day cumulative flow, 4 + unit | current heat, 4 + unit |
//! | | heat power, 4 + unit |
//! | | flow rate (4 decimals), 4 + unit |
//! | | cumulative flow, 4 + unit |
//! | | supply and return temperature, 3 + 3 (XXXX.XX °C) |
//! | | cumulative working time, 3 (hours) |
//! | real time, 7 | real time, 7 |
//! | status ST, 2 | status ST, 2 |

use crate::frame::{DataTooLong, EncodeError, Frame, DEFAULT_PREAMBLE};
use crate::value::{bcd_to_u64, u64_to_bcd, MeterTime, Reading, Status, ValueError};
use crate::{Address, Control, DataId, Function, MeterFamily, MeterType};
use core::fmt;

/// What a master asks a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The meter type asked for (`AAH`: any).
    pub meter_type: MeterType,
    /// The meter asked (wildcard bytes allowed).
    pub address: Address,
    /// Sequence number; the meter echoes it.
    pub ser: u8,
    /// What is asked.
    pub command: Command,
}

/// The requests this crate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `01H` `901FH`: metering data.
    ReadMeterData,
    /// `03H` `810AH`: the meter's address (usually to the wildcard).
    ReadAddress,
    /// `04H` `A017H`: open (`55H`) or close (`99H`) the valve.
    Valve(ValveCommand),
    /// `01H` with another identifier.
    Read(DataId),
}

/// A valve command byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValveCommand {
    /// `55H`.
    Open,
    /// `99H`.
    Close,
}

impl ValveCommand {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            ValveCommand::Open => 0x55,
            ValveCommand::Close => 0x99,
        }
    }
}

impl Request {
    /// Reads the address of whatever single meter is on the line.
    pub const fn read_address(ser: u8) -> Self {
        Request {
            meter_type: MeterType::WILDCARD,
            address: Address::WILDCARD,
            ser,
            command: Command::ReadAddress,
        }
    }

    /// The request as a frame.
    pub fn frame(&self) -> Frame {
        let (function, di, extra) = match self.command {
            Command::ReadMeterData => (Function::ReadData, DataId::METER_DATA, None),
            Command::ReadAddress => (Function::ReadAddress, DataId::ADDRESS, None),
            Command::Valve(v) => (Function::WriteData, DataId::VALVE, Some(v.byte())),
            Command::Read(di) => (Function::ReadData, di, None),
        };
        let [d0, d1] = di.to_wire();
        let data = [d0, d1, self.ser, extra.unwrap_or(0)];
        let len = if extra.is_some() { 4 } else { 3 };
        // At most 4 bytes: always fits.
        Frame::new(
            self.meter_type,
            self.address,
            Control::request(function),
            &data[..len],
        )
        .unwrap_or_else(|_| unreachable!())
    }
}

/// Writes `request` with [`DEFAULT_PREAMBLE`] preamble bytes into `out`;
/// returns the number of bytes written.
pub fn encode(request: &Request, out: &mut [u8]) -> Result<usize, EncodeError> {
    request.frame().encode(DEFAULT_PREAMBLE, out)
}

/// A water or gas meter's `901FH` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowData {
    /// Current cumulative flow.
    pub current: Reading,
    /// Cumulative flow on the last settlement day.
    pub settlement: Reading,
    /// The meter's clock.
    pub time: MeterTime,
    /// Valve and battery.
    pub status: Status,
}

/// A heat meter's `901FH` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatData {
    /// Heat on the last settlement day.
    pub settlement_heat: Reading,
    /// Current heat.
    pub current_heat: Reading,
    /// Heat power.
    pub power: Reading,
    /// Flow rate (four decimals).
    pub flow_rate: Reading,
    /// Cumulative flow.
    pub cumulative_flow: Reading,
    /// Supply water temperature in hundredths of °C.
    pub supply_centi_c: u32,
    /// Return water temperature in hundredths of °C.
    pub return_centi_c: u32,
    /// Cumulative working time in hours.
    pub working_hours: u32,
    /// The meter's clock.
    pub time: MeterTime,
    /// Valve and battery.
    pub status: Status,
}

/// Metering data of either layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterData {
    /// Water and gas meters.
    Flow(FlowData),
    /// Heat meters.
    Heat(HeatData),
}

impl MeterData {
    /// Bytes after DI and SER for water and gas meters.
    pub const FLOW_LEN: usize = 19;
    /// Bytes after DI and SER for heat meters.
    pub const HEAT_LEN: usize = 43;

    /// The status word.
    pub fn status(&self) -> Status {
        match self {
            MeterData::Flow(d) => d.status,
            MeterData::Heat(d) => d.status,
        }
    }

    /// The meter's clock.
    pub fn time(&self) -> MeterTime {
        match self {
            MeterData::Flow(d) => d.time,
            MeterData::Heat(d) => d.time,
        }
    }

    fn decode(b: &[u8]) -> Result<Self, AnswerError> {
        let field = |name: &'static str| move |error| AnswerError::Value { field: name, error };
        match b.len() {
            Self::FLOW_LEN => Ok(MeterData::Flow(FlowData {
                current: Reading::decode(&b[0..5], 2).map_err(field("current flow"))?,
                settlement: Reading::decode(&b[5..10], 2).map_err(field("settlement flow"))?,
                time: MeterTime::decode(&b[10..17]).map_err(field("real time"))?,
                status: Status([b[17], b[18]]),
            })),
            Self::HEAT_LEN => Ok(MeterData::Heat(HeatData {
                settlement_heat: Reading::decode(&b[0..5], 2).map_err(field("settlement heat"))?,
                current_heat: Reading::decode(&b[5..10], 2).map_err(field("current heat"))?,
                power: Reading::decode(&b[10..15], 2).map_err(field("heat power"))?,
                flow_rate: Reading::decode(&b[15..20], 4).map_err(field("flow rate"))?,
                cumulative_flow: Reading::decode(&b[20..25], 2)
                    .map_err(field("cumulative flow"))?,
                supply_centi_c: bcd_to_u64(&b[25..28]).map_err(field("supply temperature"))? as u32,
                return_centi_c: bcd_to_u64(&b[28..31]).map_err(field("return temperature"))? as u32,
                working_hours: bcd_to_u64(&b[31..34]).map_err(field("working time"))? as u32,
                time: MeterTime::decode(&b[34..41]).map_err(field("real time"))?,
                status: Status([b[41], b[42]]),
            })),
            found => Err(AnswerError::MeterDataLength { found }),
        }
    }

    /// Writes the data after DI and SER into `out`; returns its length.
    fn encode(&self, out: &mut [u8; Self::HEAT_LEN]) -> Result<usize, ValueError> {
        match self {
            MeterData::Flow(d) => {
                d.current.encode(&mut out[0..5])?;
                d.settlement.encode(&mut out[5..10])?;
                d.time.encode(&mut out[10..17])?;
                out[17..19].copy_from_slice(&d.status.0);
                Ok(Self::FLOW_LEN)
            }
            MeterData::Heat(d) => {
                d.settlement_heat.encode(&mut out[0..5])?;
                d.current_heat.encode(&mut out[5..10])?;
                d.power.encode(&mut out[10..15])?;
                d.flow_rate.encode(&mut out[15..20])?;
                d.cumulative_flow.encode(&mut out[20..25])?;
                u64_to_bcd(u64::from(d.supply_centi_c), &mut out[25..28])?;
                u64_to_bcd(u64::from(d.return_centi_c), &mut out[28..31])?;
                u64_to_bcd(u64::from(d.working_hours), &mut out[31..34])?;
                d.time.encode(&mut out[34..41])?;
                out[41..43].copy_from_slice(&d.status.0);
                Ok(Self::HEAT_LEN)
            }
        }
    }
}

/// A meter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// `81H` `901FH`: metering data.
    MeterData {
        /// The echoed sequence number.
        ser: u8,
        /// The data.
        data: MeterData,
    },
    /// `83H`: the meter's address, which is the frame's address.
    Address {
        /// The echoed sequence number.
        ser: u8,
    },
    /// `84H` `A017H`: the valve command was taken.
    Valve {
        /// The echoed sequence number.
        ser: u8,
        /// The status after the command, when the meter sends it.
        status: Option<Status>,
    },
    /// A normal answer with another identifier or function.
    Data {
        /// The function answered.
        function: Function,
        /// The identifier.
        di: DataId,
        /// The echoed sequence number.
        ser: u8,
        /// The bytes after DI and SER.
        value: &'a [u8],
    },
    /// D6 set: the meter could not do what was asked.
    Abnormal {
        /// The function that failed.
        function: Function,
        /// The echoed sequence number, when the data field has the
        /// standard's SER ST layout (3 bytes).
        ser: Option<u8>,
        /// The status word, likewise.
        status: Option<Status>,
    },
}

/// Why a frame is not a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// D7 is clear: the frame is a request.
    NotAnAnswer,
    /// The data field is shorter than DI and SER.
    TooShort {
        /// Bytes in the data field.
        found: usize,
    },
    /// A `901FH` answer of neither the water/gas nor the heat layout.
    MeterDataLength {
        /// Bytes after DI and SER.
        found: usize,
    },
    /// A field that does not decode.
    Value {
        /// The field.
        field: &'static str,
        /// Why.
        error: ValueError,
    },
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::NotAnAnswer => f.write_str("the frame is a request, not an answer"),
            AnswerError::TooShort { found } => write!(
                f,
                "the data field has {found} bytes, fewer than DI and SER (3)"
            ),
            AnswerError::MeterDataLength { found } => write!(
                f,
                "901FH answer with {found} data bytes after DI and SER; water and gas \
                 meters send {}, heat meters {}",
                MeterData::FLOW_LEN,
                MeterData::HEAT_LEN
            ),
            AnswerError::Value { field, error } => write!(f, "{field}: {error}"),
        }
    }
}

impl core::error::Error for AnswerError {}

/// Why a frame is not a request a meter can carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// D7 is set: the frame is an answer.
    NotARequest,
    /// The data field is shorter than the function needs.
    TooShort,
    /// A valve command byte other than `55H` or `99H`.
    ValveByte(u8),
    /// A function this crate does not carry out.
    Unsupported(Function, DataId),
}

impl Frame {
    /// Reads a meter's answer.
    pub fn answer(&self) -> Result<Answer<'_>, AnswerError> {
        if !self.control.from_meter() {
            return Err(AnswerError::NotAnAnswer);
        }
        let function = self.control.function();
        let d = self.data();
        if self.control.is_abnormal() {
            let (ser, status) = match d {
                [ser, s0, s1] => (Some(*ser), Some(Status([*s0, *s1]))),
                _ => (None, None),
            };
            return Ok(Answer::Abnormal {
                function,
                ser,
                status,
            });
        }
        if d.len() < 3 {
            return Err(AnswerError::TooShort { found: d.len() });
        }
        let di = DataId::from_wire([d[0], d[1]]);
        let ser = d[2];
        let value = &d[3..];
        Ok(match (function, di) {
            (Function::ReadData, DataId::METER_DATA)
                if self.meter_type.family() != Some(MeterFamily::Other) =>
            {
                Answer::MeterData {
                    ser,
                    data: MeterData::decode(value)?,
                }
            }
            (Function::ReadAddress, _) => Answer::Address { ser },
            (Function::WriteData, DataId::VALVE) => Answer::Valve {
                ser,
                status: match value {
                    [s0, s1, ..] => Some(Status([*s0, *s1])),
                    _ => None,
                },
            },
            _ => Answer::Data {
                function,
                di,
                ser,
                value,
            },
        })
    }

    /// Reads a master's request (the meter's side).
    pub fn request(&self) -> Result<Request, RequestError> {
        if self.control.from_meter() {
            return Err(RequestError::NotARequest);
        }
        let d = self.data();
        if d.len() < 3 {
            return Err(RequestError::TooShort);
        }
        let function = self.control.function();
        let di = DataId::from_wire([d[0], d[1]]);
        let command = match (function, di) {
            (Function::ReadData, DataId::METER_DATA) => Command::ReadMeterData,
            (Function::ReadData, di) => Command::Read(di),
            (Function::ReadAddress, DataId::ADDRESS) => Command::ReadAddress,
            (Function::WriteData, DataId::VALVE) => match d.get(3) {
                Some(0x55) => Command::Valve(ValveCommand::Open),
                Some(0x99) => Command::Valve(ValveCommand::Close),
                Some(b) => return Err(RequestError::ValveByte(*b)),
                None => return Err(RequestError::TooShort),
            },
            (f, di) => return Err(RequestError::Unsupported(f, di)),
        };
        Ok(Request {
            meter_type: self.meter_type,
            address: self.address,
            ser: d[2],
            command,
        })
    }

    /// A meter's `81H` `901FH` answer.
    pub fn meter_data_answer(
        meter_type: MeterType,
        address: Address,
        ser: u8,
        data: &MeterData,
    ) -> Result<Self, ValueError> {
        let mut buf = [0u8; 3 + MeterData::HEAT_LEN];
        let [d0, d1] = DataId::METER_DATA.to_wire();
        buf[..3].copy_from_slice(&[d0, d1, ser]);
        let mut body = [0u8; MeterData::HEAT_LEN];
        let n = data.encode(&mut body)?;
        buf[3..3 + n].copy_from_slice(&body[..n]);
        Ok(Self::answer_with(
            meter_type,
            address,
            Control::answer(Function::ReadData),
            &buf[..3 + n],
        ))
    }

    /// A meter's `83H` answer to a read of its address.
    pub fn address_answer(meter_type: MeterType, address: Address, ser: u8) -> Self {
        let [d0, d1] = DataId::ADDRESS.to_wire();
        Self::answer_with(
            meter_type,
            address,
            Control::answer(Function::ReadAddress),
            &[d0, d1, ser],
        )
    }

    /// A meter's `84H` answer to a valve command, with its status after it.
    pub fn valve_answer(meter_type: MeterType, address: Address, ser: u8, status: Status) -> Self {
        let [d0, d1] = DataId::VALVE.to_wire();
        let [s0, s1] = status.0;
        Self::answer_with(
            meter_type,
            address,
            Control::answer(Function::WriteData),
            &[d0, d1, ser, s0, s1],
        )
    }

    /// A meter's abnormal answer (D6 set): SER and ST.
    pub fn abnormal_answer(
        meter_type: MeterType,
        address: Address,
        function: Function,
        ser: u8,
        status: Status,
    ) -> Self {
        let [s0, s1] = status.0;
        Self::answer_with(
            meter_type,
            address,
            Control::abnormal(function),
            &[ser, s0, s1],
        )
    }

    fn answer_with(meter_type: MeterType, address: Address, control: Control, data: &[u8]) -> Self {
        // Every caller passes at most 46 bytes.
        Frame::new(meter_type, address, control, data)
            .unwrap_or_else(|DataTooLong { .. }| unreachable!())
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
