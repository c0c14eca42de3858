//! Where remote configs are kept on the gateway: `current/` (the last one
//! that survived its grace period), `previous/` (the one before it) and
//! `trial/` (one being tried). Each folder holds `gateway.toml`, its
//! `profiles/`, the `version` and the signed `bundle.json` as received.
//!
//! A config becomes `current` only by renaming its folder, so a power cut
//! leaves either the old or the new one in place, never half of each. A
//! `trial/` found at start is a trial the gateway did not live through; it
//! is discarded.

use super::bundle::Bundle;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The config file's name in each folder.
pub const CONFIG_FILE: &str = "gateway.toml";

/// The folder of remote configs (`[remote] dir`).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A stored config: its version and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The version it was signed with.
    pub version: u64,
    /// Its `gateway.toml`.
    pub config_file: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

impl Store {
    /// The store in `dir`, created if missing (mode 0700: configs name
    /// secret files).
    pub fn open(dir: &Path) -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("create", dir, e))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn slot(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The current config, if one was applied and kept.
    pub fn current(&self) -> Option<Stored> {
        self.read("current")
    }

    /// The config before the current one, if any.
    pub fn previous(&self) -> Option<Stored> {
        self.read("previous")
    }

    fn read(&self, name: &str) -> Option<Stored> {
        let slot = self.slot(name);
        let version = std::fs::read_to_string(slot.join("version"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Stored {
            version,
            config_file: slot.join(CONFIG_FILE),
        })
    }

    /// Removes a trial left by a gateway that stopped during it; returns
    /// its version if there was one.
    pub fn discard_trial(&self) -> Option<u64> {
        let version = self.read("trial").map(|s| s.version);
        let _ = std::fs::remove_dir_all(self.slot("trial"));
        version
    }

    /// Writes `bundle` (and the `envelope` it came in) to `trial/` and
    /// returns its config file, to be checked and tried.
    pub fn stage(&self, bundle: &Bundle, envelope: &[u8]) -> Result<PathBuf, String> {
        let trial = self.slot("trial");
        let _ = std::fs::remove_dir_all(&trial);
        let profiles = trial.join("profiles");
        std::fs::create_dir_all(&profiles).map_err(|e| io("create", &profiles, e))?;
        for (name, text) in &bundle.profiles {
            write_synced(&profiles.join(name), text.as_bytes())?;
        }
        write_synced(&trial.join(CONFIG_FILE), bundle.config.as_bytes())?;
        write_synced(&trial.join("bundle.json"), envelope)?;
        // The version last: a trial without one is incomplete and never read.
        write_synced(
            &trial.join("version"),
            format!("{}\n", bundle.version).as_bytes(),
        )?;
        Ok(trial.join(CONFIG_FILE))
    }

    /// Makes the trial current, and the current one previous.
    pub fn promote(&self) -> Result<(), String> {
        let (trial, current, previous) = (
            self.slot("trial"),
            self.slot("current"),
            self.slot("previous"),
        );
        if current.exists() {
            let _ = std::fs::remove_dir_all(&previous);
            std::fs::rename(&current, &previous).map_err(|e| io("keep", &current, e))?;
        }
        std::fs::rename(&trial, &current).map_err(|e| io("keep", &trial, e))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = std::fs::File::create(path).map_err(|e| io("write", path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(version: u64) -> Bundle {
        Bundle {
            version,
            config: format!("# v{version}\n"),
            profiles: [("m.toml".to_owned(), "x".to_owned())].into(),
        }
    }

    #[test]
    fn promoting_keeps_the_one_before_as_previous() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("remote")).unwrap();
        assert_eq!(store.current(), None);
        store.stage(&bundle(1), b"{}").unwrap();
        store.promote().unwrap();
        let file = store.stage(&bundle(2), b"{}").unwrap();
        assert!(file.parent().unwrap().join("profiles/m.toml").is_file());
        store.promote().unwrap();
        assert_eq!(store.current().unwrap().version, 2);
        assert_eq!(store.previous().unwrap().version, 1);
        let text = std::fs::read_to_string(store.current().unwrap().config_file).unwrap();
        assert_eq!(text, "# v2\n");
    }

    #[test]
    fn a_discarded_trial_never_becomes_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.stage(&bundle(5), b"{}").unwrap();
        assert_eq!(store.discard_trial(), Some(5));
        assert_eq!(store.discard_trial(), None);
        assert_eq!(store.current(), None);
    }
}
