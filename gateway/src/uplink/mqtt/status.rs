//! When the retained status is worth publishing again, sans-IO.
//!
//! The status topic is retained: a dashboard or analytics that subscribes
//! late sees only the last status published. Published only on connect it
//! said `devices_online: 0` for as long as the connection lasted, because
//! the devices come up after the uplink does. So the uplink publishes it
//! again whenever a figure a reader acts on has changed (devices online,
//! outbox depth, outbox drops), and at least every [`STATUS_EVERY`] even if
//! nothing changed, so a reader can tell a quiet gateway from a stale
//! retained message by its `ts`. The uplink checks every few seconds, which
//! bounds how often a busy gateway re-publishes.

use gridwatch_telemetry::Status;
use std::time::{Duration, Instant};

/// The longest the retained status goes without being re-published while
/// connected.
pub const STATUS_EVERY: Duration = Duration::from_secs(60);

/// The figures of a status whose change is news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFigures {
    /// Devices answering.
    pub devices_online: u32,
    /// Records not yet delivered to every uplink.
    pub outbox_pending: u64,
    /// Records the outbox dropped since start.
    pub outbox_dropped: u64,
    /// The running config's version and state, with `[remote]` on: an
    /// operator waits for its change.
    pub config: Option<(u64, gridwatch_telemetry::ConfigState)>,
}

impl StatusFigures {
    /// The figures of `status`.
    pub fn of(status: &Status) -> Self {
        Self {
            devices_online: status.devices_online,
            outbox_pending: status.outbox_pending,
            outbox_dropped: status.outbox_dropped,
            config: status.config.as_ref().map(|c| (c.version, c.state)),
        }
    }
}

/// `status`'s figures and its payload.
pub fn message(status: &Status) -> (StatusFigures, Vec<u8>) {
    // A Status has no floats: encoding cannot fail, but never panic on it.
    let payload = gridwatch_telemetry::codec::encode(status).unwrap_or_default();
    (StatusFigures::of(status), payload)
}

/// What was last published, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Its figures.
    pub figures: StatusFigures,
    /// When it was handed to the client.
    pub at: Instant,
}

impl Published {
    /// A status with `figures` published `at`.
    pub fn new(figures: StatusFigures, at: Instant) -> Self {
        Self { figures, at }
    }
}

/// Whether the status should be published again at `now`, given what was
/// published last (`None`: nothing on this connection yet) and the figures
/// now.
pub fn status_due(last: Option<&Published>, current: &StatusFigures, now: Instant) -> bool {
    match last {
        None => true,
        Some(p) => p.figures != *current || now.saturating_duration_since(p.at) >= STATUS_EVERY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(devices_online: u32, outbox_pending: u64, outbox_dropped: u64) -> StatusFigures {
        StatusFigures {
            devices_online,
            outbox_pending,
            outbox_dropped,
            config: None,
        }
    }

    #[test]
    fn the_first_status_of_a_connection_is_due() {
        assert!(status_due(None, &figures(0, 0, 0), Instant::now()));
    }

    #[test]
    fn nothing_new_within_a_minute_is_not_due() {
        let t0 = Instant::now();
        let last = Published {
            figures: figures(3, 10, 0),
            at: t0,
        };
        assert!(!status_due(
            Some(&last),
            &figures(3, 10, 0),
            t0 + Duration::from_secs(59)
        ));
    }

    #[test]
    fn a_minute_without_change_is_due() {
        let t0 = Instant::now();
        let last = Published {
            figures: figures(3, 10, 0),
            at: t0,
        };
        assert!(status_due(
            Some(&last),
            &figures(3, 10, 0),
            t0 + STATUS_EVERY
        ));
    }

    #[test]
    fn devices_coming_online_are_due_at_once() {
        let t0 = Instant::now();
        let last = Published {
            figures: figures(0, 0, 0),
            at: t0,
        };
        assert!(status_due(Some(&last), &figures(2, 0, 0), t0));
        assert!(status_due(Some(&last), &figures(0, 5, 0), t0), "depth");
        assert!(status_due(Some(&last), &figures(0, 0, 1), t0), "drops");
    }

    #[test]
    fn a_clock_that_steps_back_does_not_make_it_due() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let last = Published {
            figures: figures(1, 0, 0),
            at: t0,
        };
        assert!(!status_due(
            Some(&last),
            &figures(1, 0, 0),
            t0 - Duration::from_secs(5)
        ));
    }
}
