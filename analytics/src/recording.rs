//! Recordings: JSON lines of readings and events, in event-time order, as the
//! district simulator writes them and `gridwatch-analytics replay` reads them.
//!
//! Each line is one object with a single key naming what it holds:
//! `{"reading": {…}}` or `{"event": {…}}`, the inner object being the
//! telemetry JSON of that message (docs/telemetry.md), so a recording can be
//! cut, grepped and fed to other tools line by line.
//!
//! The inner object is decoded with the live telemetry codec
//! ([`gridwatch_telemetry::codec::decode`]), schema check included: a
//! message that the live service would refuse (`"schema": 2`, a `null`
//! value) is refused here too, so replay never sees what live cannot.

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
    #[error("line {line} of the recording is not a reading or event: {reason}")]
    Parse {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it (the codec's or serde_json's account).
        reason: String,
    },
}

impl RecordingError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> u64 {
        match self {
            RecordingError::Io { line, .. } | RecordingError::Parse { line, .. } => *line,
        }
    }
}

/// Decodes one line: `{"reading": {…}}` or `{"event": {…}}`, the inner
/// object through the live codec. Lines as the simulator writes them are cut
/// by text (no second parse); any other spacing goes through a JSON object.
pub fn decode_line(line: &str) -> Result<Record, String> {
    use gridwatch_telemetry::codec::decode;
    let t = line.trim();
    let inner = |prefix: &str| {
        t.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('}'))
            .map(str::as_bytes)
    };
    if let Some(body) = inner(r#"{"reading":"#) {
        return decode::<Reading>(body)
            .map(Record::Reading)
            .map_err(|e| e.to_string());
    }
    if let Some(body) = inner(r#"{"event":"#) {
        return decode::<Event>(body)
            .map(Record::Event)
            .map_err(|e| e.to_string());
    }
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(t).map_err(|e| e.to_string())?;
    let mut entries = map.into_iter();
    let (key, value) = match (entries.next(), entries.next()) {
        (Some(kv), None) => kv,
        _ => return Err("expected one key, \"reading\" or \"event\"".to_owned()),
    };
    let body = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    match key.as_str() {
        "reading" => decode::<Reading>(&body).map(Record::Reading),
        "event" => decode::<Event>(&body).map(Record::Event),
        other => {
            return Err(format!(
                "unknown key {other:?}, expected \"reading\" or \"event\""
            ))
        }
    }
    .map_err(|e| e.to_string())
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
                        decode_line(&self.buf)
                            .map_err(|reason| RecordingError::Parse { line, reason }),
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

    /// The live codec refuses a newer schema; so must replay (a `"schema":2`
    /// reading once raised `meter_reversed` in replay that live never saw).
    #[test]
    fn a_newer_schema_is_refused_as_live_refuses_it() {
        let mut r = Reading::new(Timestamp(5), "gw", "em-1", DeviceKind::ElectricityMeter, 1);
        r.values.insert("energy_kwh".into(), 3.0);
        r.schema = 2;
        let compact = serde_json::to_string(&Record::Reading(r.clone())).unwrap();
        let spaced = serde_json::to_string_pretty(&Record::Reading(r)).unwrap();
        for text in [compact, spaced.replace('\n', " ")] {
            let got: Vec<_> = RecordReader::new(text.as_bytes()).collect();
            let err = got[0].as_ref().unwrap_err().to_string();
            assert!(err.contains("schema version 2"), "{err}");
        }
        // Schema 1 with other spacing still reads.
        let ok = r#"{ "reading" : {"schema":1,"ts":5,"gateway":"gw","site":"s","device":"em-1","kind":"electricity_meter","seq":1,"values":{"energy_kwh":3.0}} }"#;
        let got: Vec<_> = RecordReader::new(ok.as_bytes()).collect();
        assert!(got[0].is_ok(), "{:?}", got[0]);
    }
}
