//! Report by exception: send a reading only when it says something new.
//!
//! A meter polled every few seconds mostly repeats itself; on a 4G uplink
//! and in the outbox those repeats cost money and space. Where a device's
//! config sets `max_silence_ms`, a reading of a block (the device, or one
//! socket) goes out only when some value moved by more than its deadband
//! since the last reading that went out, when a value appears or
//! disappears, or when `max_silence_ms` has passed — so a flat stream still
//! proves every so often that the device is alive and the values are real.
//! Readings always go out whole (every value of the block), so a consumer
//! never has to merge partial readings.
//!
//! Deadbands come from the profile (`deadband` on a register, in the unit
//! of its name), overridden per device in the config. A deadband of 0 (the
//! default) means any change counts. The filter is pure: it is told the
//! time.

use super::Measurement;
use gridwatch_telemetry::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// When to send, for one device.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPolicy {
    /// Longest time between two readings of one block.
    pub max_silence_ms: i64,
    /// Smallest change that counts, by value name; names not listed: 0.
    pub deadbands: HashMap<String, f64>,
}

/// The last reading sent per block, and the decision for the next one.
#[derive(Debug, Clone)]
pub struct ExceptionFilter {
    policy: ReportPolicy,
    last: HashMap<Option<u16>, (Timestamp, BTreeMap<String, f64>)>,
    suppressed: u64,
}

impl ExceptionFilter {
    /// A filter that has sent nothing yet.
    pub fn new(policy: ReportPolicy) -> Self {
        Self {
            policy,
            last: HashMap::new(),
            suppressed: 0,
        }
    }

    /// Whether `m`, measured at `now`, goes out; if so it becomes the
    /// reference for the next decision.
    pub fn admit(&mut self, now: Timestamp, m: &Measurement) -> bool {
        let send = match self.last.get(&m.socket) {
            None => true,
            Some((sent_at, sent)) => {
                now.millis() - sent_at.millis() >= self.policy.max_silence_ms
                    || self.changed(sent, &m.values)
            }
        };
        if send {
            self.last.insert(m.socket, (now, m.values.clone()));
        } else {
            self.suppressed += 1;
        }
        send
    }

    fn changed(&self, sent: &BTreeMap<String, f64>, now: &BTreeMap<String, f64>) -> bool {
        if sent.len() != now.len() || sent.keys().zip(now.keys()).any(|(a, b)| a != b) {
            return true;
        }
        now.iter().any(|(name, v)| {
            let band = self.policy.deadbands.get(name).copied().unwrap_or(0.0);
            let before = sent[name];
            if band == 0.0 {
                *v != before
            } else {
                (v - before).abs() > band
            }
        })
    }

    /// Forgets what was sent, so the next reading of every block goes out
    /// (after the device was unreachable: its return is news).
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// Readings held back so far, for logs and benchmarks.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::DeviceKind;

    fn m(socket: Option<u16>, values: &[(&str, f64)]) -> Measurement {
        Measurement {
            kind: DeviceKind::ElectricityMeter,
            socket,
            values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            flat: None,
        }
    }

    fn filter(max_silence_ms: i64, bands: &[(&str, f64)]) -> ExceptionFilter {
        ExceptionFilter::new(ReportPolicy {
            max_silence_ms,
            deadbands: bands.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        })
    }

    #[test]
    fn flat_values_are_held_back_until_the_maximum_silence() {
        let mut f = filter(60_000, &[("voltage_v", 2.0)]);
        let flat = m(None, &[("voltage_v", 230.0)]);
        assert!(
            f.admit(Timestamp(0), &flat),
            "the first reading always goes"
        );
        for t in (5_000..60_000).step_by(5_000) {
            assert!(!f.admit(Timestamp(t), &flat), "held back at {t} ms");
        }
        assert!(
            f.admit(Timestamp(60_000), &flat),
            "alive after 60 s of silence"
        );
        assert!(
            !f.admit(Timestamp(65_000), &flat),
            "silence counts from the last send"
        );
        assert_eq!(f.suppressed(), 12);
    }

    #[test]
    fn a_move_beyond_the_deadband_goes_out_and_becomes_the_reference() {
        let mut f = filter(600_000, &[("voltage_v", 2.0)]);
        assert!(f.admit(Timestamp(0), &m(None, &[("voltage_v", 230.0)])));
        assert!(!f.admit(Timestamp(1), &m(None, &[("voltage_v", 231.9)])));
        assert!(
            !f.admit(Timestamp(2), &m(None, &[("voltage_v", 228.0)])),
            "2.0 is inside"
        );
        assert!(f.admit(Timestamp(3), &m(None, &[("voltage_v", 232.1)])));
        // Drift is measured from the last value sent, not from the previous poll.
        assert!(!f.admit(Timestamp(4), &m(None, &[("voltage_v", 233.5)])));
        assert!(f.admit(Timestamp(5), &m(None, &[("voltage_v", 234.2)])));
    }

    #[test]
    fn without_a_deadband_any_change_counts_and_blocks_are_separate() {
        let mut f = filter(600_000, &[]);
        assert!(f.admit(Timestamp(0), &m(Some(1), &[("state", 1.0)])));
        assert!(
            f.admit(Timestamp(0), &m(Some(2), &[("state", 1.0)])),
            "socket 2 is its own"
        );
        assert!(!f.admit(Timestamp(1), &m(Some(1), &[("state", 1.0)])));
        assert!(f.admit(Timestamp(2), &m(Some(1), &[("state", 2.0)])));
        assert!(
            f.admit(
                Timestamp(3),
                &m(Some(1), &[("state", 2.0), ("power_w", 1.0)])
            ),
            "a new value is news"
        );
    }

    #[test]
    fn after_a_reset_the_next_reading_goes_out() {
        let mut f = filter(600_000, &[]);
        let r = m(None, &[("x", 1.0)]);
        assert!(f.admit(Timestamp(0), &r));
        assert!(!f.admit(Timestamp(1), &r));
        f.reset();
        assert!(f.admit(Timestamp(2), &r));
    }
}
