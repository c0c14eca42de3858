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
}
