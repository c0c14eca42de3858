//! `/api/v1/silences`: time-bounded silences with who and why.

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::store::{NewSilence, Scope, Silence};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

/// `GET /api/v1/silences`: those not yet ended, in the caller's scope.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Silence>>, ApiError> {
    Ok(Json(
        state.store.silences(&caller.scope, state.clock.now())?,
    ))
}

/// `POST /api/v1/silences`. Grid staff must bind it to one of their cells;
/// only admins may silence more broadly.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewSilence>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    caller.require_act()?;
    if new.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("a silence needs a reason".into()));
    }
    let now = state.clock.now();
    if new.ends <= new.starts.unwrap_or(now) {
        return Err(ApiError::BadRequest(
            "a silence must end after it starts".into(),
        ));
    }
    if let Scope::Cells(cells) = &caller.scope {
        if !new.cell.as_ref().is_some_and(|c| cells.contains(c)) {
            return Err(ApiError::Forbidden(format!(
                "set cell to one of your cells ({})",
                cells.join(", ")
            )));
        }
    }
    let s = state.store.add_silence(&new, &caller.user.name, now)?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// `DELETE /api/v1/silences/{id}`: ends it now.
pub async fn expire(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require_act()?;
    state
        .store
        .expire_silence(&caller.scope, id, state.clock.now())?;
    Ok(StatusCode::NO_CONTENT)
}
