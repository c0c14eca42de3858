//! `GET /alerts/events`: the alert list, live. A server-sent event carries
//! the list's counts and cards, rendered on the server exactly as the page
//! renders them: one at once (what changed between the page and the
//! stream), then one whenever a case the list shows changes (a new case, a
//! state, a count); a few lines of script on the page put them in place.
//! Without script the page reloads itself every minute instead. Without a
//! login the answer is 401, not the login page: an `EventSource` cannot
//! follow a redirect to a form.
//!
//! Bounded: at most [`MAX_STREAMS`] streams at once (one more answers 503
//! and is counted), and each ends after [`STREAM_LIFE`]; the browser's
//! `EventSource` then reconnects by itself, so a forgotten tab holds no
//! connection for ever and a restarted server is found again.

use super::list::{self, ListQuery};
use crate::api::auth::caller;
use crate::api::error::ApiError;
use crate::api::extract::Query;
use crate::api::AppState;
use crate::i18n::Lang;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Live lists open at once, at most.
pub const MAX_STREAMS: usize = 64;
/// How long one stream lives before the browser is asked to reconnect.
pub const STREAM_LIFE: Duration = Duration::from_secs(600);
/// How often a stream looks for changes (a cached list costs a lookup).
const POLL: Duration = Duration::from_secs(2);

static OPEN: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Streams refused because [`MAX_STREAMS`] were open.
pub fn refused() -> u64 {
    REFUSED.load(Ordering::Relaxed)
}

/// One open stream; gives its place back when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        OPEN.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_STREAMS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The script that follows the stream; `query` is the page's own query
/// string, so the stream shows the same filters.
pub fn script(query: &str) -> String {
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.replace(['\'', '"', '<', '>', '\\'], ""))
    };
    format!(
        "<noscript><meta http-equiv=\"refresh\" content=\"60\"></noscript>\
         <script>(function(){{var s=new EventSource('/alerts/events{q}');s.onmessage=function(e){{\
         var d=JSON.parse(e.data),el=document.getElementById('cards');if(el){{el.innerHTML=d.html;}}}};}})();</script>"
    )
}

/// `GET /alerts/events`: a `{html}` event at once and then each time the
/// list `q` selects for the caller changes.
pub async fn events(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return ApiError::Unauthenticated.into_response();
    };
    if let Some(bad) = q
        .state()
        .filter(|s| !["active", "resolved", "all"].contains(s))
    {
        return ApiError::BadRequest(format!("state {bad:?} is not one of active, resolved, all"))
            .into_response();
    }
    let Some(slot) = Slot::take() else {
        let n = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            "refused a live alert list for {}: {MAX_STREAMS} are open ({n} refused so far); the page still reloads",
            c.user.name
        );
        return ApiError::Unavailable(format!(
            "{MAX_STREAMS} live alert lists are open; the page reloads by itself"
        ))
        .into_response();
    };
    let deadline = tokio::time::Instant::now() + STREAM_LIFE;
    let stream = futures::stream::unfold(
        (state, c, q, None, slot),
        move |(state, c, q, mut seen, slot)| async move {
            loop {
                if seen.is_some() {
                    let next = tokio::time::Instant::now() + POLL;
                    if next >= deadline {
                        return None;
                    }
                    tokio::time::sleep_until(next).await;
                }
                let l = match list::select(&state, &c.scope, &q) {
                    Ok(l) => l,
                    Err(e) => {
                        // Logged; the stream tries again at the next poll.
                        tracing::warn!("the live alert list could not read the store: {e}");
                        seen.get_or_insert_with(Vec::new);
                        continue;
                    }
                };
                let digest = l.digest();
                if seen.as_ref() == Some(&digest) {
                    continue;
                }
                seen = Some(digest);
                let data = serde_json::json!({"html": l.cards_html(lang, &state.zones)});
                let event = Event::default().data(data.to_string());
                return Some((Ok::<_, Infallible>(event), (state, c, q, seen, slot)));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
