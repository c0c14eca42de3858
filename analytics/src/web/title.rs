//! A one-line title a person understands, built from an alert's evidence:
//! "插座 2 电流超限：7.1 A，限值 5 A", not "socket_overcurrent peak 7.1".
//!
//! The detectors' own titles name features and ids; they stay in the alert
//! (and the page's details section) for whoever tunes the rules. Each rule
//! with a sentence of its own reads the evidence fields it needs; when one
//! is missing, or for a rule without a sentence, the title falls back to the
//! rule's name and the place.

use super::page::{rule_name, short};
use crate::i18n::{local_time, Lang};
use gridwatch_telemetry::{Evidence, Timestamp};

/// Where an entity is, in words: `0301 室`, `pile-1 插座 2`, `gw-1/em-1`.
pub fn place(lang: Lang, entity: &str) -> String {
    if let Some((path, n)) = entity.rsplit_once('#') {
        let device = path.rsplit('/').next().unwrap_or(path);
        return lang.fill(
            "place.socket",
            &[("device", device.to_owned()), ("n", n.to_owned())],
        );
    }
    let parts: Vec<&str> = entity.split('/').collect();
    match parts.as_slice() {
        [_, b, flat] if b.starts_with('b') && flat.chars().all(|c| c.is_ascii_digit()) => {
            lang.fill("place.flat", &[("flat", (*flat).to_owned())])
        }
        [_, rest @ ..] if !rest.is_empty() => rest.join("/"),
        _ => entity.to_owned(),
    }
}

/// The building (the entity's second path segment: a building or the
/// gateway that serves it), used to filter the list.
pub fn building(entity: &str) -> Option<&str> {
    let mut parts = entity.split('/');
    parts.next()?;
    let b = parts.next()?;
    parts.next()?;
    Some(b)
}

/// The title of an alert of `rule` on `entity` with `evidence`, in `lang`;
/// times in the zone `offset_min` minutes east of UTC.
pub fn title(lang: Lang, rule: &str, entity: &str, ev: &Evidence, offset_min: i32) -> String {
    sentence(lang, rule, entity, ev, offset_min).unwrap_or_else(|| {
        lang.fill(
            "title.generic",
            &[
                ("rule", rule_name(lang, rule)),
                ("place", place(lang, entity)),
            ],
        )
    })
}

fn sentence(
    lang: Lang,
    rule: &str,
    entity: &str,
    ev: &Evidence,
    offset_min: i32,
) -> Option<String> {
    let v = |k: &str| ev.values.get(k).copied().filter(|x| x.is_finite());
    let limit = |k: &str| ev.thresholds.get(k).copied();
    let n = |x: f64| short(x);
    let at = place(lang, entity);
    let socket = || entity.rsplit_once('#').map(|(_, s)| s.to_owned());
    let args: Vec<(&str, String)> = match rule {
        "socket_overcurrent" | "socket_overpower" | "socket_overtemperature" => {
            let key = match rule {
                "socket_overcurrent" => "overcurrent_a",
                "socket_overpower" => "overpower_w",
                _ => "overtemp_c",
            };
            vec![
                ("socket", socket()?),
                ("peak", n(v("peak")?)),
                ("limit", n(limit(key)?)),
            ]
        }
        "group_rental" => {
            let ratio = |f: &str| Some(v(f)? / v(&format!("building_median_{f}"))?.max(1e-9));
            let flat = entity.rsplit('/').next()?.to_owned();
            vec![
                ("flat", flat),
                ("water", n(ratio("water_l_per_occupant")?)),
                ("power", n(ratio("electricity_kwh_per_occupant")?)),
                ("n", n(v("registered_occupants")?)),
            ]
        }
        "night_water_leak" => vec![
            ("place", at),
            ("nights", n(v("nights")?)),
            ("lph", n(v("min_night_flow_lph")?)),
        ],
        "meter_no_data" => vec![("place", at), ("min", n(v("silent_min")?.round()))],
        "building_no_data" => vec![
            ("place", at),
            ("silent", n(v("silent_meters")?)),
            ("meters", n(v("meters")?)),
            ("min", n(v("silent_min")?.round())),
        ],
        "meter_stuck" => vec![("place", at), ("h", n(v("hours_unchanged")?))],
        "indoor_sighting" => vec![
            ("place", at),
            (
                "time",
                local_time::format(Timestamp(v("sighted_at_ms")? as i64), offset_min),
            ),
        ],
        "indoor_charging_signature" => {
            vec![("place", at), ("n", n(v("sessions_in_window")?))]
        }
        "indoor_charging_fused" | "meter_reversed" | "pile_offline" => vec![("place", at)],
        _ => return None,
    };
    let id = format!("title.{rule}");
    let mut out = lang.find(&id)?.to_owned();
    for (k, val) in args {
        out = out.replace(&format!("{{{k}}}"), &val);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ev(values: &[(&str, f64)], thresholds: &[(&str, f64)]) -> Evidence {
        let map = |kv: &[(&str, f64)]| -> BTreeMap<String, f64> {
            kv.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        Evidence {
            values: map(values),
            thresholds: map(thresholds),
            window_start: Timestamp(0),
            window_end: Timestamp(0),
            samples: Vec::new(),
            series: None,
        }
    }

    #[test]
    fn overcurrent_reads_as_a_sentence_with_the_limit() {
        let e = ev(&[("peak", 7.08)], &[("overcurrent_a", 5.0)]);
        let t = title(
            Lang::ZhCn,
            "socket_overcurrent",
            "yard/gw-1/pile-1#2",
            &e,
            480,
        );
        assert_eq!(t, "插座 2 电流超限：7.1 A，限值 5 A");
    }

    #[test]
    fn group_rental_compares_with_the_building_median() {
        let e = ev(
            &[
                ("water_l_per_occupant", 760.0),
                ("building_median_water_l_per_occupant", 100.0),
                ("electricity_kwh_per_occupant", 9.0),
                ("building_median_electricity_kwh_per_occupant", 3.0),
                ("registered_occupants", 2.0),
                ("gas_m3_per_occupant_robust_z", 72.0),
            ],
            &[],
        );
        let t = title(Lang::ZhCn, "group_rental", "s01/b02/0403", &e, 480);
        assert_eq!(
            t,
            "疑似群租：0403 室用水是楼内中位数的 7.6 倍，用电是 3 倍（登记 2 人）"
        );
        assert!(!t.contains("robust_z"));
    }

    #[test]
    fn a_sighting_shows_a_local_time_not_milliseconds() {
        let e = ev(&[("sighted_at_ms", 1_796_476_440_000.0)], &[]);
        let t = title(Lang::ZhCn, "indoor_sighting", "s01/b02/lift_lobby", &e, 480);
        assert!(t.contains("2026-12-05 21:14 (UTC+8)"), "{t}");
        assert!(!t.contains("ms"), "{t}");
    }

    #[test]
    fn missing_evidence_or_unknown_rule_falls_back_to_rule_and_place() {
        let e = ev(&[], &[]);
        assert_eq!(
            title(
                Lang::ZhCn,
                "socket_overcurrent",
                "yard/gw-1/pile-1#2",
                &e,
                480
            ),
            "插座过流：pile-1 插座 2"
        );
        assert_eq!(
            title(Lang::En, "socket_bulk_stuck", "yard/gw-1/pile-1#2", &e, 480),
            "bulk phase too long: pile-1 socket 2"
        );
        assert_eq!(
            title(Lang::ZhCn, "brand_new_rule", "s01/b02/0301", &e, 480),
            "brand new rule：0301 室"
        );
    }

    #[test]
    fn every_main_rule_has_a_sentence_in_both_languages() {
        let e = ev(
            &[
                ("silent_min", 42.0),
                ("silent_meters", 3.0),
                ("meters", 4.0),
                ("hours_unchanged", 30.0),
                ("nights", 3.0),
                ("min_night_flow_lph", 6.5),
                ("peak", 45.0),
                ("sessions_in_window", 4.0),
            ],
            &[("overtemp_c", 40.0)],
        );
        for lang in [Lang::ZhCn, Lang::En] {
            for (rule, entity) in [
                ("socket_overtemperature", "y/g/p#1"),
                ("night_water_leak", "s01/b02/0301"),
                ("meter_no_data", "s01/gw-1/em-1"),
                ("building_no_data", "s01/gw-1"),
                ("meter_stuck", "s01/gw-1/em-1"),
                ("indoor_charging_signature", "s01/b02/0301"),
                ("indoor_charging_fused", "s01/b02/0301"),
            ] {
                let t = title(lang, rule, entity, &e, 480);
                assert!(sentence(lang, rule, entity, &e, 480).is_some(), "{rule}");
                assert!(!t.contains('{') && !t.contains('_'), "{rule}: {t}");
            }
        }
    }
}
