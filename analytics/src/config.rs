//! The analytics configuration file: one TOML document, parsed into types once
//! and validated before anything runs.
//!
//! Each section belongs to the component it configures — `[mqtt]` to
//! [`crate::connection`], `[cells]` to [`crate::alerts::route`],
//! `[detect.socket_safety]` to [`crate::detect::socket_safety`] — and is
//! checked there. This module reads the file and turns every failure into one
//! line that names the file, the line and the field, because the person
//! reading it is installing a service, not debugging Rust.

pub mod preflight;

pub use crate::toml_file::locate;
pub use crate::toml_file::{ConfigError, FieldError};

use crate::alerts::route::CellsConfig;
use crate::connection::MqttConfig;
use crate::detect::DetectConfig;
use crate::toml_file::{parse_toml, read_toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    pub alerts: crate::lifecycle::AlertsConfig,
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
    /// Where and how often every detector's state is saved, so that a
    /// restart resumes instead of relearning.
    pub checkpoint: crate::checkpoint::CheckpointConfig,
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
        self.checkpoint
            .validate()
            .map_err(|e| e.within(&["checkpoint"]))?;
        self.cells.validate().map_err(|e| e.within(&["cells"]))?;
        self.detect.validate().map_err(|e| e.within(&["detect"]))?;
        self.alerts.validate().map_err(|e| e.within(&["alerts"]))?;
        self.notify.validate().map_err(|e| e.within(&["notify"]))?;
        self.api.validate().map_err(|e| e.within(&["api"]))?;
        let store_key = if self.store.url.is_some() {
            "url"
        } else {
            "password_file"
        };
        self.store
            .validate()
            .map_err(|m| FieldError::new(store_key, m).within(&["store"]))?;
        Ok(())
    }
}

// The sections each component is built from. The components define what
// they need; only this module knows where it sits in the file.

impl From<&AnalyticsConfig> for crate::pipeline::PipelineConfig {
    fn from(c: &AnalyticsConfig) -> Self {
        Self {
            detect: c.detect.clone(),
            cells: c.cells.clone(),
            ingest: c.ingest.clone(),
        }
    }
}

impl From<&AnalyticsConfig> for crate::checkpoint::CheckpointSettings {
    fn from(c: &AnalyticsConfig) -> Self {
        Self {
            checkpoint: c.checkpoint.clone(),
            pipeline: c.into(),
        }
    }
}

impl From<&AnalyticsConfig> for crate::dispatch::CasesConfig {
    fn from(c: &AnalyticsConfig) -> Self {
        Self {
            alerts: c.alerts.clone(),
            group: c.notify.group.clone(),
        }
    }
}

impl From<&AnalyticsConfig> for crate::notify::ChannelSettings {
    fn from(c: &AnalyticsConfig) -> Self {
        Self {
            notify: c.notify.clone(),
            utc_offset_min: c.detect.utc_offset_min,
        }
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
    fn a_store_with_both_a_path_and_a_url_names_file_line_and_field() {
        let e = err("[store]\npath = \"/var/lib/a.db\"\nurl = \"postgres://g@db/city\"\n");
        assert!(e.starts_with("analytics.toml:3:"), "{e}");
        assert!(e.contains("store.url") && e.contains("both `path`"), "{e}");
        let e = err("[store]\nurl = \"mysql://g@db/city\"\n");
        assert!(e.contains("not a PostgreSQL url"), "{e}");
        let ok = "[store]\nurl = \"postgresql://g@db:5433/city\"\npassword_file = \"/etc/pw\"\n";
        assert!(AnalyticsConfig::from_toml_str(ok, "a.toml").is_ok());
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
