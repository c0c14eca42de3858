//! The charts of an alert, chosen by its rule and drawn from the recent
//! [`History`]: what a socket did in the minutes before its fault with the
//! limit it crossed; a charging session's power curve; a flat's daily use
//! per person against its building's spread (group rental); the nights of
//! a leak. A rule without a chart of its own, or a case whose history is
//! gone (older than what is kept), falls back to the samples the alert
//! carried ([`super::chart`]).

use super::svg::{span, Plot, BLUE, GREY};
use crate::history::{FlatFeature, History, SocketSeries};
use crate::i18n::local_time::{self, Date};
use crate::i18n::Lang;
use crate::store::AlertCase;
use gridwatch_telemetry::alert::Sample;
use gridwatch_telemetry::Timestamp;

/// One chart with the sentence that says what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// What the chart shows, in words.
    pub caption: String,
    /// The `<svg>` element.
    pub svg: String,
}

const MIN: i64 = 60_000;
/// Minutes before an alert a socket chart starts.
const BEFORE_MIN: i64 = 60;
/// Minutes after the alert's last sample it ends.
const AFTER_MIN: i64 = 10;
/// Nights a leak chart shows at most.
const LEAK_NIGHTS: usize = 14;

/// The charts for case `a`, times in the zone `offset` minutes east of UTC.
pub fn for_alert(lang: Lang, offset: i32, history: &History, a: &AlertCase) -> Vec<Chart> {
    let ev = &a.evidence;
    let limit = |k: &str| ev.thresholds.get(k).copied();
    let socket_rule = |series: SocketSeries, key: &str| {
        let from = Timestamp(ev.window_start.0 - BEFORE_MIN * MIN);
        let to = Timestamp(ev.window_end.0 + AFTER_MIN * MIN);
        socket_history(
            lang,
            offset,
            history,
            &a.entity,
            series,
            from,
            to,
            limit(key),
            Some(ev.window_start),
        )
    };
    let chart = match a.rule.as_str() {
        "socket_overcurrent" => socket_rule(SocketSeries::Current, "overcurrent_a")
            .into_iter()
            .collect(),
        "socket_overpower" => socket_rule(SocketSeries::Power, "overpower_w")
            .into_iter()
            .collect(),
        "socket_overtemperature" => socket_rule(SocketSeries::Temperature, "overtemp_c")
            .into_iter()
            .collect(),
        "group_rental" => flat_use(lang, history, &a.entity),
        "night_water_leak" => leak_nights(lang, history, &a.entity, limit("min_flow_lph"))
            .into_iter()
            .collect(),
        r if r.starts_with("socket_") && a.entity.contains('#') => session_curve(
            lang,
            offset,
            history,
            &a.entity,
            ev.window_start,
            ev.window_end,
        )
        .into_iter()
        .collect(),
        _ => Vec::new(),
    };
    if chart.is_empty() {
        return evidence_samples(lang, offset, a).into_iter().collect();
    }
    chart
}

fn series_name(lang: Lang, s: SocketSeries) -> &'static str {
    match s {
        SocketSeries::Power => lang.t("series.power_w"),
        SocketSeries::Current => lang.t("series.current_a"),
        SocketSeries::Temperature => lang.t("series.temperature_c"),
    }
}

/// A line over time; `from_zero` for quantities read against nothing
/// (power, current), so that a flat 225 W does not look like a climb.
fn time_chart(
    label: &str,
    offset: i32,
    samples: &[Sample],
    unit: &str,
    limit: Option<(f64, String)>,
    marker: Option<(Timestamp, String)>,
    from_zero: bool,
) -> Option<String> {
    let (first, last) = (samples.first()?, samples.last()?);
    let zero = from_zero.then_some(0.0);
    let y = span(
        samples
            .iter()
            .map(|s| s.value)
            .chain(limit.as_ref().map(|l| l.0))
            .chain(zero),
    )?;
    let mut p = Plot::new(label, (first.ts.0 as f64, last.ts.0 as f64), y, unit);
    if let Some((v, text)) = &limit {
        p.limit(*v, text);
    }
    if let Some((t, text)) = marker.filter(|(t, _)| *t >= first.ts && *t <= last.ts) {
        p.marker(t.0 as f64, &text);
    }
    let points: Vec<(f64, f64)> = samples.iter().map(|s| (s.ts.0 as f64, s.value)).collect();
    p.line(&points, BLUE);
    p.x_labels(
        &local_time::format(first.ts, offset),
        &local_time::format(last.ts, offset),
    );
    Some(p.finish())
}

/// A socket's `series` per minute between `from` and `to`, with a dashed
/// `limit` and a marker at `alert_at`; `None` when nothing is kept.
#[allow(clippy::too_many_arguments)]
pub fn socket_history(
    lang: Lang,
    offset: i32,
    history: &History,
    entity: &str,
    series: SocketSeries,
    from: Timestamp,
    to: Timestamp,
    limit: Option<f64>,
    alert_at: Option<Timestamp>,
) -> Option<Chart> {
    let samples = history.socket(entity, series, from, to);
    let name = series_name(lang, series);
    let limit = limit.map(|v| {
        (
            v,
            lang.fill(
                "chart.limit",
                &[("v", format!("{} {}", super::page::short(v), series.unit()))],
            ),
        )
    });
    let marker = alert_at.map(|t| (t, lang.t("chart.alert").to_owned()));
    let from_zero = series != SocketSeries::Temperature;
    let svg = time_chart(
        name,
        offset,
        &samples,
        series.unit(),
        limit,
        marker,
        from_zero,
    )?;
    Some(Chart {
        caption: lang.fill(
            if alert_at.is_some() {
                "chart.socket"
            } else {
                "chart.socket_hours"
            },
            &[("series", name.to_owned())],
        ),
        svg,
    })
}

fn session_curve(
    lang: Lang,
    offset: i32,
    history: &History,
    entity: &str,
    from: Timestamp,
    to: Timestamp,
) -> Option<Chart> {
    let from = Timestamp(from.0.min(to.0 - BEFORE_MIN * MIN));
    let samples = history.socket(
        entity,
        SocketSeries::Power,
        from,
        Timestamp(to.0 + AFTER_MIN * MIN),
    );
    let svg = time_chart(
        lang.t("series.power_w"),
        offset,
        &samples,
        "W",
        None,
        None,
        true,
    )?;
    Some(Chart {
        caption: lang.t("chart.session").to_owned(),
        svg,
    })
}

fn day_label(day: i32) -> String {
    Date::of(Timestamp(i64::from(day) * 86_400_000), 0).to_string()
}

fn feature_name(lang: Lang, f: FlatFeature) -> &'static str {
    match f {
        FlatFeature::Water => lang.t("feature.water"),
        FlatFeature::Electricity => lang.t("feature.electricity"),
        FlatFeature::Gas => lang.t("feature.gas"),
    }
}

/// Per feature, the flat's daily use per person (line) against its
/// building's middle half (band) and median (grey line).
fn flat_use(lang: Lang, history: &History, flat: &str) -> Vec<Chart> {
    FlatFeature::ALL
        .iter()
        .filter_map(|&f| {
            let mine = history.flat_per_person(flat, f);
            if mine.iter().all(|(_, v)| *v == 0.0) {
                return None;
            }
            let days: Vec<i32> = mine.iter().map(|(d, _)| *d).collect();
            let band = history.building_band(flat, f, &days);
            let values = mine
                .iter()
                .map(|(_, v)| *v)
                .chain(band.iter().flat_map(|b| [b.q1, b.q3]));
            let y = span(values)?;
            let x = (f64::from(*days.first()?), f64::from(*days.last()?));
            let name = feature_name(lang, f);
            let mut p = Plot::new(
                name,
                x,
                y,
                &format!("{}/{}", f.unit(), lang.t("chart.per_person")),
            );
            let xs: Vec<f64> = band.iter().map(|b| f64::from(b.day)).collect();
            p.band(
                &xs,
                &band.iter().map(|b| b.q1).collect::<Vec<_>>(),
                &band.iter().map(|b| b.q3).collect::<Vec<_>>(),
            );
            let median: Vec<(f64, f64)> =
                band.iter().map(|b| (f64::from(b.day), b.median)).collect();
            p.line(&median, GREY);
            let points: Vec<(f64, f64)> = mine.iter().map(|(d, v)| (f64::from(*d), *v)).collect();
            p.line(&points, BLUE);
            p.x_labels(&day_label(days[0]), &day_label(*days.last()?));
            Some(Chart {
                caption: lang.fill("chart.flat", &[("feature", name.to_owned())]),
                svg: p.finish(),
            })
        })
        .collect()
}

/// The mean water flow of each night's quiet hours, L/h, as bars, with the
/// flow the leak rule calls a leak.
fn leak_nights(lang: Lang, history: &History, flat: &str, limit: Option<f64>) -> Option<Chart> {
    let days = history.flat(flat);
    let nights: Vec<(f64, f64)> = days
        .iter()
        .filter(|d| d.night_water_min >= 30)
        .map(|d| {
            (
                f64::from(d.day),
                f64::from(d.night_water_l) * 60.0 / f64::from(d.night_water_min),
            )
        })
        .collect();
    let nights = &nights[nights.len().saturating_sub(LEAK_NIGHTS)..];
    let (first, last) = (nights.first()?, nights.last()?);
    let y = span(nights.iter().map(|n| n.1).chain(limit).chain([0.0]))?;
    let mut p = Plot::new(
        lang.t("feature.water"),
        (first.0 - 0.5, last.0 + 0.5),
        y,
        "L/h",
    );
    p.bars(nights, 0.7, BLUE);
    if let Some(l) = limit {
        p.limit(
            l,
            &lang.fill(
                "chart.limit",
                &[("v", format!("{} L/h", super::page::short(l)))],
            ),
        );
    }
    p.x_labels(&day_label(first.0 as i32), &day_label(last.0 as i32));
    let (h0, h1) = history.night_hours();
    Some(Chart {
        caption: lang.fill(
            "chart.leak",
            &[
                ("n", nights.len().to_string()),
                ("from", format!("{h0:02}:00")),
                ("to", format!("{h1:02}:00")),
            ],
        ),
        svg: p.finish(),
    })
}

/// The samples the alert carried, as before there was a history.
fn evidence_samples(lang: Lang, offset: i32, a: &AlertCase) -> Option<Chart> {
    let ev = &a.evidence;
    let series = ev.series.as_deref().unwrap_or("value");
    let suffix = series.rsplit_once('_').map(|(_, s)| format!("_{s}"));
    let limit = suffix.and_then(|s| ev.thresholds.iter().find(|(k, _)| k.ends_with(&s)));
    let svg = super::chart::svg(
        &ev.samples,
        series,
        limit.map(|(k, v)| (k.as_str(), *v)),
        offset,
    )?;
    Some(Chart {
        caption: lang.fill("alert.chart_caption", &[("series", series.to_owned())]),
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_telemetry::{DeviceKind, Reading};

    fn socket(h: &History, minute: i64, amps: f64) {
        let mut r = Reading::new(
            Timestamp(minute * MIN),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            1,
        );
        r.site = "yard".into();
        r.socket = Some(2);
        r.values.insert("current_a".into(), amps);
        h.observe(&r);
    }

    #[test]
    fn socket_chart_shows_the_minutes_before_the_fault_and_the_limit() {
        let h = History::default();
        for m in 0..120 {
            socket(&h, 1000 + m, if m < 100 { 3.0 } else { 7.0 });
        }
        let c = socket_history(
            Lang::ZhCn,
            480,
            &h,
            "yard/gw-1/pile-1#2",
            SocketSeries::Current,
            Timestamp(1040 * MIN),
            Timestamp(1200 * MIN),
            Some(5.5),
            Some(Timestamp(1100 * MIN)),
        )
        .unwrap();
        let points = c
            .svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(
            points.split(' ').count(),
            80,
            "one point per minute from the start asked"
        );
        assert!(c.svg.contains("限值 5.5 A"), "{}", c.svg);
        assert!(c.svg.contains("class=\"marker\""));
        assert!(
            c.svg.contains("(UTC+8)") && !c.svg.contains('Z'),
            "local times"
        );
        assert!(c.caption.contains("电流"));
        assert!(socket_history(
            Lang::ZhCn,
            480,
            &h,
            "yard/gw-1/pile-1#9",
            SocketSeries::Current,
            Timestamp(0),
            Timestamp(1),
            None,
            None
        )
        .is_none());
    }

    #[test]
    fn flat_chart_has_the_flat_line_and_the_buildings_band() {
        let h = History::new(
            crate::i18n::zones::SiteZones::uniform(0),
            (1, 5),
            Default::default(),
            2,
        );
        for day in 10..20_i64 {
            for (unit, l) in [
                ("0401", 200.0),
                ("0402", 240.0),
                ("0403", 1600.0),
                ("0404", 220.0),
            ] {
                let mut r = Reading::new(
                    Timestamp(day * 86_400_000 + 43_200_000),
                    "gw-1",
                    format!("w-{unit}"),
                    DeviceKind::WaterMeter,
                    1,
                );
                r.site = "s01".into();
                r.building = Some("b02".into());
                r.unit = Some(unit.into());
                r.values.insert("flow_l".into(), l);
                h.observe(&r);
            }
        }
        let charts = flat_use(Lang::ZhCn, &h, "s01/b02/0403");
        assert_eq!(
            charts.len(),
            1,
            "no electricity or gas data, no chart for them"
        );
        let svg = &charts[0].svg;
        assert!(svg.contains("class=\"band\""));
        assert_eq!(svg.matches("<polyline").count(), 2, "median and the flat");
        assert!(svg.contains("1970-01-11") && svg.contains("1970-01-20"));
    }

    #[test]
    fn leak_chart_has_one_bar_per_night_and_the_leak_flow() {
        let h = History::new(
            crate::i18n::zones::SiteZones::uniform(0),
            (1, 5),
            Default::default(),
            2,
        );
        for day in 0..20_i64 {
            for q in 0..16 {
                let mut r = Reading::new(
                    Timestamp(day * 86_400_000 + 3_600_000 + q * 15 * MIN),
                    "gw-1",
                    "w-1",
                    DeviceKind::WaterMeter,
                    1,
                );
                r.site = "s01".into();
                r.building = Some("b02".into());
                r.unit = Some("0301".into());
                r.values.insert("flow_l".into(), 3.0);
                h.observe(&r);
            }
        }
        let c = leak_nights(Lang::En, &h, "s01/b02/0301", Some(6.0)).unwrap();
        assert_eq!(c.svg.matches("class=\"bar\"").count(), LEAK_NIGHTS);
        assert!(c.svg.contains("6 L/h"));
        assert!(c.caption.contains("01:00"), "{}", c.caption);
    }
}
