//! `/api/v1/silences`: time-bounded silences with who and why.

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{JsonBody, Path};
use super::AppState;
use crate::store::{NewSilence, Scope, Silence};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gridwatch_telemetry::Timestamp;

/// The longest a silence may last: past this, fix the detector or the
/// site's configuration instead of muting it.
pub const MAX_SILENCE_MS: i64 = 30 * DAY_MS;

/// How far ahead a silence may be planned (a maintenance window).
pub const MAX_LEAD_MS: i64 = 365 * DAY_MS;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Refuses silence times that would mute nothing or too much: it must end
/// after it starts and after `now`, start within [`MAX_LEAD_MS`] of `now`,
/// and last at most [`MAX_SILENCE_MS`].
pub fn check_times(new: &NewSilence, now: Timestamp) -> Result<(), ApiError> {
    let starts = new.starts.unwrap_or(now);
    let bad = |m: String| Err(ApiError::BadRequest(m));
    if new.ends <= starts {
        return bad(format!(
            "a silence must end after it starts (starts {starts}, ends {})",
            new.ends
        ));
    }
    if new.ends <= now {
        return bad(format!(
            "ends {} is already past (now {now}); such a silence would mute nothing",
            new.ends
        ));
    }
    if starts.millis().saturating_sub(now.millis()) > MAX_LEAD_MS {
        return bad(format!(
            "starts {starts} is more than 365 days ahead (now {now})"
        ));
    }
    if new.ends.millis().saturating_sub(starts.millis()) > MAX_SILENCE_MS {
        return bad(format!(
            "a silence lasts at most 30 days (starts {starts}, ends {})",
            new.ends
        ));
    }
    Ok(())
}

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
    JsonBody(new): JsonBody<NewSilence>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    caller.require_act()?;
    if new.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("a silence needs a reason".into()));
    }
    let now = state.clock.now();
    check_times(&new, now)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn silence(starts: Option<i64>, ends: i64) -> NewSilence {
        NewSilence {
            cell: None,
            site: None,
            rule: None,
            entity: None,
            starts: starts.map(Timestamp),
            ends: Timestamp(ends),
            reason: "maintenance".into(),
        }
    }

    fn refused(s: &NewSilence) -> String {
        match check_times(s, NOW) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn times_that_mute_nothing_or_too_much_are_refused() {
        let n = NOW.millis();
        assert!(refused(&silence(Some(0), 1)).contains("already past"));
        assert!(refused(&silence(Some(n + 1000), n + 1000)).contains("end after it starts"));
        assert!(refused(&silence(None, n)).contains("end after it starts"));
        assert!(refused(&silence(None, n + MAX_SILENCE_MS + 1)).contains("at most 30 days"));
        assert!(refused(&silence(Some(i64::MIN), n + 1)).contains("at most 30 days"));
        let far = n + MAX_LEAD_MS + 1;
        assert!(refused(&silence(Some(far), far + 1)).contains("365 days ahead"));
    }

    #[test]
    fn a_bounded_silence_now_or_ahead_is_accepted() {
        let n = NOW.millis();
        assert!(check_times(&silence(None, n + 3_600_000), NOW).is_ok());
        assert!(check_times(&silence(Some(n - 3_600_000), n + 1), NOW).is_ok());
        assert!(check_times(&silence(Some(n + DAY_MS), n + DAY_MS + MAX_SILENCE_MS), NOW).is_ok());
    }
}
