//! The office's side of tip-offs: the tips behind a case on its page (the
//! reporter's contact shown to the office only), the reward bookkeeping
//! export (`GET /tips.csv`) and marking a reward paid
//! (`POST /tips/:receipt/paid`, office only).

use super::page::{escape, when};
use crate::alerts::directory::Role;
use crate::api::auth::{caller, Caller};
use crate::api::AppState;
use crate::i18n::Lang;
use crate::store::tips::TipRecord;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::fmt::Write;

/// The office: admins see reporters' contacts and pay rewards.
pub fn is_office(c: &Caller) -> bool {
    c.user.role == Role::Admin
}

/// The tips behind case `id`, as a section of its page; empty for a case
/// no tip opened.
pub fn section(state: &AppState, c: &Caller, lang: Lang, offset: i32, id: i64) -> String {
    let office = is_office(c);
    let Ok(tips) = state
        .store
        .tips_of_case(&c.scope, id, office, &state.alerts)
    else {
        return String::new();
    };
    if tips.is_empty() {
        return String::new();
    }
    let mut out = format!("<h2>{}</h2><ul class=\"cards\">", lang.t("tips.heading"));
    for t in &tips {
        let _ = write!(
            out,
            "<li class=\"card\">{} · {} · {}<br>{}: {}",
            escape(&t.receipt),
            lang.t(channel_key(&t.channel)),
            when(t.reported, offset),
            lang.t("tips.place"),
            escape(&t.place)
        );
        if office {
            let contact = t.contact.as_deref().map_or("—".to_owned(), escape);
            let _ = write!(out, "<br>{}: {contact}", lang.t("tips.contact"));
        }
        let reward = match (t.reward_yuan, t.paid) {
            (0, _) => lang.t("tips.no_reward").to_owned(),
            (y, Some(_)) => lang.fill("tips.paid", &[("yuan", y.to_string())]),
            (y, None) => lang.fill("tips.due", &[("yuan", y.to_string())]),
        };
        let _ = write!(out, "<br>{reward}");
        if office && t.reward_yuan > 0 && t.paid.is_none() {
            let _ = write!(
                out,
                "<form method=\"post\" action=\"/tips/{}/paid\"><button>{}</button></form>",
                escape(&t.receipt),
                lang.t("tips.mark_paid")
            );
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    out
}

fn channel_key(channel: &str) -> &'static str {
    match channel {
        "hotline" => "tips.hotline",
        "patrol" => "tips.patrol",
        _ => "tips.public",
    }
}

/// `GET /tips.csv`: every tip in the caller's scope with its reward, paid
/// or not (UTF-8 with a BOM, for Excel); contacts for the office only.
pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let tips = match state.store.tips(&c.scope, is_office(&c), &state.alerts) {
        Ok(t) => t,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let mut out = String::from("\u{feff}receipt,case,channel,hazard,flat,cell,reported_utc,state,disposition,reward_yuan,paid_utc,contact\r\n");
    for t in &tips {
        row(&mut out, t);
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tips.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

fn row(out: &mut String, t: &TipRecord) {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let _ = write!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
        quote(&t.receipt),
        t.case_id,
        t.channel,
        t.hazard,
        quote(&t.flat),
        quote(&t.cell),
        t.reported,
        crate::lifecycle::state_name(t.state),
        t.disposition.as_deref().unwrap_or(""),
        t.reward_yuan,
        t.paid.map(|p| p.to_string()).unwrap_or_default(),
        quote(t.contact.as_deref().unwrap_or("")),
    );
}

/// `POST /tips/:receipt/paid`: the office marks a confirmed tip's reward
/// paid, then goes back to its case.
pub async fn mark_paid(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(receipt): Path<String>,
) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !is_office(&c) {
        return (StatusCode::FORBIDDEN, "only the office pays rewards").into_response();
    }
    let now = state.clock.now();
    let case = state
        .store
        .tips(&c.scope, false, &state.alerts)
        .ok()
        .and_then(|all| all.into_iter().find(|t| t.receipt == receipt))
        .map(|t| t.case_id);
    match (
        state.store.mark_tip_paid(&receipt, now, &state.alerts),
        case,
    ) {
        (Ok(true), Some(id)) => {
            let _ = state
                .store
                .note(id, now, &c.user.name, "comment", "举报奖励已发放。");
            Redirect::to(&format!("/alerts/{id}")).into_response()
        }
        (Ok(_), _) => (
            StatusCode::CONFLICT,
            "no confirmed, unpaid tip with that receipt",
        )
            .into_response(),
        (Err(e), _) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
