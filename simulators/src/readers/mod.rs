//! Tag and plate readers: a plate camera publishing JSON over MQTT
//! ([`mqtt`]) and a serial RFID reader on a pseudo-terminal ([`serial`]),
//! each with misbehaviour on demand (malformed JSON, missing fields, bad
//! checksums, truncated lines, a reader that disappears and returns).
//! `gridwatch-sim reader-mqtt` and `gridwatch-sim reader-serial` run them
//! from the command line ([`cli`]).

pub mod cli;
pub mod mqtt;
pub mod serial;

pub use mqtt::{MqttFault, MqttReaderSim};
pub use serial::{LineFault, SerialReaderSim};
