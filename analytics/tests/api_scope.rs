//! The HTTP API and dashboard against a real store: who sees and changes
//! what, the life cycle over HTTP, and the OpenAPI document matching the
//! routes.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::alerts::lifecycle::AlertsConfig;
use gridwatch_analytics::alerts::route::{CellRouter, CellsConfig};
use gridwatch_analytics::api::{self, AppState};
use gridwatch_analytics::store::stations::Stations;
use gridwatch_analytics::store::{Scope, Store};
use gridwatch_telemetry::alert::Sample;
use gridwatch_telemetry::{Alert, AlertState, Evidence, ManualClock, Severity, Timestamp};
use gridwatch_telemetry::{DeviceKind, Reading};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

const WANG: &str = "token-wang"; // grid staff, cell-07
const LI: &str = "token-li"; // grid staff, cell-08
const CHEN: &str = "token-chen"; // property manager, greenleaf (yard-a)
const ROOT: &str = "token-root"; // admin

fn directory() -> Directory {
    let h = |t: &str| hex(&Sha256::digest(t.as_bytes()));
    let text = format!(
        r#"
[[cells]]
id = "cell-07"
on_duty = ["wang"]
[[cells]]
id = "cell-08"
on_duty = ["li"]
[[companies]]
id = "greenleaf"
[[sites]]
id = "yard-a"
cell = "cell-07"
company = "greenleaf"
[[sites]]
id = "yard-c"
cell = "cell-08"
[[users]]
name = "wang"
role = "grid_staff"
token_sha256 = "{}"
[[users]]
name = "li"
role = "grid_staff"
token_sha256 = "{}"
[[users]]
name = "chen"
role = "property_manager"
company = "greenleaf"
token_sha256 = "{}"
[[users]]
name = "root"
role = "admin"
token_sha256 = "{}"
"#,
        h(WANG),
        h(LI),
        h(CHEN),
        h(ROOT)
    );
    Directory::from_toml_str(&text, "directory.toml").unwrap()
}

fn alert(site: &str, cell: &str, n: i64) -> Alert {
    Alert {
        schema: 1,
        id: format!("socket_overcurrent:{site}/gw-1/pile-1#{n}:0"),
        rule: "socket_overcurrent".into(),
        entity: format!("{site}/gw-1/pile-1#{n}"),
        cell: cell.into(),
        site: site.into(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(1_000),
        title: format!("Overcurrent on socket {n} at {site}"),
        summary: "It drew 7 A for 6 s (limit 5.5 A).".into(),
        evidence: Evidence {
            values: BTreeMap::from([("peak".into(), 7.1)]),
            thresholds: BTreeMap::from([("overcurrent_a".into(), 5.5)]),
            window_start: Timestamp(0),
            window_end: Timestamp(6_000),
            samples: (0..7)
                .map(|i| Sample {
                    ts: Timestamp(i * 1000),
                    value: 7.0,
                })
                .collect(),
            series: Some("current_a".into()),
        },
    }
}

/// A router over a store holding alert 1 (cell-07, yard-a) and alert 2
/// (cell-08, yard-c).
fn app() -> (Router, Store) {
    let store = Store::open_in_memory().unwrap();
    let c = AlertsConfig::default();
    assert_eq!(
        store.record(&alert("yard-a", "cell-07", 1), &c).unwrap().id,
        1
    );
    assert_eq!(
        store.record(&alert("yard-c", "cell-08", 1), &c).unwrap().id,
        2
    );
    let state = AppState {
        store: store.clone(),
        directory: Arc::new(directory()),
        alerts: c,
        clock: Arc::new(ManualClock::new(Timestamp(60_000))),
        stations: stations(),
        cells: Arc::new(CellRouter::new(&cells())),
        zones: gridwatch_analytics::i18n::zones::SiteZones::uniform(480),
        history: Default::default(),
        commands: None,
    };
    (api::router(state), store)
}

/// Directory routing: yard-a in cell-07, yard-c in cell-08.
fn cells() -> CellsConfig {
    let mut c = CellsConfig::default();
    directory().route_into(&mut c).unwrap();
    c
}

fn socket_reading(site: &str, ts: i64) -> Reading {
    let mut r = Reading::new(
        Timestamp(ts),
        "gw-1",
        "pile-1",
        DeviceKind::ChargingSocket,
        ts as u64,
    );
    r.site = site.into();
    r.socket = Some(2);
    r.values.insert("state".into(), 2.0);
    r.values.insert("power_w".into(), 231.0);
    r.values.insert("session_s".into(), 5400.0);
    r
}

/// A board that has seen one socket at yard-a and one at yard-c.
fn stations() -> Stations {
    let s = Stations::new(100);
    s.observe(&socket_reading("yard-a", 1000));
    s.observe(&socket_reading("yard-c", 1000));
    s
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn without_a_known_token_nothing_is_served() {
    let (app, _) = app();
    assert_eq!(
        call(&app, Method::GET, "/api/v1/alerts", None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, Method::GET, "/api/v1/alerts", Some("guess"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn grid_staff_list_only_their_cells_alerts() {
    let (app, _) = app();
    let (s, v) = call(&app, Method::GET, "/api/v1/alerts", Some(WANG), None).await;
    assert_eq!(s, StatusCode::OK);
    let cells: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["cell"].as_str().unwrap())
        .collect();
    assert_eq!(cells, ["cell-07"]);
    let (_, v) = call(
        &app,
        Method::GET,
        "/api/v1/alerts?cell=cell-08",
        Some(WANG),
        None,
    )
    .await;
    assert_eq!(
        v.as_array().unwrap().len(),
        0,
        "a filter cannot widen the scope"
    );
    let (_, v) = call(&app, Method::GET, "/api/v1/alerts", Some(ROOT), None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn guessing_ids_neither_reads_nor_changes_another_cells_alerts() {
    let (app, store) = app();
    for id in 1..=20 {
        let (s, _) = call(
            &app,
            Method::GET,
            &format!("/api/v1/alerts/{id}"),
            Some(LI),
            None,
        )
        .await;
        let expect = if id == 2 {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(s, expect, "GET alert {id} as li");
    }
    let attempts = [
        ("acknowledge", None),
        ("start", None),
        ("assign", Some(json!({"assignee": "li"}))),
        ("comments", Some(json!({"text": "mine now"}))),
        (
            "close",
            Some(json!({"disposition": "false_positive", "note": "not mine"})),
        ),
    ];
    for (action, body) in attempts {
        let (s, v) = call(
            &app,
            Method::POST,
            &format!("/api/v1/alerts/1/{action}"),
            Some(LI),
            body,
        )
        .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "{action} on cell-07's alert as li: {v}"
        );
    }
    let (s, _) = call(&app, Method::GET, "/api/v1/alerts/1", Some(CHEN), None).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the property manager of yard-a sees its alert"
    );
    let (s, _) = call(&app, Method::GET, "/api/v1/alerts/2", Some(CHEN), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "but not another company's site");
    let untouched = store.get(&Scope::All, 1).unwrap();
    assert_eq!(untouched.state, AlertState::Open);
    assert_eq!(untouched.assignee, None);
    assert_eq!(
        store.audit(&Scope::All, 1).unwrap().len(),
        1,
        "only the raise"
    );
}

#[tokio::test]
async fn property_managers_read_and_comment_but_do_not_change_alerts() {
    let (app, _) = app();
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/acknowledge",
        Some(CHEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/comments",
        Some(CHEN),
        Some(json!({"text": "caretaker has the key"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn staff_acknowledge_and_close_with_a_disposition_and_precision_follows() {
    let (app, store) = app();
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/acknowledge",
        Some(WANG),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"], "acknowledged");
    assert_eq!(v["acknowledged_by"], "wang");
    assert_eq!(
        v["acknowledged_at"], 60_000,
        "time-stamped by the injected clock"
    );
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/acknowledge",
        Some(WANG),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/close",
        Some(WANG),
        Some(json!({"disposition": "rectified", "note": " "})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a closing note is required");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/close",
        Some(WANG),
        Some(json!({"disposition": "pile_fault", "note": "relay welded; pile switched off", "photos": ["p1.jpg"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "resolved");
    assert_eq!(v["disposition"], "pile_fault");
    let (_, v) = call(&app, Method::GET, "/api/v1/alerts/1", Some(WANG), None).await;
    let actions: Vec<&str> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["raise", "acknowledge", "close"]);
    let (_, v) = call(&app, Method::GET, "/api/v1/precision", Some(WANG), None).await;
    assert_eq!(v[0]["rule"], "socket_overcurrent");
    assert_eq!(v[0]["precision"], 1.0);
    assert_eq!(
        store.get(&Scope::All, 1).unwrap().state,
        AlertState::Resolved
    );
}

#[tokio::test]
async fn alerts_are_assigned_only_to_staff_who_can_see_them() {
    let (app, _) = app();
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/assign",
        Some(ROOT),
        Some(json!({"assignee": "li"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/alerts/1/assign",
        Some(ROOT),
        Some(json!({"assignee": "wang"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["assignee"], "wang");
}

#[tokio::test]
async fn staff_silence_only_their_own_cells() {
    let (app, _) = app();
    let silence =
        |cell: &str| json!({"cell": cell, "ends": 3_600_000, "reason": "pile under repair"});
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/silences",
        Some(WANG),
        Some(silence("cell-08")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/silences",
        Some(WANG),
        Some(silence("cell-07")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["created_by"], "wang");
    let id = v["id"].as_i64().unwrap();
    let (_, v) = call(&app, Method::GET, "/api/v1/silences", Some(LI), None).await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/silences/{id}"),
        Some(LI),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/silences/{id}"),
        Some(WANG),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = call(&app, Method::GET, "/api/v1/silences", Some(WANG), None).await;
    assert_eq!(v.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_guarded() {
    let (app, _) = app();
    let (s, doc) = call(&app, Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let uri = path.replace("{id}", "1").replace("{site}", "yard-a");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m == Method::POST).then(|| json!({}));
            let (s, _) = call(&app, m, &uri, None, body).await;
            let expect = if path == "/api/openapi.json" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(s, expect, "{method} {path}");
        }
    }
}

async fn page(
    app: &Router,
    method: Method,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> (StatusCode, String, Option<String>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = match form {
        Some(f) => req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(f.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let set_cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
        set_cookie,
    )
}

#[tokio::test]
async fn the_dashboard_logs_in_shows_the_chart_and_closes_an_alert() {
    let (app, store) = app();
    let (s, _, _) = page(&app, Method::GET, "/alerts", None, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "not logged in: off to /login");
    let (s, _, _) = page(&app, Method::POST, "/login", None, Some("token=wrong")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, set) = page(
        &app,
        Method::POST,
        "/login",
        None,
        Some(&format!("token={WANG}")),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let set = set.unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();

    let (s, html, _) = page(&app, Method::GET, "/alerts", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese by default");
    assert!(
        html.contains("插座 1 电流超限"),
        "a plain Chinese title: {html}"
    );
    assert!(
        html.contains("(UTC+8)") && !html.contains(":00Z"),
        "local time: {html}"
    );
    assert!(
        !html.contains("yard-c"),
        "another cell's alert is not listed"
    );
    assert!(html.contains("name=\"viewport\""), "phone-friendly");

    let (s, html, _) = page(&app, Method::GET, "/alerts/1", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("<svg") && html.contains("overcurrent_a = 5.5"),
        "{html}"
    );
    assert!(html.contains("action=\"/alerts/1/close\""));
    let (s, _, _) = page(&app, Method::GET, "/alerts/2", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = page(
        &app,
        Method::POST,
        "/alerts/2/acknowledge",
        Some(&cookie),
        Some(""),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, _, _) = page(
        &app,
        Method::POST,
        "/alerts/1/acknowledge",
        Some(&cookie),
        Some(""),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let form = "disposition=rectified&note=charger+replaced&photos=a.jpg%2C+b.jpg";
    let (s, _, _) = page(
        &app,
        Method::POST,
        "/alerts/1/close",
        Some(&cookie),
        Some(form),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let case = store.get(&Scope::All, 1).unwrap();
    assert_eq!(case.state, AlertState::Resolved);
    assert_eq!(case.photos, ["a.jpg", "b.jpg"]);
    assert_eq!(case.resolved_by.as_deref(), Some("wang"));
    assert_eq!(store.get(&Scope::All, 2).unwrap().state, AlertState::Open);
}

#[tokio::test]
async fn the_api_answers_on_a_real_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, _) = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(api::serve(listener, app, stop.clone()));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WANG}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("\"name\":\"wang\"") && out.contains("cell-07"),
        "{out}"
    );
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_site_s_stations_are_seen_by_its_manager_and_its_cell_s_staff_only() {
    let (app, _) = app();
    let (s, v) = call(
        &app,
        Method::GET,
        "/api/v1/sites/yard-a/stations",
        Some(CHEN),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["state"], "charging");
    assert_eq!(v[0]["power_w"], 231.0);
    let expect = [
        (CHEN, "yard-c", StatusCode::NOT_FOUND),
        (WANG, "yard-a", StatusCode::OK),
        (WANG, "yard-c", StatusCode::NOT_FOUND),
        (LI, "yard-c", StatusCode::OK),
        (ROOT, "yard-c", StatusCode::OK),
    ];
    for (token, site, status) in expect {
        let uri = format!("/api/v1/sites/{site}/stations");
        assert_eq!(
            call(&app, Method::GET, &uri, Some(token), None).await.0,
            status,
            "{token} {site}"
        );
    }
}

#[tokio::test]
async fn the_language_is_chosen_by_query_then_cookie_and_remembered() {
    let (app, _) = app();
    let (_, html, set) = page(&app, Method::GET, "/login", None, None).await;
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("访问令牌"));
    assert!(set.is_none(), "no choice, no cookie");
    let (_, html, set) = page(&app, Method::GET, "/login?lang=en", None, None).await;
    assert!(html.contains("<html lang=\"en\">") && html.contains("access token"));
    assert!(set.unwrap().starts_with("gw_lang=en;"));
    let (_, html, _) = page(&app, Method::GET, "/login", Some("gw_lang=en"), None).await;
    assert!(
        html.contains("<html lang=\"en\">"),
        "the cookie is honoured"
    );
}

#[tokio::test]
async fn the_station_page_streams_updates_of_the_callers_sites_only() {
    let board = stations();
    let state = AppState {
        store: Store::open_in_memory().unwrap(),
        directory: Arc::new(directory()),
        alerts: AlertsConfig::default(),
        clock: Arc::new(ManualClock::new(Timestamp(0))),
        stations: board.clone(),
        cells: Arc::new(CellRouter::new(&cells())),
        zones: gridwatch_analytics::i18n::zones::SiteZones::uniform(480),
        history: Default::default(),
        commands: None,
    };
    let app = api::router(state);
    let cookie = format!("gridwatch_token={CHEN}");
    let (s, html, _) = page(&app, Method::GET, "/stations", Some(&cookie), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("id=\"site-yard-a\"") && html.contains("充电中"),
        "{html}"
    );
    assert!(
        !html.contains("yard-c"),
        "another company's site is not shown"
    );
    assert!(html.contains("EventSource"));

    let req = Request::builder()
        .uri("/stations/events")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    board.observe(&socket_reading("yard-c", 2000)); // not chen's: not sent
    let mut r = socket_reading("yard-a", 2000);
    r.values.insert("fault_code".into(), 3.0);
    board.observe(&r);
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("an event within the bound")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(frame.data_ref().unwrap()).into_owned();
    assert!(text.starts_with("data: "), "{text}");
    assert!(
        text.contains("\"site\":\"yard-a\"") && text.contains("over-temperature"),
        "{text}"
    );
}
