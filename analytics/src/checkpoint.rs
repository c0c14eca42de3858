//! Checkpoints: every detector's state saved to disk, so that a restarted
//! analytics resumes instead of relearning.
//!
//! Group-rental baselines take weeks of readings and a charging session is
//! hours long; before checkpoints a restart (an upgrade, a crash, a power
//! cut) threw all of it away. The live service saves a checkpoint every
//! `[checkpoint] every_s` and on shutdown, and restores it at start; replay
//! can stop and resume from one at a record position with exactly the
//! alerts an uninterrupted run gives (tests/tests/checkpoint_resume.rs).
//!
//! The file is written to a temporary name, synced and renamed, so a crash
//! while saving leaves the previous checkpoint whole. It carries a
//! fingerprint of the detector settings: state built under other
//! thresholds would judge by rules nobody configured, so such a checkpoint
//! is set aside (renamed `*.stale`, with a warning) and detection starts
//! fresh.

use crate::pipeline::PipelineState;
use crate::pipeline::{Pipeline, PipelineConfig};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::{info, warn};

/// The first bytes of every checkpoint file.
const MAGIC: &[u8; 8] = b"GWCKPT1\n";

/// Format version; bumped when [`PipelineState`] changes shape.
pub const FORMAT: u32 = 4;

/// The `[checkpoint]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// The checkpoint file; none means no checkpoints (state is lost on a
    /// restart).
    pub path: Option<PathBuf>,
    /// Seconds between checkpoints. What a kill -9 or power cut loses is
    /// the state learnt in at most this long (the broker does not resend
    /// messages analytics acknowledged).
    pub every_s: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            path: None,
            every_s: 300,
        }
    }
}

impl CheckpointConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), crate::toml_file::FieldError> {
        if self.every_s == 0 {
            return Err(crate::toml_file::FieldError::new(
                "every_s",
                "is 0; give the seconds between checkpoints (default 300)",
            ));
        }
        if let Some(p) = &self.path {
            if p.as_os_str().is_empty() {
                return Err(crate::toml_file::FieldError::new(
                    "path",
                    "is empty; give a file path or leave the key out",
                ));
            }
        }
        Ok(())
    }
}

/// What a checkpoint holds besides the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT`] when it was written.
    pub format: u32,
    /// [`fingerprint`] of the detector settings it was made under.
    pub fingerprint: u64,
    /// When it was written (UTC ms, the host's clock).
    pub saved_at_ms: i64,
    /// How many records (readings and events) the state covers: where a
    /// replay resumes.
    pub position: u64,
}

/// A checkpoint read back.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Its header.
    pub header: Header,
    /// The detectors' state.
    pub state: PipelineState,
}

/// Why a checkpoint could not be used.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// Reading or writing the file failed.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint, or is damaged.
    #[error("checkpoint {path} is damaged or not a checkpoint: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// It was made by another format version or under other detector
    /// settings.
    #[error(
        "checkpoint {path} was made {why}; its state would judge by other rules, so it is set aside"
    )]
    Stale {
        /// The file.
        path: PathBuf,
        /// "by format 0" or "under other [detect] settings".
        why: String,
    },
}

/// A fingerprint of what the saved state depends on: the `[detect]`
/// settings and the device quota (FNV-1a over their JSON form).
pub fn fingerprint(config: impl Into<PipelineConfig>) -> u64 {
    let config = config.into();
    let text = serde_json::to_string(&(&config.detect, config.ingest.max_entities_per_gateway))
        .unwrap_or_default();
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes a checkpoint atomically (temporary file, fsync, rename, fsync of
/// the directory). Returns its size in bytes.
pub fn save(path: &Path, header: &Header, state: &PipelineState) -> Result<u64, CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    };
    let mut bytes = MAGIC.to_vec();
    rmp_serde::encode::write_named(&mut bytes, &(header, state)).map_err(|e| {
        CheckpointError::Damaged {
            path: path.to_owned(),
            reason: format!("could not encode the state: {e}"),
        }
    })?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(bytes.len() as u64)
}

/// Reads the checkpoint at `path`: `Ok(None)` when there is none yet.
pub fn load(
    path: &Path,
    config: impl Into<PipelineConfig>,
) -> Result<Option<Checkpoint>, CheckpointError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        })?;
    let damaged = |reason: String| CheckpointError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| damaged("it does not start with the checkpoint marker".into()))?;
    // The header first, alone, so that an old format is reported as stale
    // rather than as damage.
    let (header, _): (Header, serde::de::IgnoredAny) =
        rmp_serde::from_slice(body).map_err(|e| damaged(e.to_string()))?;
    let stale = |why: String| CheckpointError::Stale {
        path: path.to_owned(),
        why,
    };
    if header.format != FORMAT {
        return Err(stale(format!("by format {}", header.format)));
    }
    if header.fingerprint != fingerprint(config) {
        return Err(stale("under other [detect] settings".into()));
    }
    let (header, state): (Header, PipelineState) =
        rmp_serde::from_slice(body).map_err(|e| damaged(e.to_string()))?;
    Ok(Some(Checkpoint { header, state }))
}

/// Moves a checkpoint that cannot be used out of the way (`*.stale`), so
/// the next save does not destroy what an operator may want to look at.
pub fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let to = path.with_extension("stale");
    std::fs::rename(path, &to)?;
    Ok(to)
}

/// What checkpoints need of the config: where and how often to save, and
/// the pipeline settings the saved state depends on (a state saved under
/// other settings is not resumed). Built by `From<&AnalyticsConfig>` in
/// [`crate::config`].
#[derive(Debug, Clone, Default)]
pub struct CheckpointSettings {
    /// `[checkpoint]`.
    pub checkpoint: CheckpointConfig,
    /// The sections the pipeline's state is built from.
    pub pipeline: PipelineConfig,
}

/// Saves the pipeline's state every `[checkpoint] every_s` and on shutdown.
pub struct Checkpointer {
    path: std::path::PathBuf,
    every: Duration,
    fingerprint: u64,
    last: Instant,
    saved: u64,
    failed: u64,
}

impl Checkpointer {
    /// The checkpointer `[checkpoint]` asks for; none without a path.
    pub fn new(config: impl Into<CheckpointSettings>) -> Option<Self> {
        let config = config.into();
        config.checkpoint.path.clone().map(|path| Self {
            path,
            every: Duration::from_secs(config.checkpoint.every_s),
            fingerprint: fingerprint(config.pipeline),
            last: Instant::now(),
            saved: 0,
            failed: 0,
        })
    }

    /// Whether `every_s` has passed since the last save.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= self.every
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves that failed so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Saves the pipeline's state now; counts the outcome.
    pub fn save(&mut self, pipeline: &Pipeline) -> Result<u64, CheckpointError> {
        self.last = Instant::now();
        let stats = pipeline.stats();
        let header = Header {
            format: FORMAT,
            fingerprint: self.fingerprint,
            saved_at_ms: gridwatch_telemetry::Clock::now(&gridwatch_telemetry::SystemClock).0,
            position: stats.readings + stats.events,
        };
        match save(&self.path, &header, pipeline.state()) {
            Ok(bytes) => {
                self.saved += 1;
                Ok(bytes)
            }
            Err(e) => {
                self.failed += 1;
                Err(e)
            }
        }
    }
}

/// Restores the checkpoint of `config`, if there is one it can use: one
/// made under other settings or damaged is set aside with a warning, since
/// starting fresh is better than not starting; one that cannot be read at
/// all (permissions) stops the start, naming the file.
pub fn restore(
    config: impl Into<CheckpointSettings>,
    pipeline: &mut Pipeline,
) -> anyhow::Result<()> {
    let config = config.into();
    let Some(path) = &config.checkpoint.path else {
        return Ok(());
    };
    match load(path, config.pipeline.clone()) {
        Ok(Some(c)) => {
            info!(
                "resumed from checkpoint {} ({} readings and events, saved at {} ms)",
                path.display(),
                c.header.position,
                c.header.saved_at_ms
            );
            pipeline.restore(c.state);
        }
        Ok(None) => info!(
            "no checkpoint at {} yet; detection starts fresh",
            path.display()
        ),
        Err(e @ (CheckpointError::Stale { .. } | CheckpointError::Damaged { .. })) => {
            let moved = set_aside(path)
                .map_err(|io| anyhow::anyhow!("{e}; and it cannot be moved aside: {io}"))?;
            warn!("{e}; moved to {}, detection starts fresh", moved.display());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AnalyticsConfig;
    use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gw-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn socket(s: i64, a: f64) -> Reading {
        let mut r = Reading::new(
            Timestamp(s * 1000),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            s as u64,
        );
        r.site = "yard-a".into();
        r.socket = Some(1);
        r.values.insert("current_a".into(), a);
        r
    }

    #[test]
    fn a_saved_state_resumes_with_the_same_alerts() {
        let config = AnalyticsConfig::default();
        let path = dir("resume").join("state.ckpt");
        let mut whole = Pipeline::new(&config);
        let mut first = Pipeline::new(&config);
        for s in 0..5 {
            whole.process(&socket(s, 7.0));
            first.process(&socket(s, 7.0));
        }
        let header = Header {
            format: FORMAT,
            fingerprint: fingerprint(&config),
            saved_at_ms: 0,
            position: 5,
        };
        save(&path, &header, first.state()).unwrap();
        drop(first);
        let back = load(&path, &config).unwrap().expect("a checkpoint");
        assert_eq!(back.header, header);
        let mut resumed = Pipeline::new(&config);
        resumed.restore(back.state);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for s in 5..12 {
            a.extend(whole.process(&socket(s, 7.0)));
            b.extend(resumed.process(&socket(s, 7.0)));
        }
        assert!(
            !a.is_empty(),
            "the overcurrent is raised after the restart point"
        );
        assert_eq!(a, b);
    }

    #[test]
    fn other_settings_and_damage_are_refused_by_name() {
        let config = AnalyticsConfig::default();
        let d = dir("stale");
        let path = d.join("state.ckpt");
        assert!(load(&path, &config).unwrap().is_none());
        let p = Pipeline::new(&config);
        let header = Header {
            format: FORMAT,
            fingerprint: fingerprint(&config),
            saved_at_ms: 0,
            position: 0,
        };
        save(&path, &header, p.state()).unwrap();
        let mut other = config.clone();
        other.detect.socket_safety.overcurrent_a += 1.0;
        let e = load(&path, &other).unwrap_err();
        assert!(matches!(e, CheckpointError::Stale { .. }), "{e}");
        assert!(e.to_string().contains("other [detect] settings"), "{e}");
        let moved = set_aside(&path).unwrap();
        assert!(moved.exists() && !path.exists());
        std::fs::write(&path, b"not a checkpoint").unwrap();
        let e = load(&path, &config).unwrap_err();
        assert!(matches!(e, CheckpointError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("state.ckpt"), "{e}");
    }
}
