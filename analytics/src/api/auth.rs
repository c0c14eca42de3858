//! Who is calling: a bearer token (API) or the same token in the
//! `gridwatch_token` cookie (dashboard), looked up in the directory.

use super::error::ApiError;
use super::AppState;
use crate::alerts::directory::{Role, User};
use crate::store::Scope;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::Serialize;

/// The dashboard's cookie.
pub const COOKIE: &str = "gridwatch_token";

/// An authenticated user and what they may see.
#[derive(Debug, Clone)]
pub struct Caller {
    /// From the directory.
    pub user: User,
    /// Their cells or sites.
    pub scope: Scope,
}

impl Caller {
    /// Whether the caller may change alerts (grid staff and admins), not
    /// only read and comment (property managers).
    pub fn may_act(&self) -> bool {
        matches!(self.user.role, Role::GridStaff | Role::Admin)
    }

    /// 403 unless [`Self::may_act`].
    pub fn require_act(&self) -> Result<(), ApiError> {
        if self.may_act() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} is a property manager and may read and comment, not change alerts",
                self.user.name
            )))
        }
    }
}

/// The token in the `Authorization: Bearer` header, else in the cookie.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The caller of a request, if its token is known.
pub fn caller(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    let user = state.directory.authenticate(token(headers)?)?;
    Some(Caller {
        scope: state.directory.scope(user),
        user: user.clone(),
    })
}

#[axum::async_trait]
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state, &parts.headers).ok_or(ApiError::Unauthenticated)
    }
}

/// `GET /api/v1/me`.
#[derive(Debug, Serialize)]
pub struct Me {
    name: String,
    role: Role,
    cells: Option<Vec<String>>,
    sites: Option<Vec<String>>,
}

/// Who the token belongs to and what they see.
pub async fn me(State(_): State<AppState>, caller: Caller) -> Json<Me> {
    let (cells, sites) = match caller.scope {
        Scope::All => (None, None),
        Scope::Cells(c) => (Some(c), None),
        Scope::Sites(s) => (None, Some(s)),
    };
    Json(Me {
        name: caller.user.name,
        role: caller.user.role,
        cells,
        sites,
    })
}
