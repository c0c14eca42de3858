//! `gridwatch-analytics explain --socket`: why a charging socket did or did
//! not raise a pile rule.
//!
//! Replays a recording through the same [`SocketSafety`] and
//! [`SocketSession`] detectors the service runs, feeding them only the
//! chosen socket's readings, its pile's readings (the pile rules need the
//! pile's total power) and its `session_started` events. Both detectors keep
//! their state per socket, so what they decide here is what they decide in a
//! full replay. After each reading the socket's standing is compared with
//! the one before, and every change comes out in the site's local time with
//! the reading's numbers: a session began, a condition began to hold, fell
//! back before it had held long enough (and after how long), was confirmed
//! (the alert), cleared. Readings that change nothing print nothing, so a
//! week of 10-second readings is a page, not a log.

use crate::config::AnalyticsConfig;
use crate::detect::socket_safety::SocketSafety;
use crate::detect::socket_session::{SessionStanding, SocketSession, RULES};
use crate::explain::local_minute;
use crate::recording::{Record, RecordReader, RecordingError};
use gridwatch_telemetry::{DeviceKind, EventKind, Reading, Timestamp};
use serde::Serialize;
use std::io::BufRead;

/// One change in the socket's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketStep {
    /// The reading's time, ms since the epoch (UTC).
    pub ts_ms: i64,
    /// The same in the site's local time, `YYYY-MM-DD HH:MM`.
    pub local: String,
    /// The rule concerned, or `session`.
    pub rule: String,
    /// What happened, in words with its numbers.
    pub what: String,
    /// The reading's values that matter to the pile rules.
    pub reading: String,
}

/// What `explain --socket` found.
#[derive(Debug, Clone, Serialize)]
pub struct SocketExplanation {
    /// The socket, `site/gateway/device#N`.
    pub socket: String,
    /// Its readings seen.
    pub readings: u64,
    /// Sessions seen begin.
    pub sessions: u64,
    /// Every change, in order.
    pub steps: Vec<SocketStep>,
}

/// Replays `input` and traces the pile rules for the socket `entity`
/// (`site/gateway/device#N`, as alerts name it).
pub fn explain_socket(
    config: &AnalyticsConfig,
    input: impl BufRead,
    entity: &str,
) -> Result<SocketExplanation, RecordingError> {
    let offset_min = config.detect.utc_offset_min;
    let mut safety = SocketSafety::new(&config.detect.socket_safety);
    let mut session = SocketSession::new(&config.detect.socket_session);
    let pile = entity.split('#').next().unwrap_or(entity).to_owned();
    let mut out = SocketExplanation {
        socket: entity.to_owned(),
        readings: 0,
        sessions: 0,
        steps: Vec::new(),
    };
    for record in RecordReader::new(input) {
        match record? {
            Record::Reading(r) if r.kind == DeviceKind::ChargingPile => {
                if r.entity() == pile {
                    session.observe(&r);
                }
            }
            Record::Reading(r) if r.kind == DeviceKind::ChargingSocket => {
                if r.entity() != entity {
                    continue;
                }
                out.readings += 1;
                let before = (safety.standing(entity), session.standing(entity));
                let mut fired: Vec<String> = safety
                    .observe(&r)
                    .into_iter()
                    .map(|f| f.rule.to_owned())
                    .collect();
                fired.extend(session.observe(&r).into_iter().map(|f| f.rule.to_owned()));
                let after = (safety.standing(entity), session.standing(entity));
                let mut say = |rule: &str, what: String| {
                    out.steps.push(SocketStep {
                        ts_ms: r.ts.0,
                        local: local_minute(r.ts, offset_min),
                        rule: rule.to_owned(),
                        what,
                        reading: describe_reading(&r),
                    });
                };
                if let Some(now) = &after.1 {
                    let began = before
                        .1
                        .as_ref()
                        .is_none_or(|b| b.session_start_ms != now.session_start_ms);
                    if now.relay_on && began {
                        out.sessions += 1;
                        say("session", "session began (relay on)".to_owned());
                    }
                    if before.1.as_ref().is_some_and(|b| b.relay_on) && !now.relay_on {
                        say("session", "relay off: the session ended".to_owned());
                    }
                }
                for (rule, what) in safety_changes(&before.0, &after.0, r.ts) {
                    say(rule, what);
                }
                for (rule, what) in session_changes(before.1.as_ref(), after.1.as_ref(), r.ts) {
                    say(rule, what);
                }
                for rule in fired {
                    say(&rule, "ALERT".to_owned());
                }
            }
            Record::Reading(_) => {}
            Record::Event(e) => {
                if let EventKind::SessionStarted { socket, .. } = &e.kind {
                    if format!("{}/{}/{}#{}", e.site, e.gateway, e.device, socket) == entity {
                        session.observe_event(&e);
                    }
                }
            }
        }
    }
    Ok(out)
}

type Standing = Option<(bool, Timestamp)>;

/// Changes in the three protections (overcurrent, overpower, over-temperature).
fn safety_changes(
    before: &[(&'static str, Standing)],
    after: &[(&'static str, Standing)],
    ts: Timestamp,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (i, (rule, now)) in after.iter().enumerate() {
        let was = before.get(i).and_then(|(_, s)| *s);
        let rule = if *rule == "socket_overtemperature_ceiling" {
            "socket_overtemperature"
        } else {
            rule
        };
        let path = if after[i].0 == "socket_overtemperature_ceiling" {
            " (ceiling path)"
        } else {
            ""
        };
        match (was, *now) {
            (None, Some((false, _))) => {
                out.push((rule, format!("above its limit{path}: pending")));
            }
            (Some((false, start)), None) => out.push((
                rule,
                format!(
                    "fell back{path} after {} before it had persisted long enough (or a rise was missing)",
                    span(ts.0 - start.0)
                ),
            )),
            (Some((true, start)), None) => out.push((
                rule,
                format!(
                    "cleared{path}: the episode that began {} ago is over",
                    span(ts.0 - start.0)
                ),
            )),
            _ => {}
        }
    }
    out
}

/// Changes in the session rules' conditions.
fn session_changes(
    before: Option<&SessionStanding>,
    after: Option<&SessionStanding>,
    ts: Timestamp,
) -> Vec<(&'static str, String)> {
    let Some(now) = after else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, rule) in RULES.iter().enumerate() {
        let was = before.and_then(|b| b.holding_since_ms[i]);
        let fired_before = before.is_some_and(|b| b.fired[i]);
        match (was, now.holding_since_ms[i]) {
            (None, Some(_)) if !now.fired[i] => {
                out.push((*rule, "condition began to hold".to_owned()));
            }
            (Some(since), None) if !fired_before && !now.fired[i] => out.push((
                *rule,
                format!(
                    "condition stopped holding after {}, before it was due",
                    span(ts.0 - since)
                ),
            )),
            _ => {}
        }
    }
    out
}

/// The values the pile rules read, for a person.
fn describe_reading(r: &Reading) -> String {
    let mut parts = Vec::new();
    let v = |n: &str| r.value(n).filter(|x| x.is_finite());
    if let Some(relay) = v("relay_on") {
        parts.push(
            if relay >= 0.5 {
                "relay on"
            } else {
                "relay off"
            }
            .to_owned(),
        );
    }
    if let Some(w) = v("power_w") {
        parts.push(format!("{w:.0} W"));
    }
    if let Some(a) = v("current_a") {
        parts.push(format!("{a:.2} A"));
    }
    if let Some(c) = v("temperature_c") {
        parts.push(format!("{c:.1} °C"));
    }
    if let Some(ma) = v("residual_ma") {
        parts.push(format!("residual {ma:.0} mA"));
    }
    if let Some(s) = v("session_s") {
        parts.push(format!("session {}", span((s * 1000.0) as i64)));
    }
    parts.join(", ")
}

/// A duration for a person: `45 s`, `12 min`, `3.2 h`.
fn span(ms: i64) -> String {
    let s = ms / 1000;
    if s < 120 {
        format!("{s} s")
    } else if s < 2 * 3600 {
        format!("{} min", s / 60)
    } else {
        format!("{:.1} h", s as f64 / 3600.0)
    }
}

impl SocketExplanation {
    /// One line per change, for people.
    pub fn describe(&self) -> String {
        if self.readings == 0 {
            return format!(
                "no readings of socket {} in the recording (name it site/gateway/device#N, as alerts do)\n",
                self.socket
            );
        }
        let mut out = format!(
            "{}: {} readings, {} session(s), {} changes (pile rules)\n",
            self.socket,
            self.readings,
            self.sessions,
            self.steps.len()
        );
        for s in &self.steps {
            out += &format!("{}  {}: {}  [{}]\n", s.local, s.rule, s.what, s.reading);
        }
        out
    }
}

/// The `explain --socket` subcommand: loads the config and the recording,
/// prints the explanation (text or `json`), and returns the exit code (2
/// for a bad input or a socket with no readings, 1 for a recording that
/// cannot be read to the end).
pub fn run_cli(
    recording: &std::path::Path,
    entity: &str,
    config: Option<&std::path::Path>,
    json: bool,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let (c, input) = match crate::explain::inputs(recording, config) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let e = match explain_socket(&c, input, entity) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {}: {e}", recording.display());
            return ExitCode::FAILURE;
        }
    };
    if let Err(code) = crate::explain::print(&e, &e.describe(), json) {
        return code;
    }
    if e.readings == 0 {
        return ExitCode::from(crate::toml_file::EXIT_CONFIG);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
#[path = "explain_socket_tests.rs"]
mod tests;
