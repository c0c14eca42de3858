//! `GET /api/v1/sites/{site}/stations`: the live state of a site's charging
//! sockets, for whoever may see the site.

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Path;
use super::AppState;
use crate::store::stations::SocketView;
use axum::extract::State;
use axum::Json;

/// Whether `caller` may see `site`: its property managers, the staff of its
/// cell, admins.
pub fn may_see(state: &AppState, caller: &Caller, site: &str) -> bool {
    caller.scope.allows(state.cells.cell_for(site), site)
}

/// The sockets of `site` as last seen; 404 for a site outside the scope.
pub async fn site(
    State(state): State<AppState>,
    caller: Caller,
    Path(site): Path<String>,
) -> Result<Json<Vec<SocketView>>, ApiError> {
    if !may_see(&state, &caller, &site) {
        return Err(ApiError::NotFound(format!("no site {site:?}")));
    }
    Ok(Json(state.stations.site(&site)))
}
