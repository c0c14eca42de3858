//! The property manager's station view: every socket of the sites they may
//! see, with state, power, session time, energy and faults, kept current by
//! server-sent events (a few lines of inline script replace a site's table
//! with the fragment the server rendered; without script the page still
//! shows the state at load time).

use super::page::{escape, layout};
use crate::api::auth::caller;
use crate::api::stations::may_see;
use crate::api::AppState;
use crate::store::stations::SocketView;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const SCRIPT: &str = "<script>new EventSource('/stations/events').onmessage=function(e){\
var d=JSON.parse(e.data),el=document.getElementById('site-'+d.site);if(el){el.innerHTML=d.html;}};</script>";

/// One site's sockets as an HTML table.
pub fn table(sockets: &[SocketView]) -> String {
    if sockets.is_empty() {
        return "<p class=\"muted\">No readings yet.</p>".into();
    }
    let mut out = String::from(
        "<table><tr><th>Socket</th><th>State</th><th>Power</th><th>Session</th><th>Energy</th>\
         <th class=\"wide\">Temp.</th><th>Fault</th></tr>",
    );
    for s in sockets {
        let num = |v: Option<f64>, unit: &str, d: usize| {
            v.map(|x| format!("{x:.d$} {unit}"))
                .unwrap_or_else(|| "–".into())
        };
        let session = s.session_s.map_or_else(
            || "–".to_owned(),
            |x| {
                format!(
                    "{}h{:02}",
                    (x / 3600.0) as i64,
                    ((x % 3600.0) / 60.0) as i64
                )
            },
        );
        let _ = write!(
            out,
            "<tr><td>{} #{}</td><td>{}</td><td>{}</td><td>{session}</td><td>{}</td><td class=\"wide\">{}</td><td{}>{}</td></tr>",
            escape(&s.device),
            s.socket,
            escape(s.state.as_deref().unwrap_or("–")),
            num(s.power_w, "W", 0),
            num(s.energy_wh, "Wh", 0),
            num(s.temperature_c, "°C", 1),
            if s.fault.is_some() { " class=\"err\"" } else { "" },
            escape(s.fault.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</table>");
    out
}

/// `GET /stations`.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let mut body = String::from("<h1>Charging stations</h1>");
    let sites: Vec<String> = state
        .stations
        .sites()
        .into_iter()
        .filter(|s| may_see(&state, &c, s))
        .collect();
    if sites.is_empty() {
        body.push_str("<p>No charging station of yours has reported yet.</p>");
    }
    for site in &sites {
        let _ = write!(
            body,
            "<h2>{}</h2><div id=\"site-{}\">{}</div>",
            escape(site),
            escape(site),
            table(&state.stations.site(site))
        );
    }
    body.push_str(SCRIPT);
    Html(layout("Charging stations", Some(&c.user.name), &body)).into_response()
}

/// `GET /stations/events`: a `{site, html}` event per update of a site the
/// caller may see, at most one per site per second.
pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let rx = state.stations.subscribe();
    let throttle = Duration::from_secs(1);
    let stream = futures::stream::unfold(
        (
            rx,
            state,
            c,
            std::collections::HashMap::<String, tokio::time::Instant>::new(),
        ),
        move |(mut rx, state, c, mut last)| async move {
            loop {
                let site = match rx.recv().await {
                    Ok(s) => s,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                };
                let now = tokio::time::Instant::now();
                let recent = last
                    .get(&site)
                    .is_some_and(|t| now.duration_since(*t) < throttle);
                if recent || !may_see(&state, &c, &site) {
                    continue;
                }
                last.insert(site.clone(), now);
                let data =
                    serde_json::json!({"site": site, "html": table(&state.stations.site(&site))});
                let event = Event::default().data(data.to_string());
                return Some((Ok::<_, Infallible>(event), (rx, state, c, last)));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
