//! The Gridwatch building gateway: polls field devices and streams their
//! readings to MQTT.
//!
//! A reading's path through this crate follows the module list: a
//! device's [`profile`] (its register map as data) says what to read; a
//! [`bus`] carries reads to a device; [`devices`] plan the reads, decode the
//! words and stamp [`Reading`](gridwatch_telemetry::Reading)s and
//! [`Event`](gridwatch_telemetry::Event)s, and tag [`readers`] turn scans into
//! events; both queue them to the durable [`outbox`]; the [`uplink`]s publish
//! from it, along with the gateway's retained [`status`]. The [`config`]
//! reads the file and hands each component its section; [`run`] wires it all
//! together; the `gridwatch-gateway` binary ([`cli`]) is a thin shell around
//! it. docs/architecture.md draws the picture.
//!
//! ```no_run
//! use gridwatch_gateway::GatewayConfig;
//! use gridwatch_telemetry::SystemClock;
//! use std::sync::Arc;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let config = GatewayConfig::from_toml_str(r#"
//!     [gateway]
//!     id = "gw-yard-a"
//!     site = "yard-a"
//!     [mqtt]
//!     host = "127.0.0.1"
//!     port = 1883
//!     [[devices]]
//!     id = "pile-1"
//!     profile = "gridwatch-ebp12"
//!     protocol = "modbus_tcp"
//!     host = "127.0.0.1"
//!     port = 5020
//!     poll_interval_ms = 1000
//! "#, "demo")?;
//! let shutdown = CancellationToken::new();
//! let gateway = tokio::spawn(gridwatch_gateway::run(config, Arc::new(SystemClock), shutdown.clone()));
//! // ... readings arrive on gw/yard-a/gw-yard-a/reading/pile-1 ...
//! shutdown.cancel();
//! gateway.await??;
//! # Ok(()) }
//! ```

// In the order a reading flows; each module imports only those above it
// (scripts/check-module-cycles checks it).
pub mod bus;
pub mod cli;
pub mod clock_sync;
pub mod command;
pub mod config;
mod daemon;
pub mod devices;
pub mod edge;
pub mod metrics;
pub mod net;
pub mod outbox;
pub mod profile;
pub mod pseudonym;
pub mod readers;
pub mod remote;
pub mod scan;
pub mod sd_notify;
pub mod status;
pub mod supervisor;
pub mod toml_file;
pub mod uplink;

pub use config::{ConfigError, GatewayConfig};
pub use daemon::run;
pub use profile::{Profile, ProfileLibrary};
