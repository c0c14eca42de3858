//! The register of flats and e-bike tags: what the housing office knows and
//! the meters do not — how many people are registered in each flat, its floor
//! area, whether a business is registered there, and which flat an e-bike tag
//! was registered to.
//!
//! Detectors use it to normalise use per registered occupant (group rental),
//! to suppress known explanations (a registered business) and to tie a tag
//! sighting at a lift to a flat (indoor charging). It is data, read from a
//! JSON file once; a flat missing from it is still watched, without the
//! per-occupant norms.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The `[register]` section of the analytics config: where the running
/// service finds the register (replay and evaluate take `--register`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// The register file (JSON, see docs/analytics.md). Without it group
    /// rental assumes `[detect.group_rental] default_occupants` for every
    /// flat and a lift sighting names its reader, not a flat.
    pub path: Option<PathBuf>,
}

/// One flat of the register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatEntry {
    /// `site/building/unit`, as readings name it (see [`flat_key`]).
    pub flat: String,
    /// People registered as living there.
    pub occupants: u8,
    /// Floor area.
    #[serde(default)]
    pub area_m2: f32,
    /// A business is registered at this address (suppresses group-rental alerts).
    #[serde(default)]
    pub business: bool,
}

/// One registered e-bike tag or plate (already pseudonymised by the gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagEntry {
    /// The identity as sightings carry it.
    pub identity: String,
    /// The owner's flat, `site/building/unit`.
    pub flat: String,
}

/// One utility meter of the register: how a utility's export names a flat.
/// `gridwatch-analytics import readings` matches each row to a flat by the
/// meter number, the utility account or the standard address (标准地址),
/// whichever the source's mapping says it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterEntry {
    /// The meter number as the utility prints it.
    pub meter: String,
    /// The flat, `site/building/unit`.
    pub flat: String,
    /// The utility's account number, when exports carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The platform's standard address of the flat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The register file's contents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFile {
    /// Flats.
    #[serde(default)]
    pub flats: Vec<FlatEntry>,
    /// E-bike tags.
    #[serde(default)]
    pub tags: Vec<TagEntry>,
    /// Utility meters (optional; older files have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meters: Vec<MeterEntry>,
}

impl RegisterFile {
    /// Reads a register JSON file as written (the importer needs its meters,
    /// which the indexed [`Register`] does not keep).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RegisterError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| RegisterError::Read {
            path: name.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| RegisterError::Parse { path: name, source })
    }
}

/// Why a register could not be read.
#[derive(Debug, Error)]
pub enum RegisterError {
    /// The file could not be read.
    #[error("cannot read register {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a register.
    #[error("register {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// serde_json's account, with line and column.
        #[source]
        source: serde_json::Error,
    },
}

/// What a flat's register entry says, compactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatFacts {
    /// Registered occupants (at least 1).
    pub occupants: u8,
    /// Floor area, 0 when unknown.
    pub area_m2: f32,
    /// A registered business.
    pub business: bool,
}

/// The register, indexed for lookups.
#[derive(Debug, Clone, Default)]
pub struct Register {
    flats: HashMap<String, FlatFacts>,
    tags: HashMap<String, String>,
}

impl Register {
    /// Flats and tags registered, for a start-up line.
    pub fn counts(&self) -> (usize, usize) {
        (self.flats.len(), self.tags.len())
    }

    /// Reads a register JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RegisterError> {
        Ok(Self::from_file(RegisterFile::load(path)?))
    }

    /// Indexes a register built in code.
    pub fn from_file(file: RegisterFile) -> Self {
        Self {
            flats: file
                .flats
                .into_iter()
                .map(|f| {
                    let facts = FlatFacts {
                        occupants: f.occupants.max(1),
                        area_m2: f.area_m2,
                        business: f.business,
                    };
                    (f.flat, facts)
                })
                .collect(),
            tags: file
                .tags
                .into_iter()
                .map(|t| (t.identity, t.flat))
                .collect(),
        }
    }

    /// The register entry of a flat, if it has one.
    pub fn flat(&self, flat: &str) -> Option<FlatFacts> {
        self.flats.get(flat).copied()
    }

    /// The flat a tag is registered to.
    pub fn tag_owner(&self, identity: &str) -> Option<&str> {
        self.tags.get(identity).map(String::as_str)
    }

    /// Flats in the register.
    pub fn flat_count(&self) -> usize {
        self.flats.len()
    }
}

/// The flat a meter reading belongs to: `site/building/unit`, or `None` when
/// the reading is not bound to a unit.
pub fn flat_key(r: &gridwatch_telemetry::Reading) -> Option<String> {
    let unit = r.unit.as_deref()?;
    let building = r.building.as_deref().unwrap_or("");
    Some(format!("{}/{building}/{unit}", r.site))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_by_flat_and_tag_and_occupants_at_least_one() {
        let r = Register::from_file(RegisterFile {
            flats: vec![FlatEntry {
                flat: "s/b/101".into(),
                occupants: 0,
                area_m2: 60.0,
                business: false,
            }],
            tags: vec![TagEntry {
                identity: "t1".into(),
                flat: "s/b/101".into(),
            }],
            meters: Vec::new(),
        });
        assert_eq!(r.flat("s/b/101").map(|f| f.occupants), Some(1));
        assert_eq!(r.tag_owner("t1"), Some("s/b/101"));
        assert!(r.flat("s/b/102").is_none());
    }

    #[test]
    fn a_bad_register_file_names_the_file() {
        let dir = std::env::temp_dir().join(format!("gw-register-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("register.json");
        std::fs::write(&p, "{\"flats\": [{\"flat\": 3}]}").unwrap();
        let e = Register::load(&p).unwrap_err().to_string();
        assert!(e.contains("register.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_register_without_meters_still_reads() {
        let file: RegisterFile =
            serde_json::from_str(r#"{"flats": [{"flat": "s/b/1", "occupants": 2}]}"#).unwrap();
        assert!(file.meters.is_empty());
        let text = serde_json::to_string(&file).unwrap();
        assert!(!text.contains("meters"), "{text}");
    }
}
