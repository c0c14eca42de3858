//! The assessment report page and its CSV export: per grid cell and rule,
//! for a period of local dates (the current month by default), in the
//! caller's scope — the same [`crate::store::Scope`] as the alert list, so a
//! grid staff member sees only their own cells' rows.

use super::page::{escape, layout, rule_name};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::i18n::local_time::{zone, Date};
use crate::i18n::Lang;
use crate::store::{ReportPeriod, ReportRow, Scope};
use serde::Deserialize;
use std::fmt::Write;

/// `from` and `to`: local dates `YYYY-MM-DD`, both included; either left out
/// (or empty) means the first or last day of the current month.
#[derive(Deserialize, Default)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The dates asked for and the period they cover, or a message naming the
/// bad parameter.
/// The report's period from the query.
pub fn period(
    state: &AppState,
    lang: Lang,
    q: &ReportQuery,
) -> Result<(Date, Date, ReportPeriod), ApiError> {
    let now = state.clock.now();
    let today = Date::of(now, state.zones.default_min());
    let pick = |name: &str, v: &Option<String>, default: Date| match v.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => Date::parse(s).ok_or_else(|| {
            ApiError::BadRequest(lang.fill(
                "err.date",
                &[("name", name.to_owned()), ("value", s.to_owned())],
            ))
        }),
    };
    let from = pick("from", &q.from, today.month_start())?;
    let to = pick("to", &q.to, today.month_end())?;
    if from > to {
        return Err(ApiError::BadRequest(lang.fill(
            "err.period",
            &[("from", from.to_string()), ("to", to.to_string())],
        )));
    }
    let p = ReportPeriod {
        from: from.start(state.zones.default_min()),
        to: to.end(state.zones.default_min()),
        now,
    };
    Ok((from, to, p))
}

/// A duration for people: minutes under an hour, hours under two days,
/// else days.
fn duration(lang: Lang, s: Option<f64>) -> String {
    let Some(s) = s else {
        return lang.t("report.none").to_owned();
    };
    let one = |v: f64| super::page::short(v);
    if s < 3600.0 {
        lang.fill("report.minutes", &[("n", one(s / 60.0))])
    } else if s < 48.0 * 3600.0 {
        lang.fill("report.hours", &[("n", one(s / 3600.0))])
    } else {
        lang.fill("report.days", &[("n", one(s / 86_400.0))])
    }
}

fn rate(lang: Lang, r: &ReportRow) -> String {
    match r.false_alarm_rate {
        Some(v) => lang.fill(
            "report.rate",
            &[
                ("pct", super::page::short(v * 100.0)),
                ("n", r.false_alarms.to_string()),
                ("of", r.judged.to_string()),
            ],
        ),
        None => lang.t("report.none").to_owned(),
    }
}

/// The report page for `user` in `scope`.
pub fn render(
    state: &AppState,
    lang: Lang,
    user: &str,
    scope: &Scope,
    q: &ReportQuery,
) -> Result<String, ApiError> {
    let (from, to, p) = period(state, lang, q)?;
    let rows = state.store.report(scope, &p, &state.alerts)?;
    let days = super::page::short(state.alerts.close_within_s as f64 / 86_400.0);
    let mut body = format!(
        "<h1>{}</h1><form method=\"get\" action=\"/report\" class=\"filters\">\
         <label>{}<input type=\"date\" name=\"from\" value=\"{from}\"></label>\
         <label>{}<input type=\"date\" name=\"to\" value=\"{to}\"></label>\
         <button>{}</button></form>\
         <p><a href=\"/report.csv?from={from}&amp;to={to}\" download>{}</a></p>\
         <p class=\"muted\">{}</p><p class=\"muted\">{}</p><p class=\"muted\">{}</p>",
        lang.t("report.title"),
        lang.t("report.from"),
        lang.t("report.to"),
        lang.t("report.show"),
        lang.t("report.csv"),
        escape(&lang.fill(
            "report.period",
            &[
                ("from", from.to_string()),
                ("to", to.to_string()),
                ("zone", zone(state.zones.default_min())),
            ]
        )),
        escape(&lang.fill("report.limits", &[("days", days)])),
        lang.t("report.no_streets"),
    );
    if rows.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t("report.empty"));
    }
    for r in &rows {
        let cells = [
            ("report.found", r.found.to_string()),
            ("report.ack_in_time", r.acknowledged_in_time.to_string()),
            ("report.closed_in_time", r.closed_in_time.to_string()),
            ("report.overdue", r.overdue.to_string()),
            ("report.median_ack", duration(lang, r.median_ack_s)),
            ("report.median_close", duration(lang, r.median_close_s)),
            ("report.false_rate", rate(lang, r)),
        ];
        let _ = write!(
            body,
            "<div class=\"card\"><strong>{} · {}</strong><table>",
            escape(&r.cell),
            escape(&rule_name(lang, &r.rule))
        );
        for (k, v) in cells {
            let _ = write!(
                body,
                "<tr><th>{}</th><td>{}</td></tr>",
                lang.t(k),
                escape(&v)
            );
        }
        body.push_str("</table></div>");
    }
    let (acc, target) = super::acceptance::acceptance(state, scope, &p)?;
    body += &super::acceptance::section(lang, &acc, target.as_ref());
    let _ = write!(
        body,
        "<p><a href=\"/report/acceptance.csv?from={from}&amp;to={to}\" download>{}</a></p>",
        lang.t("acc.csv")
    );
    Ok(layout(lang, lang.t("report.title"), Some(user), &body))
}

/// One CSV field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The report as CSV: a UTF-8 byte-order mark (so Excel reads the Chinese
/// right), a header row in `lang`, one row per cell and rule. Times are
/// seconds and the rate a fraction, for spreadsheets to compute with.
/// Returns the text and a file name.
pub fn csv(
    state: &AppState,
    lang: Lang,
    scope: &Scope,
    q: &ReportQuery,
) -> Result<(String, String), ApiError> {
    let (from, to, p) = period(state, lang, q)?;
    let rows = state.store.report(scope, &p, &state.alerts)?;
    let header = [
        "report.from",
        "report.to",
        "report.cell",
        "report.rule_id",
        "report.rule",
        "report.found",
        "report.ack_in_time",
        "report.closed_in_time",
        "report.overdue",
        "report.median_ack_s",
        "report.median_close_s",
        "report.false_alarms",
        "report.judged",
        "report.false_rate",
    ];
    let mut out = String::from("\u{feff}");
    out.push_str(&header.map(|k| field(lang.t(k))).join(","));
    out.push_str("\r\n");
    let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    for r in &rows {
        let line = [
            from.to_string(),
            to.to_string(),
            r.cell.clone(),
            r.rule.clone(),
            rule_name(lang, &r.rule),
            r.found.to_string(),
            r.acknowledged_in_time.to_string(),
            r.closed_in_time.to_string(),
            r.overdue.to_string(),
            opt(r.median_ack_s),
            opt(r.median_close_s),
            r.false_alarms.to_string(),
            r.judged.to_string(),
            opt(r.false_alarm_rate),
        ];
        out.push_str(&line.map(|f| field(&f)).join(","));
        out.push_str("\r\n");
    }
    Ok((out, format!("report-{from}-{to}.csv")))
}
