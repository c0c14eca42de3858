//! The dashboard's forms that act from an alert beyond acknowledging and
//! closing it: start work, assign it to a colleague, silence it with a
//! reason and an expiry, cut the socket (after a confirmation page) and
//! upload a photo from the phone's camera. Each goes through the same
//! checks as its JSON API ([`crate::api::alerts::apply`],
//! [`crate::api::act`]) and returns to the alert's page, where the trail
//! shows what was done.

use super::page::{escape, layout};
use super::{act_and_return, error_page, title, to_login, upload, who};
use crate::api::act::{add_photo, cut_socket, MAX_PHOTO_BYTES};
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::command::SocketOff;
use crate::i18n::Lang;
use crate::lifecycle::Action;
use crate::store::NewSilence;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use gridwatch_telemetry::Timestamp;
use serde::Deserialize;

/// Silence lengths the form offers, in hours.
pub const SILENCE_HOURS: [u32; 4] = [4, 24, 72, 168];

/// Room for the form's own lines around a photo.
const FORM_OVERHEAD: usize = 64 * 1024;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts/:id/start", post(start))
        .route("/alerts/:id/assign", post(assign))
        .route("/alerts/:id/silence", post(silence))
        .route("/alerts/:id/socket-off", get(confirm_cut).post(cut))
        .route(
            "/alerts/:id/photos",
            post(photo).layer(axum::extract::DefaultBodyLimit::max(
                MAX_PHOTO_BYTES + FORM_OVERHEAD,
            )),
        )
}

async fn start(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    act_and_return(lang, &state, &headers, id, Ok(Action::Start))
}

#[derive(Deserialize)]
struct AssignForm {
    assignee: String,
}

/// The users who may take case `cell`/`site` over: grid staff and admins
/// who can see it.
pub fn colleagues(state: &AppState, cell: &str, site: &str) -> Vec<String> {
    use crate::alerts::directory::Role;
    state
        .directory
        .users
        .iter()
        .filter(|u| u.role != Role::PropertyManager && state.directory.scope(u).allows(cell, site))
        .map(|u| u.name.clone())
        .collect()
}

async fn assign(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<AssignForm>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let fits = state
        .store
        .get(&c.scope, id)
        .map_err(ApiError::from)
        .map(|case| colleagues(&state, &case.cell, &case.site).contains(&f.assignee));
    let action = match fits {
        Ok(true) => Ok(Action::Assign(f.assignee)),
        Ok(false) => Err(ApiError::BadRequest(lang.t("err.assignee").to_owned())),
        Err(e) => Err(e),
    };
    act_and_return(lang, &state, &headers, id, action)
}

#[derive(Deserialize)]
struct SilenceForm {
    reason: String,
    hours: u32,
}

async fn silence(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<SilenceForm>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let done = (|| {
        let case = state.store.get(&c.scope, id)?;
        c.require_act()?;
        if f.reason.trim().is_empty() {
            return Err(ApiError::BadRequest(lang.t("err.no_reason").to_owned()));
        }
        if !SILENCE_HOURS.contains(&f.hours) {
            return Err(ApiError::BadRequest(lang.t("err.silence_hours").to_owned()));
        }
        let now = state.clock.now();
        let ends = Timestamp(now.0 + i64::from(f.hours) * 3_600_000);
        let s = state.store.add_silence(
            &NewSilence {
                cell: Some(case.cell.clone()),
                site: Some(case.site.clone()),
                rule: Some(case.rule.clone()),
                entity: Some(case.entity.clone()),
                starts: None,
                ends,
                reason: f.reason.clone(),
            },
            &c.user.name,
            now,
        )?;
        let note = lang.fill(
            "trail.silence_note",
            &[
                ("until", super::page::when(ends, state.zones.of(&case.site))),
                ("reason", f.reason.clone()),
            ],
        );
        state.store.note(id, now, &c.user.name, "silence", &note)?;
        tracing::info!(alert = id, user = %c.user.name, "{} silenced alert {id}'s rule and place for {} h (silence {})", c.user.name, f.hours, s.id);
        Ok::<(), ApiError>(())
    })();
    match done {
        Ok(()) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(e) => error_page(lang, e),
    }
}

/// The confirmation page: what will be cut, and a button that does it.
async fn confirm_cut(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let case = match state.store.get(&c.scope, id) {
        Ok(case) => case,
        Err(e) => return error_page(lang, e.into()),
    };
    if let Err(e) = c.require_act() {
        return error_page(lang, e);
    }
    if SocketOff::for_entity(id, &case.entity, state.clock.now()).is_none() {
        return error_page(
            lang,
            ApiError::BadRequest(lang.t("err.not_socket").to_owned()),
        );
    }
    let place = escape(&title::place(lang, &case.entity));
    let heading = lang.fill("cut.title", &[("place", place.clone())]);
    let body = format!(
        "<h1>{heading}</h1><p>{}</p>\
         <form method=\"post\" action=\"/alerts/{id}/socket-off\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
         <button class=\"danger\">{}</button></form><p><a href=\"/alerts/{id}\">{}</a></p>",
        lang.fill("cut.explain", &[("place", place)]),
        lang.t("cut.confirm"),
        lang.t("cut.cancel"),
    );
    Html(layout(lang, &heading, Some(&c.user.name), &body)).into_response()
}

#[derive(Deserialize)]
struct CutForm {
    confirm: String,
}

async fn cut(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CutForm>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    if f.confirm != "yes" {
        return Redirect::to(&format!("/alerts/{id}/socket-off")).into_response();
    }
    match cut_socket(&state, &c, id) {
        Ok(_) => Redirect::to(&format!("/alerts/{id}")).into_response(),
        Err(e) => error_page(lang, e),
    }
}

async fn photo(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(c) = who(&state, &headers) else {
        return to_login();
    };
    let done = (|| {
        let body = body.map_err(|_| ApiError::TooLarge(lang.t("err.photo_size").to_owned()))?;
        let boundary = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(upload::boundary)
            .ok_or_else(|| ApiError::BadRequest(lang.t("err.no_photo").to_owned()))?;
        let parts = upload::parts(&body, &boundary).map_err(ApiError::BadRequest)?;
        let file = parts
            .iter()
            .find(|p| p.name == "photo" && !p.body.is_empty())
            .ok_or_else(|| ApiError::BadRequest(lang.t("err.no_photo").to_owned()))?;
        add_photo(&state, &c, id, file.content_type.as_deref(), file.body).map_err(|e| match e {
            ApiError::UnsupportedMediaType(_) => {
                ApiError::UnsupportedMediaType(lang.t("err.photo_type").to_owned())
            }
            ApiError::TooLarge(_) => ApiError::TooLarge(lang.t("err.photo_size").to_owned()),
            other => other,
        })
    })();
    match done {
        Ok(_) => Redirect::to(&format!("/alerts/{id}#photos")).into_response(),
        Err(e) => error_page(lang, e),
    }
}
