//! Times as the people on site read them: in the site's own time zone, to
//! the minute, with the zone written out (`2026-12-05 21:14 (UTC+8)`), never
//! as UTC with a trailing `Z`.
//!
//! The offset is the one the detectors already use to tell night from day
//! (`[detect] utc_offset_min`, Asia/Shanghai's +480 by default), so the
//! dashboard and the detectors agree on what "02:00" means.

use gridwatch_telemetry::Timestamp;

/// `UTC+8`, `UTC-3:30`, `UTC` for an offset in minutes east of UTC.
pub fn zone(offset_min: i32) -> String {
    if offset_min == 0 {
        return "UTC".into();
    }
    let sign = if offset_min > 0 { '+' } else { '-' };
    let (h, m) = (offset_min.abs() / 60, offset_min.abs() % 60);
    if m == 0 {
        format!("UTC{sign}{h}")
    } else {
        format!("UTC{sign}{h}:{m:02}")
    }
}

/// `2026-12-05 21:14` in the zone `offset_min` minutes east of UTC.
pub fn clock(ts: Timestamp, offset_min: i32) -> String {
    let shifted = Timestamp(ts.0 + i64::from(offset_min) * 60_000).to_rfc3339();
    // to_rfc3339 is `YYYY-MM-DDTHH:MM:SS.mmmZ`; keep the date and the minute.
    match (shifted.get(..10), shifted.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time}"),
        _ => shifted,
    }
}

/// A timestamp for a page: [`clock`] followed by the zone.
pub fn format(ts: Timestamp, offset_min: i32) -> String {
    format!("{} ({})", clock(ts, offset_min), zone(offset_min))
}

/// A calendar date (`2026-12-05`) as the site reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// The year.
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD`; `None` for anything else or a day the month
    /// does not have.
    pub fn parse(s: &str) -> Option<Date> {
        let mut it = s.trim().splitn(3, '-');
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let date = Date {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        };
        (date.month >= 1
            && date.month <= 12
            && date.day >= 1
            && date.day <= days_in_month(date.year, date.month))
        .then_some(date)
    }

    /// The local date of `ts` in the zone `offset_min` minutes east of UTC.
    pub fn of(ts: Timestamp, offset_min: i32) -> Date {
        let local = ts.0 + i64::from(offset_min) * 60_000;
        civil(local.div_euclid(86_400_000))
    }

    /// The first day of this date's month.
    pub fn month_start(self) -> Date {
        Date { day: 1, ..self }
    }

    /// The last day of this date's month.
    pub fn month_end(self) -> Date {
        Date {
            day: days_in_month(self.year, self.month),
            ..self
        }
    }

    /// Local midnight at the start of this date, as a UTC timestamp.
    pub fn start(self, offset_min: i32) -> Timestamp {
        Timestamp(days(self) * 86_400_000 - i64::from(offset_min) * 60_000)
    }

    /// Local midnight at the end of this date (the next day's start).
    pub fn end(self, offset_min: i32) -> Timestamp {
        Timestamp(self.start(offset_min).0 + 86_400_000)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days(d: Date) -> i64 {
    let y = i64::from(d.year) - i64::from(d.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(d.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `z` days after 1970-01-01 (`civil_from_days`).
fn civil(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Date { year, month, day }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shanghai_time_with_the_zone_and_no_z() {
        // 2026-12-05T13:14:00Z is 21:14 in Shanghai.
        let ts = Timestamp(1_796_476_440_000);
        assert_eq!(Timestamp(ts.0).to_rfc3339(), "2026-12-05T13:14:00.000Z");
        assert_eq!(format(ts, 480), "2026-12-05 21:14 (UTC+8)");
    }

    #[test]
    fn the_date_turns_at_local_midnight() {
        let ts = Timestamp(1_796_476_440_000 + 11 * 3_600_000);
        assert_eq!(format(ts, 480), "2026-12-06 08:14 (UTC+8)");
        assert_eq!(format(ts, -210), "2026-12-05 20:44 (UTC-3:30)");
        assert_eq!(format(ts, 0), "2026-12-06 00:14 (UTC)");
    }

    #[test]
    fn dates_round_trip_and_start_at_local_midnight() {
        let d = Date::parse("2026-12-05").unwrap();
        assert_eq!(d.to_string(), "2026-12-05");
        // Shanghai's midnight is 16:00 UTC the day before.
        assert_eq!(d.start(480).to_rfc3339(), "2026-12-04T16:00:00.000Z");
        assert_eq!(Date::of(d.start(480), 480), d);
        assert_eq!(Date::of(Timestamp(d.end(480).0 - 1), 480), d);
        assert_eq!(Date::parse("2024-02-29").unwrap().month_end().day, 29);
        assert_eq!(Date::parse("2026-02-01").unwrap().month_end().day, 28);
        for bad in ["2026-02-29", "2026-13-01", "2026-1-01", "26-01-01", "x"] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
    }
}
