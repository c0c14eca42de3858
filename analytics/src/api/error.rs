//! API errors as JSON with the right status: `{"error": "..."}`.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// No or unknown token (401).
    Unauthenticated,
    /// Known user, not allowed to do this (403).
    Forbidden(String),
    /// No such thing in the caller's scope (404).
    NotFound(String),
    /// The request is wrong (400).
    BadRequest(String),
    /// The body is not declared as JSON (415).
    UnsupportedMediaType(String),
    /// The action does not fit the alert's state (409).
    Conflict(String),
    /// The body is over the size the endpoint takes (413).
    TooLarge(String),
    /// A part the request needs is not running, or is busy (503): no
    /// broker connection to send a command over.
    Unavailable(String),
    /// The store failed (500); the details go to the log, not the caller.
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_)
            | StoreError::SilenceNotFound(_)
            | StoreError::PhotoNotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::Transition(t) => ApiError::Conflict(t.to_string()),
            StoreError::Refused(why) => ApiError::Conflict(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required".to_owned(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Internal(m) => {
                tracing::error!("API request failed: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the service log".to_owned(),
                )
            }
        };
        let mut resp = (status, Json(serde_json::json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
