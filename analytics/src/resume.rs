//! A replay that survives a kill -9 and resumes where its checkpoint is.
//!
//! A long replay (months of a district, an import) killed halfway must not
//! start over, and must not write an alert twice or lose one. So
//! [`replay_resumable`] writes every alert, as it is raised, to an *alert
//! log* (JSON lines naming the record each came after), and every
//! `every_records` records syncs that log and saves a checkpoint
//! ([`crate::checkpoint`]) with the detectors' state and the position. Run
//! again with the same files, it restores the checkpoint, cuts from the
//! alert log whatever came after the checkpoint's position (those alerts,
//! and a line torn by the kill, are raised again by the resumed run), skips
//! the records the checkpoint covers and goes on. The log then holds exactly
//! the alerts of an uninterrupted run: none doubled, none missed
//! (tests/tests/checkpoint_resume.rs kills a replay with SIGKILL to show it).

use crate::checkpoint::{self, CheckpointError, Header, FORMAT};
use crate::config::AnalyticsConfig;
use crate::pipeline::Pipeline;
use crate::recording::{Record, RecordReader, RecordingError};
use crate::register::Register;
use gridwatch_telemetry::Alert;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One line of the alert log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedAlert {
    /// How many records had been read when it was raised: a resumed run
    /// keeps it only if its checkpoint covers that many.
    pub after_record: u64,
    /// The alert.
    pub alert: Alert,
}

/// The two files a resumable replay keeps.
#[derive(Debug, Clone)]
pub struct ResumeFiles {
    /// The checkpoint (state and position).
    pub checkpoint: PathBuf,
    /// The alert log (JSON lines of [`LoggedAlert`]).
    pub alert_log: PathBuf,
}

/// What a resumable replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resumed {
    /// Records the checkpoint covered at start (0 for a fresh run).
    pub resumed_at: u64,
    /// Records read in all, the skipped ones included.
    pub records: u64,
    /// Alerts in the log at the end.
    pub alerts: u64,
    /// Alert log lines cut at start: raised after the checkpoint, or torn.
    pub cut: u64,
}

impl Resumed {
    /// A few lines for the person who ran it.
    pub fn describe(&self, files: &ResumeFiles) -> String {
        let start = if self.resumed_at == 0 {
            "started from the first record".to_owned()
        } else {
            format!(
                "resumed after record {} from {} ({} alert log lines raised after it cut)",
                self.resumed_at,
                files.checkpoint.display(),
                self.cut
            )
        };
        format!(
            "{start}\n{} records read, {} alerts in {}\n",
            self.records,
            self.alerts,
            files.alert_log.display()
        )
    }
}

/// Why a resumable replay stopped.
#[derive(Debug, Error)]
pub enum ResumeError {
    /// The recording could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The checkpoint could not be read or saved.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The alert log could not be read or written.
    #[error("alert log {}: {source}", path.display())]
    AlertLog {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}

fn log_err(path: &Path) -> impl Fn(io::Error) -> ResumeError + '_ {
    move |source| ResumeError::AlertLog {
        path: path.to_owned(),
        source,
    }
}

/// Replays `input` from where the checkpoint in `files` left off (the
/// start, without one), saving a checkpoint every `every_records` records
/// (at least 1) and at the end. The records before the checkpoint's
/// position are read and skipped, so `input` must be the same recording.
pub fn replay_resumable(
    config: &AnalyticsConfig,
    register: Register,
    input: impl BufRead,
    files: &ResumeFiles,
    every_records: u64,
) -> Result<Resumed, ResumeError> {
    let every = every_records.max(1);
    let mut pipeline = Pipeline::with_register(config, register);
    let resumed_at = match checkpoint::load(&files.checkpoint, config)? {
        Some(c) => {
            pipeline.restore(c.state);
            c.header.position
        }
        None => 0,
    };
    let (mut alerts, cut) = cut_alert_log(&files.alert_log, resumed_at)?;
    let path = files.alert_log.as_path();
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(log_err(path))?;
    let save = |log: &File, pipeline: &Pipeline, position: u64| -> Result<(), ResumeError> {
        // The alerts the checkpoint covers reach the disk before it does.
        log.sync_data().map_err(log_err(path))?;
        let header = Header {
            format: FORMAT,
            fingerprint: checkpoint::fingerprint(config),
            saved_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            position,
        };
        checkpoint::save(&files.checkpoint, &header, pipeline.state())?;
        Ok(())
    };
    let mut n = 0u64;
    let mut line = Vec::new();
    for record in RecordReader::new(input) {
        n += 1;
        if n <= resumed_at {
            if let Err(e @ RecordingError::Io { .. }) = record {
                return Err(e.into());
            }
            continue;
        }
        let raised = match record {
            Ok(Record::Reading(r)) => pipeline.process(&r),
            Ok(Record::Event(e)) => pipeline.process_event(&e),
            Err(e @ RecordingError::Io { .. }) => return Err(e.into()),
            // Counted and skipped, as `replay` does.
            Err(_) => Vec::new(),
        };
        for alert in raised {
            line.clear();
            serde_json::to_writer(
                &mut line,
                &LoggedAlert {
                    after_record: n,
                    alert,
                },
            )
            .map_err(|e| log_err(path)(io::Error::other(e)))?;
            line.push(b'\n');
            // One write per line, unbuffered: a kill leaves whole lines and
            // at most one torn line, never a lost alert before the checkpoint.
            log.write_all(&line).map_err(log_err(path))?;
            alerts += 1;
        }
        if n.is_multiple_of(every) {
            save(&log, &pipeline, n)?;
        }
    }
    if n > resumed_at {
        save(&log, &pipeline, n)?;
    }
    Ok(Resumed {
        resumed_at,
        records: n,
        alerts,
        cut,
    })
}

/// Reads an alert log back (whole lines that parse), e.g. to compare runs.
pub fn read_alert_log(path: &Path) -> Result<Vec<LoggedAlert>, ResumeError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(log_err(path)(e)),
    };
    let mut out = Vec::new();
    for l in BufReader::new(f).lines() {
        let l = l.map_err(log_err(path))?;
        if let Ok(a) = serde_json::from_str::<LoggedAlert>(&l) {
            out.push(a);
        }
    }
    Ok(out)
}

/// Keeps in the alert log only the whole lines raised at or before
/// `position` (atomically: temporary file, sync, rename). Returns how many
/// are kept and how many were cut.
fn cut_alert_log(path: &Path, position: u64) -> Result<(u64, u64), ResumeError> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(log_err(path)(e)),
    };
    let mut kept = Vec::new();
    let (mut n_kept, mut n_cut) = (0u64, 0u64);
    for l in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<LoggedAlert>(l) {
            Ok(a) if a.after_record <= position => {
                kept.extend_from_slice(l);
                kept.push(b'\n');
                n_kept += 1;
            }
            _ => n_cut += 1,
        }
    }
    if n_cut > 0 {
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp).map_err(log_err(&tmp))?;
        f.write_all(&kept).map_err(log_err(&tmp))?;
        f.sync_all().map_err(log_err(&tmp))?;
        fs::rename(&tmp, path).map_err(log_err(path))?;
    }
    Ok((n_kept, n_cut))
}
