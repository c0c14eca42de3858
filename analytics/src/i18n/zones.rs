//! Each site's time zone, so that a page shows a compound's times as the
//! people there live them, and a day or a night is the site's own.
//!
//! A zone is written in the directory (`time_zone = "Asia/Shanghai"` on a
//! `[[sites]]` entry) either as a fixed offset (`+08:00`, `-03:30`, `UTC`)
//! or as one of the IANA names of zones without daylight saving that the
//! places Gridwatch runs in use. A zone with daylight saving would need the
//! tz database to turn a date into an offset; such names are refused with a
//! hint to write the offset instead. Sites without one use the default
//! (`[detect] utc_offset_min`, Asia/Shanghai's +480 unless changed).

use std::collections::HashMap;
use std::sync::Arc;

/// IANA names accepted, with their (fixed) offsets in minutes east of UTC.
const NAMED: [(&str, i32); 14] = [
    ("Asia/Shanghai", 480),
    ("Asia/Chongqing", 480),
    ("Asia/Harbin", 480),
    ("Asia/Urumqi", 360),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Kolkata", 330),
    ("UTC", 0),
    ("Etc/UTC", 0),
];

/// The offset, in minutes east of UTC, that `zone` names: `+08:00`,
/// `-0330`, `UTC+8`, `Z`, or one of the fixed-offset IANA names; the error
/// says what is accepted.
pub fn parse(zone: &str) -> Result<i32, String> {
    let z = zone.trim();
    if let Some((_, off)) = NAMED.iter().find(|(n, _)| n.eq_ignore_ascii_case(z)) {
        return Ok(*off);
    }
    if z == "Z" {
        return Ok(0);
    }
    let rest = z.strip_prefix("UTC").unwrap_or(z);
    let bad = || {
        format!(
            "{zone:?} is not a time zone this dashboard knows; write a fixed offset such as \"+08:00\" or one of {}",
            NAMED.map(|(n, _)| n).join(", ")
        )
    };
    let (sign, digits) = match rest.chars().next() {
        Some('+') => (1, &rest[1..]),
        Some('-') => (-1, &rest[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let (h, m): (i32, i32) = match (h.parse(), m.parse()) {
        (Ok(h), Ok(m)) if m < 60 => (h, m),
        _ => return Err(bad()),
    };
    let off = sign * (h * 60 + m);
    if (-720..=840).contains(&off) {
        Ok(off)
    } else {
        Err(format!(
            "{zone:?} is out of range; offsets run from -12:00 to +14:00"
        ))
    }
}

/// The time zone of every site: a default and the sites that have their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteZones {
    default_min: i32,
    sites: Arc<HashMap<String, i32>>,
}

impl SiteZones {
    /// Every site in the zone `offset_min` minutes east of UTC.
    pub fn uniform(offset_min: i32) -> Self {
        Self {
            default_min: offset_min,
            sites: Arc::default(),
        }
    }

    /// `default_min` for sites not in `sites`.
    pub fn new(default_min: i32, sites: HashMap<String, i32>) -> Self {
        Self {
            default_min,
            sites: Arc::new(sites),
        }
    }

    /// The offset of `site`, minutes east of UTC.
    pub fn of(&self, site: &str) -> i32 {
        self.sites.get(site).copied().unwrap_or(self.default_min)
    }

    /// The offset of the site an entity (`site/…`) belongs to.
    pub fn of_entity(&self, entity: &str) -> i32 {
        self.of(entity.split('/').next().unwrap_or(entity))
    }

    /// The zone of sites without their own.
    pub fn default_min(&self) -> i32 {
        self.default_min
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_fixed_names_parse() {
        assert_eq!(parse("Asia/Shanghai"), Ok(480));
        assert_eq!(parse("+08:00"), Ok(480));
        assert_eq!(parse("UTC+8"), Ok(480));
        assert_eq!(parse("-03:30"), Ok(-210));
        assert_eq!(parse("+0545"), Ok(345));
        assert_eq!(parse("UTC"), Ok(0));
        assert_eq!(parse("Z"), Ok(0));
    }

    #[test]
    fn zones_with_daylight_saving_and_nonsense_are_refused_with_a_hint() {
        for bad in ["Europe/Berlin", "+8:75", "+15:00", "eight", ""] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(parse("Europe/Berlin").unwrap_err().contains("+08:00"));
    }

    #[test]
    fn a_site_without_a_zone_uses_the_default() {
        let z = SiteZones::new(480, HashMap::from([("lisbon".to_owned(), 0)]));
        assert_eq!(z.of("lisbon"), 0);
        assert_eq!(z.of_entity("lisbon/b1/0101"), 0);
        assert_eq!(z.of_entity("s01/b02/0301"), 480);
    }
}
