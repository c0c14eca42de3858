//! The register the running service holds, replaced whole when its file
//! changes, without a restart.
//!
//! Readers take an `Arc` of the register in force and keep using it for as
//! long as they need it; a reload swaps in a new one for the next reader.
//! A file that fails to read (half written, invalid) keeps the register in
//! force, and the failure is counted and logged with the file's own error.

use super::{Register, RegisterError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// A register shared by the pipeline, the charts and the dashboard.
#[derive(Debug, Clone, Default)]
pub struct SharedRegister {
    inner: Arc<RwLock<Arc<Register>>>,
}

impl SharedRegister {
    /// Shares `register`.
    pub fn new(register: Register) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(register))),
        }
    }

    /// The register in force now.
    pub fn get(&self) -> Arc<Register> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `register` in force for every later reader; returns it shared,
    /// for holders that keep their own handle (the pipeline).
    pub fn set(&self, register: Register) -> Arc<Register> {
        let new = Arc::new(register);
        match self.inner.write() {
            Ok(mut g) => *g = new.clone(),
            Err(poisoned) => *poisoned.into_inner() = new.clone(),
        }
        new
    }
}

/// What a look at the register file found.
#[derive(Debug)]
pub enum Reload {
    /// The file has not changed since it was last read.
    Unchanged,
    /// It changed and was read: the new register, to put in force.
    Changed(Register),
    /// It changed but could not be read; the register in force stays.
    Failed(RegisterError),
}

/// Watches the register file's modification time and size.
#[derive(Debug)]
pub struct RegisterWatch {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
    /// Reloads that put a new register in force.
    pub reloads: u64,
    /// Changed files that could not be read.
    pub failures: u64,
}

impl RegisterWatch {
    /// A watch on `path`, taking its current state as already read.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            seen: stamp(path),
            reloads: 0,
            failures: 0,
        }
    }

    /// The file watched.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks whether the file changed and re-reads it if so.
    pub fn check(&mut self) -> Reload {
        let now = stamp(&self.path);
        if now == self.seen || now.is_none() {
            // Unchanged, or gone for the moment (being replaced by a
            // rename): keep what is in force and look again later.
            return Reload::Unchanged;
        }
        self.seen = now;
        match Register::load(&self.path) {
            Ok(r) => {
                self.reloads += 1;
                Reload::Changed(r)
            }
            Err(e) => {
                self.failures += 1;
                Reload::Failed(e)
            }
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::register::{FlatEntry, RegisterFile};

    fn file(occupants: u8) -> RegisterFile {
        RegisterFile {
            flats: vec![FlatEntry::new("s/b/101", occupants)],
            ..Default::default()
        }
    }

    #[test]
    fn a_changed_file_is_read_and_a_broken_one_keeps_the_register_in_force() {
        let dir = std::env::temp_dir().join(format!("gw-register-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("register.json");
        file(2).save(&p).unwrap();
        let shared = SharedRegister::new(Register::load(&p).unwrap());
        let mut watch = RegisterWatch::new(&p);
        assert!(matches!(watch.check(), Reload::Unchanged));
        // A different size is a change even within the file system's
        // timestamp granularity.
        let mut f = file(8);
        f.flats[0].since = Some("2026-12-01".into());
        f.save(&p).unwrap();
        match watch.check() {
            Reload::Changed(r) => {
                shared.set(r);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(shared.get().flat("s/b/101").unwrap().occupants, 8);
        std::fs::write(&p, "{\"flats\": [{\"flat\": 3}]}").unwrap();
        match watch.check() {
            Reload::Failed(e) => assert!(e.to_string().contains("register.json"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(shared.get().flat("s/b/101").unwrap().occupants, 8);
        assert_eq!((watch.reloads, watch.failures), (1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
