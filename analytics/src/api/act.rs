//! Acting on the place an alert is about, beyond its life-cycle: cutting
//! the socket (a `socket_off` command to its gateway, [`crate::command`])
//! and keeping photos taken on site with the case. The dashboard's forms
//! and the JSON API share these checks: the case must be in the caller's
//! scope (else 404) and the caller must be allowed to act (else 403).

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{JsonBody, Path};
use super::AppState;
use crate::command::SocketOff;
use crate::store::PhotoInfo;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// The largest photo kept: a phone camera's JPEG is 2–6 MB.
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;

/// The image types kept, by the bytes they start with (the declared type
/// must match the content).
pub const PHOTO_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/webp"];

/// The image type of `bytes` by its signature, if it is one of
/// [`PHOTO_TYPES`].
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Cuts the socket case `id` is about, for `caller`: queues the command and
/// notes it in the trail. The gateway's answer follows in the trail.
pub fn cut_socket(state: &AppState, caller: &Caller, id: i64) -> Result<SocketOff, ApiError> {
    let case = state.store.get(&caller.scope, id)?;
    caller.require_act()?;
    let now = state.clock.now();
    let command = SocketOff::for_entity(id, &case.entity, now).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "alert {id} is about {}, not a socket; only a socket can be cut",
            case.entity
        ))
    })?;
    let sender = state.commands.as_ref().ok_or_else(|| {
        ApiError::Unavailable("no broker connection to send the command over".into())
    })?;
    if !sender.send(command.clone()) {
        return Err(ApiError::Unavailable(
            "too many commands are waiting for the broker; try again shortly".into(),
        ));
    }
    let note = format!("{} #{} ({})", command.device, command.socket, command.id);
    state
        .store
        .note(id, now, &caller.user.name, "socket_off", &note)?;
    tracing::info!(alert = id, user = %caller.user.name, "{} asked to cut socket {} of {} from alert {id}", caller.user.name, command.socket, command.device);
    Ok(command)
}

/// Body of `socket-off`: the API's confirmation step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketOffBody {
    /// Must be `true`: the socket's user loses power.
    pub confirm: bool,
}

/// What `socket-off` answers: the command as sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct SocketOffSent {
    /// The command id the gateway's answer will carry.
    pub command: String,
    /// The gateway it went to.
    pub gateway: String,
    /// The pile.
    pub device: String,
    /// The socket.
    pub socket: u16,
}

/// `POST /api/v1/alerts/{id}/socket-off`.
pub async fn socket_off(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<SocketOffBody>,
) -> Result<(StatusCode, Json<SocketOffSent>), ApiError> {
    if !body.confirm {
        return Err(ApiError::BadRequest(
            "cutting a socket needs {\"confirm\": true}".into(),
        ));
    }
    let c = cut_socket(&state, &caller, id)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SocketOffSent {
            command: c.id,
            gateway: c.gateway,
            device: c.device,
            socket: c.socket,
        }),
    ))
}

/// Keeps `bytes` as a photo of case `id`, declared as `declared`; the
/// photo's number.
pub fn add_photo(
    state: &AppState,
    caller: &Caller,
    id: i64,
    declared: Option<&str>,
    bytes: &[u8],
) -> Result<i64, ApiError> {
    state.store.get(&caller.scope, id)?;
    caller.require_act()?;
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the photo is {} bytes; at most {MAX_PHOTO_BYTES} are kept",
            bytes.len()
        )));
    }
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the photo is empty".into()));
    }
    let declared = declared
        .map(|d| d.split(';').next().unwrap_or(d).trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !PHOTO_TYPES.contains(&declared.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "a photo is sent as one of {}, not {declared:?}",
            PHOTO_TYPES.join(", ")
        )));
    }
    match image_type(bytes) {
        Some(t) if t == declared => {}
        found => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body is declared {declared} but its content is {}",
                found.unwrap_or("not an image of a kept type")
            )))
        }
    }
    let photo = state.store.add_photo(
        &caller.scope,
        id,
        &caller.user.name,
        &declared,
        bytes,
        state.clock.now(),
    )?;
    tracing::info!(alert = id, user = %caller.user.name, "{} added photo {photo} ({} bytes) to alert {id}", caller.user.name, bytes.len());
    Ok(photo)
}

/// `POST /api/v1/alerts/{id}/photos`: the image as the body.
pub async fn upload_photo(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<PhotoInfo>), ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("a photo is at most {MAX_PHOTO_BYTES} bytes"))
        } else {
            ApiError::BadRequest(format!("the body could not be read: {}", e.body_text()))
        }
    })?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let photo = add_photo(&state, &caller, id, declared, &body)?;
    let info = state
        .store
        .photos(&caller.scope, id)?
        .into_iter()
        .find(|p| p.id == photo)
        .ok_or_else(|| ApiError::Internal(format!("photo {photo} vanished after being kept")))?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /api/v1/alerts/{id}/photos`.
pub async fn photos(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<PhotoInfo>>, ApiError> {
    Ok(Json(state.store.photos(&caller.scope, id)?))
}

/// `GET /api/v1/alerts/{id}/photos/{photo}`: the image itself.
pub async fn photo(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, photo)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    let p = state.store.photo(&caller.scope, id, photo)?;
    Ok((
        [
            (header::CONTENT_TYPE, p.content_type),
            (header::CACHE_CONTROL, "private, max-age=86400".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        p.bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_known_by_their_first_bytes() {
        assert_eq!(image_type(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        for other in [&b"GIF89a"[..], b"<svg>", b"RIFF\0\0\0\0WAVE", b""] {
            assert_eq!(image_type(other), None);
        }
    }
}
