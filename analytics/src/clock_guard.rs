//! Event time that one source cannot move.
//!
//! Analytics judges data in event time, the timestamps the readings carry.
//! One gateway or camera with a wrong clock (a Pi without a battery-backed
//! clock that booted in 1970, a camera set to 2100) must not be able to move
//! that time for everyone: a single reading stamped in 2100 used to make
//! every other socket's next real reading "out of order" and every healthy
//! meter "silent". So before anything reaches a detector, the live service
//! asks the guard whether the timestamp is believable against this host's
//! own clock:
//!
//! - more than `max_ahead_s` ahead of the host's clock, or before
//!   `min_ts_ms`, the message is **quarantined**: counted, kept out of every
//!   detector and sweep, logged once per gateway per episode;
//! - the first quarantine of a gateway's episode raises one `clock_skew`
//!   alert for that gateway, so somebody fixes its clock;
//! - the episode ends (logged with its count) at the gateway's next
//!   believable timestamp.
//!
//! The guard is sans-IO: the host's clock is passed in as `now`. Replay and
//! evaluation run on recorded time and never use it.

use crate::detect::{evidence_of, Finding};
use crate::ingest::IngestConfig;
use gridwatch_telemetry::{Severity, Timestamp};
use std::collections::HashMap;

/// Rule of the alert raised for a gateway whose timestamps are quarantined.
pub const RULE: &str = "clock_skew";

/// At most this many gateways are remembered in an open episode; past it a
/// quarantined message is still refused and counted, only not logged apart.
const MAX_EPISODES: usize = 10_000;

/// One gateway's run of unbelievable timestamps.
#[derive(Debug, Clone)]
struct Episode {
    /// Host time of the first quarantined message.
    since: Timestamp,
    /// Messages quarantined in this episode.
    count: u64,
}

/// What the guard decided about one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// The timestamp is believable; pass the message on.
    Admit,
    /// Keep the message out of every detector. `finding` is the
    /// `clock_skew` alert, present on the first message of an episode.
    Quarantine {
        /// Why, as a sentence fragment for the log.
        reason: String,
        /// The alert to raise, once per episode.
        finding: Option<Box<Finding>>,
    },
}

/// The per-gateway guard. One per live service.
#[derive(Debug)]
pub struct ClockGuard {
    max_ahead_ms: i64,
    min_ts_ms: i64,
    episodes: HashMap<(String, String), Episode>,
    quarantined: u64,
}

impl ClockGuard {
    /// A guard with the `[ingest]` limits.
    pub fn new(config: &IngestConfig) -> Self {
        Self {
            max_ahead_ms: i64::try_from(config.max_ahead_s.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            min_ts_ms: config.min_ts_ms,
            episodes: HashMap::new(),
            quarantined: 0,
        }
    }

    /// Messages quarantined since start.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    /// Gateways whose clock is currently not believed.
    pub fn gateways_in_quarantine(&self) -> usize {
        self.episodes.len()
    }

    /// Judges the timestamp `ts` of a message from `site`/`gateway`,
    /// received when the host's clock said `now`.
    pub fn admit(&mut self, site: &str, gateway: &str, ts: Timestamp, now: Timestamp) -> Admission {
        let ahead = ts.0.saturating_sub(now.0);
        let reason = if ahead > self.max_ahead_ms {
            format!(
                "timestamp {ts} is {} ahead of this host's clock ({now}; at most {} allowed, [ingest] max_ahead_s)",
                span(ahead),
                span(self.max_ahead_ms)
            )
        } else if ts.0 < self.min_ts_ms {
            format!(
                "timestamp {ts} is before {} ([ingest] min_ts_ms): the gateway's clock is not set",
                Timestamp(self.min_ts_ms)
            )
        } else {
            let key = (site.to_owned(), gateway.to_owned());
            if let Some(ep) = self.episodes.remove(&key) {
                tracing::info!(
                    rule = RULE,
                    site,
                    gateway,
                    "clock of gateway {gateway} at {site} is believable again ({ts}); {} messages were quarantined since {}; the {RULE} alert stays open until someone closes it",
                    ep.count,
                    ep.since
                );
            }
            return Admission::Admit;
        };
        self.quarantined += 1;
        let key = (site.to_owned(), gateway.to_owned());
        if let Some(ep) = self.episodes.get_mut(&key) {
            ep.count += 1;
            return Admission::Quarantine {
                reason,
                finding: None,
            };
        }
        if self.episodes.len() >= MAX_EPISODES {
            return Admission::Quarantine {
                reason,
                finding: None,
            };
        }
        tracing::warn!(
            rule = RULE,
            site,
            gateway,
            "quarantined messages of gateway {gateway} at {site}: {reason}; they reach no detector until its clock is right"
        );
        self.episodes.insert(
            key,
            Episode {
                since: now,
                count: 1,
            },
        );
        Admission::Quarantine {
            finding: Some(Box::new(finding(site, gateway, ts, now, ahead))),
            reason,
        }
    }
}

/// `3 d 4 h`, `12 min`, `40 s`: a duration for people.
fn span(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    let sign = if ms < 0 { "-" } else { "" };
    match s {
        0..=119 => format!("{sign}{s} s"),
        120..=7199 => format!("{sign}{} min", s / 60),
        7200..=172_799 => format!("{sign}{} h", s / 3600),
        _ => format!("{sign}{} d", s / 86_400),
    }
}

fn finding(site: &str, gateway: &str, ts: Timestamp, now: Timestamp, ahead_ms: i64) -> Finding {
    let entity = format!("{site}/{gateway}");
    let when = if ahead_ms > 0 {
        format!("{} ahead", span(ahead_ms))
    } else {
        format!("{} behind", span(-ahead_ms))
    };
    Finding {
        id: format!("{RULE}:{entity}:{}", now.0),
        rule: RULE,
        entity: entity.clone(),
        site: site.to_owned(),
        severity: Severity::Major,
        ts: now,
        title: format!("Clock of gateway {gateway} at {site} is {when}: its data is held back"),
        summary: format!(
            "Gateway {gateway} at {site} sent data stamped {ts}, {when} of the analytics host's clock ({now}). \
             Its readings and events are quarantined (counted, never judged) until its timestamps are believable \
             again, so its sockets and meters are not watched meanwhile. Check the gateway's time synchronisation \
             (NTP) and the clocks of its cameras and readers."
        ),
        evidence: evidence_of(
            &[
                ("ahead_s", (ahead_ms / 1000) as f64),
                ("message_ts_ms", ts.0 as f64),
                ("host_ts_ms", now.0 as f64),
            ],
            &[],
            now,
            now,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_000_000_000; // 2026-12
    const YEAR_2100: i64 = 4_102_444_800_000;

    fn guard() -> ClockGuard {
        ClockGuard::new(&IngestConfig::default())
    }

    #[test]
    fn a_reading_from_2100_is_quarantined_with_one_alert_per_episode() {
        let mut g = guard();
        let first = g.admit("s01", "gw-1", Timestamp(YEAR_2100), Timestamp(NOW));
        let Admission::Quarantine { finding, reason } = first else {
            panic!("2100 admitted");
        };
        assert!(reason.contains("ahead"), "{reason}");
        let f = finding.expect("first quarantine raises the alert");
        assert_eq!(f.rule, RULE);
        assert_eq!(f.entity, "s01/gw-1");
        assert_eq!(f.ts, Timestamp(NOW));
        // The rest of the episode is counted, not alerted again.
        for i in 1..5 {
            let a = g.admit("s01", "gw-1", Timestamp(YEAR_2100 + i), Timestamp(NOW + i));
            assert!(matches!(a, Admission::Quarantine { finding: None, .. }));
        }
        assert_eq!(g.quarantined(), 5);
        assert_eq!(g.gateways_in_quarantine(), 1);
    }

    #[test]
    fn a_believable_timestamp_ends_the_episode_and_a_new_one_alerts_again() {
        let mut g = guard();
        assert!(matches!(
            g.admit("s01", "gw-1", Timestamp(YEAR_2100), Timestamp(NOW)),
            Admission::Quarantine {
                finding: Some(_),
                ..
            }
        ));
        assert_eq!(
            g.admit("s01", "gw-1", Timestamp(NOW - 5_000), Timestamp(NOW)),
            Admission::Admit
        );
        assert_eq!(g.gateways_in_quarantine(), 0);
        let again = g.admit("s01", "gw-1", Timestamp(YEAR_2100), Timestamp(NOW + 60_000));
        let Admission::Quarantine {
            finding: Some(f), ..
        } = again
        else {
            panic!("a new episode alerts again");
        };
        assert_eq!(f.id, format!("{RULE}:s01/gw-1:{}", NOW + 60_000));
    }

    #[test]
    fn one_gateway_does_not_quarantine_another() {
        let mut g = guard();
        let _ = g.admit("s01", "gw-1", Timestamp(YEAR_2100), Timestamp(NOW));
        assert_eq!(
            g.admit("s01", "gw-2", Timestamp(NOW), Timestamp(NOW)),
            Admission::Admit
        );
    }

    #[test]
    fn small_skew_and_the_past_are_admitted_an_unset_clock_is_not() {
        let mut g = guard();
        // A few minutes ahead: NTP not perfect, still believable.
        assert_eq!(
            g.admit("s01", "gw-1", Timestamp(NOW + 240_000), Timestamp(NOW)),
            Admission::Admit
        );
        // Last month: a gateway delivering its outbox after an outage.
        assert_eq!(
            g.admit(
                "s01",
                "gw-1",
                Timestamp(NOW - 30 * 86_400_000),
                Timestamp(NOW)
            ),
            Admission::Admit
        );
        // 1970: a Pi that booted without a clock.
        let a = g.admit("s01", "gw-1", Timestamp(5_000), Timestamp(NOW));
        let Admission::Quarantine { reason, finding } = a else {
            panic!("1970 admitted");
        };
        assert!(reason.contains("not set"), "{reason}");
        assert!(finding.expect("alert").title.contains("behind"));
    }

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(40_000), "40 s");
        assert_eq!(span(12 * 60_000), "12 min");
        assert_eq!(span(5 * 3_600_000), "5 h");
        assert_eq!(span(-3 * 86_400_000), "-3 d");
    }
}
