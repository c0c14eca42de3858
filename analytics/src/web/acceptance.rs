//! The assessment report's compliance part: per town and street (from the
//! register's places) and hazard, the premises found, ordered and accepted
//! (验收) by the period's end, the acceptance rate against the campaign's
//! target in force, and the tip-off rewards earned and paid there. On the
//! report page and as `GET /report/acceptance.csv`.

use super::page::{escape, layout};
use super::report::{period, ReportQuery};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::i18n::Lang;
use crate::register::Register;
use crate::renovation::{Acceptance, Step, Target};
use crate::store::{ReportPeriod, Scope};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The town and street of `flat`, from its latest register entry.
fn place(register: &Register, flat: &str) -> (String, String) {
    let e = register.history(flat).last();
    let town = e.and_then(|e| e.town.clone()).unwrap_or_else(|| "—".into());
    let street = e.and_then(|e| e.street.clone()).unwrap_or_default();
    (town, street)
}

/// Acceptance per town (street empty) and per street, by hazard, at the
/// end of `p`; and the target in force then.
pub fn acceptance(
    state: &AppState,
    scope: &Scope,
    p: &ReportPeriod,
) -> Result<(Vec<Acceptance>, Option<Target>), ApiError> {
    let register = state.history.register().get();
    let end = p.to.0;
    let mut rows: BTreeMap<(String, String, String), Acceptance> = BTreeMap::new();
    for r in state.store.renovations(scope)? {
        let found = r.at[0].is_some_and(|t| t.0 < end);
        let closed = r.at[4].is_some_and(|t| t.0 < end);
        if !found || closed {
            continue;
        }
        let (town, street) = place(&register, &r.flat);
        let reached = |i: usize| r.at[i].is_some_and(|t| t.0 < end);
        let mut keys = vec![(town.clone(), String::new(), r.hazard.clone())];
        if !street.is_empty() {
            keys.push((town.clone(), street.clone(), r.hazard.clone()));
        }
        for key in keys {
            let a = rows.entry(key.clone()).or_insert_with(|| Acceptance {
                town: key.0,
                street: key.1,
                hazard: key.2,
                ..Acceptance::default()
            });
            a.found += 1;
            a.ordered += u64::from(reached(1) || reached(2) || reached(3));
            a.accepted += u64::from(reached(3) && r.step == Step::Accepted);
        }
    }
    for t in state.store.tips(scope, false, &state.alerts)? {
        if t.reward_yuan == 0 || t.reported.0 >= end {
            continue;
        }
        let (town, _) = place(&register, &t.flat);
        let a = rows
            .entry((town.clone(), String::new(), "tips".into()))
            .or_insert_with(|| Acceptance {
                town,
                hazard: "tips".into(),
                ..Acceptance::default()
            });
        a.tips_confirmed += 1;
        a.rewards_yuan += u64::from(t.reward_yuan);
        if t.paid.is_some() {
            a.rewards_paid_yuan += u64::from(t.reward_yuan);
        }
    }
    let mut out: Vec<Acceptance> = rows.into_values().collect();
    for a in &mut out {
        a.rate = (a.found > 0).then(|| a.accepted as f64 / a.found as f64);
    }
    let day = crate::register::dates::local_day(end - 1, state.zones.default_min());
    Ok((out, state.alerts.renovation.target_on(day).cloned()))
}

/// The section of the report page.
pub fn section(lang: Lang, rows: &[Acceptance], target: Option<&Target>) -> String {
    let mut out = format!("<h2>{}</h2>", lang.t("acc.title"));
    let _ = write!(
        out,
        "<p class=\"muted\">{}</p>",
        match target {
            Some(t) => escape(&lang.fill(
                "acc.target",
                &[("percent", t.percent.to_string()), ("by", t.by.clone())]
            )),
            None => lang.t("acc.no_target").to_owned(),
        }
    );
    if rows.is_empty() {
        let _ = write!(out, "<p>{}</p>", lang.t("acc.none"));
        return out;
    }
    for a in rows {
        let place = if a.street.is_empty() {
            escape(&a.town)
        } else {
            format!("{} · {}", escape(&a.town), escape(&a.street))
        };
        if a.hazard == "tips" {
            let _ = write!(
                out,
                "<div class=\"card\"><strong>{place} · {}</strong><table>\
                 <tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
                 <tr><th>{}</th><td>{}</td></tr></table></div>",
                lang.t("acc.tips"),
                lang.t("acc.tips_confirmed"),
                a.tips_confirmed,
                lang.t("acc.rewards"),
                a.rewards_yuan,
                lang.t("acc.rewards_paid"),
                a.rewards_paid_yuan,
            );
            continue;
        }
        let rate = a
            .rate
            .map_or("—".to_owned(), |r| format!("{:.0} %", r * 100.0));
        let verdict = match (a.rate, target) {
            (Some(r), Some(t)) if r * 100.0 + 1e-9 >= f64::from(t.percent) => {
                format!("<span class=\"ok\">{}</span>", lang.t("acc.met"))
            }
            (Some(_), Some(_)) => format!("<span class=\"err\">{}</span>", lang.t("acc.behind")),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<div class=\"card\"><strong>{place} · {}</strong><table>\
             <tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>\
             <tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{rate} {verdict}</td></tr></table></div>",
            escape(&super::page::rule_name(lang, &a.hazard)),
            lang.t("acc.found"),
            a.found,
            lang.t("acc.ordered"),
            a.ordered,
            lang.t("acc.accepted"),
            a.accepted,
            lang.t("acc.rate"),
        );
    }
    out
}

/// `GET /report/acceptance.csv`: the same rows (UTF-8 with a BOM).
pub async fn csv(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Response {
    let Some(c) = crate::api::auth::caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let result = period(&state, lang, &q).and_then(|(from, to, p)| {
        acceptance(&state, &c.scope, &p).map(|(rows, target)| (from, to, rows, target))
    });
    let (from, to, rows, target) = match result {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut out = String::from(
        "\u{feff}from,to,town,street,hazard,found,ordered,accepted,rate,target_percent,target_by,tips_confirmed,rewards_yuan,rewards_paid_yuan\r\n",
    );
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for a in &rows {
        let _ = write!(
            out,
            "{from},{to},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            q(&a.town),
            q(&a.street),
            a.hazard,
            a.found,
            a.ordered,
            a.accepted,
            a.rate.map(|r| format!("{r:.4}")).unwrap_or_default(),
            target
                .as_ref()
                .map(|t| t.percent.to_string())
                .unwrap_or_default(),
            target.as_ref().map(|t| t.by.clone()).unwrap_or_default(),
            a.tips_confirmed,
            a.rewards_yuan,
            a.rewards_paid_yuan,
        );
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"acceptance-{from}-{to}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

/// The renovation part of a case's page: for a flat's group-rental,
/// three-in-one, tip or patrol case, each hazard's renovation step with its
/// times, and the buttons to register it or move it on.
pub fn case_section(
    state: &AppState,
    c: &crate::api::auth::Caller,
    lang: Lang,
    offset: i32,
    case: &crate::store::AlertCase,
) -> String {
    let hazards: Vec<&str> = match case.rule.as_str() {
        "group_rental" => vec!["group_rental"],
        "three_in_one" => vec!["three_in_one"],
        crate::tips::RULE_TIP | crate::tips::RULE_PATROL => crate::renovation::HAZARDS.to_vec(),
        _ => return String::new(),
    };
    if case.entity.contains('#') || case.entity.split('/').count() != 3 {
        return String::new();
    }
    let mut out = format!("<h2>{}</h2>", lang.t("acc.case_title"));
    for h in hazards {
        let r = state.store.renovation_of(&case.entity, h).ok().flatten();
        let name = escape(&super::page::rule_name(lang, h));
        match r {
            None if c.may_act() => {
                let _ = write!(
                    out,
                    "<form method=\"post\" action=\"/alerts/{}/renovation\"><input type=\"hidden\" name=\"hazard\" value=\"{h}\">\
                     <button>{}</button></form>",
                    case.id,
                    lang.fill("acc.register", &[("hazard", name.clone())])
                );
            }
            None => {}
            Some(r) => {
                let _ = write!(
                    out,
                    "<div class=\"card\"><strong>{name}</strong><ol class=\"trail\">"
                );
                for (i, step) in crate::renovation::Step::ALL.iter().enumerate() {
                    if let Some(t) = r.at[i] {
                        let _ = write!(
                            out,
                            "<li>{} {}</li>",
                            lang.t(step_key(*step)),
                            super::page::when(t, offset)
                        );
                    }
                }
                out.push_str("</ol>");
                if c.may_act() {
                    out.push_str("<div class=\"actions\">");
                    for next in r.step.next() {
                        let _ = write!(
                            out,
                            "<form method=\"post\" action=\"/renovations/{}\"><input type=\"hidden\" name=\"to\" value=\"{}\">\
                             <button>{}</button></form>",
                            r.id,
                            next.as_str(),
                            lang.t(step_key(next))
                        );
                    }
                    out.push_str("</div>");
                }
                out.push_str("</div>");
            }
        }
    }
    out
}

fn step_key(s: Step) -> &'static str {
    match s {
        Step::Found => "acc.s.found",
        Step::Ordered => "acc.s.ordered",
        Step::Renovated => "acc.s.renovated",
        Step::Accepted => "acc.s.accepted",
        Step::Closed => "acc.s.closed",
    }
}

/// A form naming a hazard.
#[derive(Debug, Deserialize)]
pub struct HazardForm {
    hazard: String,
}

/// A form naming the next step.
#[derive(Debug, Deserialize)]
pub struct StepForm {
    to: String,
}

fn refuse(lang: Lang, status: StatusCode, msg: &str) -> Response {
    let body = format!(
        "<p class=\"err\">{}</p><p><a href=\"/alerts\">{}</a></p>",
        escape(msg),
        lang.t("err.back")
    );
    (
        status,
        axum::response::Html(layout(lang, lang.t("err.title"), None, &body)),
    )
        .into_response()
}

/// `POST /alerts/:id/renovation`: registers the case's premises.
pub async fn register_premises(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<HazardForm>,
) -> Response {
    let Some(c) = crate::api::auth::caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !c.may_act() {
        return refuse(lang, StatusCode::FORBIDDEN, lang.t("acc.role"));
    }
    match state
        .store
        .found_premises(&c.scope, id, &f.hazard, &c.user.name, state.clock.now())
    {
        Ok(_) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(e) => {
            let status = ApiError::from(e).into_response().status();
            refuse(lang, status, lang.t("acc.refused"))
        }
    }
}

/// `POST /renovations/:id`: moves a premises to its next step.
pub async fn advance(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<StepForm>,
) -> Response {
    let Some(c) = crate::api::auth::caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !c.may_act() {
        return refuse(lang, StatusCode::FORBIDDEN, lang.t("acc.role"));
    }
    let Some(to) = Step::parse(&f.to) else {
        return refuse(lang, StatusCode::BAD_REQUEST, lang.t("acc.refused"));
    };
    match state
        .store
        .advance_renovation(&c.scope, id, to, &c.user.name, state.clock.now())
    {
        Ok(r) => match r.case_id {
            Some(case) => Redirect::to(&format!("/alerts/{case}")).into_response(),
            None => Redirect::to("/report").into_response(),
        },
        Err(e) => {
            let msg = e.to_string();
            let status = ApiError::from(e).into_response().status();
            refuse(lang, status, &msg)
        }
    }
}
