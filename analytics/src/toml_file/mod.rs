//! Reading TOML files and reporting what is wrong with them: the file, the
//! line and column, and the path of the field, in one line a person can act
//! on. Every file analytics reads (its config, the directory of staff, the
//! register, scenarios) goes through here, and every component validates its
//! own section with [`FieldError`].
//!
//! This module is a leaf: it knows nothing of the components, so each of them
//! can report a field error without depending on the whole configuration.

pub mod locate;

use locate::{field_at, locate, position, FieldPath, Position};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The exit status of a command that stopped on a file it could not use
/// (config, directory, register), as every `gridwatch-analytics` command
/// reports it, so scripts can tell a bad file from a failed run.
pub const EXIT_CONFIG: u8 = 2;

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
pub fn read_toml(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses TOML text and checks the result, so that every file Gridwatch
/// analytics reads reports a problem the same way: origin, line and column,
/// and the field's path, whether toml refused the text or `check` refused
/// a value.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
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

/// Checks that a threshold is a finite number above zero.
pub fn positive(key: &str, value: f64) -> Result<(), FieldError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(FieldError::new(
            key,
            format!("is {value}; it must be a number above 0"),
        ))
    }
}
