//! The analytics configuration file: one TOML document, parsed into types once
//! and validated before anything runs.
//!
//! Each section belongs to the component it configures — `[mqtt]` to
//! [`crate::connection`], `[cells]` to [`crate::alerts::route`],
//! `[detect.socket_safety]` to [`crate::detect::socket_safety`] — and is
//! checked there. This module reads the file and turns every failure into one
//! line that names the file, the line and the field, because the person
//! reading it is installing a service, not debugging Rust.

pub mod locate;
pub mod preflight;

use crate::alerts::route::CellsConfig;
use crate::connection::MqttConfig;
use crate::detect::DetectConfig;
use locate::{field_at, locate, position, FieldPath, Position};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Everything `gridwatch-analytics` needs to run. Every field has a default,
/// so an empty file is a valid config that talks to a broker on localhost.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// The broker readings come from and alerts go to.
    pub mqtt: MqttConfig,
    /// What the live service believes (timestamps) and keeps of what it
    /// refuses (the dead-letter file).
    pub ingest: crate::ingest::IngestConfig,
    /// Which grid cell's staff handle the alerts of each site.
    pub cells: CellsConfig,
    /// Detector thresholds.
    pub detect: DetectConfig,
    /// The alert life cycle: cool-downs, acknowledgement times, re-check.
    pub alerts: crate::alerts::lifecycle::AlertsConfig,
    /// Where alert cases are kept (SQLite; in memory without a path).
    pub store: crate::store::StoreConfig,
    /// The directory of cells, sites, staff and users.
    pub directory: crate::alerts::directory::DirectoryConfig,
    /// The HTTP API and dashboard (off unless `listen` is set).
    pub api: crate::api::ApiConfig,
    /// Channels besides MQTT (webhook).
    pub notify: crate::notify::NotifyConfig,
    /// The register of flats and tags (registered occupants, businesses,
    /// tag owners).
    pub register: crate::register::RegisterConfig,
}

/// A config value that is well-formed TOML but not acceptable, with the path
/// of the field relative to the section that found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where the field is, relative to the section being validated.
    pub path: FieldPath,
    /// What is wrong and what is allowed, as a sentence fragment.
    pub message: String,
}

impl FieldError {
    /// An error on the field `key` of the section being validated.
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            path: FieldPath::keys(&[key]),
            message: message.into(),
        }
    }

    /// An error at a longer path.
    pub fn at(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }

    /// The same error seen from an enclosing section.
    pub fn within(self, section: &[&str]) -> Self {
        Self {
            path: FieldPath::keys(section).join(self.path),
            message: self.message,
        }
    }
}

/// Why a config could not be used. Every variant's message is one line that
/// starts with the file (and line, where there is one).
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read analytics config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML, or does not have the expected shape (unknown
    /// key, wrong type).
    #[error("{}", located(origin, *at, field.as_ref(), message))]
    Parse {
        /// The file name or other origin given by the caller.
        origin: String,
        /// Where toml found the problem.
        at: Option<Position>,
        /// The field concerned, where it could be worked out.
        field: Option<FieldPath>,
        /// toml's account of the problem.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("{}", located(origin, *at, Some(field), message))]
    Invalid {
        /// The file name or other origin given by the caller.
        origin: String,
        /// Where the field (or, if it took its default, its table) is written.
        at: Option<Position>,
        /// The field concerned.
        field: FieldPath,
        /// What is wrong and what is allowed.
        message: String,
    },
}

fn located(origin: &str, at: Option<Position>, field: Option<&FieldPath>, msg: &str) -> String {
    let mut out = origin.to_owned();
    if let Some(p) = at {
        out.push_str(&format!(":{}:{}", p.line, p.column));
    }
    out.push_str(": ");
    if let Some(f) = field.filter(|f| !f.0.is_empty()) {
        out.push_str(&format!("{f}: "));
    }
    // toml's messages may span lines; the CLI promises one line per error.
    out.push_str(&msg.split_whitespace().collect::<Vec<_>>().join(" "));
    out
}

/// Reads a TOML file's text, or says which file could not be read.
pub(crate) fn read_toml(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses TOML text and checks the result, so that every file Gridwatch
/// analytics reads reports a problem the same way: origin, line and column,
/// and the field's path, whether toml refused the text or `check` refused
/// a value.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    check: impl FnOnce(&T) -> Result<(), FieldError>,
) -> Result<T, ConfigError> {
    let value: T = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start);
        ConfigError::Parse {
            origin: origin.to_owned(),
            at: offset.map(|o| position(text, o)),
            field: offset.and_then(|o| field_at(text, o)),
            message: e.message().to_owned(),
        }
    })?;
    check(&value).map_err(|e| ConfigError::Invalid {
        origin: origin.to_owned(),
        at: locate(text, &e.path),
        field: e.path,
        message: e.message,
    })?;
    Ok(value)
}

impl AnalyticsConfig {
    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        Self::from_toml_str(&read_toml(path)?, &path.display().to_string())
    }

    /// Parses and validates config text; `origin` names it in errors (a file
    /// name, or something like `<inline>` in tests).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        parse_toml(text, origin, Self::check)
    }

    /// Checks a config built in code (tests, the demo) the way a file would be
    /// checked; the error has no line because there is no text.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|e| ConfigError::Invalid {
            origin: "analytics config".to_owned(),
            at: None,
            field: e.path,
            message: e.message,
        })
    }

    fn check(&self) -> Result<(), FieldError> {
        self.mqtt.validate().map_err(|e| e.within(&["mqtt"]))?;
        self.ingest.validate().map_err(|e| e.within(&["ingest"]))?;
        self.cells.validate().map_err(|e| e.within(&["cells"]))?;
        self.detect.validate().map_err(|e| e.within(&["detect"]))?;
        self.alerts.validate().map_err(|e| e.within(&["alerts"]))?;
        self.notify.validate().map_err(|e| e.within(&["notify"]))?;
        self.api.validate().map_err(|e| e.within(&["api"]))?;
        Ok(())
    }
}

/// Checks that a threshold is a finite number above zero.
pub(crate) fn positive(key: &str, value: f64) -> Result<(), FieldError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(FieldError::new(
            key,
            format!("is {value}; it must be a number above 0"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        AnalyticsConfig::from_toml_str(text, "analytics.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = AnalyticsConfig::from_toml_str("", "empty.toml").unwrap();
        assert_eq!(c, AnalyticsConfig::default());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let e = err("[mqtt]\nport = 1883\n\n[detect.socket_safety]\novercurent_a = 6.0\n");
        assert!(e.starts_with("analytics.toml:5:"), "{e}");
        assert!(e.contains("detect.socket_safety.overcurent_a"), "{e}");
        assert!(e.contains("overcurrent_a"), "should list valid keys: {e}");
    }

    #[test]
    fn wrong_type_names_file_line_and_field() {
        let e = err("[detect.socket_safety]\nclear_s = 30\novertemp_c = \"hot\"\n");
        assert!(e.starts_with("analytics.toml:3:"), "{e}");
        assert!(e.contains("detect.socket_safety.overtemp_c"), "{e}");
    }

    #[test]
    fn invalid_value_names_file_line_and_field() {
        let e = err("[detect.socket_safety]\n\nclear_ratio = 1.5\n");
        assert!(
            e.starts_with("analytics.toml:3:1: detect.socket_safety.clear_ratio"),
            "{e}"
        );
    }

    #[test]
    fn invalid_array_element_names_its_index() {
        let e = err("[[cells.sites]]\nsite = \"yard-a\"\ncell = \"c1\"\n[[cells.sites]]\nsite = \"yard-b\"\ncell = \"cell/7\"\n");
        assert!(
            e.starts_with("analytics.toml:6:1: cells.sites[1].cell"),
            "{e}"
        );
    }

    #[test]
    fn api_limits_out_of_range_name_the_field() {
        let e = err("[api]\nmax_connections = 0\n");
        assert!(
            e.starts_with("analytics.toml:2:1: api.max_connections"),
            "{e}"
        );
        assert!(e.contains("use 1 to 65536"), "{e}");
        let e = err("[api]\nheader_timeout_ms = 5\n");
        assert!(e.contains("api.header_timeout_ms"), "{e}");
        let e = err("[api]\nrequest_timeout_ms = 99999999\n");
        assert!(e.contains("api.request_timeout_ms"), "{e}");
    }

    #[test]
    fn syntax_error_is_one_line_with_a_position() {
        let e = err("[mqtt\nport = 1\n");
        assert!(e.starts_with("analytics.toml:1:"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = AnalyticsConfig::load("/nonexistent/analytics.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/analytics.toml"), "{e}");
    }
}
