//! The property manager's station view: every socket of the sites they may
//! see, with state, power, session time, energy and faults, kept current by
//! server-sent events (a few lines of inline script replace a site's table
//! with the fragment the server rendered; without script the page still
//! shows the state at load time).

use super::page::{escape, layout, rule_name, severity, when};
use crate::api::auth::caller;
use crate::api::stations::may_see;
use crate::api::AppState;
use crate::i18n::Lang;
use crate::store::stations::{SocketView, Stations};
use crate::store::{AlertFilter, AlertSummary, Scope};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use gridwatch_telemetry::Timestamp;
use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const SCRIPT: &str = "<script>new EventSource('/stations/events').onmessage=function(e){\
var d=JSON.parse(e.data),el=document.getElementById('site-'+d.site);if(el){el.innerHTML=d.html;}};</script>";

/// The active alerts of `site` the caller may see, to link on its sockets;
/// a store failure shows the sockets without them (and is logged).
pub fn active_alerts(state: &AppState, scope: &Scope, site: &str) -> Vec<AlertSummary> {
    let filter = AlertFilter {
        state: Some("active".into()),
        site: Some(site.to_owned()),
        ..AlertFilter::default()
    };
    state.store.list(scope, &filter).unwrap_or_else(|e| {
        tracing::warn!("the station view shows {site} without its alerts: {e}");
        Vec::new()
    })
}

/// Data older than this is called stale: five minutes is several poll
/// intervals of any pile or gateway.
pub const STALE_MS: i64 = 5 * 60_000;

/// How long ago `ts` was, in words (`3 分钟前`).
pub fn age(lang: Lang, now: Timestamp, ts: Timestamp) -> String {
    let min = (now.0 - ts.0).max(0) / 60_000;
    if min < 1 {
        lang.t("st.age_now").to_owned()
    } else if min < 120 {
        lang.fill("st.age_min", &[("n", min.to_string())])
    } else {
        lang.fill("st.age_h", &[("n", (min / 60).to_string())])
    }
}

/// A query-string value, percent-encoded.
pub fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One site's gateways and piles that are quiet or offline, then its
/// sockets as cards, one per socket: state, power, temperature, session,
/// energy, the relay, the reading's local time and age and any fault, all
/// visible on a phone (nothing is hidden to make a table fit), with a link
/// to the socket's history. A socket with active alerts links them and is
/// marked in its worst severity's colour, so a socket at 1530 W with an
/// open critical alert does not read as plain "charging".
pub fn table(
    lang: Lang,
    offset_min: i32,
    now: Timestamp,
    site: &str,
    board: &Stations,
    alerts: &[AlertSummary],
) -> String {
    let sockets = board.site(site);
    if sockets.is_empty() {
        return format!("<p class=\"muted\">{}</p>", lang.t("st.no_readings"));
    }
    let mut out = String::from("<div class=\"links\">");
    for (gw, heard) in board.gateways(site) {
        let stale = now.0 - heard.0 > STALE_MS;
        let (class, id) = if stale {
            ("err", "st.gateway_quiet")
        } else {
            ("ok", "st.gateway_on")
        };
        let _ = write!(
            out,
            "<div class=\"{class}\">{}</div>",
            lang.fill(id, &[("gw", escape(&gw)), ("age", age(lang, now, heard))])
        );
    }
    let mut piles: Vec<(&str, &str)> = sockets
        .iter()
        .map(|s| (s.gateway.as_str(), s.device.as_str()))
        .collect();
    piles.dedup();
    for (gw, pile) in piles {
        if let Some(l) = board.pile(site, gw, pile).filter(|l| !l.online) {
            let _ = write!(
                out,
                "<div class=\"err\">{}</div>",
                lang.fill(
                    "st.pile_off",
                    &[
                        ("pile", escape(pile)),
                        ("reason", escape(l.reason.as_deref().unwrap_or(""))),
                        ("time", when(l.since, offset_min)),
                    ]
                )
            );
        }
    }
    out.push_str("</div>");
    for s in &sockets {
        socket_card(&mut out, lang, offset_min, now, site, s, alerts);
    }
    out
}

/// One socket's card.
pub fn socket_card(
    out: &mut String,
    lang: Lang,
    offset_min: i32,
    now: Timestamp,
    site: &str,
    s: &SocketView,
    alerts: &[AlertSummary],
) {
    let num = |v: Option<f64>, unit: &str, d: usize| v.map(|x| format!("{x:.d$} {unit}"));
    let session = s.session_s.map(|x| {
        format!(
            "{}h{:02}",
            (x / 3600.0) as i64,
            ((x % 3600.0) / 60.0) as i64
        )
    });
    let state = match s.state.as_deref() {
        Some("fault") => lang.t("st.fault_state").to_owned(),
        Some(k) => lang
            .find(&format!("st.{k}"))
            .map_or_else(|| escape(k), str::to_owned),
        None => lang.t("st.unknown").to_owned(),
    };
    let mut facts: Vec<String> = [num(s.power_w, "W", 0), num(s.temperature_c, "°C", 1)]
        .into_iter()
        .flatten()
        .collect();
    if let Some(d) = session {
        facts.push(lang.fill("st.session", &[("d", d)]));
    }
    if let Some(e) = num(s.energy_wh, "Wh", 0) {
        facts.push(lang.fill("st.energy", &[("v", e)]));
    }
    let fault = s
        .fault
        .as_deref()
        .map(|f| {
            format!(
                "<div class=\"err\">{}</div>",
                lang.fill("st.fault", &[("fault", escape(f))])
            )
        })
        .unwrap_or_default();
    if let Some(on) = s.relay_on {
        facts.push(
            lang.t(if on { "st.relay_on" } else { "st.relay_off" })
                .to_owned(),
        );
    }
    let entity = format!("{site}/{}/{}#{}", s.gateway, s.device, s.socket);
    let mine: Vec<&AlertSummary> = alerts.iter().filter(|a| a.entity == entity).collect();
    let worst = mine.iter().map(|a| a.severity).max();
    let links: String = mine
        .iter()
        .map(|a| {
            format!(
                "<div><a href=\"/alerts/{}\">{} {}</a></div>",
                a.id,
                severity(lang, a.severity),
                escape(&rule_name(lang, &a.rule))
            )
        })
        .collect();
    let class = worst.map_or("card".to_owned(), |w| format!("card {}", w.as_str()));
    let stale = now.0 - s.ts.0 > STALE_MS;
    let age_line = if stale {
        format!(
            "<div class=\"err\">{}</div>",
            lang.fill("st.stale", &[("age", age(lang, now, s.ts))])
        )
    } else {
        String::new()
    };
    let href = format!(
        "/stations/socket?site={}&amp;gateway={}&amp;device={}&amp;socket={}",
        query_value(site),
        query_value(&s.gateway),
        query_value(&s.device),
        s.socket
    );
    let _ = write!(
        out,
        "<div class=\"{class}\"><strong>{}</strong> · {state}<div>{}</div>{fault}{age_line}{links}\
         <div class=\"muted\">{} · {}</div><a href=\"{href}\">{}</a></div>",
        lang.fill(
            "st.socket",
            &[("device", escape(&s.device)), ("n", s.socket.to_string())]
        ),
        facts.join(" · "),
        lang.fill("st.at", &[("time", when(s.ts, offset_min))]),
        age(lang, now, s.ts),
        lang.t("st.history"),
    );
}

/// `GET /stations`.
pub async fn page(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let mut body = format!("<h1>{}</h1>", lang.t("st.title"));
    let sites: Vec<String> = state
        .stations
        .sites()
        .into_iter()
        .filter(|s| may_see(&state, &c, s))
        .collect();
    if sites.is_empty() {
        let _ = write!(body, "<p>{}</p>", lang.t("st.none"));
    }
    for site in &sites {
        let _ = write!(
            body,
            "<h2>{}</h2><div id=\"site-{}\">{}</div>",
            escape(site),
            escape(site),
            table(
                lang,
                state.zones.of(site),
                state.clock.now(),
                site,
                &state.stations,
                &active_alerts(&state, &c.scope, site)
            )
        );
    }
    body.push_str(SCRIPT);
    Html(layout(lang, lang.t("st.title"), Some(&c.user.name), &body)).into_response()
}

/// `GET /stations/events`: a `{site, html}` event per update of a site the
/// caller may see, at most one per site per second.
pub async fn events(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
) -> Response {
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
                let html = table(
                    lang,
                    state.zones.of(&site),
                    state.clock.now(),
                    &site,
                    &state.stations,
                    &active_alerts(&state, &c.scope, &site),
                );
                let data = serde_json::json!({"site": site, "html": html});
                let event = Event::default().data(data.to_string());
                return Some((Ok::<_, Infallible>(event), (rx, state, c, last)));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
