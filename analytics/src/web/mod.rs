//! The dashboard: server-rendered HTML, no front-end build, no script.
//!
//! Staff log in with their token (kept in an HttpOnly, SameSite=Strict
//! cookie, which is also what keeps other sites from posting the forms),
//! see the alerts of their cells, open one to see its evidence drawn as an
//! inline SVG chart and its trail, and acknowledge or close it with a
//! disposition. Every page goes through the same scoped store calls as the
//! JSON API ([`crate::api::alerts::apply`]).
//!
//! Every page is in the visitor's language ([`crate::i18n`], Chinese unless
//! asked otherwise) and shows times in the sites' zone with the zone written.

pub mod acceptance;
pub mod act;
pub mod alert;
pub mod chart;
pub mod charts;
pub mod flat;
pub mod list;
pub mod list_events;
pub mod page;
pub mod report;
pub mod socket;
pub mod stations;
pub mod svg;
pub mod tip;
pub mod tips_office;
pub mod title;
pub mod upload;

use crate::api::alerts::{apply, close_action, CloseBody};
use crate::api::auth::{caller, Caller, COOKIE};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::i18n::{self, Lang};
use crate::lifecycle::{Action, Disposition};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Form, Router};
use page::{escape, layout};
use serde::Deserialize;

/// Room in a tip-off form for its text fields and multipart framing.
const TIP_FORM_OVERHEAD: usize = 64 * 1024;

/// The dashboard's routes (state is added by [`crate::http::router`]; the
/// language of each request is picked with the directory in `state`).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/alerts") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/alerts", get(alert_list))
        .route("/alerts/events", get(list_events::events))
        .route("/alerts/:id", get(alert_page))
        .route("/alerts/:id/acknowledge", post(acknowledge))
        .route("/alerts/:id/close", post(close))
        .route("/alerts/:id/comments", post(comment))
        .route("/report", get(report_page))
        .route("/report.csv", get(report_csv))
        .route("/report/acceptance.csv", get(acceptance::csv))
        .route(
            "/alerts/:id/renovation",
            post(acceptance::register_premises),
        )
        .route("/renovations/:id", post(acceptance::advance))
        .route("/stations", get(stations::page))
        .route("/stations/events", get(stations::events))
        .route("/stations/socket", get(socket::page))
        .route("/flats", get(flat::page))
        .route(
            "/tip",
            get(tip::form)
                .post(tip::submit)
                .layer(axum::extract::DefaultBodyLimit::max(
                    state.alerts.tips.max_photo_bytes + TIP_FORM_OVERHEAD,
                )),
        )
        .route("/tip/status", get(tip::status))
        .route("/tips.csv", get(tips_office::export))
        .route("/tips/:receipt/paid", post(tips_office::mark_paid))
        .route(
            "/patrol",
            post(tip::patrol).layer(axum::extract::DefaultBodyLimit::max(
                state.alerts.tips.max_photo_bytes + TIP_FORM_OVERHEAD,
            )),
        )
        .merge(act::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            language,
        ))
}

/// Puts the request's [`Lang`] into its extensions: a `?lang=` choice
/// (remembered in the `gw_lang` cookie for a year), else that cookie, else
/// the logged-in user's `language` in the directory, else the browser's
/// `Accept-Language`, else Chinese.
async fn language(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let query = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("lang=")))
        .and_then(Lang::parse);
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == i18n::COOKIE)
        .and_then(|(_, v)| Lang::parse(v));
    let accept = req
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language);
    let user = || {
        let token = crate::api::auth::token(req.headers())?;
        let u = state.directory.authenticate(token)?;
        u.language.as_deref().and_then(Lang::parse)
    };
    let lang = query
        .or(cookie)
        .or_else(user)
        .or(accept)
        .unwrap_or_default();
    req.extensions_mut().insert(lang);
    let mut res = next.run(req).await;
    if let Some(chosen) = query {
        let set = format!(
            "{}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            i18n::COOKIE,
            chosen.tag()
        );
        if let Ok(v) = header::HeaderValue::from_str(&set) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The logged-in caller, or `None` when the page should send them to /login.
fn who(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    caller(state, headers)
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn error_page(lang: Lang, e: ApiError) -> Response {
    let (status, text) = match e {
        ApiError::NotFound(_) => (StatusCode::NOT_FOUND, lang.t("err.not_found").to_owned()),
        ApiError::Forbidden(m) | ApiError::BadRequest(m) | ApiError::Conflict(m) => {
            (StatusCode::BAD_REQUEST, m)
        }
        ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
        ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
        ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
        other => return other.into_response(),
    };
    let body = format!(
        "<p class=\"err\">{}</p><p><a href=\"/alerts\">{}</a></p>",
        escape(&text),
        lang.t("err.back")
    );
    (status, Html(layout(lang, lang.t("err.title"), None, &body))).into_response()
}

async fn login_form(Extension(lang): Extension<Lang>) -> Html<String> {
    let body = format!(
        "<h1>{}</h1><form method=\"post\" action=\"/login\">\
         <label>{}<input name=\"token\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button>{}</button></form>",
        lang.t("login.title"),
        lang.t("login.token"),
        lang.t("login.button")
    );
    Html(layout(lang, lang.t("login.title"), None, &body))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    Form(f): Form<LoginForm>,
) -> Response {
    let token = f.token.trim();
    let valid =
        !token.contains([';', ',', ' ', '"']) && state.directory.authenticate(token).is_some();
    if !valid {
        let body = format!(
            "<p class=\"err\">{}</p><p><a href=\"/login\">{}</a></p>",
            lang.t("login.unknown"),
            lang.t("login.retry")
        );
        let page = layout(lang, lang.t("login.title"), None, &body);
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/alerts")).into_response()
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

async fn alert_list(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<list::ListQuery>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let query = uri.query().unwrap_or("");
    match list::render(&state, lang, &c.user.name, &c.scope, q, query) {
        Ok(page) => Html(page).into_response(),
        Err(e) => error_page(lang, e.into()),
    }
}

async fn alert_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let (a, trail, photos) = match state.store.get(&c.scope, id).and_then(|a| {
        Ok((
            a,
            state.store.audit(&c.scope, id)?,
            state.store.photos(&c.scope, id)?,
        ))
    }) {
        Ok(v) => v,
        Err(e) => return error_page(lang, e.into()),
    };
    let colleagues = act::colleagues(&state, &a.cell, &a.site);
    let charts = charts::for_alert(lang, state.zones.of(&a.site), &state.history, &a);
    let (heading, body) = alert::render(
        lang,
        state.zones.of(&a.site),
        c.may_act(),
        &a,
        &trail,
        &alert::Extras {
            photos: &photos,
            colleagues: &colleagues,
            charts: &charts,
        },
    );
    let offset = state.zones.of(&a.site);
    let body = body
        + &tips_office::section(&state, &c, lang, offset, id)
        + &acceptance::case_section(&state, &c, lang, offset, &a);
    Html(layout(lang, &heading, Some(&c.user.name), &body)).into_response()
}

#[derive(Deserialize)]
struct CloseForm {
    disposition: String,
    note: String,
    #[serde(default)]
    photos: String,
}

#[derive(Deserialize)]
struct CommentForm {
    text: String,
}

fn act_and_return(
    lang: Lang,
    state: &AppState,
    headers: &HeaderMap,
    id: i64,
    action: Result<Action, ApiError>,
) -> Response {
    let Some(c) = who(state, headers) else {
        return to_login();
    };
    match action.and_then(|a| apply(state, &c, id, &a)) {
        Ok(_) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(e) => error_page(lang, e),
    }
}

async fn acknowledge(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    act_and_return(lang, &state, &headers, id, Ok(Action::Acknowledge))
}

async fn close(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CloseForm>,
) -> Response {
    let action = Disposition::parse(&f.disposition)
        .ok_or_else(|| ApiError::BadRequest(lang.t("err.disposition").to_owned()))
        .and_then(|disposition| {
            close_action(CloseBody {
                disposition,
                note: f.note,
                photos: f
                    .photos
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        });
    act_and_return(lang, &state, &headers, id, action)
}

async fn comment(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CommentForm>,
) -> Response {
    let action = if f.text.trim().is_empty() {
        Err(ApiError::BadRequest(lang.t("err.no_text").to_owned()))
    } else {
        Ok(Action::Comment(f.text))
    };
    act_and_return(lang, &state, &headers, id, action)
}

async fn report_page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<report::ReportQuery>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    match report::render(&state, lang, &c.user.name, &c.scope, &q) {
        Ok(page) => Html(page).into_response(),
        Err(e) => error_page(lang, e),
    }
}

async fn report_csv(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<report::ReportQuery>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    match report::csv(&state, lang, &c.scope, &q) {
        Ok((text, name)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            text,
        )
            .into_response(),
        Err(e) => error_page(lang, e),
    }
}
