//! The one HTTP listener of the service: the JSON API ([`crate::api`]) and
//! the dashboard ([`crate::web`]) on one router, sharing one state.
//!
//! The dashboard is a face over the API's checks (its forms call the same
//! scoped functions), so `web` sits above `api`; this module sits above
//! both, which keeps the two from importing each other.

use crate::api::AppState;
use axum::Router;

/// The API and the dashboard on one router, with `state` added.
pub fn router(state: AppState) -> Router {
    crate::api::routes()
        .merge(crate::web::router(&state))
        .with_state(state)
}
