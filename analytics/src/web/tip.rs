//! The public tip-off page and the inspector's patrol entry.
//!
//! - `GET /tip`, `POST /tip`: anyone, without an account, on a phone:
//!   what, where, what they saw, a photo and, if they wish, how to reach
//!   them. The answer is a receipt code and nothing else: no case, no flat,
//!   no other tip is ever shown back.
//! - `GET /tip/status?code=…`: the state of the case that code follows, in
//!   three words (received, being handled, concluded); an unknown code and
//!   a wrong guess get the same answer.
//! - `POST /patrol`: grid staff record what they found on patrol; it
//!   becomes a case on the flat like a tip.
//!
//! Both kinds of submission are limited per client address
//! (`[alerts.tips] per_client_per_hour`; lookups at ten times that), photos
//! by size and stripped of their metadata (GPS) before they are stored.

use super::page::{escape, layout};
use super::upload;
use crate::api::auth::caller;
use crate::api::connections::ClientAddr;
use crate::api::AppState;
use crate::i18n::Lang;
use crate::tips::limit::Limiter;
use crate::tips::{self, Channel, Hazard, NewTip};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Submissions per client address and hour, shared by the whole process.
fn submissions() -> &'static Mutex<Limiter> {
    static L: OnceLock<Mutex<Limiter>> = OnceLock::new();
    L.get_or_init(Mutex::default)
}

/// Receipt lookups per client address and hour.
fn lookups() -> &'static Mutex<Limiter> {
    static L: OnceLock<Mutex<Limiter>> = OnceLock::new();
    L.get_or_init(Mutex::default)
}

fn admit(limiter: &Mutex<Limiter>, client: Option<ClientAddr>, now: i64, per_hour: u32) -> bool {
    let ip = client.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0);
    match limiter.lock() {
        Ok(mut l) => l.admit(ip, now, per_hour),
        Err(poisoned) => poisoned.into_inner().admit(ip, now, per_hour),
    }
}

/// Tip-offs refused over the per-client budget since start.
pub fn refused() -> u64 {
    submissions().lock().map_or(0, |l| l.refused)
}

fn page(lang: Lang, status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(layout(lang, title, None, body))).into_response()
}

/// The form.
pub async fn form(State(state): State<AppState>, Extension(lang): Extension<Lang>) -> Response {
    if !state.alerts.tips.public_page {
        return page(
            lang,
            StatusCode::NOT_FOUND,
            lang.t("err.title"),
            lang.t("tip.off"),
        );
    }
    let mut options = String::new();
    for h in Hazard::ALL {
        let _ = write!(
            options,
            "<label class=\"choice\"><input type=\"radio\" name=\"hazard\" value=\"{}\" required> {}</label>",
            h.as_str(),
            lang.t(hazard_key(h))
        );
    }
    let body = format!(
        "<h1>{title}</h1><p>{intro}</p>\
         <form method=\"post\" action=\"/tip\" enctype=\"multipart/form-data\">\
         <fieldset><legend>{what}</legend>{options}</fieldset>\
         <label>{place}<input name=\"place\" required maxlength=\"200\" autocomplete=\"street-address\"></label>\
         <label>{seen}<textarea name=\"text\" rows=\"4\" maxlength=\"{max}\"></textarea></label>\
         <label>{photo}<input type=\"file\" name=\"photo\" accept=\"image/jpeg,image/png\" capture=\"environment\"></label>\
         <label>{contact}<input name=\"contact\" maxlength=\"100\" autocomplete=\"tel\"></label>\
         <p class=\"muted\">{privacy}</p>\
         <button type=\"submit\">{send}</button></form>\
         <p><a href=\"/tip/status\">{follow}</a></p>",
        title = lang.t("tip.title"),
        intro = lang.t("tip.intro"),
        what = lang.t("tip.what"),
        place = lang.t("tip.place"),
        seen = lang.t("tip.seen"),
        max = tips::MAX_TEXT,
        photo = lang.t("tip.photo"),
        contact = lang.t("tip.contact"),
        privacy = lang.t("tip.privacy"),
        send = lang.t("tip.send"),
        follow = lang.t("tip.follow"),
    );
    page(lang, StatusCode::OK, lang.t("tip.title"), &body)
}

fn hazard_key(h: Hazard) -> &'static str {
    match h {
        Hazard::IndoorCharging => "tip.h.indoor_charging",
        Hazard::GroupRental => "tip.h.group_rental",
        Hazard::ThreeInOne => "tip.h.three_in_one",
        Hazard::Other => "tip.h.other",
    }
}

/// What a submitted form says.
struct Submitted {
    hazard: Hazard,
    place: String,
    text: String,
    contact: Option<String>,
    photo: Option<(Vec<u8>, &'static str)>,
}

/// Reads the form; an error is the message key to show.
fn read_form(
    headers: &HeaderMap,
    body: &[u8],
    max_photo: usize,
) -> Result<Submitted, &'static str> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = upload::boundary(ct).ok_or("tip.bad_form")?;
    let parts = upload::parts(body, &boundary).map_err(|_| "tip.bad_form")?;
    let text_of = |name: &str| -> String {
        parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(p.body).trim().to_owned())
            .unwrap_or_default()
    };
    let hazard = Hazard::parse(&text_of("hazard")).ok_or("tip.no_hazard")?;
    let place: String = text_of("place").chars().take(200).collect();
    if place.is_empty() {
        return Err("tip.no_place");
    }
    let text: String = text_of("text").chars().take(tips::MAX_TEXT).collect();
    let contact: String = text_of("contact").chars().take(100).collect();
    let photo = match parts
        .iter()
        .find(|p| p.name == "photo" && !p.body.is_empty())
    {
        None => None,
        Some(p) if p.body.len() > max_photo => return Err("tip.photo_big"),
        Some(p) => Some(tips::strip::strip(p.body).map_err(|_| "tip.photo_kind")?),
    };
    Ok(Submitted {
        hazard,
        place,
        text,
        contact: (!contact.is_empty()).then_some(contact),
        photo,
    })
}

/// `POST /tip`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = &state.alerts.tips;
    if !cfg.public_page {
        return page(
            lang,
            StatusCode::NOT_FOUND,
            lang.t("err.title"),
            lang.t("tip.off"),
        );
    }
    let now = state.clock.now();
    if !admit(
        submissions(),
        client.map(|c| c.0),
        now.0,
        cfg.per_client_per_hour,
    ) {
        let body = format!("<p class=\"err\">{}</p>", lang.t("tip.too_many"));
        return page(
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            lang.t("tip.title"),
            &body,
        );
    }
    let refuse = |key: &'static str| {
        let body = format!(
            "<p class=\"err\">{}</p><p><a href=\"/tip\">{}</a></p>",
            lang.t(key),
            lang.t("tip.again")
        );
        page(lang, StatusCode::BAD_REQUEST, lang.t("tip.title"), &body)
    };
    let s = match read_form(&headers, &body, cfg.max_photo_bytes) {
        Ok(s) => s,
        Err(key) => return refuse(key),
    };
    let receipt = tips::receipt();
    let register = state.history.register().get();
    let (flat, cell) = match register.flat_by_address(&s.place) {
        Some(f) => {
            let site = f.split('/').next().unwrap_or_default();
            (f.to_owned(), state.cells.cell_for(site).to_owned())
        }
        None => match &cfg.unplaced_cell {
            Some(c) => (format!("unplaced/tips/{receipt}"), c.clone()),
            None => return refuse("tip.unknown_place"),
        },
    };
    let tip = NewTip {
        channel: Channel::Public,
        hazard: s.hazard,
        flat,
        place: s.place,
        text: s.text,
        contact: s.contact,
        at: now,
    };
    match record(&state, &tip, &receipt, &cell, s.photo.as_ref()) {
        Ok(_) => {
            let body = format!(
                "<h1>{}</h1><p>{}</p><p class=\"receipt\"><b>{receipt}</b></p><p>{}</p>\
                 <p><a href=\"/tip/status?code={receipt}\">{}</a></p>",
                lang.t("tip.thanks"),
                lang.t("tip.receipt"),
                lang.t("tip.keep"),
                lang.t("tip.follow")
            );
            page(lang, StatusCode::OK, lang.t("tip.title"), &body)
        }
        Err(e) => {
            tracing::warn!("a tip-off could not be stored: {e}");
            let body = format!("<p class=\"err\">{}</p>", lang.t("tip.failed"));
            page(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                lang.t("tip.title"),
                &body,
            )
        }
    }
}

/// Opens the tip's case (one severity up when an active sensor case on the
/// flat corroborates it, each case then noting the other) and keeps the
/// tip's own row and photo.
fn record(
    state: &AppState,
    tip: &NewTip,
    receipt: &str,
    cell: &str,
    photo: Option<&(Vec<u8>, &'static str)>,
) -> Result<i64, crate::store::StoreError> {
    let backing = state.store.active_sensor_cases(&tip.flat)?;
    let alert = tips::alert_of(tip, receipt, cell, !backing.is_empty());
    let photo = photo.map(|(b, kind)| (*kind, b.as_slice()));
    let case = state
        .store
        .add_tip(tip, receipt, &alert, &state.alerts, photo)?;
    for (id, rule) in &backing {
        state.store.note(
            *id,
            tip.at,
            "system",
            "comment",
            &format!(
                "线索 #{case}（{}）指向同一房屋，互相印证。",
                tip.hazard.zh()
            ),
        )?;
        state.store.note(
            case,
            tip.at,
            "system",
            "comment",
            &format!("与传感器告警 #{id}（{rule}）指向同一房屋，互相印证，已提高优先级。"),
        )?;
    }
    Ok(case)
}

/// Which receipt.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    #[serde(default)]
    code: String,
}

/// `GET /tip/status`.
pub async fn status(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    client: Option<Extension<ClientAddr>>,
    Query(q): Query<StatusQuery>,
) -> Response {
    let form = format!(
        "<form method=\"get\" action=\"/tip/status\"><label>{}<input name=\"code\" maxlength=\"20\" \
         autocapitalize=\"characters\" value=\"{}\"></label><button type=\"submit\">{}</button></form>",
        lang.t("tip.code"),
        escape(&q.code),
        lang.t("tip.look")
    );
    let code = q.code.trim().to_ascii_uppercase();
    if code.is_empty() {
        return page(lang, StatusCode::OK, lang.t("tip.follow"), &form);
    }
    let per_hour = state.alerts.tips.per_client_per_hour.saturating_mul(10);
    if !admit(
        lookups(),
        client.map(|c| c.0),
        state.clock.now().0,
        per_hour,
    ) {
        let body = format!("<p class=\"err\">{}</p>", lang.t("tip.too_many"));
        return page(
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            lang.t("tip.follow"),
            &body,
        );
    }
    let found = if tips::plausible_receipt(&code) {
        state.store.tip_state(&code).ok().flatten()
    } else {
        None
    };
    let answer = match found {
        None => format!("<p class=\"err\">{}</p>", lang.t("tip.no_code")),
        Some(s) => {
            use gridwatch_telemetry::AlertState as A;
            let key = match s {
                A::Open => "tip.s.received",
                A::Acknowledged | A::InProgress => "tip.s.handling",
                _ => "tip.s.done",
            };
            format!("<p class=\"tip-state\">{}</p>", lang.t(key))
        }
    };
    page(
        lang,
        StatusCode::OK,
        lang.t("tip.follow"),
        &(answer + &form),
    )
}

/// `POST /patrol`: a grid staff member's finding (form fields `flat`,
/// `hazard`, `text`, `photo`), a case on that flat in their cell.
pub async fn patrol(
    State(state): State<AppState>,
    Extension(lang): Extension<Lang>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(c) = caller(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let refuse = |status: StatusCode, msg: &str| {
        let body = format!(
            "<p class=\"err\">{msg}</p><p><a href=\"/alerts\">{}</a></p>",
            lang.t("err.back")
        );
        page(lang, status, lang.t("err.title"), &body)
    };
    if !c.may_act() {
        return refuse(StatusCode::FORBIDDEN, lang.t("tip.patrol_role"));
    }
    let mut s = match read_form(&headers, &body, state.alerts.tips.max_photo_bytes) {
        Ok(s) => s,
        Err(key) => return refuse(StatusCode::BAD_REQUEST, lang.t(key)),
    };
    let register = state.history.register().get();
    let Some(flat) = register.flat_by_address(&s.place).map(str::to_owned) else {
        return refuse(StatusCode::BAD_REQUEST, lang.t("tip.unknown_place"));
    };
    let site = flat.split('/').next().unwrap_or_default().to_owned();
    let cell = state.cells.cell_for(&site).to_owned();
    if !c.scope.allows(&cell, &site) {
        return refuse(StatusCode::NOT_FOUND, lang.t("tip.unknown_place"));
    }
    let tip = NewTip {
        channel: Channel::Patrol,
        hazard: s.hazard,
        flat,
        place: std::mem::take(&mut s.place),
        text: s.text,
        contact: None,
        at: state.clock.now(),
    };
    let receipt = tips::receipt();
    match record(&state, &tip, &receipt, &cell, s.photo.as_ref()) {
        Ok(case) => Redirect::to(&format!("/alerts/{case}")).into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, &escape(&e.to_string())),
    }
}
