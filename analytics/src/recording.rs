//! Recordings: JSON lines of readings and events, in event-time order, as the
//! district simulator writes them and `gridwatch-analytics replay` reads them.
//!
//! Each line is one object with a single key naming what it holds:
//! `{"reading": {…}}` or `{"event": {…}}`, the inner object being the
//! telemetry JSON of that message (docs/telemetry.md), so a recording can be
//! cut, grepped and fed to other tools line by line.

use gridwatch_telemetry::{Event, Reading};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use thiserror::Error;

/// One line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// A device's measured values.
    Reading(Reading),
    /// Something that happened (a sighting, a device going offline).
    Event(Event),
}

impl Record {
    /// The record's event time.
    pub fn ts(&self) -> gridwatch_telemetry::Timestamp {
        match self {
            Record::Reading(r) => r.ts,
            Record::Event(e) => e.ts,
        }
    }
}

/// A line that could not be read.
#[derive(Debug, Error)]
pub enum RecordingError {
    /// Reading the file failed.
    #[error("cannot read line {line} of the recording: {source}")]
    Io {
        /// 1-based line number.
        line: u64,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The line is not a record.
    #[error("line {line} of the recording is not a reading or event: {source}")]
    Parse {
        /// 1-based line number.
        line: u64,
        /// serde_json's account.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads records one line at a time; blank lines are skipped.
pub struct RecordReader<R> {
    input: R,
    line: u64,
    buf: String,
}

impl<R: BufRead> RecordReader<R> {
    /// A reader over buffered input.
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            buf: String::new(),
        }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = Result<Record, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            self.line += 1;
            match self.input.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) if self.buf.trim().is_empty() => continue,
                Ok(_) => {
                    let line = self.line;
                    return Some(
                        serde_json::from_str(&self.buf)
                            .map_err(|source| RecordingError::Parse { line, source }),
                    );
                }
                Err(source) => {
                    return Some(Err(RecordingError::Io {
                        line: self.line,
                        source,
                    }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::{DeviceKind, EventKind, Timestamp};

    #[test]
    fn records_round_trip_through_lines_and_bad_lines_are_numbered() {
        let mut r = Reading::new(Timestamp(5), "gw", "em-1", DeviceKind::ElectricityMeter, 1);
        r.values.insert("power_w".into(), 120.0);
        let e = Event {
            schema: 1,
            ts: Timestamp(6),
            gateway: "gw".into(),
            site: "s".into(),
            device: "reader-1".into(),
            seq: 1,
            kind: EventKind::Sighting {
                location: "lift_lobby".into(),
                identity: "t1".into(),
                direction: None,
            },
        };
        let text = format!(
            "{}\n\n{}\nnot json\n",
            serde_json::to_string(&Record::Reading(r.clone())).unwrap(),
            serde_json::to_string(&Record::Event(e.clone())).unwrap()
        );
        let got: Vec<_> = RecordReader::new(text.as_bytes()).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap(), &Record::Reading(r));
        assert_eq!(got[1].as_ref().unwrap(), &Record::Event(e));
        let err = got[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
    }
}
