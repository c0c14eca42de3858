//! What the signature detector decided and why, one event at a time.
//!
//! A miss or a false alarm has to be understood without reading the code:
//! `gridwatch-analytics explain` replays one flat and prints these events in
//! local time, and the dashboard's evidence view can draw them. The detector
//! takes a [`TraceSink`]; the live path passes [`NoTrace`], whose empty,
//! inlined method compiles away, so tracing costs nothing when it is off. No
//! event carries wall-clock time: only the readings' own timestamps.

use gridwatch_telemetry::Timestamp;
use serde::Serialize;

/// Why a candidate session stopped being followed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "cause")]
pub enum EndCause {
    /// The load fell below `end_ratio` of the step above the reference.
    BelowEnd {
        /// Excess over the reference at the end, W.
        excess_w: f32,
    },
    /// It stayed under the plateau too long before the plateau was long
    /// enough (`min_plateau_min`): not a constant current.
    EarlyDip {
        /// Minutes spent under the plateau.
        dip_min: f32,
    },
    /// Longer than `max_session_h`: a constant load, not a charger.
    TooLong,
    /// While it settled, the load rose above `max_step_w` over the level
    /// before it: a heater or an air-conditioner starting (its first
    /// interval held only part of it), not a compliant charger.
    TooBig {
        /// Rise over the level before the step, W.
        rise_w: f32,
    },
    /// No reading for longer than `max_gap_min`.
    Gap {
        /// Minutes without a reading.
        gap_min: f32,
    },
}

/// Why an ended session was or was not counted as a charger's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// It had the charger's shape and counts.
    Counted,
    /// It had the charger's shape but a plateau shorter than
    /// `min_plateau_min` (a fast charger, a top-up): it counts only with
    /// the flat's tag beside it (`indoor_charging_fused`).
    FusionOnly {
        /// Minutes on the plateau.
        plateau_min: f32,
    },
    /// It had the charger's shape but ended sharply (a tail shorter than
    /// `min_taper_min` or over too few readings): a lithium charger's short
    /// constant-voltage tail, or a load switched off. It counts only for
    /// `indoor_charging_fused`, as an arrival read indoors (the flat's tag
    /// within `arrival_window_min` before it began).
    FusionOnlySharp {
        /// Minutes tapering.
        taper_min: f32,
        /// Readings in the taper.
        readings: u16,
    },
    /// Plateau shorter than `fused_min_plateau_min`.
    PlateauShort {
        /// Minutes on the plateau.
        plateau_min: f32,
    },
    /// Plateau longer than `max_plateau_min`.
    PlateauLong {
        /// Minutes on the plateau.
        plateau_min: f32,
    },
    /// Tail longer than `max_taper_min`: a charger's constant-voltage or
    /// absorption stage ends within a few hours; a load that steps down
    /// and then holds all night (an air-conditioner's sleep mode) does not.
    TaperLong {
        /// Minutes tapering.
        taper_min: f32,
    },
    /// The taper came down a staircase, holding more than one lower level
    /// for long: an air-conditioner's sleep mode, not a charger.
    TaperStepped {
        /// Levels held.
        holds: u8,
    },
    /// It never drew through the quiet hours and sessions outside them
    /// are not counted (`count_day_sessions` off).
    NotAtNight {
        /// Minutes drawn in the quiet hours.
        quiet_min: f32,
    },
    /// Not flat: the plateau rose and fell like people, not a constant current.
    Rough {
        /// Twice the mean rise between consecutive plateau readings, W.
        roughness_w: f32,
        /// The most allowed, W.
        limit_w: f32,
    },
}

/// One thing the signature detector did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum TraceEvent {
    /// A step into the allowed band opened a candidate.
    Started {
        /// Level before the step, W.
        pre_w: f32,
        /// Height of the step, W.
        step_w: f32,
    },
    /// A second step on top of the first: the candidate now measures the
    /// newer load (the older one is kept underneath, see `Restored`).
    Reanchored {
        /// The new reference, W.
        pre_w: f32,
        /// The new step, W.
        step_w: f32,
    },
    /// The upper load went away but the older candidate underneath still
    /// draws: it is followed on.
    Restored {
        /// Its step, W.
        step_w: f32,
    },
    /// The load fell from the plateau into the taper band.
    TaperBegan {
        /// Excess over the reference, W.
        excess_w: f32,
    },
    /// The taper rose or went back to the plateau: it starts afresh.
    TaperRestarted {
        /// Excess over the reference, W.
        excess_w: f32,
    },
    /// The candidate ended.
    Ended {
        /// Why.
        cause: EndCause,
        /// What it looked like, when it ended in a way that can count.
        session: Option<SessionShape>,
        /// Whether it counted, and if not, the first condition that failed.
        verdict: Option<Verdict>,
    },
    /// A counted session entered the flat's window (the signature rule
    /// needs `min_sessions` of them, or `min_sessions_no_bike` where no
    /// e-bike of the flat is known).
    InWindow {
        /// Sessions now in the window.
        sessions: u32,
        /// Of those, the ones whose step is within `same_charger_ratio`
        /// of this session's (this one included): the ones that count.
        alike: u32,
        /// Sessions the rule needs for this flat.
        needed: u32,
        /// Whether a tag of the flat was seen within `bike_known_days`.
        bike_known: bool,
    },
    /// A session (counted or fusion-only) started just after the flat's tag
    /// was read outside, or, for one that ended sharply, indoors: the rider
    /// came home and plugged in
    /// (`indoor_charging_fused` needs `min_arrival_sessions` of them).
    AfterArrival {
        /// Minutes from the sighting to the session's start.
        arrived_min_before: f32,
        /// Read indoors (a session that ended sharply), not at the gate.
        #[serde(default)]
        indoors: bool,
        /// Such sessions now in the window.
        sessions: u32,
        /// Such sessions the rule needs.
        needed: u32,
    },
    /// An alert was raised.
    Alert {
        /// The rule.
        rule: &'static str,
    },
}

/// The numbers of an ended candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct SessionShape {
    /// When it started.
    pub start: Timestamp,
    /// Step, W.
    pub step_w: f32,
    /// Minutes on the plateau.
    pub plateau_min: f32,
    /// Minutes tapering.
    pub taper_min: f32,
    /// Minutes drawing at least half the step in the quiet hours.
    pub quiet_min: f32,
}

/// Receives trace events.
pub trait TraceSink {
    /// One event at the reading `ts`.
    fn event(&mut self, ts: Timestamp, event: TraceEvent);
}

/// Tracing off.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct NoTrace;

impl TraceSink for NoTrace {
    #[inline(always)]
    fn event(&mut self, _: Timestamp, _: TraceEvent) {}
}

impl TraceSink for Vec<(Timestamp, TraceEvent)> {
    fn event(&mut self, ts: Timestamp, event: TraceEvent) {
        self.push((ts, event));
    }
}
