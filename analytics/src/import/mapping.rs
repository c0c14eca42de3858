//! A source's mapping file: how one utility's export names its columns,
//! dates and units, so that a new export format is a TOML file, not code
//! (docs/import.md; examples in `config/imports/`).

use serde::{Deserialize, Serialize};
use std::path::Path;
use thiserror::Error;

/// A mapping file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Names the export stream in the store; (source, time, meter) is a
    /// reading's key, so two mappings of one utility stream share it.
    pub source: String,
    /// What the meters measure.
    pub kind: Kind,
    /// The file's character encoding.
    #[serde(default)]
    pub encoding: Encoding,
    /// The field separator, one character (`"\t"` for tab).
    #[serde(default = "comma")]
    pub delimiter: String,
    /// The first line names the columns.
    #[serde(default = "yes")]
    pub header: bool,
    /// Which column ties a row to a flat through the register.
    #[serde(default)]
    pub match_by: MatchBy,
    /// The unit of the value column when no `columns.unit` gives it per row.
    #[serde(default)]
    pub unit: Option<String>,
    /// Where each field is.
    pub columns: Columns,
    /// How the time column is written.
    #[serde(default)]
    pub timestamp: TimestampFormat,
    /// Quality-flag values that mark a reading as estimated or failed; the
    /// reading is stored with the flag, not rejected.
    #[serde(default)]
    pub quality_bad: Vec<String>,
}

fn comma() -> String {
    ",".into()
}

fn yes() -> bool {
    true
}

/// What a source's meters measure; fixes the stored unit (kWh or m³).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// kWh.
    Electricity,
    /// m³.
    Water,
    /// m³.
    Gas,
}

impl Kind {
    /// The name stored with the source.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Electricity => "electricity",
            Kind::Water => "water",
            Kind::Gas => "gas",
        }
    }
}

/// Character encodings utilities' exports come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Encoding {
    /// UTF-8 (a byte-order mark is skipped).
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// GBK, as Chinese Excel and most utility systems write CSV.
    #[serde(rename = "gbk")]
    Gbk,
}

/// The register key a row is matched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchBy {
    /// The register's `meters[].meter`.
    #[default]
    Meter,
    /// The register's `meters[].account`.
    Account,
    /// The register's `meters[].address` (the standard address).
    Address,
}

/// A column: its header name, or its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    /// 1 is the first column.
    Number(usize),
    /// As the header row writes it.
    Name(String),
}

/// The `[columns]` table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    /// The meter number (required: it is part of a reading's key).
    pub meter: Option<Column>,
    /// The utility account.
    pub account: Option<Column>,
    /// The standard address.
    pub address: Option<Column>,
    /// The reading's date or date and time.
    pub timestamp: Option<Column>,
    /// A cumulative register value.
    pub register: Option<Column>,
    /// Use in the interval ending at the timestamp.
    pub interval: Option<Column>,
    /// The value's unit, per row.
    pub unit: Option<Column>,
    /// The utility's quality flag.
    pub quality: Option<Column>,
}

/// The `[timestamp]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimestampFormat {
    /// `%Y %m %d %H %M %S` and literal characters; a missing day is the
    /// 1st, a missing time is local midnight.
    pub format: String,
    /// The exports' local time, `+08:00` by default.
    pub utc_offset: String,
}

impl Default for TimestampFormat {
    fn default() -> Self {
        Self {
            format: "%Y-%m-%d".into(),
            utc_offset: "+08:00".into(),
        }
    }
}

/// Why a mapping cannot be used.
#[derive(Debug, Error)]
pub enum MappingError {
    /// The file could not be read.
    #[error("cannot read mapping {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("mapping {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// toml's account, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// Parsed, but inconsistent.
    #[error("mapping {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Self, MappingError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: name.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &name)
    }

    /// Parses and checks a mapping; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, MappingError> {
        let m: Mapping = toml::from_str(text).map_err(|source| MappingError::Parse {
            path: origin.to_owned(),
            source,
        })?;
        m.check().map_err(|reason| MappingError::Invalid {
            path: origin.to_owned(),
            reason,
        })?;
        Ok(m)
    }

    /// The delimiter as one byte (checked by [`Mapping::load`]).
    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter.as_bytes().first().copied().unwrap_or(b',')
    }

    fn check(&self) -> Result<(), String> {
        if self.source.trim().is_empty() {
            return Err("`source` is empty".into());
        }
        if self.delimiter.len() != 1 || self.delimiter == "\"" {
            return Err(format!(
                "`delimiter` must be one ASCII character other than '\"', not {:?}",
                self.delimiter
            ));
        }
        let c = &self.columns;
        if c.meter.is_none() {
            return Err("`columns.meter` is required (a reading is keyed by its meter)".into());
        }
        if c.timestamp.is_none() {
            return Err("`columns.timestamp` is required".into());
        }
        if c.register.is_some() == c.interval.is_some() {
            return Err("give exactly one of `columns.register` and `columns.interval`".into());
        }
        let key = match self.match_by {
            MatchBy::Meter => &c.meter,
            MatchBy::Account => &c.account,
            MatchBy::Address => &c.address,
        };
        if key.is_none() {
            return Err(format!(
                "`match_by = \"{}\"` needs that column in `[columns]`",
                serde_plain(self.match_by)
            ));
        }
        for col in [
            &c.meter,
            &c.account,
            &c.address,
            &c.timestamp,
            &c.register,
            &c.interval,
            &c.unit,
            &c.quality,
        ]
        .into_iter()
        .flatten()
        {
            match col {
                Column::Number(0) => return Err("column numbers start at 1".into()),
                Column::Name(n) if !self.header => {
                    return Err(format!(
                        "column {n:?} is named but `header = false`; use its number"
                    ))
                }
                _ => {}
            }
        }
        match (&self.unit, &c.unit) {
            (None, None) => return Err("give `unit` or `columns.unit`".into()),
            (Some(u), _) => {
                crate::import::row::unit_factor(self.kind, u)
                    .ok_or_else(|| format!("unit {u:?} is not a unit of {}", self.kind.as_str()))?;
            }
            _ => {}
        }
        crate::import::row::TimeFormat::compile(&self.timestamp.format)?;
        crate::import::row::parse_offset(&self.timestamp.utc_offset)?;
        Ok(())
    }
}

fn serde_plain(m: MatchBy) -> &'static str {
    match m {
        MatchBy::Meter => "meter",
        MatchBy::Account => "account",
        MatchBy::Address => "address",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "source = \"s\"\nkind = \"electricity\"\nunit = \"kWh\"\n[columns]\nmeter = \"m\"\ntimestamp = \"t\"\nregister = \"v\"\n";

    #[test]
    fn a_minimal_mapping_takes_the_defaults() {
        let m = Mapping::from_toml_str(MIN, "min").unwrap();
        assert_eq!(m.encoding, Encoding::Utf8);
        assert_eq!(m.delimiter_byte(), b',');
        assert_eq!(m.timestamp.utc_offset, "+08:00");
    }

    #[test]
    fn a_unit_of_another_kind_is_refused() {
        let text = MIN.replace("kWh", "m3");
        let e = Mapping::from_toml_str(&text, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("not a unit of electricity"),
            "{e}"
        );
    }

    #[test]
    fn register_and_interval_together_are_refused() {
        let text = format!("{MIN}interval = \"w\"\n");
        let e = Mapping::from_toml_str(&text, "x").unwrap_err().to_string();
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn matching_by_account_needs_an_account_column() {
        let text = MIN.replace("unit = \"kWh\"", "unit = \"kWh\"\nmatch_by = \"account\"");
        let e = Mapping::from_toml_str(&text, "x").unwrap_err().to_string();
        assert!(e.contains("match_by"), "{e}");
    }
}
