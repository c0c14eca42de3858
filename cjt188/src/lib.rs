//! CJ/T 188, the protocol Chinese residential water, gas and heat meters
//! speak over M-Bus or RS-485 (CJ/T 188-2004 *户用计量仪表数据传输技术条件*,
//! revised 2018): frame codec, addresses and meter types, control codes,
//! the metering data (`901FH`), address reads (`810AH`) and valve control
//! (`A017H`), BCD values with their unit codes, and the status word.
//!
//! Sans-IO and `no_std` without allocation: the gateway, the simulator and
//! a microcontroller wired straight to a meter share this code, and every
//! edge case is a unit test or a property test without a serial port.
//! `docs/cjt188.md` summarises the subset and its sources.
//!
//! ```
//! use gridwatch_cjt188::{decode, encode, Address, Answer, Command, MeterData, MeterType, Request};
//!
//! // Ask cold water meter 78330011223344 for its metering data…
//! let request = Request {
//!     meter_type: MeterType::COLD_WATER,
//!     address: Address::parse("78330011223344").unwrap(),
//!     ser: 0,
//!     command: Command::ReadMeterData,
//! };
//! let mut wire = [0u8; 32];
//! let n = encode(&request, &mut wire).unwrap();
//! assert_eq!(&wire[4..n], &[0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78,
//!                           0x01, 0x03, 0x1F, 0x90, 0x00, 0x80, 0x16]);
//!
//! // …and read its answer: 556677.00 m³.
//! let answer = [0x68, 0x10, 0x44, 0x33, 0x22, 0x11, 0x00, 0x33, 0x78, 0x81, 0x16,
//!     0x1F, 0x90, 0x00, 0x00, 0x77, 0x66, 0x55, 0x2C, 0x00, 0x77, 0x66, 0x55, 0x2C,
//!     0x31, 0x01, 0x22, 0x11, 0x05, 0x15, 0x20, 0x21, 0x84, 0x13, 0x16];
//! let (frame, _) = decode(&answer).unwrap();
//! let Ok(Answer::MeterData { data: MeterData::Flow(flow), .. }) = frame.answer() else { panic!() };
//! assert_eq!(flow.current.value(), 556677.0);
//! assert_eq!(flow.current.unit.symbol(), "m³");
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod control;
mod frame;
mod message;
mod receiver;
mod value;

pub use address::{Address, AddressError, MeterFamily, MeterType};
pub use control::{Control, DataId, Function};
pub use frame::{
    checksum, decode, DataTooLong, DecodeError, EncodeError, Frame, DEFAULT_PREAMBLE, END,
    MAX_DATA_LEN, MAX_FRAME_LEN, MAX_PREAMBLE, OVERHEAD, PREAMBLE, START,
};
pub use message::{
    encode, Answer, AnswerError, Command, FlowData, HeatData, MeterData, Request, RequestError,
    ValveCommand,
};
pub use receiver::Receiver;
pub use value::{
    bcd_to_u64, u64_to_bcd, MeterTime, Quantity, Reading, Status, Unit, ValueError, Valve,
};
