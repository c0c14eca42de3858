//! Replays a recording through the pipeline as fast as it can be read: the
//! same detectors, in the same event-time order, as the live service.
//!
//! A line that cannot be read (an unknown event `type` or device `kind`, a
//! `null` value, a fractional `ts`, a newer schema) is counted and reported
//! by line number while replay goes on, as the live service counts and skips
//! such messages; [`ReplayOptions::strict`] stops at the first instead.

use crate::config::AnalyticsConfig;
use crate::pipeline::{FlatMemory, Pipeline, PipelineStats};
use crate::recording::{Record, RecordReader, RecordingError};
use crate::register::Register;
use gridwatch_telemetry::Alert;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::BufRead;
use std::time::{Duration, Instant};

/// What a replay did.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Every alert raised, in order.
    pub alerts: Vec<Alert>,
    /// The pipeline's counters.
    pub stats: PipelineStats,
    /// Memory held for flats at the end.
    pub memory: FlatMemory,
    /// Wall time, reading and parsing included.
    pub elapsed: Duration,
    /// Of which in the detectors.
    pub detect_time: Duration,
    /// Lines that could not be read and were skipped.
    pub malformed: u64,
    /// The first [`MALFORMED_KEPT`] of them: (line number, why).
    pub malformed_lines: Vec<(u64, String)>,
    /// Every device seen, `site/gateway/device` (what an episode case's
    /// entity must name, besides its socket suffix).
    pub devices: HashSet<String>,
}

/// How many malformed lines a replay keeps for its report (all are counted).
pub const MALFORMED_KEPT: usize = 20;

/// How to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Stop at the first unreadable line (an error naming it) instead of
    /// counting it and going on.
    pub strict: bool,
}

/// Runs every record of `input` through a fresh pipeline, skipping (and
/// counting) unreadable lines; only a failure to read the input stops it.
pub fn replay(
    config: &AnalyticsConfig,
    register: Register,
    input: impl BufRead,
) -> Result<Replay, RecordingError> {
    replay_with(config, register, input, ReplayOptions::default())
}

/// Runs every record of `input` through a fresh pipeline, as `options` say.
pub fn replay_with(
    config: &AnalyticsConfig,
    register: Register,
    input: impl BufRead,
    options: ReplayOptions,
) -> Result<Replay, RecordingError> {
    let started = Instant::now();
    let mut pipeline = Pipeline::with_register(config, register);
    let mut alerts = Vec::new();
    let mut detect_time = Duration::ZERO;
    let mut malformed = 0u64;
    let mut malformed_lines = Vec::new();
    let mut devices: HashSet<String> = HashSet::new();
    let mut key = String::new();
    for record in RecordReader::new(input) {
        let record = match record {
            Ok(r) => r,
            Err(e @ RecordingError::Io { .. }) => return Err(e),
            Err(e) if options.strict => return Err(e),
            Err(e) => {
                malformed += 1;
                if malformed_lines.len() < MALFORMED_KEPT {
                    let why = match &e {
                        RecordingError::Parse { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    malformed_lines.push((e.line(), why));
                }
                continue;
            }
        };
        if let Record::Reading(r) = &record {
            key.clear();
            let _ = write!(
                key,
                "{}/{}/{}",
                r.site.as_str(),
                r.gateway.as_str(),
                r.device.as_str()
            );
            if !devices.contains(&key) {
                devices.insert(key.clone());
            }
        }
        let t = Instant::now();
        match &record {
            Record::Reading(r) => alerts.extend(pipeline.process(r)),
            Record::Event(e) => alerts.extend(pipeline.process_event(e)),
        }
        detect_time += t.elapsed();
    }
    Ok(Replay {
        alerts,
        stats: pipeline.stats(),
        memory: pipeline.flat_memory(),
        elapsed: started.elapsed(),
        detect_time,
        malformed,
        malformed_lines,
        devices,
    })
}

impl Replay {
    /// Records (readings and events) per second of wall time.
    pub fn records_per_s(&self) -> f64 {
        (self.stats.readings + self.stats.events) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A few lines for a person.
    pub fn describe(&self) -> String {
        let mut by_rule: std::collections::BTreeMap<&str, u64> = Default::default();
        for a in &self.alerts {
            *by_rule.entry(a.rule.as_str()).or_default() += 1;
        }
        let n = self.stats.readings + self.stats.events;
        let mut out = format!(
            "replayed {} readings and {} events in {:.2} s ({:.0} records/s; detectors alone {:.0} records/s)\n",
            self.stats.readings,
            self.stats.events,
            self.elapsed.as_secs_f64(),
            self.records_per_s(),
            n as f64 / self.detect_time.as_secs_f64().max(1e-9)
        );
        out += &format!(
            "flat state: {} flats, {} bytes, {:.0} bytes per flat\n",
            self.memory.flats,
            self.memory.bytes,
            self.memory.per_flat()
        );
        let flats = self.memory.flats.max(1) as f64;
        let parts: Vec<String> = FlatMemory::DETECTORS
            .iter()
            .zip(self.memory.by_detector)
            .map(|(name, b)| format!("{name} {:.0}", b as f64 / flats))
            .collect();
        out += &format!("  bytes per flat by detector: {}\n", parts.join(", "));
        if self.malformed > 0 {
            out += &format!(
                "{} malformed lines skipped (--strict stops at the first):\n",
                self.malformed
            );
            for (line, why) in &self.malformed_lines {
                out += &format!("  line {line}: {why}\n");
            }
            if self.malformed > self.malformed_lines.len() as u64 {
                out += &format!(
                    "  … and {} more\n",
                    self.malformed - self.malformed_lines.len() as u64
                );
            }
        }
        if self.stats.repeats > 0 {
            out += &format!(
                "{} deliveries repeated (same device and seq) dropped, each judged once\n",
                self.stats.repeats
            );
        }
        out += &format!("{} alerts\n", self.alerts.len());
        for (rule, count) in by_rule {
            out += &format!("  {rule:<31} {count}\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Record;
    use gridwatch_telemetry::{DeviceKind, Reading, Timestamp};

    fn line(seq: u64) -> String {
        let mut r = Reading::new(
            Timestamp(seq as i64 * 60_000),
            "gw",
            "em-1",
            DeviceKind::ElectricityMeter,
            seq,
        );
        r.values.insert("energy_kwh".into(), seq as f64);
        serde_json::to_string(&Record::Reading(r)).unwrap()
    }

    /// One odd message in a capture must not cost the whole replay: each
    /// kind of unreadable line is counted and named by its line number.
    #[test]
    fn malformed_lines_are_counted_by_line_and_replay_goes_on() {
        let bad = [
            // An event of unknown type.
            r#"{"event":{"schema":1,"ts":5,"gateway":"gw","site":"s","device":"r","seq":1,"type":"teleported"}}"#.to_owned(),
            // An unknown device kind.
            line(2).replace("electricity_meter", "steam_meter"),
            // A null value.
            line(3).replace(r#""energy_kwh":3"#, r#""energy_kwh":null"#),
            // A fractional timestamp.
            line(4).replace("240000", "240000.5"),
        ];
        let mut text = format!("{}\n", line(1));
        for b in &bad {
            assert!(
                !text.contains(b.as_str()),
                "each corruption changes its line"
            );
            text += b;
            text.push('\n');
        }
        text += &line(5);
        text.push('\n');
        let c = AnalyticsConfig::default();
        let r = replay(&c, Register::default(), text.as_bytes()).unwrap();
        assert_eq!(r.stats.readings, 2);
        assert_eq!(r.malformed, 4);
        let lines: Vec<u64> = r.malformed_lines.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(r.describe().contains("line 3:"), "{}", r.describe());
        assert!(r.devices.contains("/gw/em-1"), "{:?}", r.devices);
        // --strict stops at the first, naming it.
        let err = replay_with(
            &c,
            Register::default(),
            text.as_bytes(),
            ReplayOptions { strict: true },
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
