//! `gridwatch-analytics explain`: why the charger signature did or did not
//! fire for one flat.
//!
//! Replays a recording through the same [`IndoorCharging`] detector the
//! service runs, feeding it only the chosen flat's electricity readings (its
//! state is per flat, so what it decides is exactly what it decides in a full
//! replay) and every sighting, with a trace sink attached. Each decision comes
//! out in the site's local time with the numbers that decided it: "21:14
//! candidate started +183 W; 21:40 re-anchored; 23:02 ended: plateau under
//! 60 min". A miss or a false alarm can then be understood without reading
//! the code.

use crate::config::AnalyticsConfig;
use crate::detect::indoor_charging::trace::{EndCause, TraceEvent, Verdict};
use crate::detect::indoor_charging::IndoorCharging;
use crate::recording::{Record, RecordReader, RecordingError};
use crate::register::{flat_key, Register};
use gridwatch_telemetry::{DeviceKind, Timestamp};
use serde::Serialize;
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

/// Which entity to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A flat, `site/building/unit` as alerts name it.
    Flat(String),
    /// An electricity meter by device id; explained as the flat it serves.
    Meter(String),
}

/// One traced decision.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The reading's time, ms since the epoch (UTC).
    pub ts_ms: i64,
    /// The same in the site's local time, `YYYY-MM-DD HH:MM`.
    pub local: String,
    /// What was decided, with its numbers.
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// What `explain` found.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The flat explained.
    pub flat: Option<String>,
    /// Its electricity readings seen.
    pub readings: u64,
    /// Every decision, in order.
    pub steps: Vec<Step>,
}

/// Replays `input` and traces the signature detector for `target`.
pub fn explain(
    config: &AnalyticsConfig,
    register: &Register,
    input: impl BufRead,
    target: &Target,
) -> Result<Explanation, RecordingError> {
    let offset_min = config.detect.utc_offset_min;
    let mut detector =
        IndoorCharging::new(&config.detect.indoor_charging, config.detect.local_time());
    let mut flat = match target {
        Target::Flat(f) => Some(f.clone()),
        Target::Meter(_) => None,
    };
    let mut trace: Vec<(Timestamp, TraceEvent)> = Vec::new();
    let mut readings = 0;
    for record in RecordReader::new(input) {
        match record? {
            Record::Reading(r) => {
                if r.kind != DeviceKind::ElectricityMeter {
                    continue;
                }
                if flat.is_none()
                    && matches!(target, Target::Meter(m) if *m == r.device.to_string())
                {
                    flat = flat_key(&r);
                }
                if flat.is_some() && flat_key(&r) == flat {
                    readings += 1;
                    detector.observe_traced(&r, &mut trace);
                }
            }
            Record::Event(e) => {
                for f in detector.observe_event(&e, register) {
                    if Some(&f.entity) == flat.as_ref() {
                        trace.push((f.ts, TraceEvent::Alert { rule: f.rule }));
                    }
                }
            }
        }
    }
    let steps = trace
        .into_iter()
        .map(|(ts, event)| Step {
            ts_ms: ts.0,
            local: local_minute(ts, offset_min),
            event,
        })
        .collect();
    Ok(Explanation {
        flat,
        readings,
        steps,
    })
}

impl Explanation {
    /// One line per decision, for people.
    pub fn describe(&self) -> String {
        let Some(flat) = &self.flat else {
            return "no electricity readings for that entity in the recording\n".to_owned();
        };
        let mut out = format!(
            "{flat}: {} electricity readings, {} decisions (indoor_charging_signature)\n",
            self.readings,
            self.steps.len()
        );
        for s in &self.steps {
            out += &format!("{}  {}\n", s.local, describe_event(&s.event));
        }
        out
    }
}

fn describe_event(e: &TraceEvent) -> String {
    match e {
        TraceEvent::Started { pre_w, step_w } => {
            format!("candidate started +{step_w:.0} W over {pre_w:.0} W")
        }
        TraceEvent::Reanchored { pre_w, step_w } => {
            format!("re-anchored on a second step +{step_w:.0} W over {pre_w:.0} W")
        }
        TraceEvent::Restored { step_w } => {
            format!("upper load gone; the +{step_w:.0} W candidate underneath goes on")
        }
        TraceEvent::TaperBegan { excess_w } => format!("taper began at +{excess_w:.0} W"),
        TraceEvent::TaperRestarted { excess_w } => {
            format!("taper restarted (rose or went back to the plateau) at +{excess_w:.0} W")
        }
        TraceEvent::Ended {
            cause,
            session,
            verdict,
        } => {
            let why = match cause {
                EndCause::BelowEnd { excess_w } => {
                    format!("fell to +{excess_w:.0} W, below the end level")
                }
                EndCause::EarlyDip { dip_min } => {
                    format!("under the plateau for {dip_min:.0} min before it was long enough")
                }
                EndCause::TooLong => "longer than max_session_h".to_owned(),
                EndCause::TooBig { rise_w } => format!("rose {rise_w:.0} W, above max_step_w"),
                EndCause::Gap { gap_min } => format!("no reading for {gap_min:.0} min"),
            };
            let shape = session.map_or(String::new(), |s| {
                format!(
                    " [step {:.0} W, plateau {:.0} min, tail {:.0} min, quiet hours {:.0} min]",
                    s.step_w, s.plateau_min, s.taper_min, s.quiet_min
                )
            });
            let verdict = match verdict {
                None => "not judged".to_owned(),
                Some(Verdict::Counted) => "COUNTED as a charger session".to_owned(),
                Some(Verdict::FusionOnly { plateau_min }) => format!(
                    "a charger's shape with a short plateau ({plateau_min:.0} min, under min_plateau_min): counts only with the flat's tag beside it"
                ),
                Some(Verdict::FusionOnlySharp {
                    taper_min,
                    readings,
                }) => format!(
                    "a charger's shape ending sharply (tail {taper_min:.0} min over {readings} readings: a lithium charger's short tail, or a load switched off): counts only after the flat's tag was read indoors just before it, twice in the window"
                ),
                Some(Verdict::PlateauShort { plateau_min }) => format!(
                    "not counted: plateau {plateau_min:.0} min under fused_min_plateau_min"
                ),
                Some(Verdict::PlateauLong { plateau_min }) => {
                    format!("not counted: plateau {plateau_min:.0} min over max_plateau_min")
                }
                Some(Verdict::TaperLong { taper_min }) => {
                    format!("not counted: tail {taper_min:.0} min over max_taper_min")
                }
                Some(Verdict::TaperStepped { holds }) => format!(
                    "not counted: the tail came down in steps, holding {holds} levels (a staircase, not a taper)"
                ),
                Some(Verdict::NotAtNight { quiet_min }) => format!(
                    "not counted: drew only {quiet_min:.0} min in the quiet hours"
                ),
                Some(Verdict::Rough {
                    roughness_w,
                    limit_w,
                }) => format!(
                    "not counted: plateau not flat ({roughness_w:.1} W mean change, limit {limit_w:.1} W)"
                ),
            };
            format!("ended: {why}{shape}; {verdict}")
        }
        TraceEvent::InWindow {
            sessions,
            alike,
            needed,
            bike_known,
        } => {
            let whose = if *bike_known {
                "the flat's e-bike is known"
            } else {
                "no e-bike of the flat known"
            };
            format!(
                "{sessions} counted session(s) in the window, {alike} with this one's step \
                 (one charger), {needed} needed ({whose})"
            )
        }
        TraceEvent::AfterArrival {
            arrived_min_before,
            indoors,
            sessions,
            needed,
        } => format!(
            "the session began {arrived_min_before:.0} min after the flat's tag was read {}; {sessions} such session(s) in the window, {needed} needed",
            if *indoors { "indoors" } else { "outside" }
        ),
        TraceEvent::Alert { rule } => format!("ALERT {rule}"),
    }
}

/// The `explain` subcommand: loads config, register and recording, prints
/// the explanation (text or `json`), and returns the exit code (2 for a bad
/// input, 1 for a recording that cannot be read to the end).
pub fn run_cli(
    recording: &Path,
    target: &Target,
    config: Option<&Path>,
    register: Option<&Path>,
    json: bool,
) -> ExitCode {
    let bad = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(crate::toml_file::EXIT_CONFIG)
    };
    let (c, input) = match inputs(recording, config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let reg_path = register
        .map(Path::to_path_buf)
        .or_else(|| c.register.path.clone())
        .unwrap_or_else(|| recording.with_file_name("register.json"));
    let reg = if reg_path.exists() || register.is_some() {
        match Register::load(&reg_path) {
            Ok(r) => r,
            Err(e) => return bad(e.to_string()),
        }
    } else {
        Register::default()
    };
    let e = match explain(&c, &reg, input, target) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {}: {e}", recording.display());
            return ExitCode::FAILURE;
        }
    };
    if let Err(code) = print(&e, &e.describe(), json) {
        return code;
    }
    if e.flat.is_none() {
        return ExitCode::from(crate::toml_file::EXIT_CONFIG);
    }
    ExitCode::SUCCESS
}

/// The config (defaults without one) and the recording opened for reading;
/// an error is printed and becomes the exit code (2).
pub(crate) fn inputs(
    recording: &Path,
    config: Option<&Path>,
) -> Result<(AnalyticsConfig, impl BufRead), ExitCode> {
    let bad = |msg: String| {
        eprintln!("error: {msg}");
        ExitCode::from(crate::toml_file::EXIT_CONFIG)
    };
    let c = match config.map(AnalyticsConfig::load) {
        Some(Err(e)) => return Err(bad(e.to_string())),
        Some(Ok(c)) => c,
        None => AnalyticsConfig::default(),
    };
    let file = std::fs::File::open(recording).map_err(|e| {
        bad(format!(
            "cannot open recording {}: {e}",
            recording.display()
        ))
    })?;
    Ok((c, std::io::BufReader::with_capacity(1 << 20, file)))
}

/// Prints an explanation as `text`, or as JSON for tools.
pub(crate) fn print(value: &impl Serialize, text: &str, json: bool) -> Result<(), ExitCode> {
    if !json {
        print!("{text}");
        return Ok(());
    }
    match serde_json::to_string_pretty(value) {
        Ok(t) => {
            println!("{t}");
            Ok(())
        }
        Err(err) => {
            eprintln!("error: cannot print the explanation as JSON: {err}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// `YYYY-MM-DD HH:MM` at `offset_min` from UTC.
pub fn local_minute(ts: Timestamp, offset_min: i32) -> String {
    let ms = ts.0 + i64::from(offset_min) * 60_000;
    let days = ms.div_euclid(86_400_000);
    let minute = ms.rem_euclid(86_400_000) / 60_000;
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", minute / 60, minute % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
