//! One alert's page: a plain title, where and when, the evidence chart, the
//! forms to act on it, and its trail. The detector's own wording and the
//! feature values stay in a details section for whoever tunes the rules.

use super::page::{escape, number, rule_name, severity, state, when};
use super::{charts, title};
use crate::command::SocketOff;
use crate::i18n::Lang;
use crate::lifecycle::Disposition;
use crate::store::{AlertCase, AuditEntry, PhotoInfo};
use gridwatch_telemetry::Timestamp;
use std::fmt::Write;

/// A link to the flat's register and alerts, for an alert on a flat
/// (`site/building/unit`; sockets and meters have no flat page).
fn flat_link(lang: Lang, entity: &str) -> String {
    if entity.contains('#') || entity.split('/').count() != 3 {
        return String::new();
    }
    format!(
        " · <a href=\"/flats?flat={}\">{}</a>",
        crate::web::stations::query_value(entity),
        lang.t("flat.link")
    )
}

/// What the page shows besides the case and its trail.
pub struct Extras<'a> {
    /// Photos taken on site, oldest first.
    pub photos: &'a [PhotoInfo],
    /// Who the case can be assigned to.
    pub colleagues: &'a [String],
    /// The case's charts ([`charts::for_alert`]), shown as its evidence.
    pub charts: &'a [charts::Chart],
}

/// The page's title and body for case `a` with its `trail`; the forms only
/// when the caller `may_act`.
pub fn render(
    lang: Lang,
    offset: i32,
    may_act: bool,
    a: &AlertCase,
    trail: &[AuditEntry],
    extras: &Extras<'_>,
) -> (String, String) {
    let heading = title::title(lang, &a.rule, &a.entity, &a.evidence, offset);
    let mut body = format!(
        "<h1>{} {}</h1><table>\
         <tr><th>{}</th><td>{}{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
         <tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{} ({}{})</td></tr>",
        severity(lang, a.severity),
        escape(&heading),
        lang.t("alert.state"),
        state(lang, a.state),
        a.assignee
            .as_deref()
            .map(|u| lang.fill("alert.with", &[("user", escape(u))]))
            .unwrap_or_default(),
        lang.t("alert.where"),
        lang.fill(
            "alert.where_value",
            &[
                ("place", escape(&title::place(lang, &a.entity))),
                ("site", escape(&a.site)),
                ("cell", escape(&a.cell)),
            ]
        ) + &flat_link(lang, &a.entity),
        lang.t("alert.first"),
        when(a.first_seen, offset),
        lang.t("alert.last"),
        when(a.last_seen, offset),
        lang.fill("alert.times", &[("n", a.count.to_string())]),
        a.peak
            .map(|p| lang.fill("alert.peak", &[("v", number(p))]))
            .unwrap_or_default(),
    );
    if let Some(c) = a.inhibited_by {
        let link = format!(
            "<a href=\"/alerts/{c}\">{}</a>",
            lang.fill("alert.case", &[("id", c.to_string())])
        );
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{}</td></tr>",
            lang.t("alert.inhibited"),
            lang.fill("alert.inhibited_by", &[("link", link)])
        );
    }
    if let Some(d) = a.disposition {
        let _ = write!(
            body,
            "<tr><th>{}</th><td>{} — {}</td></tr>",
            lang.t("alert.disposition"),
            disposition_name(lang, d),
            escape(a.disposition_note.as_deref().unwrap_or(""))
        );
    }
    let todo = lang
        .find(&format!("do.{}", a.rule))
        .unwrap_or_else(|| lang.t("do.generic"));
    let _ = write!(
        body,
        "</table><h2>{}</h2><p class=\"todo\">{}</p><h2>{}</h2>",
        lang.t("alert.todo"),
        todo,
        lang.t("alert.evidence")
    );
    evidence(&mut body, lang, offset, a, extras.charts);
    if may_act {
        forms(&mut body, lang, a, extras.colleagues);
    }
    photos(&mut body, lang, offset, may_act, a.id, extras.photos);
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/alerts/{}/comments\"><label>{}<textarea name=\"text\" rows=\"2\" required></textarea></label><button>{}</button></form>",
        a.id,
        lang.t("act.comment"),
        lang.t("act.add_comment")
    );
    let _ = write!(
        body,
        "<h2>{}</h2><ol class=\"trail\">",
        lang.t("alert.trail")
    );
    for e in trail {
        let action = lang
            .find(&format!("trail.{}", e.action))
            .map_or_else(|| escape(&e.action), str::to_owned);
        let to = e
            .to_state
            .as_deref()
            .and_then(crate::lifecycle::parse_state)
            .map(|s| format!(" → {}", state(lang, s)))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<li>{} · {} · {action}{to}<div class=\"muted\">{}</div></li>",
            when(e.at, offset),
            escape(&e.actor),
            escape(e.note.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</ol>");
    (heading, body)
}

fn disposition_name(lang: Lang, d: Disposition) -> String {
    lang.find(&format!("disp.{}", d.as_str()))
        .map_or_else(|| d.as_str().replace('_', " "), str::to_owned)
}

fn evidence(body: &mut String, lang: Lang, offset: i32, a: &AlertCase, charts: &[charts::Chart]) {
    let ev = &a.evidence;
    let _ = write!(
        body,
        "<p>{}</p>",
        lang.fill(
            "alert.window",
            &[
                ("from", when(ev.window_start, offset)),
                ("to", when(ev.window_end, offset)),
            ]
        )
    );
    if charts.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\">{}</p>",
            lang.t("alert.no_samples")
        );
    }
    for c in charts {
        let _ = write!(
            body,
            "<figure class=\"chart-box\"><figcaption class=\"muted\">{}</figcaption>{}</figure>",
            escape(&c.caption),
            c.svg
        );
    }
    if !charts.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\">{}</p>",
            lang.t("alert.charts_numbers")
        );
    }
    let nums: Vec<String> = ev
        .values
        .iter()
        .chain(ev.thresholds.iter())
        .map(|(k, v)| format!("<li>{} {}</li>", escape(k), number(*v)))
        .collect();
    let _ = write!(
        body,
        "<details><summary>{}</summary><p>{} · {}</p><p>{}</p><p class=\"muted\">{}</p><ul class=\"muted\">{}</ul></details>",
        lang.t("alert.details"),
        escape(&rule_name(lang, &a.rule)),
        escape(&a.rule),
        escape(&a.title),
        escape(&a.summary),
        nums.join("")
    );
}

fn photos(out: &mut String, lang: Lang, offset: i32, may_act: bool, id: i64, list: &[PhotoInfo]) {
    let _ = write!(
        out,
        "<h2 id=\"photos\">{}</h2><div class=\"photos\">",
        lang.t("alert.photos")
    );
    for p in list {
        let _ = write!(
            out,
            "<figure><a href=\"/api/v1/alerts/{id}/photos/{n}\"><img src=\"/api/v1/alerts/{id}/photos/{n}\" alt=\"{alt}\"></a>\
             <figcaption class=\"muted\">{alt} · {} · {}</figcaption></figure>",
            when(p.at, offset),
            escape(&p.actor),
            n = p.id,
            alt = lang.fill("alert.photo", &[("n", p.id.to_string())]),
        );
    }
    if list.is_empty() {
        let _ = write!(out, "<p class=\"muted\">{}</p>", lang.t("alert.no_photos"));
    }
    out.push_str("</div>");
    if may_act {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/alerts/{id}/photos\" enctype=\"multipart/form-data\">\
             <label>{}<input type=\"file\" name=\"photo\" accept=\"image/jpeg,image/png,image/webp\" capture=\"environment\" required></label>\
             <button>{}</button></form>",
            lang.t("act.photo"),
            lang.t("act.upload"),
        );
    }
}

fn forms(out: &mut String, lang: Lang, a: &AlertCase, colleagues: &[String]) {
    use gridwatch_telemetry::AlertState::*;
    let id = a.id;
    let mut buttons = String::new();
    if a.state == Open {
        let _ = write!(
            buttons,
            "<form method=\"post\" action=\"/alerts/{id}/acknowledge\"><button>{}</button></form>",
            lang.t("act.acknowledge")
        );
    }
    if matches!(a.state, Open | Acknowledged) {
        let _ = write!(
            buttons,
            "<form method=\"post\" action=\"/alerts/{id}/start\"><button>{}</button></form>",
            lang.t("act.start")
        );
    }
    if let Some(c) = SocketOff::for_entity(id, &a.entity, Timestamp(0)) {
        let _ = write!(
            buttons,
            "<a class=\"button danger\" href=\"/alerts/{id}/socket-off\">{}</a>",
            lang.fill("act.cut", &[("n", c.socket.to_string())])
        );
    }
    let _ = write!(out, "<div class=\"actions\">{buttons}</div>");
    if matches!(a.state, Open | Acknowledged | InProgress) {
        let people: String = colleagues
            .iter()
            .map(|u| {
                let selected = if a.assignee.as_deref() == Some(u.as_str()) {
                    " selected"
                } else {
                    ""
                };
                format!("<option value=\"{0}\"{selected}>{0}</option>", escape(u))
            })
            .collect();
        let hours: String = super::act::SILENCE_HOURS
            .iter()
            .map(|h| {
                format!(
                    "<option value=\"{h}\">{}</option>",
                    lang.fill("act.hours", &[("n", h.to_string())])
                )
            })
            .collect();
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/alerts/{id}/assign\"><label>{}<select name=\"assignee\" required>{people}</select></label><button>{}</button></form>\
             <details><summary>{}</summary><form method=\"post\" action=\"/alerts/{id}/silence\">\
             <label>{}<textarea name=\"reason\" rows=\"2\" required></textarea></label>\
             <label>{}<select name=\"hours\" required>{hours}</select></label><button>{}</button></form></details>",
            lang.t("act.assign_to"),
            lang.t("act.assign"),
            lang.t("act.silence_heading"),
            lang.t("act.silence_reason"),
            lang.t("act.silence_for"),
            lang.t("act.silence"),
        );
    }
    if matches!(a.state, Open | Acknowledged | InProgress) {
        let options: String = Disposition::offered_for(&a.rule)
            .iter()
            .map(|d| {
                format!(
                    "<option value=\"{d}\">{}</option>",
                    disposition_name(lang, *d)
                )
            })
            .collect();
        // No disposition is preset: each one feeds the rule's precision.
        let _ = write!(
            out,
            "<h2>{}</h2><form method=\"post\" action=\"/alerts/{}/close\">\
             <label>{}<select name=\"disposition\" required><option value=\"\" disabled selected>{}</option>{options}</select></label>\
             <label>{}<textarea name=\"note\" rows=\"3\" required></textarea></label>\
             <button>{}</button></form>",
            lang.t("act.close_heading"),
            a.id,
            lang.t("act.disposition"),
            lang.t("act.choose"),
            lang.t("act.note"),
            lang.t("act.close"),
        );
    }
}
