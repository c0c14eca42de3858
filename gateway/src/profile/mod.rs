//! Device profiles: a device model's register map as data.
//!
//! Supporting a new meter or pile should mean writing
//! `config/devices/<model>.toml`, not Rust (docs/gateway.md). A profile lists the
//! registers to read, how to turn their words into numbers, and what the
//! numbers are called in a [`Reading`](gridwatch_telemetry::Reading). The
//! format is documented for installers in `docs/gateway.md`; this module
//! parses it into the types below and refuses anything it could misread
//! (overlapping registers, a 32-bit value that runs past its block, a name used
//! twice), naming the file, line and field.
//!
//! A device yields one reading for its device-level `[[registers]]` and,
//! when the profile has a `[channel]`, one more reading per channel (per
//! socket of a charging pile) from the `[[channel.registers]]`, which repeat
//! every `stride` registers from `base`.

mod library;
mod parse;
#[cfg(test)]
mod tests;
pub mod units;

pub use library::{ProfileLibrary, BUILT_IN};

use crate::toml_file::FieldError;

/// Most registers one Modbus read of holding or input registers may return
/// (the PDU limit for functions 0x03 and 0x04). A profile's `max_read` is
/// checked against it, and the device's read planner never exceeds it.
pub const MAX_READ_REGISTERS: u16 = 125;
use gridwatch_telemetry::DeviceKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// A device model's register map, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Model name; also the file name without `.toml` and what gateway
    /// configs refer to (`profile = "gridwatch-ebp12"`).
    pub model: String,
    /// Who makes the device.
    pub vendor: String,
    /// What the device-level reading is.
    pub kind: DeviceKind,
    /// The document the map was written from (datasheet, firmware source),
    /// so a reviewer can check every register against it.
    pub document: String,
    /// Largest run of unused registers that the planner may read through to
    /// save a request. Devices that refuse reads of unmapped addresses need 0.
    pub max_gap_registers: u16,
    /// Registers of the device as a whole.
    pub registers: Vec<Register>,
    /// A block of registers repeated per socket, if the device has one.
    pub channel: Option<Channel>,
    /// Writes the device accepts as commands (`socket_off`), by action name.
    pub commands: Vec<WritePoint>,
    /// Where the profile was read from, for messages.
    pub origin: String,
}

/// A command the device accepts, as data: which coil or register to write
/// with which value. `command.rs` carries these out, so a new relay model
/// needs a profile entry, not code.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePoint {
    /// The action name a command payload uses (`socket_off`).
    pub action: String,
    /// Coils (function 0x05) or holding registers (function 0x06).
    pub function: Function,
    /// Address written (for socket 1, when per-socket).
    pub address: u16,
    /// Distance between two sockets' addresses; `None` for device-level
    /// commands, which take no socket.
    pub socket_stride: Option<u16>,
    /// Value written: 0 or 1 for a coil, a word for a register.
    pub value: u16,
    /// What the ack says was done (`switched off`), after the socket or
    /// device name.
    pub result: Option<String>,
    /// Line of the definition, for messages.
    pub line: usize,
}

impl WritePoint {
    /// The address to write for `socket` (1-based), or for the device.
    /// Validation guarantees the address fits for every socket the profile has.
    pub fn address_for(&self, socket: Option<u16>) -> u16 {
        match (self.socket_stride, socket) {
            (Some(stride), Some(n)) if n >= 1 => self.address + (n - 1) * stride,
            _ => self.address,
        }
    }
}

/// A block of registers repeated once per channel (socket).
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// What one instance is called; readings carry its 1-based number in
    /// `socket`, so today this is always `socket`.
    pub name: String,
    /// What each channel's reading is.
    pub kind: DeviceKind,
    /// Address of channel 1's block.
    pub base: u16,
    /// Distance between two channels' blocks.
    pub stride: u16,
    /// How many channels the device has.
    pub count: ChannelCount,
    /// The registers of one block, addresses relative to the block start.
    pub registers: Vec<Register>,
}

impl Channel {
    /// The most channels the device can report.
    pub fn max_count(&self) -> u16 {
        match self.count {
            ChannelCount::Fixed(n) => n,
            ChannelCount::FromRegister { max, .. } => max,
        }
    }

    /// Absolute address of channel `n`'s (1-based) block.
    pub fn block_start(&self, n: u16) -> u16 {
        // Validation guarantees base + stride * max_count fits in u16.
        self.base + (n - 1) * self.stride
    }
}

/// How many channels a device has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelCount {
    /// Always this many.
    Fixed(u16),
    /// As many as the device-level register `register` says, at most `max`
    /// (a device reporting more is polled for `max` and told about it).
    FromRegister {
        /// Name of a device-level register.
        register: String,
        /// Upper bound the profile was written for.
        max: u16,
    },
}

/// One value the device holds, and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// The value's name in readings, unit in the name (`current_a`).
    pub name: String,
    /// Which Modbus table it lives in.
    pub function: Function,
    /// First register (relative to the block start for channel registers).
    pub address: u16,
    /// How the words encode the number.
    pub value_type: ValueType,
    /// Byte order within each 16-bit word.
    pub byte_order: ByteOrder,
    /// Order of the words of a multi-word value.
    pub word_order: WordOrder,
    /// Multiplier from the raw number to the unit in the name.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
    /// Unit, for people (the name carries it for machines).
    pub unit: Option<String>,
    /// Meanings of enumerated raw values (`0 = "idle"`).
    pub meanings: BTreeMap<i64, String>,
    /// For check registers (a map version): the only raw value this profile
    /// understands. Such registers are verified on every poll, not emitted.
    pub expect: Option<i64>,
    /// For string check registers (a model name): the only text this profile
    /// understands, verified like `expect`.
    pub expect_text: Option<String>,
    /// For `bool` in a holding or input register: which bit (0 = least
    /// significant) holds the flag. `None`: the whole word, non-zero is true.
    pub bit: Option<u8>,
    /// Report by exception: a change smaller than this does not count as a
    /// change (in the unit of the name). 0 means any change counts.
    pub deadband: f64,
    /// Line of the definition, for messages about this register.
    pub line: usize,
}

impl Register {
    /// Number of 16-bit registers the value occupies.
    pub fn len(&self) -> u16 {
        self.value_type.words()
    }

    /// Always false: every type occupies at least one register. Here for
    /// clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the value goes into readings (check registers and strings,
    /// which are not numbers, do not).
    pub fn is_emitted(&self) -> bool {
        self.expect.is_none() && !self.value_type.is_text()
    }

    /// The meaning of an enumerated value, if the profile gives one.
    pub fn meaning(&self, raw: i64) -> Option<&str> {
        self.meanings.get(&raw).map(String::as_str)
    }
}

/// The Modbus table a value is read from. Coils and discrete inputs hold
/// single bits; the register image keeps each bit as a word of 0 or 1, so
/// planning and decoding treat all four tables alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// Coils (read/write bits), function 0x01.
    #[serde(alias = "coil")]
    Coils,
    /// Discrete inputs (read-only bits), function 0x02.
    #[serde(alias = "discrete_input")]
    DiscreteInputs,
    /// Holding registers, function 0x03.
    Holding,
    /// Input registers, function 0x04.
    Input,
}

impl Function {
    /// The Modbus function code that reads this table.
    pub fn code(self) -> u8 {
        match self {
            Function::Coils => 0x01,
            Function::DiscreteInputs => 0x02,
            Function::Holding => 0x03,
            Function::Input => 0x04,
        }
    }

    /// Whether the table holds single bits rather than 16-bit words.
    pub fn is_bits(self) -> bool {
        matches!(self, Function::Coils | Function::DiscreteInputs)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Function::Coils => "coil",
            Function::DiscreteInputs => "discrete input",
            Function::Holding => "holding",
            Function::Input => "input",
        })
    }
}

/// How a value is encoded in registers. Each variant has its own word
/// count and decoder arm; nothing else has to change for a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Unsigned 16-bit.
    U16,
    /// Signed 16-bit, two's complement.
    I16,
    /// Unsigned 32-bit over two registers.
    U32,
    /// Signed 32-bit over two registers, two's complement.
    I32,
    /// Unsigned 64-bit over four registers (energy counters).
    U64,
    /// Signed 64-bit over four registers, two's complement.
    I64,
    /// IEEE 754 single precision over two registers.
    F32,
    /// IEEE 754 double precision over four registers.
    F64,
    /// A flag: one coil or discrete input, or one bit (`bit = n`) or the
    /// whole of a register (non-zero is true). Reads as 0 or 1.
    Bool,
    /// Four decimal digits in one register (0x1234 reads 1234).
    Bcd16,
    /// Eight decimal digits in two registers.
    Bcd32,
    /// ASCII text, two characters per register; never a reading value (see
    /// [`Register::expect_text`]).
    String {
        /// Registers the text occupies.
        words: u16,
    },
}

impl ValueType {
    /// Number of 16-bit registers (or bits, in a bit table) a value occupies.
    pub fn words(self) -> u16 {
        match self {
            ValueType::U16 | ValueType::I16 | ValueType::Bool | ValueType::Bcd16 => 1,
            ValueType::U32 | ValueType::I32 | ValueType::F32 | ValueType::Bcd32 => 2,
            ValueType::U64 | ValueType::I64 | ValueType::F64 => 4,
            ValueType::String { words } => words,
        }
    }

    /// Whether raw values are whole numbers (so enum meanings and checks apply).
    pub fn is_integer(self) -> bool {
        !matches!(
            self,
            ValueType::F32 | ValueType::F64 | ValueType::String { .. }
        )
    }

    /// Whether the value is text rather than a number.
    pub fn is_text(self) -> bool {
        matches!(self, ValueType::String { .. })
    }

    /// The names a profile's `type` accepts, for error messages.
    pub const NAMES: [&'static str; 12] = [
        "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64", "bool", "bcd16", "bcd32", "string",
    ];
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F32 => "f32",
            ValueType::F64 => "f64",
            ValueType::Bool => "bool",
            ValueType::Bcd16 => "bcd16",
            ValueType::Bcd32 => "bcd32",
            ValueType::String { .. } => "string",
        })
    }
}

/// Byte order inside one 16-bit register. Modbus says big-endian, but some
/// devices swap bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// High byte first, as the Modbus specification says.
    #[default]
    Big,
    /// Low byte first.
    Little,
}

/// Order of the registers of a multi-register value. Modbus leaves this to
/// the vendor, and vendors disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// Most significant word at the lower address.
    #[default]
    HighFirst,
    /// Least significant word at the lower address.
    LowFirst,
}

/// Why a profile could not be used.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read device profile {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The profile is malformed; the error names file, line and field.
    #[error("invalid device profile: {0}")]
    Invalid(#[from] FieldError),
    /// No profile by that name exists.
    #[error("unknown device profile {name:?}; known profiles: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Every name that would have worked.
        known: String,
    },
}

impl Profile {
    /// Parses and validates profile text. `origin` names it in errors (a
    /// path, or `built-in:<model>`); `expected_model` (the file name) must
    /// match the profile's `model`, so a copied file cannot masquerade as
    /// another model.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        expected_model: Option<&str>,
    ) -> Result<Profile, FieldError> {
        parse::parse(text, origin, expected_model)
    }

    /// Every register of the profile that goes into readings, device-level
    /// first, for summaries.
    pub fn register_count(&self) -> usize {
        self.registers.len() + self.channel.as_ref().map_or(0, |c| c.registers.len())
    }

    /// A device-level register by name.
    pub fn register(&self, name: &str) -> Option<&Register> {
        self.registers.iter().find(|r| r.name == name)
    }

    /// The write behind a command action, if the device has it.
    pub fn command(&self, action: &str) -> Option<&WritePoint> {
        self.commands.iter().find(|c| c.action == action)
    }
}
