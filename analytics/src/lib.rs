//! Gridwatch analytics: consumes the readings stream from MQTT, runs the
//! detectors and publishes alerts with the numbers that justify them.
//!
//! The modules follow the data: [`ingest`] (MQTT message → [`gridwatch_telemetry::Reading`]),
//! [`detect`] (one module per detector, sans-IO state machines in event
//! time), [`alerts`] (routing to a grid cell, rendering for people, the life
//! cycle, the directory and escalation), [`notify`] (one module per channel),
//! [`store`] (alert cases in SQLite, the single source of truth, and live
//! station state), [`import`] (utilities' meter exports in bulk), [`api`] (the scoped HTTP API) and [`web`] (the
//! dashboard), with [`pipeline`] composing the pure
//! part and [`service`] wiring it to the broker. Configuration is one TOML
//! file ([`config`]), documented in `docs/analytics.md` and
//! `config/analytics.example.toml`.
//!
//! The pipeline needs no broker, which is how tests and replays use it:
//!
//! ```
//! use gridwatch_analytics::{render_alert, AnalyticsConfig, Pipeline};
//! use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};
//!
//! let config = AnalyticsConfig::from_toml_str(
//!     "[[cells.sites]]\nsite = \"yard-a\"\ncell = \"cell-07\"\n",
//!     "inline",
//! )?;
//! let mut pipeline = Pipeline::new(&config);
//! let mut alerts = Vec::new();
//! for s in 0..=10 {
//!     let mut r = Reading::new(Timestamp(s * 1000), "gw-1", "pile-1", DeviceKind::ChargingSocket, s as u64);
//!     r.site = "yard-a".into();
//!     r.socket = Some(3);
//!     r.values.insert("current_a".into(), 7.0);
//!     alerts.extend(pipeline.process(&r));
//! }
//! assert_eq!(alerts.len(), 1); // once per episode, after 5 s above 5.5 A
//! assert_eq!(alerts[0].rule, "socket_overcurrent");
//! assert_eq!(alerts[0].cell, "cell-07");
//! println!("{}", render_alert(&alerts[0]));
//! # Ok::<(), gridwatch_analytics::ConfigError>(())
//! ```
//!
//! The service runs until its shutdown token is cancelled:
//! `gridwatch_analytics::run(config, shutdown).await`.

pub mod alerts;
pub mod api;
pub mod assess;
pub mod checkpoint;
pub mod cli;
pub mod clock_guard;
pub mod cluster;
pub mod command;
pub mod config;
pub mod connection;
pub mod dead_letter;
pub mod detect;
pub mod dispatch;
pub mod entity_quota;
pub mod evaluate;
pub mod explain;
pub mod explain_socket;
pub mod history;
pub mod http;
pub mod i18n;
pub mod import;
pub mod ingest;
pub mod lifecycle;
pub mod live;
pub mod log_budget;
pub mod notify;
pub mod pipeline;
pub mod plausibility;
pub mod recording;
pub mod register;
pub mod renovation;
pub mod replay;
pub mod resume;
pub mod service;
pub mod stats;
pub mod store;
pub mod tips;
pub mod toml_file;
pub mod web;

pub use alerts::render::render_alert;
pub use config::{AnalyticsConfig, ConfigError};
pub use detect::socket_safety::{RULE_OVERCURRENT, RULE_OVERPOWER, RULE_OVERTEMPERATURE};
pub use pipeline::{Pipeline, PipelineStats};
pub use service::{run, run_with, run_with_tap, RunOptions};
