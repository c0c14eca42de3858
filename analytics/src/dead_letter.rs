//! The dead-letter file: every message the live service refuses, with its
//! topic and the reason, so that an operator can see what a broken gateway
//! sent without it ever stopping the service.
//!
//! One JSON object per line:
//! `{"received":"2026-12-05T14:00:00.000Z","topic":"gw/s01/gw-1/reading/m1","reason":"…","payload_bytes":10485760,"payload":"{\"ts\":…","payload_truncated":true}`.
//! The payload is kept as text (invalid UTF-8 replaced) up to
//! [`MAX_PAYLOAD_KEPT`] bytes; the file stops growing at its configured size.
//! A write that fails is logged once and counted, never retried in a loop.

use gridwatch_telemetry::Timestamp;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// Bytes of a refused payload kept in the file.
pub const MAX_PAYLOAD_KEPT: usize = 64 * 1024;

#[derive(Serialize)]
struct Line<'a> {
    received: String,
    topic: &'a str,
    reason: &'a str,
    payload_bytes: usize,
    payload: String,
    payload_truncated: bool,
}

/// Where refused messages are written; see the module docs.
#[derive(Debug)]
pub struct DeadLetters {
    path: Option<PathBuf>,
    max_bytes: u64,
    file: Option<File>,
    written_bytes: u64,
    /// Messages refused (written or not).
    refused: u64,
    /// Messages not written (file full, or a write failed).
    not_written: u64,
    failed_once: bool,
}

impl DeadLetters {
    /// A dead-letter file at `path` (none: count only), at most `max_bytes`.
    pub fn new(path: Option<PathBuf>, max_bytes: u64) -> Self {
        Self {
            path,
            max_bytes,
            file: None,
            written_bytes: 0,
            refused: 0,
            not_written: 0,
            failed_once: false,
        }
    }

    /// Messages refused since start.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Refused messages that are not in the file.
    pub fn not_written(&self) -> u64 {
        self.not_written
    }

    /// Records one refused message.
    pub fn record(&mut self, now: Timestamp, topic: &str, reason: &str, payload: &[u8]) {
        self.refused += 1;
        let Some(path) = self.path.clone() else {
            self.not_written += 1;
            return;
        };
        let kept = &payload[..payload.len().min(MAX_PAYLOAD_KEPT)];
        let line = Line {
            received: now.to_rfc3339(),
            topic,
            reason,
            payload_bytes: payload.len(),
            payload: String::from_utf8_lossy(kept).into_owned(),
            payload_truncated: kept.len() < payload.len(),
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            self.not_written += 1;
            return;
        };
        text.push('\n');
        if self.written_bytes + text.len() as u64 > self.max_bytes {
            self.not_written += 1;
            if !self.failed_once {
                self.failed_once = true;
                tracing::warn!(
                    "dead-letter file {} reached its limit of {} bytes ([ingest] dead_letter_max_bytes); refused messages are only counted from now on",
                    path.display(),
                    self.max_bytes
                );
            }
            return;
        }
        if self.file.is_none() {
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(f) => {
                    self.written_bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(f);
                }
                Err(e) => return self.failed(&path, &e),
            }
        }
        if let Some(f) = self.file.as_mut() {
            match f.write_all(text.as_bytes()) {
                Ok(()) => self.written_bytes += text.len() as u64,
                Err(e) => {
                    self.file = None;
                    self.failed(&path, &e);
                }
            }
        }
    }

    fn failed(&mut self, path: &std::path::Path, e: &std::io::Error) {
        self.not_written += 1;
        if !self.failed_once {
            self.failed_once = true;
            tracing::error!(
                "cannot write the dead-letter file {}: {e}; refused messages are only counted",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_message_is_written_with_topic_reason_and_a_cut_payload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dead.jsonl");
        let mut d = DeadLetters::new(Some(path.clone()), 1 << 20);
        let big = vec![b'x'; MAX_PAYLOAD_KEPT + 10];
        d.record(Timestamp(0), "gw/s01/gw-1/reading/m1", "too large", &big);
        d.record(Timestamp(1), "gw/s01/gw-1/reading/m2", "not JSON", b"{no");
        let text = std::fs::read_to_string(&path).expect("file");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["topic"], "gw/s01/gw-1/reading/m1");
        assert_eq!(lines[0]["payload_bytes"], MAX_PAYLOAD_KEPT + 10);
        assert_eq!(lines[0]["payload_truncated"], true);
        assert_eq!(
            lines[0]["payload"].as_str().map(str::len),
            Some(MAX_PAYLOAD_KEPT)
        );
        assert_eq!(lines[1]["reason"], "not JSON");
        assert_eq!(lines[1]["payload"], "{no");
        assert_eq!((d.refused(), d.not_written()), (2, 0));
    }

    #[test]
    fn the_file_stops_at_its_limit_and_counts_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dead.jsonl");
        let mut d = DeadLetters::new(Some(path.clone()), 300);
        for i in 0..10 {
            d.record(Timestamp(i), "t", "r", &[b'y'; 100]);
        }
        let size = std::fs::metadata(&path).expect("file").len();
        assert!(size <= 300, "{size}");
        assert_eq!(d.refused(), 10);
        assert!(d.not_written() >= 8, "{}", d.not_written());
    }

    #[test]
    fn an_unwritable_path_is_counted_not_fatal() {
        let mut d = DeadLetters::new(Some(PathBuf::from("/nonexistent-dir/dead.jsonl")), 1000);
        d.record(Timestamp(0), "t", "r", b"x");
        d.record(Timestamp(1), "t", "r", b"x");
        assert_eq!((d.refused(), d.not_written()), (2, 2));
    }
}
