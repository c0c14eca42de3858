//! `GET /stations/socket?site=…&gateway=…&device=…&socket=…`: one socket on
//! tap from the station view: its card as now, and its last hours of power,
//! current and temperature as charts (from [`crate::history`]), so a
//! property manager can see what a socket has been doing, not only what it
//! does at this moment.

use super::charts::socket_history;
use super::page::{escape, layout};
use super::stations::{active_alerts, socket_card};
use crate::api::auth::caller;
use crate::api::stations::may_see;
use crate::api::AppState;
use crate::history::{SocketSeries, SOCKET_MINUTES};
use crate::i18n::Lang;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use gridwatch_telemetry::Timestamp;
use serde::Deserialize;
use std::fmt::Write;

/// Which socket.
#[derive(Debug, Deserialize)]
pub struct SocketQuery {
    site: String,
    gateway: String,
    device: String,
    socket: u16,
}

/// The socket's page; 404 for a socket outside the caller's sites or not
/// on the board.
pub async fn page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<SocketQuery>,
) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let view = may_see(&state, &c, &q.site)
        .then(|| {
            state
                .stations
                .socket(&q.site, &q.gateway, &q.device, q.socket)
        })
        .flatten();
    let Some(view) = view else {
        let body = format!(
            "<p class=\"err\">{}</p><p><a href=\"/stations\">{}</a></p>",
            lang.t("st.no_socket"),
            lang.t("st.back")
        );
        let page = layout(lang, lang.t("err.title"), Some(&c.user.name), &body);
        return (StatusCode::NOT_FOUND, Html(page)).into_response();
    };
    let offset = state.zones.of(&q.site);
    let now = state.clock.now();
    let title = lang.fill(
        "st.socket",
        &[("device", escape(&q.device)), ("n", q.socket.to_string())],
    );
    let mut body = format!("<h1>{title}</h1>");
    socket_card(
        &mut body,
        lang,
        offset,
        now,
        &q.site,
        &view,
        &active_alerts(&state, &c.scope, &q.site),
    );
    let entity = format!("{}/{}/{}#{}", q.site, q.gateway, q.device, q.socket);
    // The hours before the socket's newest reading: a replayed or delayed
    // site is shown as it was, not as an empty stretch up to now.
    let to = view.ts;
    let from = Timestamp(to.0 - SOCKET_MINUTES as i64 * 60_000);
    let _ = write!(
        body,
        "<h2>{}</h2>",
        lang.fill("st.hours", &[("n", (SOCKET_MINUTES / 60).to_string())])
    );
    let mut any = false;
    for series in [
        SocketSeries::Power,
        SocketSeries::Current,
        SocketSeries::Temperature,
    ] {
        if let Some(c) = socket_history(
            lang,
            offset,
            &state.history,
            &entity,
            series,
            from,
            to,
            None,
            None,
        ) {
            any = true;
            let _ = write!(
                body,
                "<figure class=\"chart-box\"><figcaption class=\"muted\">{}</figcaption>{}</figure>",
                escape(&c.caption),
                c.svg
            );
        }
    }
    if !any {
        let _ = write!(body, "<p class=\"muted\">{}</p>", lang.t("st.no_history"));
    }
    let _ = write!(
        body,
        "<p><a href=\"/stations\">{}</a></p>",
        lang.t("st.back")
    );
    Html(layout(lang, &title, Some(&c.user.name), &body)).into_response()
}
