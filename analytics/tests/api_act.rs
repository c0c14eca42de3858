//! Acting from an alert through the JSON API: cutting the socket queues a
//! `socket_off` command for the service and writes the request in the
//! trail; photos are kept with the case, typed by their content and capped
//! in size; a disposition the rule cannot have is refused. Every refusal is
//! JSON with the documented status, and scope and role hold as everywhere.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::alerts::route::{CellRouter, CellsConfig};
use gridwatch_analytics::api::act::MAX_PHOTO_BYTES;
use gridwatch_analytics::api::AppState;
use gridwatch_analytics::command::{case_of, CommandSender, SocketOff};
use gridwatch_analytics::lifecycle::AlertsConfig;
use gridwatch_analytics::store::stations::Stations;
use gridwatch_analytics::store::{Scope, Store};
use gridwatch_telemetry::{Alert, AlertState, ManualClock, Severity, Timestamp};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::mpsc::Receiver;
use tower::ServiceExt;

const NOW_MS: i64 = 1_764_000_000_000;
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

struct Setup {
    app: Router,
    store: Store,
    socket_case: i64,
    flat_case: i64,
    other_cell_case: i64,
}

fn alert(rule: &str, entity: &str, cell: &str) -> Alert {
    Alert {
        schema: 1,
        id: format!("{rule}:{entity}:1"),
        rule: rule.into(),
        entity: entity.into(),
        cell: cell.into(),
        site: entity.split('/').next().unwrap().into(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(NOW_MS - 60_000),
        title: String::new(),
        summary: String::new(),
        evidence: Default::default(),
    }
}

fn setup(commands: Option<CommandSender>) -> Setup {
    let h = |t: &str| hex(&Sha256::digest(t.as_bytes()));
    let text = format!(
        "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n\
         [[cells]]\nid = \"cell-08\"\non_duty = [\"li\"]\n\
         [[companies]]\nid = \"greenleaf\"\n\
         [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\ncompany = \"greenleaf\"\n\
         [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n\
         [[users]]\nname = \"li\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n\
         [[users]]\nname = \"chen\"\nrole = \"property_manager\"\ncompany = \"greenleaf\"\ntoken_sha256 = \"{}\"\n",
        h("wang"),
        h("li"),
        h("chen")
    );
    let directory = Directory::from_toml_str(&text, "directory.toml").unwrap();
    let store = Store::open_in_memory().unwrap();
    let config = AlertsConfig::default();
    let record = |a: Alert| store.record(&a, &config).unwrap().id;
    let socket_case = record(alert(
        "socket_overcurrent",
        "yard-a/gw-1/pile-1#2",
        "cell-07",
    ));
    let flat_case = record(alert("group_rental", "yard-a/b02/0301", "cell-07"));
    let other_cell_case = record(alert(
        "socket_overcurrent",
        "yard-c/gw-9/pile-1#1",
        "cell-08",
    ));
    let app = gridwatch_analytics::http::router(AppState {
        store: store.clone(),
        directory: Arc::new(directory),
        alerts: config,
        clock: Arc::new(ManualClock::new(Timestamp(NOW_MS))),
        stations: Stations::new(10),
        cells: Arc::new(CellRouter::new(&CellsConfig::default())),
        zones: gridwatch_analytics::i18n::zones::SiteZones::uniform(480),
        history: Default::default(),
        commands,
    });
    Setup {
        app,
        store,
        socket_case,
        flat_case,
        other_cell_case,
    }
}

async fn send(
    app: &Router,
    token: &str,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ct, bytes)
}

/// Sends JSON and expects a JSON answer.
async fn json(app: &Router, token: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let (s, ct, b) = send(
        app,
        token,
        Method::POST,
        uri,
        Some("application/json"),
        body.into(),
    )
    .await;
    assert_eq!(ct.as_deref(), Some("application/json"), "{uri}");
    (s, serde_json::from_slice(&b).unwrap())
}

fn commands() -> (CommandSender, Receiver<SocketOff>) {
    CommandSender::channel()
}

#[tokio::test]
async fn cutting_a_socket_queues_the_command_and_notes_it_in_the_trail() {
    let (tx, mut rx) = commands();
    let s = setup(Some(tx));
    let uri = format!("/api/v1/alerts/{}/socket-off", s.socket_case);
    let (status, v) = json(&s.app, "wang", &uri, r#"{"confirm": true}"#).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        (
            v["gateway"].as_str(),
            v["device"].as_str(),
            v["socket"].as_u64()
        ),
        (Some("gw-1"), Some("pile-1"), Some(2))
    );
    let sent = rx
        .try_recv()
        .expect("the command is queued for the service");
    assert_eq!(sent.id, v["command"].as_str().unwrap());
    assert_eq!(case_of(&sent.id), Some(s.socket_case));
    assert_eq!(sent.socket, 2);
    let trail = s.store.audit(&Scope::All, s.socket_case).unwrap();
    let last = trail.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.action.as_str()),
        ("wang", "socket_off")
    );
    assert!(last.note.as_deref().unwrap().contains(&sent.id));
}

#[tokio::test]
async fn a_cut_is_refused_without_confirmation_role_scope_socket_or_broker() {
    let (tx, mut rx) = commands();
    let s = setup(Some(tx));
    let cut = |id: i64| format!("/api/v1/alerts/{id}/socket-off");
    let cases = [
        (
            "wang",
            s.socket_case,
            r#"{"confirm": false}"#,
            StatusCode::BAD_REQUEST,
        ),
        ("wang", s.socket_case, "{}", StatusCode::BAD_REQUEST),
        (
            "chen",
            s.socket_case,
            r#"{"confirm": true}"#,
            StatusCode::FORBIDDEN,
        ),
        (
            "wang",
            s.other_cell_case,
            r#"{"confirm": true}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "wang",
            s.flat_case,
            r#"{"confirm": true}"#,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (who, id, body, want) in cases {
        let (status, v) = json(&s.app, who, &cut(id), body).await;
        assert_eq!(status, want, "{who} {id} {body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    assert!(rx.try_recv().is_err(), "nothing refused was sent");

    let none = setup(None);
    let (status, v) = json(
        &none.app,
        "wang",
        &cut(none.socket_case),
        r#"{"confirm": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let trail = none.store.audit(&Scope::All, none.socket_case).unwrap();
    assert!(
        trail.iter().all(|e| e.action != "socket_off"),
        "nothing sent, nothing noted"
    );
}

#[tokio::test]
async fn a_photo_is_kept_served_and_listed() {
    let s = setup(None);
    let uri = format!("/api/v1/alerts/{}/photos", s.socket_case);
    let (status, ct, body) = send(
        &s.app,
        "wang",
        Method::POST,
        &uri,
        Some("image/png"),
        PNG.to_vec(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(ct.as_deref(), Some("application/json"));
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["bytes"].as_u64(), Some(PNG.len() as u64));
    assert_eq!(info["actor"], "wang");
    let photo = info["id"].as_i64().unwrap();

    let (status, ct, bytes) = send(
        &s.app,
        "chen",
        Method::GET,
        &format!("{uri}/{photo}"),
        None,
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the site's manager may look");
    assert_eq!((ct.as_deref(), bytes.as_slice()), (Some("image/png"), PNG));
    let (_, _, list) = send(&s.app, "wang", Method::GET, &uri, None, vec![]).await;
    let list: Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // Another case's photo number, and a case outside the caller's cell.
    let other = format!("/api/v1/alerts/{}/photos/{photo}", s.flat_case);
    assert_eq!(
        send(&s.app, "wang", Method::GET, &other, None, vec![])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &s.app,
            "li",
            Method::GET,
            &format!("{uri}/{photo}"),
            None,
            vec![]
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let trail = s.store.audit(&Scope::All, s.socket_case).unwrap();
    assert_eq!(trail.last().unwrap().action, "photo");
}

#[tokio::test]
async fn a_photo_that_is_not_one_too_big_or_not_allowed_is_refused_as_json() {
    let s = setup(None);
    let uri = format!("/api/v1/alerts/{}/photos", s.socket_case);
    let too_big = [PNG, &vec![0u8; MAX_PHOTO_BYTES][..]].concat();
    let cases: [(&str, Option<&str>, Vec<u8>, StatusCode); 6] = [
        (
            "wang",
            Some("image/png"),
            b"<svg/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "wang",
            Some("image/jpeg"),
            PNG.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "wang",
            Some("image/svg+xml"),
            b"<svg/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "wang",
            None,
            PNG.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "wang",
            Some("image/png"),
            too_big,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "chen",
            Some("image/png"),
            PNG.to_vec(),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (who, ct, body, want) in cases {
        let (status, got_ct, answer) = send(&s.app, who, Method::POST, &uri, ct, body).await;
        assert_eq!(status, want, "{who} {ct:?}");
        assert_eq!(got_ct.as_deref(), Some("application/json"), "{who} {ct:?}");
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    assert!(s
        .store
        .photos(&Scope::All, s.socket_case)
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_disposition_the_rule_cannot_have_is_refused() {
    let s = setup(None);
    let close = format!("/api/v1/alerts/{}/close", s.flat_case);
    let (status, v) = json(
        &s.app,
        "wang",
        &close,
        r#"{"disposition": "pile_fault", "note": "x"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("confirmed_group_rental"),
        "{v}"
    );
    let (status, v) = json(
        &s.app,
        "wang",
        &close,
        r#"{"disposition": "confirmed_group_rental", "note": "12 beds"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}
