//! One line of an export → the fields of a reading, or the reason it cannot
//! be one. Pure code over text, so every malformed case is a unit test.

use gridwatch_telemetry::time::days_from_civil;

/// Why a row was not stored; the name is what the reject file and the
/// summary say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    /// Bytes that are not text in the mapping's encoding.
    Encoding,
    /// Fewer fields than the mapping needs, or an unterminated quote.
    Columns,
    /// The meter (or the match key) is empty.
    Meter,
    /// The timestamp does not fit the mapping's format or is not a date.
    Timestamp,
    /// The value is not a finite, non-negative number.
    Value,
    /// The row's unit is not one of the source's kind.
    Unit,
    /// No flat in the register has this meter, account or address.
    Unmatched,
}

impl Reject {
    /// The reason's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Encoding => "encoding",
            Reject::Columns => "columns",
            Reject::Meter => "meter",
            Reject::Timestamp => "timestamp",
            Reject::Value => "value",
            Reject::Unit => "unit",
            Reject::Unmatched => "unmatched",
        }
    }
}

/// Splits `line` at `delim` into `out` as byte ranges. A field may be
/// quoted (`"a,b"`); the quotes are not part of it, a doubled quote inside
/// stays as written. Surrounding spaces and a trailing `\r` are trimmed.
/// `false` for an unterminated quote.
pub fn split(line: &str, delim: u8, out: &mut Vec<(usize, usize)>) -> bool {
    out.clear();
    let b = line.as_bytes();
    let end = if b.last() == Some(&b'\r') {
        b.len() - 1
    } else {
        b.len()
    };
    let mut i = 0;
    loop {
        while i < end && b[i] == b' ' {
            i += 1;
        }
        if i < end && b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            loop {
                match b[j..end].iter().position(|&c| c == b'"') {
                    None => return false,
                    Some(k) if j + k + 1 < end && b[j + k + 1] == b'"' => j += k + 2,
                    Some(k) => {
                        j += k;
                        break;
                    }
                }
            }
            out.push((start, j));
            i = j + 1;
            while i < end && b[i] != delim {
                i += 1;
            }
        } else {
            let start = i;
            let stop = b[i..end]
                .iter()
                .position(|&c| c == delim)
                .map_or(end, |k| i + k);
            let mut e = stop;
            while e > start && b[e - 1] == b' ' {
                e -= 1;
            }
            out.push((start, e));
            i = stop;
        }
        if i >= end {
            return true;
        }
        i += 1; // the delimiter
    }
}

/// A compiled `[timestamp] format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Literal(u8),
}

impl TimeFormat {
    /// Compiles a format of `%Y %m %d %H %M %S` and literal ASCII.
    pub fn compile(format: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut it = format.bytes();
        while let Some(c) = it.next() {
            if c != b'%' {
                if !c.is_ascii() {
                    return Err(format!("timestamp format {format:?}: only ASCII literals"));
                }
                parts.push(Part::Literal(c));
                continue;
            }
            parts.push(match it.next() {
                Some(b'Y') => Part::Year,
                Some(b'm') => Part::Month,
                Some(b'd') => Part::Day,
                Some(b'H') => Part::Hour,
                Some(b'M') => Part::Minute,
                Some(b'S') => Part::Second,
                Some(b'%') => Part::Literal(b'%'),
                other => {
                    return Err(format!(
                        "timestamp format {format:?}: unknown %{}",
                        other.map(char::from).unwrap_or(' ')
                    ))
                }
            });
        }
        if !parts.contains(&Part::Year) || !parts.contains(&Part::Month) {
            return Err(format!("timestamp format {format:?} needs %Y and %m"));
        }
        Ok(Self { parts })
    }

    /// Local time → UTC ms; `None` when the text does not fit or is not a
    /// real date and time. Fields other than the year take one or two digits
    /// (`2026/3/1` fits `%Y/%m/%d`).
    pub fn parse(&self, text: &str, offset_s: i64) -> Option<i64> {
        let b = text.as_bytes();
        let mut i = 0;
        let (mut y, mut mo, mut d, mut h, mut mi, mut s) = (0i64, 0i64, 1i64, 0i64, 0i64, 0i64);
        for part in &self.parts {
            let (field, max_digits) = match part {
                Part::Literal(c) => {
                    if b.get(i) != Some(c) {
                        return None;
                    }
                    i += 1;
                    continue;
                }
                Part::Year => (&mut y, 4),
                Part::Month => (&mut mo, 2),
                Part::Day => (&mut d, 2),
                Part::Hour => (&mut h, 2),
                Part::Minute => (&mut mi, 2),
                Part::Second => (&mut s, 2),
            };
            let start = i;
            let mut v = 0i64;
            while i < b.len() && i - start < max_digits && b[i].is_ascii_digit() {
                v = v * 10 + i64::from(b[i] - b'0');
                i += 1;
            }
            if i == start || (max_digits == 4 && i - start != 4) {
                return None;
            }
            *field = v;
        }
        if i != b.len() || !(1..=12).contains(&mo) || d < 1 || d > month_days(y, mo) {
            return None;
        }
        // 24:00 is how some exports write the end of a day.
        if h > 24 || mi > 59 || s > 59 || (h == 24 && (mi, s) != (0, 0)) {
            return None;
        }
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_s;
        Some(secs * 1000)
    }
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `+08:00` → seconds east of UTC.
pub fn parse_offset(text: &str) -> Result<i64, String> {
    let bad = || format!("utc_offset {text:?} is not like +08:00");
    let b = text.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return Err(bad());
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(bad()),
    };
    let h: i64 = text[1..3].parse().map_err(|_| bad())?;
    let m: i64 = text[4..6].parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

/// The factor that brings a value in `unit` to the kind's stored unit (kWh
/// or m³); `None` for a unit that is not of this kind.
pub fn unit_factor(kind: super::Kind, unit: &str) -> Option<f64> {
    use super::Kind::*;
    let u = unit.trim();
    let is = |names: &[&str]| names.iter().any(|n| u.eq_ignore_ascii_case(n));
    match kind {
        Electricity if is(&["kWh", "千瓦时", "度"]) => Some(1.0),
        Electricity if is(&["Wh", "瓦时"]) => Some(0.001),
        Water | Gas if is(&["m3", "m³", "立方米", "方"]) => Some(1.0),
        Water | Gas if is(&["L", "升"]) => Some(0.001),
        _ => None,
    }
}

/// A value field → a number, or [`Reject::Value`].
pub fn parse_value(text: &str) -> Result<f64, Reject> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(Reject::Value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Kind;

    fn fields(line: &str) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        split(line, b',', &mut out).then(|| out.iter().map(|&(a, b)| &line[a..b]).collect())
    }

    #[test]
    fn fields_split_with_quotes_spaces_and_crlf() {
        assert_eq!(fields("a, b ,\"c,d\",\r").unwrap(), ["a", "b", "c,d", ""]);
        assert_eq!(fields("\"x\"\"y\",1").unwrap(), ["x\"\"y", "1"]);
        assert_eq!(fields("").unwrap(), [""]);
        assert!(fields("a,\"open").is_none());
    }

    #[test]
    fn dates_parse_in_local_time() {
        let f = TimeFormat::compile("%Y-%m-%d").unwrap();
        // 2026-03-02 00:00 +08:00 is 2026-03-01 16:00 UTC.
        assert_eq!(
            f.parse("2026-03-02", 8 * 3600),
            Some((20_514 * 86_400 - 8 * 3600) * 1000)
        );
        assert_eq!(f.parse("2026-02-29", 0), None);
        assert_eq!(f.parse("2026-13-01", 0), None);
        assert_eq!(f.parse("2026-03-02x", 0), None);
        assert_eq!(f.parse("26-03-02", 0), None);
        let g = TimeFormat::compile("%Y/%m/%d %H:%M").unwrap();
        assert_eq!(
            g.parse("2026/3/2 0:15", 0),
            Some((20_514 * 86_400 + 900) * 1000)
        );
        assert_eq!(g.parse("2026/3/2 24:00", 0), Some(20_515 * 86_400 * 1000));
        assert_eq!(g.parse("2026/3/2 24:15", 0), None);
    }

    #[test]
    fn a_month_format_means_the_first() {
        let f = TimeFormat::compile("%Y%m").unwrap();
        assert_eq!(
            f.parse("202603", 0),
            Some(days_from_civil(2026, 3, 1) * 86_400_000)
        );
        assert!(TimeFormat::compile("%d.%H").is_err());
        assert!(TimeFormat::compile("%Y-%q").is_err());
    }

    #[test]
    fn offsets_and_units() {
        assert_eq!(parse_offset("+08:00"), Ok(28_800));
        assert_eq!(parse_offset("-03:30"), Ok(-12_600));
        assert!(parse_offset("8").is_err());
        assert_eq!(unit_factor(Kind::Electricity, "wh"), Some(0.001));
        assert_eq!(unit_factor(Kind::Water, "立方米"), Some(1.0));
        assert_eq!(unit_factor(Kind::Gas, "L"), Some(0.001));
        assert_eq!(unit_factor(Kind::Water, "kWh"), None);
    }

    #[test]
    fn values_are_finite_and_not_negative() {
        assert_eq!(parse_value("12.5"), Ok(12.5));
        assert_eq!(parse_value("-1"), Err(Reject::Value));
        assert_eq!(parse_value("NaN"), Err(Reject::Value));
        assert_eq!(parse_value(""), Err(Reject::Value));
    }
}
