//! `[[buses]]`: the RS-485 serial lines of the gateway, as the config file names them.
//!
//! A bus is named once with its port and line settings, and every Modbus
//! RTU device on it names the bus (`bus = "rs485-1"`) and its `unit_id`.
//! One bus is one serial port is one task that talks to one device at a
//! time, so line settings belong to the bus, not to each device: devices on
//! one line that disagree about baud rate or parity cannot share it anyway.

use crate::toml_file::bounded;
use crate::toml_file::{FieldError, SourceFile};
use gridwatch_telemetry::ids::validate_id;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// Baud rate when a bus names none: the Modbus serial-line default.
pub const DEFAULT_BAUD: u32 = 9_600;
/// The baud rates RS-485 meters and serial adapters agree on; another
/// rate is almost always a typing mistake (96000 for 9600).
pub const STANDARD_BAUDS: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

/// Why `baud` is refused, with the standard rate it most likely meant;
/// `None` for a standard rate.
pub fn baud_problem(baud: u32) -> Option<String> {
    if STANDARD_BAUDS.contains(&baud) {
        return None;
    }
    let nearest = STANDARD_BAUDS
        .iter()
        .copied()
        .min_by_key(|b| b.abs_diff(baud))
        .unwrap_or(DEFAULT_BAUD);
    let hint = if baud % 10 == 0 && STANDARD_BAUDS.contains(&(baud / 10)) && baud / 10 != nearest {
        format!(
            "did you mean {nearest}, or {} (one zero too many)?",
            baud / 10
        )
    } else {
        format!("did you mean {nearest}?")
    };
    Some(format!(
        "{baud} is not a standard baud rate; {hint} (standard: {})",
        crate::toml_file::list(STANDARD_BAUDS.iter().map(|b| b.to_string()))
    ))
}

/// Time a device has to begin answering once the request has left the wire.
pub const DEFAULT_RTU_TIMEOUT_MS: u64 = 500;
/// Extra attempts of a request that got no valid answer, before the device
/// is treated as gone from the bus.
pub const DEFAULT_RTU_RETRIES: u32 = 2;
/// How often a device that stopped answering is tried again: rarely enough
/// that a dead meter costs the others little bus time.
pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 30_000;

/// Parity bit of each character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// No parity bit (the spec then asks for 2 stop bits; most meters ignore that).
    None,
    /// Even parity: the Modbus serial-line default.
    Even,
    /// Odd parity.
    Odd,
}

/// One validated `[[buses]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialBusConfig {
    /// Name that devices use in `bus = "..."`.
    pub id: String,
    /// Serial device (`/dev/ttyUSB0`, `/dev/serial/by-id/...`).
    pub port: PathBuf,
    /// Line speed in bits per second.
    pub baud: u32,
    /// Parity bit.
    pub parity: Parity,
    /// Data bits per character: always 8 for Modbus RTU.
    pub data_bits: u8,
    /// Stop bits per character (1 or 2).
    pub stop_bits: u8,
    /// Time a device has to answer one request, after it left the wire.
    pub timeout_ms: u64,
    /// Extra attempts of a request without a valid answer.
    pub retries: u32,
    /// Time between attempts to reach a device that stopped answering.
    pub probe_interval_ms: u64,
}

impl SerialBusConfig {
    /// A bus on `port` with every other setting at its default.
    pub fn new(id: impl Into<String>, port: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            port: port.into(),
            baud: DEFAULT_BAUD,
            parity: Parity::Even,
            data_bits: 8,
            stop_bits: 1,
            timeout_ms: DEFAULT_RTU_TIMEOUT_MS,
            retries: DEFAULT_RTU_RETRIES,
            probe_interval_ms: DEFAULT_PROBE_INTERVAL_MS,
        }
    }

    /// Bits on the wire per character: start, data, parity, stop.
    pub fn bits_per_char(&self) -> u32 {
        1 + u32::from(self.data_bits)
            + u32::from(self.parity != Parity::None)
            + u32::from(self.stop_bits)
    }

    /// [`Self::timeout_ms`] as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// [`Self::probe_interval_ms`] as a duration.
    pub fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    /// `/dev/ttyUSB0 9600 8E1`, as installers write line settings.
    pub fn describe(&self) -> String {
        let parity = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        format!(
            "{} {} {}{parity}{}",
            self.port.display(),
            self.baud,
            self.data_bits,
            self.stop_bits
        )
    }
}

/// One `[[buses]]` table as written, spans kept for errors; [`build_bus`]
/// checks it into a [`SerialBusConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBus {
    id: Spanned<String>,
    port: Spanned<PathBuf>,
    baud: Option<Spanned<u32>>,
    parity: Option<Parity>,
    data_bits: Option<Spanned<u8>>,
    stop_bits: Option<Spanned<u8>>,
    timeout_ms: Option<Spanned<u64>>,
    retries: Option<Spanned<u32>>,
    probe_interval_ms: Option<Spanned<u64>>,
}

impl RawBus {
    /// Where the bus's id is written, for "already used" errors.
    pub fn id_span(&self) -> std::ops::Range<usize> {
        self.id.span()
    }

    /// The serial port as written, for checks of the host.
    pub fn port_spanned(&self) -> &Spanned<PathBuf> {
        &self.port
    }
}

/// Checks `buses[i]` of the config file `src`.
pub fn build_bus(src: &SourceFile, i: usize, b: &RawBus) -> Result<SerialBusConfig, FieldError> {
    let f = |name: &str| format!("buses[{i}].{name}");
    validate_id(b.id.get_ref())
        .map_err(|why| src.error(b.id.span(), f("id"), format!("{:?} {why}", b.id.get_ref())))?;
    if b.port.get_ref().as_os_str().is_empty() {
        return Err(src.error(
            b.port.span(),
            f("port"),
            "must name the serial device, e.g. \"/dev/ttyUSB0\"",
        ));
    }
    let data_bits = bounded(src, &b.data_bits, 8, &f("data_bits"), 8, 8).map_err(|_| {
        src.error(
            b.data_bits.as_ref().map_or(0..0, |d| d.span()),
            f("data_bits"),
            "Modbus RTU always sends 8 data bits (7 is Modbus ASCII, which the gateway does not speak)",
        )
    })?;
    if let Some(why) = b.baud.as_ref().and_then(|v| baud_problem(*v.get_ref())) {
        let span = b.baud.as_ref().map_or(0..0, |v| v.span());
        return Err(src.error(span, f("baud"), why));
    }
    let defaults = SerialBusConfig::new(b.id.get_ref().clone(), b.port.get_ref().clone());
    Ok(SerialBusConfig {
        baud: b.baud.as_ref().map_or(DEFAULT_BAUD, |v| *v.get_ref()),
        parity: b.parity.unwrap_or(defaults.parity),
        data_bits,
        stop_bits: bounded(src, &b.stop_bits, 1, &f("stop_bits"), 1, 2)?,
        timeout_ms: bounded(
            src,
            &b.timeout_ms,
            DEFAULT_RTU_TIMEOUT_MS,
            &f("timeout_ms"),
            10,
            10_000,
        )?,
        retries: bounded(src, &b.retries, DEFAULT_RTU_RETRIES, &f("retries"), 0, 10)?,
        probe_interval_ms: bounded(
            src,
            &b.probe_interval_ms,
            DEFAULT_PROBE_INTERVAL_MS,
            &f("probe_interval_ms"),
            100,
            3_600_000,
        )?,
        ..defaults
    })
}
