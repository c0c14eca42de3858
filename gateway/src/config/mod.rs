//! The gateway config: who this gateway is, where its broker is, and which
//! devices it polls.
//!
//! Parsed from TOML once, validated once, and then plain data: a
//! [`GatewayConfig`] that exists is one the gateway can run. Every problem is
//! reported as `file:line:column: field: what is wrong` (see
//! [`crate::toml_file`]), because the person reading it is an installer on a
//! Raspberry Pi with an editor open. The format is documented in
//! `docs/gateway.md` and shown in `config/gateway.example.toml`.

mod host;
mod raw;
mod readers;
#[cfg(test)]
mod tests;

pub use crate::bus::modbus_rtu::config::{
    Parity, SerialBusConfig, DEFAULT_BAUD, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_RTU_RETRIES,
    DEFAULT_RTU_TIMEOUT_MS,
};
use crate::devices::DeviceStamp;
use crate::profile::{Profile, ProfileError, ProfileLibrary};
use crate::toml_file::{FieldError, SourceFile};
use gridwatch_telemetry::{DeviceId, GatewayId, SiteId};
pub use host::{HostNeed, NeedKind};
pub use raw::remote::{MetricsConfig, RemoteConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Broker port when the config names none.
pub const DEFAULT_MQTT_PORT: u16 = 1883;
/// MQTT keep-alive when the config names none: the broker notices a dead
/// gateway (and publishes its last will) within 1.5 × this.
pub const DEFAULT_KEEP_ALIVE_S: u16 = 30;
/// Modbus TCP port when a device names none.
pub const DEFAULT_MODBUS_PORT: u16 = 502;
/// Modbus unit id when a device names none.
pub const DEFAULT_UNIT_ID: u8 = 1;
/// Poll interval when a device names none: fine enough for the charging
/// detectors (temperature rise, taper), light on a 4G uplink.
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 5_000;

/// The shortest poll interval a device may have. A Modbus TCP device on a
/// LAN answers a read in well under a millisecond, and the hot path costs
/// microseconds per reading, so 10 ms polls are sustainable where the device
/// keeps up; below that the scheduler's timer resolution and the device's
/// own turnaround dominate.
pub const MIN_POLL_INTERVAL_MS: u64 = 10;
/// Time a device has to answer one request.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Longest wait between retries of an unreachable device.
pub const DEFAULT_RETRY_MAX_MS: u64 = 60_000;
/// Consecutive failed polls before a device is reported offline.
pub const DEFAULT_OFFLINE_AFTER_FAILURES: u32 = crate::bus::modbus_rtu::DEFAULT_ABSENT_AFTER;
/// Publishes sent to the broker and not yet acknowledged, at most.
pub const DEFAULT_MQTT_INFLIGHT: u16 = 64;
/// Records per second the MQTT uplink sends at most, so that a fleet
/// catching up after an outage does not flatten the broker.
pub const DEFAULT_MQTT_MAX_PUBLISH_PER_S: u32 = 2_000;
/// Longest wait between attempts to reach the broker.
pub const DEFAULT_MQTT_RECONNECT_MAX_MS: u64 = 30_000;
/// Time between two syncs of the outbox to disk: the most a power cut loses.
pub const DEFAULT_FSYNC_INTERVAL_MS: u64 = 1_000;
/// The outbox's size cap: about a week of a 12-socket pile at 1 s polls.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 1 << 30;
/// The outbox's segment size: few, large files on the SD card.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;

/// A validated gateway config.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Identity of this gateway.
    pub gateway: GatewaySection,
    /// The broker readings go to.
    pub mqtt: MqttConfig,
    /// The durable store between pollers and uplinks.
    pub outbox: OutboxConfig,
    /// The InfluxDB uplink, when configured.
    pub influx: Option<InfluxConfig>,
    /// RS-485 serial lines, in config order.
    pub buses: Vec<SerialBusConfig>,
    /// Devices to poll, in config order.
    pub devices: Vec<DeviceConfig>,
    /// Tag and plate readers (`[[readers]]`), in config order.
    pub readers: Vec<crate::readers::ReaderConfig>,
    /// The LAN broker MQTT readers publish to (`[local_mqtt]`), never the
    /// uplink broker.
    pub local_mqtt: Option<crate::readers::mqtt::LocalMqttConfig>,
    /// The site key for pseudonyms (`[pseudonym] site_key_file`); required
    /// when readers are configured.
    pub site_key_file: Option<PathBuf>,
    /// Edge outputs and the rules over sightings that switch them.
    pub edge: crate::edge::EdgeConfig,
    /// Where the config came from (file path or the caller's label).
    pub origin: String,
    /// Files and serial ports the config names, checked against this host
    /// by [`Self::host_problems`].
    pub host_needs: Vec<HostNeed>,
    /// Signed configs pushed from afar (`[remote]`), when enabled.
    pub remote: Option<RemoteConfig>,
    /// The Prometheus endpoint (`[metrics]`), when enabled.
    pub metrics: Option<MetricsConfig>,
}

/// The `[gateway]` table.
#[derive(Debug, Clone)]
pub struct GatewaySection {
    /// This gateway's id, one MQTT topic level.
    pub id: GatewayId,
    /// The site it serves, one MQTT topic level.
    pub site: SiteId,
    /// The building it serves, stamped on every reading unless a device
    /// names its own.
    pub building: Option<String>,
    /// A folder of device profiles that adds to and overrides the built-in
    /// ones, resolved against the config file's folder.
    pub profiles_dir: Option<PathBuf>,
    /// Readings are marked `clock_unsynced` until the kernel says NTP has
    /// synchronised the clock ([`crate::clock_sync`]); off by default
    /// because containers and test machines often report an unsynchronised
    /// clock that is in fact right. The Pi package turns it on.
    pub require_clock_sync: bool,
}

/// The `[mqtt]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// MQTT client id (defaults to the gateway id, which is unique in the
    /// district; two clients with one id knock each other off the broker).
    pub client_id: String,
    /// First topic level (default `gw`).
    pub topic_prefix: String,
    /// Keep-alive interval in seconds.
    pub keep_alive_s: u16,
    /// Publishes in flight (sent, no PUBACK yet) at most.
    pub inflight: u16,
    /// Records sent per second at most (catch-up after an outage).
    pub max_publish_per_s: u32,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_ms: u64,
    /// TLS, when the broker is reached over it.
    pub tls: Option<MqttTls>,
    /// User name and password (only over TLS).
    pub credentials: Option<MqttCredentials>,
}

/// `[mqtt]` TLS settings: the files are read when the gateway starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttTls {
    /// PEM file of the CA(s) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM certificate and key of this gateway, for brokers that ask for one.
    pub client_auth: Option<(PathBuf, PathBuf)>,
}

/// `[mqtt]` user name and password, the password kept in its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttCredentials {
    /// User name.
    pub username: String,
    /// File holding the password (first line), readable by the gateway only.
    pub password_file: PathBuf,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: DEFAULT_MQTT_PORT,
            client_id: String::new(),
            topic_prefix: gridwatch_telemetry::topic::DEFAULT_PREFIX.into(),
            keep_alive_s: DEFAULT_KEEP_ALIVE_S,
            inflight: DEFAULT_MQTT_INFLIGHT,
            max_publish_per_s: DEFAULT_MQTT_MAX_PUBLISH_PER_S,
            reconnect_max_ms: DEFAULT_MQTT_RECONNECT_MAX_MS,
            tls: None,
            credentials: None,
        }
    }
}

/// The `[influx]` table: readings as line protocol over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxConfig {
    /// Base URL of the server (`http://host:8086`).
    pub url: String,
    /// Which write API, with its target and credentials.
    pub api: InfluxApi,
    /// Lines per write request at most.
    pub batch_max_lines: usize,
    /// Time a partial batch waits for more lines.
    pub batch_max_wait_ms: u64,
    /// Whether bodies are gzip-compressed.
    pub gzip: bool,
    /// Time one request may take.
    pub timeout_ms: u64,
    /// Longest wait between retries.
    pub retry_max_ms: u64,
    /// Where refused lines go, with the server's message. `None`: beside the
    /// outbox, `dead-letter-influx.lp`.
    pub dead_letter_file: Option<PathBuf>,
}

/// `api = "v2"` or `"v1"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfluxApi {
    /// `POST /api/v2/write?org=&bucket=&precision=ms` with a token
    /// (InfluxDB 1.8+, 2.x, 3.x and compatible servers).
    V2 {
        /// Organisation.
        org: String,
        /// Bucket.
        bucket: String,
        /// File holding the API token (first line), if the server needs one.
        token_file: Option<PathBuf>,
    },
    /// `POST /write?db=&rp=&precision=ms` with basic auth (InfluxDB 1.x).
    V1 {
        /// Database.
        db: String,
        /// Retention policy, if not the default.
        rp: Option<String>,
        /// User name and the file holding the password.
        credentials: Option<(String, PathBuf)>,
    },
}

/// Lines per InfluxDB write when the config names none (InfluxData's advice: 5,000).
pub const DEFAULT_INFLUX_BATCH_LINES: usize = 5_000;
/// Time a partial batch waits for more lines.
pub const DEFAULT_INFLUX_BATCH_WAIT_MS: u64 = 1_000;

/// The `[outbox]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Folder of the outbox, resolved against the config file's folder.
    /// `None` (no `dir` given): a temporary folder removed at exit, so
    /// nothing survives a restart; the gateway warns about it.
    pub dir: Option<PathBuf>,
    /// Time between syncs to disk.
    pub fsync_interval_ms: u64,
    /// Size cap in bytes.
    pub max_bytes: u64,
    /// Age cap in seconds, if any.
    pub max_age_s: Option<u64>,
    /// Segment file size.
    pub segment_bytes: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            dir: None,
            fsync_interval_ms: DEFAULT_FSYNC_INTERVAL_MS,
            max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
            max_age_s: None,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

impl OutboxConfig {
    /// The outbox's options in `dir`.
    pub fn options(&self, dir: PathBuf) -> crate::outbox::OutboxOptions {
        crate::outbox::OutboxOptions {
            dir,
            segment_bytes: self.segment_bytes,
            max_bytes: self.max_bytes,
            max_age_ms: self
                .max_age_s
                .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        }
    }

    /// [`Self::fsync_interval_ms`] as a duration.
    pub fn fsync_interval(&self) -> Duration {
        Duration::from_millis(self.fsync_interval_ms)
    }
}

/// One `[[devices]]` entry, with its profile resolved.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Unique within the gateway; one MQTT topic level.
    pub id: DeviceId,
    /// The device's register map.
    pub profile: Arc<Profile>,
    /// How to reach it.
    pub transport: Transport,
    /// Time between the starts of two polls.
    pub poll_interval_ms: u64,
    /// Time the device has to answer one request (and to accept a connection).
    pub timeout_ms: u64,
    /// Longest wait between retries while the device is unreachable.
    pub retry_max_ms: u64,
    /// Consecutive failed polls before a `device_offline` event.
    pub offline_after_failures: u32,
    /// Unused registers a single read may bridge (from the profile unless set).
    pub max_gap_registers: u16,
    /// Report by exception (`max_silence_ms` set): when readings go out.
    /// `None`: every poll's readings go out.
    pub report: Option<crate::devices::report::ReportPolicy>,
    /// Building stamped on the device's readings.
    pub building: Option<String>,
    /// Flat or unit the device meters, stamped on its readings.
    pub unit: Option<String>,
}

impl DeviceConfig {
    /// [`Self::poll_interval_ms`] as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// [`Self::timeout_ms`] as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// [`Self::retry_max_ms`] as a duration.
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms)
    }
}

/// How a device is reached. One variant per `protocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `protocol = "modbus_tcp"`.
    ModbusTcp {
        /// Device (or TCP-to-RTU gateway) host.
        host: String,
        /// TCP port.
        port: u16,
        /// Modbus unit id.
        unit_id: u8,
    },
    /// `protocol = "dlt645"`: a DL/T 645-2007 meter on a serial line.
    Dlt645 {
        /// The serial port (`/dev/ttyUSB0`); meters naming the same port
        /// share it, one request at a time.
        serial_port: PathBuf,
        /// Line speed; the line is 8 data bits, even parity, 1 stop bit.
        baud: u32,
        /// The meter's 12-digit address.
        address: gridwatch_dlt645::Address,
        /// 1 or 3: whether phases B and C are read too.
        phases: u8,
        /// `FEH` bytes sent before each request to wake the meter.
        wake_up: u8,
    },
    /// `protocol = "cjt188"`: a CJ/T 188 water, gas or heat meter on a
    /// serial line (docs/cjt188.md).
    Cjt188 {
        /// The serial port; meters naming the same port share it.
        serial_port: PathBuf,
        /// Line speed; the line is 8 data bits, even parity, 1 stop bit.
        baud: u32,
        /// The meter type byte asked for (10H cold water, 30H gas, 20H heat, …).
        meter_type: gridwatch_cjt188::MeterType,
        /// The meter's 14-digit address.
        address: gridwatch_cjt188::Address,
        /// `FEH` bytes sent before each request.
        preamble: u8,
        /// The main register's largest reading in thousandths of its unit
        /// (99999.999 m³: 99 999 999), where the config sets it; kept as
        /// an integer so the transport stays comparable.
        register_max_milli: Option<u64>,
    },
    /// `protocol = "modbus_rtu"`: one unit on an RS-485 bus.
    ModbusRtu {
        /// Id of the `[[buses]]` entry.
        bus: String,
        /// Modbus unit address (1..=247).
        unit_id: u8,
    },
}

impl Transport {
    /// `modbus_tcp 127.0.0.1:5020 unit 1`, for summaries and logs.
    pub fn describe(&self) -> String {
        match self {
            Transport::ModbusTcp {
                host,
                port,
                unit_id,
            } => format!("modbus_tcp {host}:{port} unit {unit_id}"),
            Transport::Dlt645 {
                serial_port,
                baud,
                address,
                ..
            } => format!(
                "dlt645 {} at {baud} baud 8E1, meter {address}",
                serial_port.display()
            ),
            Transport::Cjt188 {
                serial_port,
                baud,
                meter_type,
                address,
                ..
            } => format!(
                "cjt188 {} at {baud} baud 8E1, meter {address} (type {meter_type})",
                serial_port.display()
            ),
            Transport::ModbusRtu { bus, unit_id } => format!("modbus_rtu bus {bus} unit {unit_id}"),
        }
    }
}

/// Why a config cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read gateway config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A value is missing, mistyped or refused; the error names file, line
    /// and field.
    #[error("{0}")]
    Invalid(#[from] FieldError),
    /// A device's profile exists but is itself broken.
    #[error("{at}: {error}")]
    Profile {
        /// `file:line:column: devices[i].profile`, where the device names it.
        at: String,
        /// What is wrong with the profile (naming its own file and line).
        error: ProfileError,
    },
}

impl GatewayConfig {
    /// The identity and `seq` counter of `device`'s messages, counting from
    /// `first_seq`: this gateway, its site, and the device's building (the
    /// gateway's when the device names none).
    pub fn device_stamp(&self, device: &DeviceConfig, first_seq: u64) -> DeviceStamp {
        let stamp = DeviceStamp::new(
            self.gateway.id.clone(),
            self.gateway.site.clone(),
            device
                .building
                .clone()
                .or_else(|| self.gateway.building.clone()),
            device.unit.clone(),
            device.id.clone(),
            first_seq,
        );
        let serial = match &device.transport {
            Transport::Cjt188 { address, .. } => Some(address.to_string()),
            _ => None,
        };
        stamp.with_meter_serial(serial)
    }

    /// The identity and `seq` counter of a tag or plate `reader`'s events,
    /// as [`Self::device_stamp`] (readers have no unit).
    pub fn reader_stamp(
        &self,
        reader: &crate::readers::ReaderConfig,
        first_seq: u64,
    ) -> DeviceStamp {
        DeviceStamp::new(
            self.gateway.id.clone(),
            self.gateway.site.clone(),
            reader
                .building
                .clone()
                .or_else(|| self.gateway.building.clone()),
            None,
            reader.id.clone(),
            first_seq,
        )
    }

    /// Reads and validates the config at `path`. A relative `profiles_dir`
    /// is taken relative to the file's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        raw::build(
            &SourceFile::new(path.display().to_string(), text),
            base,
            &mut ProfileLibrary::built_in(),
        )
    }

    /// Validates config text that did not come from a file (tests, the demo).
    /// `origin` names it in errors; a relative `profiles_dir` is taken
    /// relative to the current directory.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        raw::build(
            &SourceFile::new(origin, text),
            None,
            &mut ProfileLibrary::built_in(),
        )
    }

    /// The bus with id `id`.
    pub fn bus(&self, id: &str) -> Option<&SerialBusConfig> {
        self.buses.iter().find(|b| b.id == id)
    }

    /// The device with id `id`.
    pub fn device(&self, id: &str) -> Option<&DeviceConfig> {
        self.devices.iter().find(|d| d.id.as_str() == id)
    }

    /// The topic scheme under this gateway's prefix.
    pub fn topics(&self) -> gridwatch_telemetry::topic::Topics {
        gridwatch_telemetry::topic::Topics::new(self.mqtt.topic_prefix.clone())
    }
}
