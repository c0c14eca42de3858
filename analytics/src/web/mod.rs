//! The dashboard: server-rendered HTML, no front-end build, no script.
//!
//! Staff log in with their token (kept in an HttpOnly, SameSite=Strict
//! cookie, which is also what keeps other sites from posting the forms),
//! see the alerts of their cells, open one to see its evidence drawn as an
//! inline SVG chart and its trail, and acknowledge or close it with a
//! disposition. Every page goes through the same scoped store calls as the
//! JSON API ([`crate::api::alerts::apply`]).

pub mod chart;
pub mod page;
pub mod stations;

use crate::alerts::lifecycle::{Action, Disposition};
use crate::api::alerts::{apply, close_action, CloseBody};
use crate::api::auth::{caller, Caller, COOKIE};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::store::{AlertCase, AlertFilter, AlertSummary};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use page::{escape, layout};
use serde::Deserialize;
use std::fmt::Write;

/// The dashboard's routes (state is added by [`crate::api::router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/alerts") }))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/alerts", get(alert_list))
        .route("/alerts/:id", get(alert_page))
        .route("/alerts/:id/acknowledge", post(acknowledge))
        .route("/alerts/:id/close", post(close))
        .route("/alerts/:id/comments", post(comment))
        .route("/stations", get(stations::page))
        .route("/stations/events", get(stations::events))
}

/// The logged-in caller, or `None` when the page should send them to /login.
fn who(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    caller(state, headers)
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn error_page(e: ApiError) -> Response {
    let (status, text) = match e {
        ApiError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "No such alert among yours.".to_owned(),
        ),
        ApiError::Forbidden(m) | ApiError::BadRequest(m) | ApiError::Conflict(m) => {
            (StatusCode::BAD_REQUEST, m)
        }
        other => return other.into_response(),
    };
    let body = format!(
        "<p class=\"err\">{}</p><p><a href=\"/alerts\">Back to the alerts</a></p>",
        escape(&text)
    );
    (status, Html(layout("Error", None, &body))).into_response()
}

async fn login_form() -> Html<String> {
    Html(layout(
        "Log in",
        None,
        "<h1>Log in</h1><form method=\"post\" action=\"/login\">\
         <label>Your access token<input name=\"token\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button>Log in</button></form>",
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(state): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let token = f.token.trim();
    let valid =
        !token.contains([';', ',', ' ', '"']) && state.directory.authenticate(token).is_some();
    if !valid {
        let body =
            "<p class=\"err\">That token is not known.</p><p><a href=\"/login\">Try again</a></p>";
        return (StatusCode::UNAUTHORIZED, Html(layout("Log in", None, body))).into_response();
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/alerts")).into_response()
}

async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[derive(Deserialize, Default)]
struct ListQuery {
    state: Option<String>,
}

async fn alert_list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let wanted = q.state.unwrap_or_else(|| "active".into());
    let filter = AlertFilter {
        state: (wanted != "all").then(|| wanted.clone()),
        ..AlertFilter::default()
    };
    let cases = match state.store.list(&c.scope, &filter) {
        Ok(v) => v,
        Err(e) => return error_page(e.into()),
    };
    let mut body = String::from("<h1>Alerts</h1><p>");
    for (key, label) in [
        ("active", "Needing action"),
        ("resolved", "Resolved"),
        ("all", "All"),
    ] {
        if key == wanted {
            let _ = write!(body, "<strong>{label}</strong> · ");
        } else {
            let _ = write!(body, "<a href=\"/alerts?state={key}\">{label}</a> · ");
        }
    }
    let _ = write!(body, "{} shown</p>", cases.len());
    if cases.is_empty() {
        body.push_str("<p>Nothing here.</p>");
    } else {
        body.push_str("<table><tr><th>Severity</th><th>Alert</th><th>State</th><th class=\"wide\">Last seen</th></tr>");
        for a in &cases {
            row(&mut body, a);
        }
        body.push_str("</table>");
    }
    Html(layout("Alerts", Some(&c.user.name), &body)).into_response()
}

fn row(out: &mut String, a: &AlertSummary) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td><a href=\"/alerts/{}\">{}</a><div class=\"muted\">{} · cell {}{}</div></td><td>{}</td><td class=\"wide\">{}</td></tr>",
        page::severity(a.severity),
        a.id,
        escape(&a.title),
        escape(&a.site),
        escape(&a.cell),
        if a.count > 1 { format!(" · seen {} times", a.count) } else { String::new() }
            + &a.inhibited_by.map(|c| format!(" · inhibited by case {c}")).unwrap_or_default(),
        page::state(a.state),
        a.last_seen.to_rfc3339()
    );
}

async fn alert_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let (a, trail) = match state
        .store
        .get(&c.scope, id)
        .and_then(|a| Ok((a, state.store.audit(&c.scope, id)?)))
    {
        Ok(v) => v,
        Err(e) => return error_page(e.into()),
    };
    let mut body = format!(
        "<h1>{} {}</h1><p>{}</p><table>\
         <tr><th>State</th><td>{}{}</td></tr><tr><th>Where</th><td>{} (site {}, cell {})</td></tr>\
         <tr><th>First seen</th><td>{}</td></tr><tr><th>Last seen</th><td>{} ({}{})</td></tr>",
        page::severity(a.severity),
        escape(&a.title),
        escape(&a.summary),
        page::state(a.state),
        a.assignee
            .as_deref()
            .map(|u| format!(", with {}", escape(u)))
            .unwrap_or_default(),
        escape(&a.entity),
        escape(&a.site),
        escape(&a.cell),
        a.first_seen.to_rfc3339(),
        a.last_seen.to_rfc3339(),
        if a.count == 1 {
            "once".to_owned()
        } else {
            format!("{} times", a.count)
        },
        a.peak
            .map(|p| format!(", peak {}", page::number(p)))
            .unwrap_or_default(),
    );
    if let Some(c) = a.inhibited_by {
        let _ = write!(
            body,
            "<tr><th>Inhibited</th><td>by <a href=\"/alerts/{c}\">case {c}</a>, its root cause: nobody is notified until that case is resolved</td></tr>"
        );
    }
    if let Some(d) = a.disposition {
        let _ = write!(
            body,
            "<tr><th>Disposition</th><td>{} — {}</td></tr>",
            d,
            escape(a.disposition_note.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table><h2>Evidence</h2>");
    let ev = &a.snapshot.evidence;
    let series = ev.series.as_deref().unwrap_or("value");
    let suffix = series.rsplit_once('_').map(|(_, s)| format!("_{s}"));
    let limit = suffix.and_then(|s| ev.thresholds.iter().find(|(k, _)| k.ends_with(&s)));
    match chart::svg(&ev.samples, series, limit.map(|(k, v)| (k.as_str(), *v))) {
        Some(svg) => {
            let _ = write!(
                body,
                "<p class=\"muted\">{} when the alert was raised</p>{svg}",
                escape(series)
            );
        }
        None => body.push_str("<p class=\"muted\">No samples came with this alert.</p>"),
    }
    let nums: Vec<String> = ev
        .values
        .iter()
        .map(|(k, v)| format!("{} {}", escape(k), page::number(*v)))
        .collect();
    let _ = write!(body, "<p class=\"muted\">{}</p>", nums.join(" · "));
    if c.may_act() {
        forms(&mut body, &a);
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/alerts/{}/comments\"><label>Comment<textarea name=\"text\" rows=\"2\" required></textarea></label><button>Add comment</button></form>",
        a.id
    );
    body.push_str("<h2>Trail</h2><table>");
    for e in &trail {
        let _ = write!(
            body,
            "<tr><td class=\"wide\">{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            e.at.to_rfc3339(),
            escape(&e.actor),
            escape(&e.action),
            e.to_state
                .as_deref()
                .map(|s| format!(" → {}", escape(s)))
                .unwrap_or_default(),
            escape(e.note.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table>");
    Html(layout(&a.title, Some(&c.user.name), &body)).into_response()
}

fn forms(out: &mut String, a: &AlertCase) {
    use gridwatch_telemetry::AlertState::*;
    if a.state == Open {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/alerts/{}/acknowledge\"><button>Acknowledge</button></form>",
            a.id
        );
    }
    if matches!(a.state, Open | Acknowledged | InProgress) {
        let options: String = Disposition::ALL
            .iter()
            .map(|d| {
                format!(
                    "<option value=\"{d}\">{}</option>",
                    d.as_str().replace('_', " ")
                )
            })
            .collect();
        let _ = write!(
            out,
            "<h2>Close</h2><form method=\"post\" action=\"/alerts/{}/close\">\
             <label>Disposition<select name=\"disposition\">{options}</select></label>\
             <label>What was found and done<textarea name=\"note\" rows=\"3\" required></textarea></label>\
             <label>Photo references (comma-separated)<input name=\"photos\"></label>\
             <button>Close alert</button></form>",
            a.id
        );
    }
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
        Err(e) => error_page(e),
    }
}

async fn acknowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    act_and_return(&state, &headers, id, Ok(Action::Acknowledge))
}

async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CloseForm>,
) -> Response {
    let action = Disposition::parse(&f.disposition)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown disposition {:?}", f.disposition)))
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
    act_and_return(&state, &headers, id, action)
}

async fn comment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CommentForm>,
) -> Response {
    let action = if f.text.trim().is_empty() {
        Err(ApiError::BadRequest("a comment needs text".into()))
    } else {
        Ok(Action::Comment(f.text))
    };
    act_and_return(&state, &headers, id, action)
}
