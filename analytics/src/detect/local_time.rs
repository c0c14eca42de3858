//! Local calendar time for detectors that think in nights and days.
//!
//! Readings carry UTC; "at night" and "per day" are local notions. The offset
//! is fixed per deployment (`[detect] utc_offset_min`, 480 for China, which
//! keeps no daylight saving).

use gridwatch_telemetry::Timestamp;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A fixed offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalTime {
    offset_ms: i64,
}

impl LocalTime {
    /// Local time `offset_min` minutes ahead of UTC.
    pub fn new(offset_min: i32) -> Self {
        Self {
            offset_ms: i64::from(offset_min) * 60_000,
        }
    }

    /// Days since 1970-01-01, local.
    pub fn day(self, ts: Timestamp) -> i64 {
        (ts.0 + self.offset_ms).div_euclid(DAY_MS)
    }

    /// The instant local day `day` ends (the next one's midnight).
    pub fn day_end(self, day: i64) -> Timestamp {
        Timestamp((day + 1) * DAY_MS - self.offset_ms)
    }

    /// Hour of the local day, 0–23.
    pub fn hour(self, ts: Timestamp) -> u8 {
        ((ts.0 + self.offset_ms).rem_euclid(DAY_MS) / HOUR_MS) as u8
    }
}

/// Whether `hour` lies in the window from `start` (inclusive) to `end`
/// (exclusive), which may wrap past midnight (`18..3`).
pub fn in_hours(hour: u8, start: u8, end: u8) -> bool {
    if start <= end {
        (start..end).contains(&hour)
    } else {
        hour >= start || hour < end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_and_hour_follow_the_offset_and_windows_wrap() {
        let lt = LocalTime::new(480);
        // 2026-03-01T17:30Z is 01:30 on 2 March in UTC+8.
        let ts = Timestamp(1_772_386_200_000);
        assert_eq!(lt.hour(ts), 1);
        assert_eq!(lt.day(ts), LocalTime::new(0).day(ts) + 1);
        assert_eq!(lt.day(lt.day_end(lt.day(ts))), lt.day(ts) + 1);
        assert_eq!(lt.hour(lt.day_end(lt.day(ts))), 0);
        assert!(in_hours(1, 18, 3) && in_hours(20, 18, 3) && !in_hours(3, 18, 3));
        assert!(in_hours(0, 0, 5) && !in_hours(5, 0, 5));
    }
}
