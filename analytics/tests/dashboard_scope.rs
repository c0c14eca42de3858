//! The dashboard against a real store: logging in, the chart and closing
//! an alert, the API on a real socket, stations seen only by their site's
//! people, the language, and the station page's stream.

#[path = "support/scope.rs"]
mod scope;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::route::CellRouter;
use gridwatch_analytics::api::{self, AppState};
use gridwatch_analytics::lifecycle::AlertsConfig;
use gridwatch_analytics::store::{Scope, Store};
use gridwatch_telemetry::{AlertState, ManualClock, Timestamp};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

use scope::*;

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
    let app = gridwatch_analytics::http::router(state);
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
