//! `/api/v1/alerts…` and `/api/v1/precision`: cases in the caller's scope
//! and the actions on them.

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{JsonBody, Path, Query};
use super::AppState;
use crate::lifecycle::{Action, Disposition};
use crate::store::{AlertCase, AlertFilter, AlertSummary, AuditEntry, RulePrecision};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

/// One case with its trail.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlertDetail {
    /// The case, with its latest evidence and the frozen snapshot.
    pub alert: AlertCase,
    /// Every transition and comment, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// The values the list's `state` filter takes: a state, or `active` for
/// the first three.
pub const STATES: &[&str] = &[
    "open",
    "acknowledged",
    "in_progress",
    "resolved",
    "closed",
    "active",
];

/// The values the list's `severity` filter takes.
pub const SEVERITIES: &[&str] = &["minor", "major", "critical"];

/// The largest `limit` the list takes; 100 without one.
pub const MAX_LIMIT: u32 = 1000;

/// Refuses a filter that could only answer a misleading empty list: an
/// unknown state or severity (`?state=opne`), or a limit out of range.
pub fn check_filter(filter: &AlertFilter) -> Result<(), ApiError> {
    let one_of = |name: &str, value: &Option<String>, valid: &[&str]| match value {
        Some(v) if !valid.contains(&v.as_str()) => Err(ApiError::BadRequest(format!(
            "unknown {name} {v:?}; use one of {}",
            valid.join(", ")
        ))),
        _ => Ok(()),
    };
    one_of("state", &filter.state, STATES)?;
    one_of("severity", &filter.severity, SEVERITIES)?;
    match filter.limit {
        Some(l) if !(1..=MAX_LIMIT).contains(&l) => Err(ApiError::BadRequest(format!(
            "limit {l} is out of range; use 1 to {MAX_LIMIT}"
        ))),
        _ => Ok(()),
    }
}

/// `GET /api/v1/alerts`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<AlertFilter>,
) -> Result<Json<Vec<AlertSummary>>, ApiError> {
    check_filter(&filter)?;
    Ok(Json(state.store.list(&caller.scope, &filter)?))
}

/// `GET /api/v1/alerts/{id}`.
pub async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<AlertDetail>, ApiError> {
    Ok(Json(AlertDetail {
        alert: state.store.get(&caller.scope, id)?,
        audit: state.store.audit(&caller.scope, id)?,
    }))
}

/// Applies `action` for `caller`; the one path every change takes.
pub fn apply(
    state: &AppState,
    caller: &Caller,
    id: i64,
    action: &Action,
) -> Result<AlertCase, ApiError> {
    if !matches!(action, Action::Comment(_)) {
        // Scope first: an alert outside it is a 404 even for a manager.
        let case = state.store.get(&caller.scope, id)?;
        caller.require_act()?;
        if let Action::Close { disposition, .. } = action {
            let offered = Disposition::offered_for(&case.rule);
            if !offered.contains(disposition) {
                let names: Vec<&str> = offered.iter().map(|d| d.as_str()).collect();
                return Err(ApiError::BadRequest(format!(
                    "{disposition} cannot end a {} alert; use one of {}",
                    case.rule,
                    names.join(", ")
                )));
            }
        }
    }
    let recheck_ms = (state.alerts.recheck_after_s as i64).saturating_mul(1000);
    let case = state.store.act(
        &caller.scope,
        id,
        &caller.user.name,
        action,
        state.clock.now(),
        recheck_ms,
    )?;
    tracing::info!(alert = id, user = %caller.user.name, "{} did {} on alert {id}; it is now {:?}", caller.user.name, action.name(), case.state);
    Ok(case)
}

/// `POST /api/v1/alerts/{id}/acknowledge`.
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<AlertCase>, ApiError> {
    apply(&state, &caller, id, &Action::Acknowledge).map(Json)
}

/// `POST /api/v1/alerts/{id}/start`.
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<AlertCase>, ApiError> {
    apply(&state, &caller, id, &Action::Start).map(Json)
}

/// Body of `assign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// A user who can see the alert.
    pub assignee: String,
}

/// `POST /api/v1/alerts/{id}/assign`.
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<AssignBody>,
) -> Result<Json<AlertCase>, ApiError> {
    let case = state.store.get(&caller.scope, id)?;
    let fits = state.directory.user(&body.assignee).is_some_and(|u| {
        u.role != crate::alerts::directory::Role::PropertyManager
            && state.directory.scope(u).allows(&case.cell, &case.site)
    });
    if !fits {
        return Err(ApiError::BadRequest(format!(
            "{:?} is not grid staff or an admin who can see alert {id}",
            body.assignee
        )));
    }
    apply(&state, &caller, id, &Action::Assign(body.assignee)).map(Json)
}

/// Body of `comments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The comment.
    pub text: String,
}

/// `POST /api/v1/alerts/{id}/comments`.
pub async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Json<AlertCase>, ApiError> {
    if body.text.trim().is_empty() {
        return Err(ApiError::BadRequest("a comment needs text".into()));
    }
    apply(&state, &caller, id, &Action::Comment(body.text)).map(Json)
}

/// Body of `close`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// How it ended.
    pub disposition: Disposition,
    /// What was found and done; required.
    pub note: String,
    /// Photo references.
    #[serde(default)]
    pub photos: Vec<String>,
}

/// The close action for a body, refusing an empty note.
pub fn close_action(body: CloseBody) -> Result<Action, ApiError> {
    if body.note.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "closing needs a note saying what was found and done".into(),
        ));
    }
    Ok(Action::Close {
        disposition: body.disposition,
        note: body.note,
        photos: body.photos,
    })
}

/// `POST /api/v1/alerts/{id}/close`.
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<CloseBody>,
) -> Result<Json<AlertCase>, ApiError> {
    let action = close_action(body)?;
    apply(&state, &caller, id, &action).map(Json)
}

/// `GET /api/v1/precision`.
pub async fn precision(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RulePrecision>>, ApiError> {
    Ok(Json(state.store.precision(&caller.scope)?))
}
