//! `GET /flats?flat=site/building/unit`: one flat's register history beside
//! its alerts, so grid staff see who was registered there when an alert was
//! raised and what changed since (a flat re-registered from 2 to 8
//! occupants, a sublandlord who appeared). Scoped like the alerts: a flat
//! of a site outside the caller's cells or sites is a 404.

use super::page::{escape, layout, rule_name, severity, state as state_name, when};
use crate::api::auth::caller;
use crate::api::stations::may_see;
use crate::api::AppState;
use crate::i18n::Lang;
use crate::register::dates::format_day;
use crate::register::FlatEntry;
use crate::store::AlertFilter;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use std::fmt::Write;

/// Which flat.
#[derive(Debug, Deserialize)]
pub struct FlatQuery {
    flat: String,
}

/// Alerts of the site looked through for the flat's own.
const SITE_ALERTS: u32 = 1000;

/// The flat's page.
pub async fn page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<FlatQuery>,
) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let site = q.flat.split('/').next().unwrap_or_default().to_owned();
    let register = state.history.register().get();
    let history = register.history(&q.flat);
    let filter = AlertFilter {
        site: Some(site.clone()),
        limit: Some(SITE_ALERTS),
        ..Default::default()
    };
    let alerts: Vec<_> = match state.store.list(&c.scope, &filter) {
        Ok(all) => all.into_iter().filter(|a| a.entity == q.flat).collect(),
        Err(e) => {
            tracing::warn!("flat page {}: {e}", q.flat);
            Vec::new()
        }
    };
    if !may_see(&state, &c, &site) || (history.is_empty() && alerts.is_empty()) {
        let body = format!(
            "<p class=\"err\">{}</p><p><a href=\"/alerts\">{}</a></p>",
            lang.t("flat.unknown"),
            lang.t("err.back")
        );
        let page = layout(lang, lang.t("err.title"), Some(&c.user.name), &body);
        return (StatusCode::NOT_FOUND, Html(page)).into_response();
    }
    let offset = state.zones.of(&site);
    let title = lang.fill("flat.title", &[("flat", escape(&q.flat))]);
    let mut body = format!("<h1>{title}</h1><h2>{}</h2>", lang.t("flat.register"));
    if history.is_empty() {
        let _ = write!(
            body,
            "<p class=\"muted\">{}</p>",
            lang.t("flat.not_registered")
        );
    } else {
        register_table(&mut body, lang, history);
    }
    let _ = write!(body, "<h2>{}</h2>", lang.t("flat.alerts"));
    if alerts.is_empty() {
        let _ = write!(body, "<p class=\"muted\">{}</p>", lang.t("list.empty"));
    } else {
        body += "<ul class=\"cards\">";
        for a in &alerts {
            let _ = write!(
                body,
                "<li class=\"card\"><a href=\"/alerts/{}\">{} {}</a><br>{} · {}</li>",
                a.id,
                severity(lang, a.severity),
                escape(&rule_name(lang, &a.rule)),
                when(a.first_seen, offset),
                state_name(lang, a.state),
            );
        }
        body += "</ul>";
    }
    let _ = write!(
        body,
        "<p><a href=\"/alerts\">{}</a></p>",
        lang.t("err.back")
    );
    Html(layout(lang, &title, Some(&c.user.name), &body)).into_response()
}

/// The entries newest first, the one in force marked.
fn register_table(body: &mut String, lang: Lang, history: &[FlatEntry]) {
    let _ = write!(
        body,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        lang.t("flat.since"),
        lang.t("flat.occupants"),
        lang.t("flat.business"),
        lang.t("flat.landlord"),
        lang.t("flat.area"),
    );
    for (i, e) in history.iter().enumerate().rev() {
        let since = e
            .since
            .as_deref()
            .and_then(crate::register::dates::parse_date)
            .map_or_else(|| lang.t("flat.undated").to_owned(), format_day);
        let current = if i + 1 == history.len() {
            format!(" <b>{}</b>", lang.t("flat.current"))
        } else {
            String::new()
        };
        let landlord = match (&e.landlord, &e.sublandlord) {
            (_, Some(sub)) => lang.fill("flat.sublet", &[("who", escape(sub))]),
            (Some(l), None) => escape(l),
            (None, None) => "—".to_owned(),
        };
        let place: Vec<&str> = [&e.town, &e.street, &e.community, &e.cell]
            .into_iter()
            .filter_map(|x| x.as_deref())
            .collect();
        let _ = write!(
            body,
            "<tr><td>{since}{current}</td><td>{}</td><td>{}</td><td>{landlord}</td><td>{}</td></tr>",
            e.occupants,
            if e.business { lang.t("flat.yes") } else { lang.t("flat.no") },
            escape(&place.join(" / ")),
        );
    }
    body.push_str("</table>");
}
