//! Whether a device is answering, and which events that deserves.
//!
//! Consumers need one `device_offline` when a device goes quiet and one
//! `device_online` when it returns, not an event per failed poll; a single
//! lost frame on a busy bus should not count as offline at all. Errors the
//! device answers with (Modbus exceptions, a map version we do not know) are
//! reported once when they appear, and again only after they cleared.
//! A state machine fed poll outcomes, returning events: no I/O, no clock.

use gridwatch_telemetry::EventKind;
use std::collections::BTreeSet;

/// What is known about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not polled successfully yet, nor failed often enough to be offline.
    Unknown,
    /// Answered its last poll.
    Online,
    /// Failed `offline_after_failures` polls in a row and has not answered since.
    Offline,
}

/// One device's availability.
#[derive(Debug, Clone)]
pub struct Availability {
    state: State,
    failures: u32,
    offline_after_failures: u32,
    reported_errors: BTreeSet<String>,
}

impl Availability {
    /// A device declared offline after `offline_after_failures` consecutive
    /// failed polls (at least 1).
    pub fn new(offline_after_failures: u32) -> Self {
        Self {
            state: State::Unknown,
            failures: 0,
            offline_after_failures: offline_after_failures.max(1),
            reported_errors: BTreeSet::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Consecutive failed polls so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The device did not answer (connection refused, timeout). Returns the
    /// `device_offline` event on the poll that crosses the threshold.
    pub fn failed(&mut self, reason: &str) -> Option<EventKind> {
        self.failures = self.failures.saturating_add(1);
        if self.state != State::Offline && self.failures >= self.offline_after_failures {
            self.state = State::Offline;
            // Errors seen before the outage are news again after it.
            self.reported_errors.clear();
            let polls = if self.failures == 1 {
                "1 poll".to_owned()
            } else {
                format!("{} polls in a row", self.failures)
            };
            return Some(EventKind::DeviceOffline {
                reason: format!("no answer to {polls}: {reason}"),
            });
        }
        None
    }

    /// The device answered, possibly with `errors` (each naming a register
    /// range). Returns `device_online` after an outage, then one
    /// `device_error` per error not already reported.
    pub fn answered(&mut self, errors: &[String]) -> Vec<EventKind> {
        let mut events = Vec::new();
        if self.state == State::Offline {
            events.push(EventKind::DeviceOnline);
        }
        self.state = State::Online;
        self.failures = 0;
        let now: BTreeSet<String> = errors.iter().cloned().collect();
        events.extend(now.difference(&self.reported_errors).map(|message| {
            EventKind::DeviceError {
                message: message.clone(),
            }
        }));
        self.reported_errors = now;
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_is_reported_once_after_the_threshold() {
        let mut a = Availability::new(3);
        assert_eq!(a.failed("connection refused"), None);
        assert_eq!(a.failed("connection refused"), None);
        let ev = a.failed("connection refused").unwrap();
        assert_eq!(
            ev,
            EventKind::DeviceOffline {
                reason: "no answer to 3 polls in a row: connection refused".into()
            }
        );
        assert_eq!(a.failed("connection refused"), None);
        assert_eq!(a.state(), State::Offline);
    }

    #[test]
    fn online_is_reported_only_after_an_outage() {
        let mut a = Availability::new(1);
        assert!(a.answered(&[]).is_empty(), "first contact is not news");
        assert!(a.failed("timeout").is_some());
        assert_eq!(a.answered(&[]), vec![EventKind::DeviceOnline]);
        assert!(a.answered(&[]).is_empty());
    }

    #[test]
    fn a_single_lost_poll_does_not_flap() {
        let mut a = Availability::new(3);
        a.answered(&[]);
        assert_eq!(a.failed("timeout"), None);
        assert!(a.answered(&[]).is_empty());
        assert_eq!(a.state(), State::Online);
    }

    #[test]
    fn errors_are_reported_when_they_appear_and_again_after_clearing() {
        let mut a = Availability::new(3);
        let e = vec!["holding registers 100..=212: exception 0x02".to_owned()];
        assert_eq!(a.answered(&e).len(), 1);
        assert!(
            a.answered(&e).is_empty(),
            "a standing error is not repeated"
        );
        assert!(a.answered(&[]).is_empty());
        assert_eq!(a.answered(&e).len(), 1, "it came back");
    }
}
