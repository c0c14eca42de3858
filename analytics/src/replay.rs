//! Replays a recording through the pipeline as fast as it can be read: the
//! same detectors, in the same event-time order, as the live service.

use crate::config::AnalyticsConfig;
use crate::pipeline::{FlatMemory, Pipeline, PipelineStats};
use crate::recording::{Record, RecordReader, RecordingError};
use crate::register::Register;
use gridwatch_telemetry::Alert;
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
}

/// Runs every record of `input` through a fresh pipeline.
pub fn replay(
    config: &AnalyticsConfig,
    register: Register,
    input: impl BufRead,
) -> Result<Replay, RecordingError> {
    let started = Instant::now();
    let mut pipeline = Pipeline::with_register(config, register);
    let mut alerts = Vec::new();
    let mut detect_time = Duration::ZERO;
    for record in RecordReader::new(input) {
        let record = record?;
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
        out += &format!("{} alerts\n", self.alerts.len());
        for (rule, count) in by_rule {
            out += &format!("  {rule:<31} {count}\n");
        }
        out
    }
}
