//! DL/T 645-2007, the protocol most Chinese residential electricity meters
//! speak over RS-485: frame codec, addresses, control codes, data
//! identifiers and value formats.
//!
//! Sans-IO and `no_std` without allocation: the gateway, the simulator and
//! a microcontroller wired straight to a meter share this code, and every
//! edge case is a unit test or a property test without a serial port.
//! Section numbers in the docs refer to the standard (DL/T 645-2007,
//! 多功能电能表通信协议); `docs/dlt645.md` summarises what Gridwatch reads.
//!
//! ```
//! use gridwatch_dlt645::{decode, Address, Answer, DataId, Frame};
//!
//! // Ask meter 000000000001 for its forward active energy…
//! let meter = Address::parse("000000000001").unwrap();
//! let mut wire = [0u8; 32];
//! let n = Frame::read(meter, DataId::FORWARD_ACTIVE_ENERGY).encode(4, &mut wire).unwrap();
//! assert_eq!(&wire[4..n], &[0x68, 1, 0, 0, 0, 0, 0, 0x68, 0x11, 4, 0x33, 0x33, 0x34, 0x33, 0xB3, 0x16]);
//!
//! // …and read its answer: 1234.56 kWh.
//! let answer = [0x68, 1, 0, 0, 0, 0, 0, 0x68, 0x91, 8, 0x33, 0x33, 0x34, 0x33, 0x89, 0x67, 0x45, 0x33, 0x9F, 0x16];
//! let (frame, _) = decode(&answer).unwrap();
//! let Ok(Answer::Data { di, value, .. }) = frame.answer() else { panic!() };
//! let kwh = di.format().unwrap().decode(value).unwrap().to_f64();
//! assert!((kwh - 1234.56).abs() < 1e-9);
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod control;
mod data;
mod frame;
mod message;
mod receiver;

pub use address::{Address, AddressError};
pub use control::{Control, ErrorWord, Function};
pub use data::{DataId, Format, Value, ValueError};
pub use frame::{
    checksum, decode, DataTooLong, DecodeError, EncodeError, Frame, DATA_OFFSET, DEFAULT_WAKE_UP,
    END, MAX_DATA_LEN, MAX_FRAME_LEN, MAX_WAKE_UP, OVERHEAD, START, WAKE_UP,
};
pub use message::{Answer, AnswerError, MeterTime};
pub use receiver::Receiver;
