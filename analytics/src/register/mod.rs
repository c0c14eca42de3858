//! The register of flats and e-bike tags: what the housing office knows and
//! the meters do not — how many people are registered in each flat, its floor
//! area, whether a business is registered there, and which flat an e-bike tag
//! was registered to.
//!
//! Detectors use it to normalise use per registered occupant (group rental),
//! to suppress known explanations (a registered business) and to tie a tag
//! sighting at a lift to a flat (indoor charging). A flat missing from it is
//! still watched, without the per-occupant norms.
//!
//! The register changes: people register and leave, a flat is sublet. Each
//! flat entry may carry `since`, the first local date it is in force, and a
//! flat may have several entries: its history. Detectors judge each day
//! against the entry in force that day ([`Register::flat_on`]), and an alert
//! names the entry it was judged on, so a later change never rewrites why
//! an earlier alert was raised. The running service re-reads the file when
//! it changes ([`shared`]); `gridwatch-analytics import register` merges the
//! platform's CSV exports into it (docs/import.md).

pub mod dates;
pub mod shared;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The `[register]` section of the analytics config: where the running
/// service finds the register (replay and evaluate take `--register`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegisterConfig {
    /// The register file (JSON, see docs/analytics.md). Without it group
    /// rental assumes `[detect.group_rental] default_occupants` for every
    /// flat and a lift sighting names its reader, not a flat.
    pub path: Option<PathBuf>,
    /// How often the running service looks whether the file changed, and
    /// re-reads it if so (0: never; the register then stays as read at
    /// start). A file that fails to read keeps the register in force.
    pub reload_check_s: u64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        Self {
            path: None,
            reload_check_s: 10,
        }
    }
}

/// One flat of the register.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// The first local date (`YYYY-MM-DD`) this entry is in force; absent:
    /// in force from the beginning. Several entries of one flat with
    /// different dates are its history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The platform's standard address (标准地址).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The landlord, as the platform's id (never a name: the register
    /// holds no personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landlord: Option<String>,
    /// Who sublets it (二房东), as the platform's id, when someone does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sublandlord: Option<String>,
    /// The grid cell (网格) responsible for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// The community or village (社区/村).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// The street (街道).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// The town (镇).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub town: Option<String>,
}

impl FlatEntry {
    /// The local day `since` names (`None`: in force from the beginning),
    /// or why it is not a date. The register file and the import's streamed
    /// check refuse the same entries with the same words.
    pub(crate) fn since_day(&self) -> Result<Option<i32>, String> {
        self.since
            .as_deref()
            .map(|d| {
                dates::parse_date(d).ok_or_else(|| {
                    format!("flat {}: since {d:?} is not a date (YYYY-MM-DD)", self.flat)
                })
            })
            .transpose()
    }

    /// Why a second entry of this flat for the same date is refused.
    pub(crate) fn duplicate_error(&self) -> String {
        format!(
            "flat {} has two entries {}",
            self.flat,
            self.since
                .as_deref()
                .map_or("without a date".to_owned(), |d| format!("since {d}"))
        )
    }

    /// An entry in force from the beginning, with nothing but the facts the
    /// detectors read.
    pub fn new(flat: &str, occupants: u8) -> Self {
        Self {
            flat: flat.to_owned(),
            occupants,
            area_m2: 0.0,
            business: false,
            since: None,
            address: None,
            landlord: None,
            sublandlord: None,
            cell: None,
            community: None,
            street: None,
            town: None,
        }
    }

    /// The same registration, whatever its date: what decides whether a
    /// re-import changed anything.
    pub fn same_facts(&self, other: &FlatEntry) -> bool {
        let mut a = self.clone();
        a.since.clone_from(&other.since);
        a == *other
    }
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
        let file: Self = serde_json::from_slice(&text).map_err(|source| RegisterError::Parse {
            path: name.clone(),
            source,
        })?;
        file.check()
            .map_err(|reason| RegisterError::Invalid { path: name, reason })?;
        Ok(file)
    }

    /// Every `since` is a date and no flat has two entries for one date.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for f in &self.flats {
            let day = f.since_day()?;
            if !seen.insert((f.flat.as_str(), day)) {
                return Err(f.duplicate_error());
            }
        }
        Ok(())
    }

    /// Writes the file whole and atomically (a temp file beside it, synced,
    /// renamed), so a service re-reading it never sees half a register.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, self)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
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
    /// The file reads but says something impossible.
    #[error("register {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, naming the flat.
        reason: String,
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
    /// The local day (days since 1970-01-01) the entry is in force from;
    /// `None`: from the beginning.
    pub since_day: Option<i32>,
}

impl FlatFacts {
    /// The entry's date for people, `since 2026-12-01` or `(undated)`.
    pub fn since_label(&self) -> String {
        self.since_day.map_or("(undated)".to_owned(), |d| {
            format!("since {}", dates::format_day(d))
        })
    }
}

/// The register, indexed for lookups.
#[derive(Debug, Clone, Default)]
pub struct Register {
    /// Each flat's entries, oldest first (undated first).
    flats: HashMap<String, Vec<FlatEntry>>,
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

    /// Indexes a register built in code. Of two entries of one flat for
    /// one date (which [`RegisterFile::check`] refuses on load) the later
    /// one is kept.
    pub fn from_file(file: RegisterFile) -> Self {
        let mut flats: HashMap<String, Vec<FlatEntry>> = HashMap::new();
        for f in file.flats {
            let day = since_day(&f);
            let entries = flats.entry(f.flat.clone()).or_default();
            entries.retain(|e| since_day(e) != day);
            entries.push(f);
        }
        for entries in flats.values_mut() {
            entries.sort_by_key(|e| since_day(e).unwrap_or(i32::MIN));
        }
        Self {
            flats,
            tags: file
                .tags
                .into_iter()
                .map(|t| (t.identity, t.flat))
                .collect(),
        }
    }

    /// The flat's latest register entry, if it has one.
    pub fn flat(&self, flat: &str) -> Option<FlatFacts> {
        self.flats.get(flat)?.last().map(facts)
    }

    /// The flat's entry in force on local `day` (days since 1970-01-01):
    /// the latest one dated no later. `None` when the flat has no entry, or
    /// none yet on that day (it was not registered then).
    pub fn flat_on(&self, flat: &str, day: i32) -> Option<FlatFacts> {
        self.flats
            .get(flat)?
            .iter()
            .rev()
            .find(|e| since_day(e).is_none_or(|d| d <= day))
            .map(facts)
    }

    /// The flat whose latest entry has this standard address (trimmed, and
    /// full-width spaces ignored), or whose key it is: how a tip-off's
    /// place is tied to a flat. A linear scan: tips are rare.
    pub fn flat_by_address(&self, address: &str) -> Option<&str> {
        let norm = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).collect() };
        let wanted = norm(address);
        if wanted.is_empty() {
            return None;
        }
        if let Some((k, _)) = self.flats.get_key_value(wanted.as_str()) {
            return Some(k.as_str());
        }
        self.flats.iter().find_map(|(k, entries)| {
            let e = entries.last()?;
            (e.address.as_deref().map(norm).as_deref() == Some(wanted.as_str()))
                .then_some(k.as_str())
        })
    }

    /// Every entry of the flat, oldest first: its register history.
    pub fn history(&self, flat: &str) -> &[FlatEntry] {
        self.flats.get(flat).map_or(&[], Vec::as_slice)
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

fn since_day(e: &FlatEntry) -> Option<i32> {
    e.since.as_deref().and_then(dates::parse_date)
}

fn facts(e: &FlatEntry) -> FlatFacts {
    FlatFacts {
        occupants: e.occupants.max(1),
        area_m2: e.area_m2,
        business: e.business,
        since_day: since_day(e),
    }
}

/// The flat a meter reading belongs to: `site/building/unit`, or `None` when
/// the reading is not bound to a unit.
pub fn flat_key(r: &gridwatch_telemetry::Reading) -> Option<String> {
    let unit = r.unit.as_deref()?;
    let building = r.building.as_deref().unwrap_or("");
    let site = r.site.as_str();
    // Built by hand: this runs for every reading in several detectors, and
    // `format!` took about a tenth of a replay's time (docs/BENCHMARKS.md).
    let mut key = String::with_capacity(site.len() + building.len() + unit.len() + 2);
    key.push_str(site);
    key.push('/');
    key.push_str(building);
    key.push('/');
    key.push_str(unit);
    Some(key)
}

#[cfg(test)]
mod history_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_by_flat_and_tag_and_occupants_at_least_one() {
        let r = Register::from_file(RegisterFile {
            flats: vec![FlatEntry {
                area_m2: 60.0,
                ..FlatEntry::new("s/b/101", 0)
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
