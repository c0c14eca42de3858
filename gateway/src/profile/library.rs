//! Finding a profile by model name: files in an optional directory first,
//! then the copies built into the binary.
//!
//! The built-in copies are the files in `config/devices/`, compiled in with
//! `include_str!`, so an installed gateway works from any directory without
//! shipping the folder. A `profiles_dir` in the gateway config adds models and
//! overrides built-in ones of the same name, so a site can fix a vendor's
//! quirk without a new build.

use super::{Profile, ProfileError};
use crate::toml_file::list;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Profiles compiled into the binary: (model, TOML text).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "chint-dtsu666",
        include_str!("../../../config/devices/chint-dtsu666.toml"),
    ),
    (
        "eastron-sdm120",
        include_str!("../../../config/devices/eastron-sdm120.toml"),
    ),
    (
        "eastron-sdm630",
        include_str!("../../../config/devices/eastron-sdm630.toml"),
    ),
    (
        "generic-holding",
        include_str!("../../../config/devices/generic-holding.toml"),
    ),
    (
        "gridwatch-ebp12",
        include_str!("../../../config/devices/gridwatch-ebp12.toml"),
    ),
    (
        "gridwatch-flat-em",
        include_str!("../../../config/devices/gridwatch-flat-em.toml"),
    ),
    (
        "gridwatch-flat-gm",
        include_str!("../../../config/devices/gridwatch-flat-gm.toml"),
    ),
    (
        "gridwatch-flat-wm",
        include_str!("../../../config/devices/gridwatch-flat-wm.toml"),
    ),
    (
        "panametrics-gf868",
        include_str!("../../../config/devices/panametrics-gf868.toml"),
    ),
    (
        "tuf-2000m",
        include_str!("../../../config/devices/tuf-2000m.toml"),
    ),
];

/// Looks profiles up by model name and keeps each one parsed once.
#[derive(Debug, Default)]
pub struct ProfileLibrary {
    dir: Option<PathBuf>,
    loaded: HashMap<String, Arc<Profile>>,
}

impl ProfileLibrary {
    /// Only the built-in profiles.
    pub fn built_in() -> Self {
        Self::default()
    }

    /// Profiles in `dir` (files `<model>.toml`), then the built-in ones.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            loaded: HashMap::new(),
        }
    }

    /// The override directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The profile for `model`, parsed and validated.
    pub fn get(&mut self, model: &str) -> Result<Arc<Profile>, ProfileError> {
        if let Some(p) = self.loaded.get(model) {
            return Ok(p.clone());
        }
        let profile = Arc::new(self.load(model)?);
        self.loaded.insert(model.to_owned(), profile.clone());
        Ok(profile)
    }

    fn load(&self, model: &str) -> Result<Profile, ProfileError> {
        // Model names are checked ids (no '/'), so joining cannot escape the directory.
        let valid_name = gridwatch_telemetry::ids::validate_id(model).is_ok();
        if let (Some(dir), true) = (&self.dir, valid_name) {
            let path = dir.join(format!("{model}.toml"));
            if path.is_file() {
                let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::Read {
                    path: path.clone(),
                    source,
                })?;
                return Ok(Profile::from_toml_str(
                    &text,
                    &path.display().to_string(),
                    Some(model),
                )?);
            }
        }
        match BUILT_IN.iter().find(|(name, _)| *name == model) {
            Some((name, text)) => Ok(Profile::from_toml_str(
                text,
                &format!("built-in config/devices/{name}.toml"),
                Some(name),
            )?),
            None => Err(ProfileError::Unknown {
                name: model.to_owned(),
                known: list(self.known()),
            }),
        }
    }

    /// Every model name this library can load, sorted.
    pub fn known(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = BUILT_IN.iter().map(|(n, _)| n.to_string()).collect();
        if let Some(entries) = self.dir.as_ref().and_then(|d| std::fs::read_dir(d).ok()) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "toml") {
                    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                        names.insert(stem.to_owned());
                    }
                }
            }
        }
        names.into_iter().collect()
    }
}
