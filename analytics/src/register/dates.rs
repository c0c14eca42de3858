//! Local dates of the register: `YYYY-MM-DD` to a day number (days since
//! 1970-01-01, proleptic Gregorian) and back. The register's dates are the
//! housing office's calendar days, compared with the local days detectors
//! judge, so no time zone is involved.

/// `YYYY-MM-DD` to days since 1970-01-01; `None` for anything else
/// (including impossible dates such as 2026-02-30).
pub fn parse_date(text: &str) -> Option<i32> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1900..=2200).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

/// Days since 1970-01-01 to `YYYY-MM-DD`.
pub fn format_day(day: i32) -> String {
    let (y, m, d) = civil(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The month of local `day` as a count (`year * 12 + month - 1`), so that
/// consecutive months are consecutive numbers.
pub fn month_of(day: i32) -> i32 {
    let (y, m, _) = civil(i64::from(day));
    (y * 12 + i64::from(m) - 1) as i32
}

/// The first local day of month `month` (as [`month_of`] counts).
pub fn first_day_of(month: i32) -> i32 {
    let (y, m) = (
        i64::from(month.div_euclid(12)),
        month.rem_euclid(12) as u32 + 1,
    );
    days_from_civil(y, m, 1) as i32
}

/// The local day of `ts_ms` at `offset_min` east of UTC.
pub fn local_day(ts_ms: i64, offset_min: i32) -> i32 {
    let ms = ts_ms + i64::from(offset_min) * 60_000;
    i32::try_from(ms.div_euclid(86_400_000)).unwrap_or(i32::MAX)
}

fn days_in(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_impossible_ones_are_refused() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-01"), Some(20_788));
        for d in ["2024-02-29", "2026-12-31", "2000-03-01", "1999-12-31"] {
            assert_eq!(format_day(parse_date(d).unwrap()), d);
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "26-1-1x",
            "",
            "2026/12/01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn months_count_on_across_years() {
        let d = parse_date("2026-12-31").unwrap();
        assert_eq!(month_of(d) + 1, month_of(d + 1));
        assert_eq!(format_day(first_day_of(month_of(d) + 1)), "2027-01-01");
        assert_eq!(
            format_day(first_day_of(month_of(parse_date("2024-02-29").unwrap()))),
            "2024-02-01"
        );
    }

    #[test]
    fn the_local_day_turns_at_local_midnight() {
        // 2026-12-01 16:00 UTC is 2026-12-02 00:00 at UTC+8.
        let ts = (i64::from(parse_date("2026-12-01").unwrap()) * 86_400 + 16 * 3600) * 1000;
        assert_eq!(format_day(local_day(ts, 480)), "2026-12-02");
        assert_eq!(format_day(local_day(ts - 1, 480)), "2026-12-01");
        assert_eq!(format_day(local_day(ts, 0)), "2026-12-01");
    }
}
