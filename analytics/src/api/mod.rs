//! The HTTP API: alert cases for the people who handle them, scoped by who
//! they are.
//!
//! Every request carries a bearer token (or, from the dashboard, the same
//! token in a cookie); [`auth`] turns it into a [`auth::Caller`] — a user from
//! the directory and the [`Scope`](crate::store::Scope) of cells or sites they
//! may see. Every store call takes that scope, so an alert id outside it
//! answers 404 exactly like an id that does not exist.
//!
//! Routes are listed in `docs/openapi.json`, which is served at
//! `/api/openapi.json`; a test checks that every documented path is routed.
//!
//! The API is off unless `[api] listen` is set. It reads the wall clock only
//! through the injected [`Clock`], to time-stamp people's actions. Its
//! connections are capped and timed ([`connections`]), so idle or slow
//! clients cannot starve it.

pub mod act;
pub mod alerts;
pub mod auth;
pub mod connections;
pub mod error;
pub mod extract;
pub mod silences;
pub mod stations;

use crate::alerts::directory::Directory;
use crate::alerts::route::CellRouter;
use crate::lifecycle::AlertsConfig;
use crate::store::stations::Stations;
use crate::store::Store;
use crate::toml_file::FieldError;
use axum::routing::{get, post};
use axum::Router;
use connections::ConnectionLimits;
use gridwatch_telemetry::Clock;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The OpenAPI document, checked in at `docs/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// The `[api]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to serve the API and dashboard on, e.g. `127.0.0.1:8080`.
    /// Without it nothing listens.
    pub listen: Option<SocketAddr>,
    /// Connections open at once; one more is closed at once.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, on a new connection
    /// or one kept alive after its last answer; then it is closed.
    pub header_timeout_ms: u64,
    /// Time a request has to be answered; then it gets 503.
    pub request_timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        let limits = ConnectionLimits::default();
        Self {
            listen: None,
            max_connections: limits.max_connections,
            header_timeout_ms: limits.header_timeout.as_millis() as u64,
            request_timeout_ms: limits.request_timeout.as_millis() as u64,
        }
    }
}

impl ApiConfig {
    /// Checks the limits are within what makes sense.
    pub fn validate(&self) -> Result<(), FieldError> {
        let range = |key: &str, v: u64, min: u64, max: u64, unit: &str| {
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(FieldError::new(
                    key,
                    format!("{v} is out of range; use {min} to {max}{unit}"),
                ))
            }
        };
        range(
            "max_connections",
            self.max_connections as u64,
            1,
            65_536,
            "",
        )?;
        range(
            "header_timeout_ms",
            self.header_timeout_ms,
            100,
            600_000,
            " ms",
        )?;
        range(
            "request_timeout_ms",
            self.request_timeout_ms,
            100,
            3_600_000,
            " ms",
        )
    }

    /// The limits to serve connections under.
    pub fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The single source of truth.
    pub store: Store,
    /// Users, cells and sites.
    pub directory: Arc<Directory>,
    /// Cool-downs and re-check delay.
    pub alerts: AlertsConfig,
    /// Time-stamps people's actions.
    pub clock: Arc<dyn Clock>,
    /// Live charging-station state.
    pub stations: Stations,
    /// Site → cell, to scope the station view for grid staff.
    pub cells: Arc<CellRouter>,
    /// Each site's time zone (the directory's `time_zone`, else `[detect]
    /// utc_offset_min`, the detectors' own), so the dashboard shows the
    /// times people live by.
    pub zones: crate::i18n::zones::SiteZones,
    /// Recent readings per socket and flat, for the charts.
    pub history: crate::history::History,
    /// Where cutting a socket from its alert queues the gateway command;
    /// `None` where no broker connection runs (tests of the API alone),
    /// and the request answers 503.
    pub commands: Option<crate::command::CommandSender>,
}

/// The JSON API's routes; [`crate::http::router`] serves them with the
/// dashboard's on one listener and adds the state.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/:id", get(alerts::one))
        .route("/api/v1/alerts/:id/acknowledge", post(alerts::acknowledge))
        .route("/api/v1/alerts/:id/start", post(alerts::start))
        .route("/api/v1/alerts/:id/assign", post(alerts::assign))
        .route("/api/v1/alerts/:id/comments", post(alerts::comment))
        .route("/api/v1/alerts/:id/close", post(alerts::close))
        .route("/api/v1/alerts/:id/socket-off", post(act::socket_off))
        .route(
            "/api/v1/alerts/:id/photos",
            get(act::photos)
                .post(act::upload_photo)
                .layer(axum::extract::DefaultBodyLimit::max(act::MAX_PHOTO_BYTES)),
        )
        .route("/api/v1/alerts/:id/photos/:photo", get(act::photo))
        .route(
            "/api/v1/silences",
            get(silences::list).post(silences::create),
        )
        .route(
            "/api/v1/silences/:id",
            axum::routing::delete(silences::expire),
        )
        .route("/api/v1/precision", get(alerts::precision))
        .route("/api/v1/sites/:site/stations", get(stations::site))
        .layer(axum::middleware::map_response(extract::json_errors))
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Serves `router` on `listener` under the default [`ConnectionLimits`]
/// until `shutdown` is cancelled (the service uses
/// [`connections::serve_with`] and the configured ones).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    connections::serve_with(listener, router, ConnectionLimits::default(), shutdown).await
}
