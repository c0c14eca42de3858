//! One socket's recent minutes: the peak power, current and temperature of
//! each minute over the last [`SOCKET_MINUTES`], enough to show what led up
//! to a fault and a whole charging session.

use gridwatch_telemetry::alert::Sample;
use gridwatch_telemetry::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Minutes kept per socket: six hours, a long charging session.
pub const SOCKET_MINUTES: usize = 360;

/// What a socket chart can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketSeries {
    /// `power_w`.
    Power,
    /// `current_a`.
    Current,
    /// `temperature_c`.
    Temperature,
}

impl SocketSeries {
    /// The series a reading names `name` (`power_w`, …), if kept.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "power_w" => Some(Self::Power),
            "current_a" => Some(Self::Current),
            "temperature_c" => Some(Self::Temperature),
            _ => None,
        }
    }

    /// The unit, for axis labels.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Power => "W",
            Self::Current => "A",
            Self::Temperature => "°C",
        }
    }
}

/// One minute of a socket: the highest value of each series in it (NaN
/// when the minute had no reading of that series). Peaks, because a chart
/// that averages away the spike that tripped a rule shows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    /// Minutes since the epoch (UTC); 32 bits last until the year 6053
    /// and keep a minute at 16 bytes.
    pub minute: i32,
    /// Highest power, W.
    pub power_w: f32,
    /// Highest current, A.
    pub current_a: f32,
    /// Highest temperature, °C.
    pub temperature_c: f32,
}

impl Minute {
    fn value(&self, s: SocketSeries) -> f32 {
        match s {
            SocketSeries::Power => self.power_w,
            SocketSeries::Current => self.current_a,
            SocketSeries::Temperature => self.temperature_c,
        }
    }

    fn merge(&mut self, other: &Minute) {
        let max = |a: f32, b: f32| if a.is_nan() || b > a { b } else { a };
        self.power_w = max(self.power_w, other.power_w);
        self.current_a = max(self.current_a, other.current_a);
        self.temperature_c = max(self.temperature_c, other.temperature_c);
    }
}

/// A socket's minutes, oldest first, at most [`SOCKET_MINUTES`] long and
/// never older than that before the newest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SocketTrack {
    minutes: VecDeque<Minute>,
}

impl SocketTrack {
    /// Adds one reading's values; `false` when it is older than the track
    /// keeps (the caller counts it).
    pub fn add(&mut self, ts: Timestamp, power_w: f64, current_a: f64, temp_c: f64) -> bool {
        let m = Minute {
            minute: ts.0.div_euclid(60_000) as i32,
            power_w: power_w as f32,
            current_a: current_a as f32,
            temperature_c: temp_c as f32,
        };
        let newest = self.minutes.back().map(|b| b.minute);
        match newest {
            Some(n) if n == m.minute => {
                if let Some(b) = self.minutes.back_mut() {
                    b.merge(&m);
                }
            }
            Some(n) if n > m.minute => {
                return match self.minutes.binary_search_by_key(&m.minute, |x| x.minute) {
                    Ok(i) => {
                        self.minutes[i].merge(&m);
                        true
                    }
                    Err(_) => false,
                };
            }
            _ => self.minutes.push_back(m),
        }
        let oldest_kept = m.minute - SOCKET_MINUTES as i32;
        while self
            .minutes
            .front()
            .is_some_and(|f| f.minute <= oldest_kept || self.minutes.len() > SOCKET_MINUTES)
        {
            self.minutes.pop_front();
        }
        true
    }

    /// The series between `from` and `to` (inclusive), one sample per
    /// minute that has it, stamped at the minute's start.
    pub fn series(&self, s: SocketSeries, from: Timestamp, to: Timestamp) -> Vec<Sample> {
        self.minutes
            .iter()
            .filter(|m| {
                let start = i64::from(m.minute) * 60_000;
                start >= from.0 - 59_999 && start <= to.0
            })
            .filter(|m| !m.value(s).is_nan())
            .map(|m| Sample {
                ts: Timestamp(i64::from(m.minute) * 60_000),
                value: f64::from(m.value(s)),
            })
            .collect()
    }

    /// Minutes held.
    pub fn len(&self) -> usize {
        self.minutes.len()
    }

    /// Whether no minute is held.
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_hold_the_documented_memory() {
        // 4096 sockets × 360 minutes × 16 bytes ≈ 24 MB (docs/analytics.md).
        assert_eq!(std::mem::size_of::<Minute>(), 16);
        assert_eq!(std::mem::size_of::<crate::history::DayTotals>(), 24);
    }

    #[test]
    fn one_minute_keeps_its_peaks() {
        let mut t = SocketTrack::default();
        t.add(Timestamp(60_000), 100.0, 1.0, f64::NAN);
        t.add(Timestamp(90_000), 50.0, 7.0, 30.0);
        t.add(Timestamp(150_000), 10.0, 0.5, 31.0);
        let p = t.series(SocketSeries::Current, Timestamp(0), Timestamp(200_000));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].value, 7.0);
        assert_eq!(p[0].ts, Timestamp(60_000));
        let temp = t.series(SocketSeries::Temperature, Timestamp(0), Timestamp(200_000));
        assert_eq!(
            temp[0].value, 30.0,
            "a missing value does not hide the next"
        );
    }

    #[test]
    fn keeps_six_hours_and_drops_what_is_older() {
        let mut t = SocketTrack::default();
        for m in 0..1000_i64 {
            assert!(t.add(Timestamp(m * 60_000), m as f64, 1.0, 20.0));
        }
        assert_eq!(t.len(), SOCKET_MINUTES);
        let all = t.series(SocketSeries::Power, Timestamp(0), Timestamp(i64::MAX));
        assert_eq!(all[0].value, (1000 - SOCKET_MINUTES) as f64);
        assert!(
            !t.add(Timestamp(5 * 60_000), 1.0, 1.0, 1.0),
            "too old to keep"
        );
        assert!(t.add(Timestamp(999 * 60_000 + 5), 2000.0, 1.0, 1.0));
        let last = t.series(
            SocketSeries::Power,
            Timestamp(999 * 60_000),
            Timestamp(i64::MAX),
        );
        assert_eq!(
            last[0].value, 2000.0,
            "a late reading of a kept minute is merged"
        );
    }
}
