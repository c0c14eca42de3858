//! Who gets the bus next: per-unit queues served in turn, and the units that
//! stopped answering, sans-IO.
//!
//! One RS-485 line carries one request at a time, so a device that does not
//! answer costs every other device on the line a full timeout per attempt.
//! Two rules keep that bounded: units are served round-robin (a unit with
//! many queued requests cannot push the others back), and a unit whose
//! requests went unanswered after every retry, `offline_after_failures`
//! requests in a row, is *absent*: its requests fail at once, without
//! touching the wire, except one probe per probe interval. Its first valid
//! answer makes it present again. One request that fails its retries (a
//! burst of noise, a meter busy writing its flash) does not make it absent:
//! that would stop its readings for a whole probe interval.
//!
//! Time is passed in (`now`), so every rule is a plain unit test.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// What the bus does with the job it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Send it, with up to this many attempts in all.
    Send {
        /// 1 + retries, or 1 for the probe of an absent unit.
        attempts: u32,
    },
    /// The unit is absent and not due for a probe: fail it now with this
    /// reason (which says why and when the next probe is).
    Skip(String),
}

#[derive(Debug)]
struct Unit<J> {
    queue: VecDeque<J>,
    /// Requests in a row that got no valid answer after every retry.
    failures: u32,
    /// Since when, and why, the unit has not answered; `None` while present.
    absent: Option<Absence>,
}

#[derive(Debug, Clone)]
struct Absence {
    reason: String,
    next_probe: Instant,
}

/// The bus's queue of jobs per unit and its view of which units answer.
#[derive(Debug)]
pub struct Scheduler<J> {
    units: BTreeMap<u8, Unit<J>>,
    last_served: Option<u8>,
    retries: u32,
    probe_interval: Duration,
}

impl<J> Scheduler<J> {
    /// A scheduler that tries a request `1 + retries` times and probes an
    /// absent unit every `probe_interval`.
    pub fn new(retries: u32, probe_interval: Duration) -> Self {
        Self {
            units: BTreeMap::new(),
            last_served: None,
            retries,
            probe_interval,
        }
    }

    /// Queues `job` for `unit`.
    pub fn push(&mut self, unit: u8, job: J) {
        self.units
            .entry(unit)
            .or_insert_with(|| Unit {
                queue: VecDeque::new(),
                failures: 0,
                absent: None,
            })
            .queue
            .push_back(job);
    }

    /// Whether any job waits.
    pub fn is_empty(&self) -> bool {
        self.units.values().all(|u| u.queue.is_empty())
    }

    /// The next job in round-robin order after the unit served last, and
    /// what to do with it.
    pub fn next(&mut self, now: Instant) -> Option<(u8, J, Turn)> {
        let after = self.last_served.map_or(0, |u| u.wrapping_add(1));
        let unit = self
            .units
            .range(after..)
            .chain(self.units.range(..after))
            .find(|(_, u)| !u.queue.is_empty())
            .map(|(&id, _)| id)?;
        self.last_served = Some(unit);
        let state = self.units.get_mut(&unit)?;
        let job = state.queue.pop_front()?;
        let turn = match &mut state.absent {
            None => Turn::Send {
                attempts: 1 + self.retries,
            },
            Some(a) if now >= a.next_probe => {
                // One probe per interval; if it fails, `failed` sets the next.
                a.next_probe = now + self.probe_interval;
                Turn::Send { attempts: 1 }
            }
            Some(a) => Turn::Skip(format!(
                "{}; it is tried again in {}",
                a.reason,
                crate::net::words(a.next_probe.saturating_duration_since(now))
            )),
        };
        Some((unit, job, turn))
    }

    /// `unit` gave a valid answer (data or an exception). Returns true when
    /// it had been absent (it is back).
    pub fn answered(&mut self, unit: u8) -> bool {
        let Some(u) = self.units.get_mut(&unit) else {
            return false;
        };
        u.failures = 0;
        u.absent.take().is_some()
    }

    /// `unit` gave no valid answer to any attempt, for `reason`; it is
    /// absent once `offline_after_failures` requests in a row (at least 1)
    /// failed so. Returns true when this made it absent (it was present
    /// before).
    pub fn failed(
        &mut self,
        unit: u8,
        now: Instant,
        reason: &str,
        offline_after_failures: u32,
    ) -> bool {
        let probe_interval = self.probe_interval;
        let Some(u) = self.units.get_mut(&unit) else {
            return false;
        };
        u.failures = u.failures.saturating_add(1);
        let was_present = u.absent.is_none();
        if was_present && u.failures < offline_after_failures.max(1) {
            return false;
        }
        u.absent = Some(Absence {
            reason: format!("unit {unit} stopped answering ({reason})"),
            next_probe: now + probe_interval,
        });
        was_present
    }

    /// Fails every queued job (the port is gone): each with `reason`.
    pub fn drain(&mut self) -> Vec<J> {
        self.units
            .values_mut()
            .flat_map(|u| u.queue.drain(..))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: Duration = Duration::from_secs(30);

    #[test]
    fn units_take_turns_whatever_their_queue_length() {
        let mut s = Scheduler::new(2, PROBE);
        let now = Instant::now();
        for j in 0..3 {
            s.push(1, ('a', j));
        }
        s.push(2, ('b', 0));
        s.push(3, ('c', 0));
        let order: Vec<u8> = std::iter::from_fn(|| s.next(now).map(|(u, _, _)| u)).collect();
        assert_eq!(order, vec![1, 2, 3, 1, 1]);
    }

    #[test]
    fn the_turn_continues_after_the_unit_served_last() {
        let mut s = Scheduler::new(0, PROBE);
        let now = Instant::now();
        s.push(5, ());
        s.push(9, ());
        assert_eq!(s.next(now).map(|t| t.0), Some(5));
        s.push(5, ());
        // 9 waited while 5 was served: it goes before 5's second job.
        assert_eq!(s.next(now).map(|t| t.0), Some(9));
        assert_eq!(s.next(now).map(|t| t.0), Some(5));
        assert!(s.next(now).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn an_absent_unit_is_skipped_until_its_probe_is_due() {
        let mut s = Scheduler::new(2, PROBE);
        let t0 = Instant::now();
        s.push(7, ());
        assert_eq!(s.next(t0).unwrap().2, Turn::Send { attempts: 3 });
        assert!(s.failed(7, t0, "no answer within 500 ms", 1));
        s.push(7, ());
        match s.next(t0 + Duration::from_secs(10)).unwrap().2 {
            Turn::Skip(why) => {
                assert!(why.contains("unit 7 stopped answering (no answer within 500 ms)"));
                assert!(why.contains("tried again in 20 s"), "{why}");
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        s.push(7, ());
        let probe_at = t0 + PROBE;
        assert_eq!(s.next(probe_at).unwrap().2, Turn::Send { attempts: 1 });
        // The failed probe keeps it absent without reporting it again.
        assert!(!s.failed(7, probe_at, "no answer within 500 ms", 1));
        s.push(7, ());
        assert!(matches!(
            s.next(probe_at + Duration::from_secs(1)).unwrap().2,
            Turn::Skip(_)
        ));
        assert!(s.answered(7), "an answer brings it back");
        s.push(7, ());
        assert_eq!(
            s.next(probe_at).unwrap().2,
            Turn::Send { attempts: 3 },
            "present again: full retries"
        );
        assert!(!s.answered(7));
    }

    #[test]
    fn a_unit_is_absent_only_after_its_configured_failures_in_a_row() {
        let mut s = Scheduler::new(1, PROBE);
        let t0 = Instant::now();
        let full = Turn::Send { attempts: 2 };
        for _ in 0..2 {
            s.push(4, ());
            assert_eq!(s.next(t0).unwrap().2, full);
            assert!(!s.failed(4, t0, "no answer", 3), "not absent yet");
        }
        // An answer starts the count again.
        assert!(!s.answered(4));
        for _ in 0..2 {
            s.push(4, ());
            assert_eq!(s.next(t0).unwrap().2, full, "still polled normally");
            assert!(!s.failed(4, t0, "no answer", 3));
        }
        s.push(4, ());
        assert_eq!(s.next(t0).unwrap().2, full);
        assert!(s.failed(4, t0, "no answer", 3), "the third in a row");
        s.push(4, ());
        assert!(matches!(s.next(t0).unwrap().2, Turn::Skip(_)));
        assert!(s.answered(4));
    }

    #[test]
    fn drain_returns_every_queued_job() {
        let mut s = Scheduler::new(0, PROBE);
        s.push(1, 10);
        s.push(2, 20);
        s.push(1, 11);
        let mut all = s.drain();
        all.sort();
        assert_eq!(all, vec![10, 11, 20]);
        assert!(s.is_empty());
    }
}
