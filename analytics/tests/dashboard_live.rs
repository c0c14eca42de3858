//! The dashboard's live and charted views, through the router as a browser
//! reaches them: the alert list's event stream sends the cards at once and
//! again when a case appears, and refuses a caller without a login with
//! 401; an alert page draws the socket's history with its limit instead of
//! a list of numbers; the station view shows a pile gone offline and stale
//! data, and a socket's own page its charts.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::alerts::route::{CellRouter, CellsConfig};
use gridwatch_analytics::api::AppState;
use gridwatch_analytics::history::History;
use gridwatch_analytics::i18n::zones::SiteZones;
use gridwatch_analytics::lifecycle::AlertsConfig;
use gridwatch_analytics::store::stations::Stations;
use gridwatch_analytics::store::Store;
use gridwatch_telemetry::{
    Alert, AlertState, DeviceKind, Event, EventKind, Evidence, ManualClock, Reading, Severity,
    Timestamp,
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const MIN: i64 = 60_000;
/// 2026-12-05 21:14 in Shanghai.
const NOW_MS: i64 = 1_796_476_440_000;

struct Setup {
    app: Router,
    store: Store,
    case: i64,
}

fn overcurrent(entity: &str, ts: i64) -> Alert {
    Alert {
        schema: 1,
        id: format!("socket_overcurrent:{entity}:{ts}"),
        rule: "socket_overcurrent".into(),
        entity: entity.into(),
        cell: "cell-07".into(),
        site: "yard-a".into(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(ts),
        title: "socket_overcurrent peak 7.1".into(),
        summary: String::new(),
        evidence: Evidence {
            values: BTreeMap::from([("peak".into(), 7.1)]),
            thresholds: BTreeMap::from([("overcurrent_a".into(), 5.5)]),
            window_start: Timestamp(ts - 5_000),
            window_end: Timestamp(ts),
            samples: Vec::new(),
            series: Some("current_a".into()),
        },
    }
}

fn setup() -> Setup {
    let text = format!(
        "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n\
         [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
         [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n\
         [[users]]\nname = \"rose\"\nrole = \"admin\"\nlanguage = \"en\"\ntoken_sha256 = \"{}\"\n",
        hex(&Sha256::digest(b"wang")),
        hex(&Sha256::digest(b"rose"))
    );
    let directory = Directory::from_toml_str(&text, "directory.toml").unwrap();
    let mut cells = CellsConfig::default();
    directory.route_into(&mut cells).unwrap();
    let store = Store::open_in_memory().unwrap();
    let stations = Stations::new(10);
    let history = History::default();
    // Ninety minutes of a socket at 3 A, then 7.1 A for the last ten.
    for m in 0..90 {
        let mut r = Reading::new(
            Timestamp(NOW_MS - (90 - m) * MIN),
            "gw-1",
            "pile-1",
            DeviceKind::ChargingSocket,
            m as u64,
        );
        r.site = "yard-a".into();
        r.socket = Some(2);
        r.values
            .insert("current_a".into(), if m < 80 { 3.0 } else { 7.1 });
        r.values.insert("power_w".into(), 700.0);
        r.values.insert("state".into(), 2.0);
        stations.observe(&r);
        history.observe(&r);
    }
    stations.observe_event(&Event {
        schema: 1,
        ts: Timestamp(NOW_MS - 2 * MIN),
        gateway: "gw-1".into(),
        site: "yard-a".into(),
        device: "pile-1".into(),
        seq: 99,
        kind: EventKind::DeviceOffline {
            reason: "no answer after 3 tries".into(),
        },
    });
    let config = AlertsConfig::default();
    let case = store
        .record(
            &overcurrent("yard-a/gw-1/pile-1#2", NOW_MS - 10 * MIN),
            &config,
        )
        .unwrap()
        .id;
    let app = gridwatch_analytics::http::router(AppState {
        store: store.clone(),
        directory: Arc::new(directory),
        alerts: config,
        // Ten minutes after the last reading: the socket's data is stale.
        clock: Arc::new(ManualClock::new(Timestamp(NOW_MS + 10 * MIN))),
        stations,
        cells: Arc::new(CellRouter::new(&cells)),
        zones: SiteZones::new(
            480,
            std::collections::HashMap::from([("yard-b".to_owned(), 420)]),
        ),
        history,
        commands: None,
    });
    Setup { app, store, case }
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::builder()
        .uri(uri)
        .header(header::ACCEPT_LANGUAGE, "zh-CN");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

async fn page(app: &Router, uri: &str) -> (StatusCode, String) {
    page_as(app, uri, "wang").await
}

async fn page_as(app: &Router, uri: &str, token: &str) -> (StatusCode, String) {
    let resp = app.clone().oneshot(get(uri, Some(token))).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The next `data:` line of an event stream, within 20 s.
async fn next_event(body: &mut Body) -> serde_json::Value {
    let mut text = String::new();
    for _ in 0..100 {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("an event within 20 s")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data:")) {
            return serde_json::from_str(line.trim()).unwrap();
        }
    }
    panic!("no data line in {text:?}");
}

#[tokio::test]
async fn the_live_list_sends_the_cards_at_once_and_again_when_a_case_appears() {
    let s = setup();
    let resp = s
        .app
        .clone()
        .oneshot(get("/alerts/events", Some("wang")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    let first = next_event(&mut body).await;
    let html = first["html"].as_str().unwrap();
    assert!(html.contains(&format!("/alerts/{}", s.case)), "{html}");
    assert!(html.contains("共 1 条"), "{html}");

    s.store
        .record(
            &overcurrent("yard-a/gw-1/pile-1#3", NOW_MS - 5 * MIN),
            &AlertsConfig::default(),
        )
        .unwrap();
    let second = next_event(&mut body).await;
    assert!(
        second["html"].as_str().unwrap().contains("共 2 条"),
        "{second}"
    );
}

#[tokio::test]
async fn the_live_list_answers_401_without_a_login() {
    let s = setup();
    let resp = s.app.oneshot(get("/alerts/events", None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, list) = page(&setup().app, "/alerts").await;
    assert!(list.contains("EventSource('/alerts/events')"), "{list}");
    assert!(
        list.contains("http-equiv=\"refresh\""),
        "a fallback without script"
    );
}

#[tokio::test]
async fn the_alert_page_draws_the_sockets_history_with_the_limit() {
    let s = setup();
    let (status, html) = page(&s.app, &format!("/alerts/{}", s.case)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<svg class=\"chart\""), "{html}");
    assert!(html.contains("限值 5.5 A"), "the limit is drawn");
    assert!(
        html.contains("class=\"marker\""),
        "the alert's start is marked"
    );
    let points = html
        .split("class=\"series\"")
        .nth(1)
        .and_then(|s| s.split("points=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap();
    assert!(
        points.split(' ').count() >= 60,
        "an hour before the alert, minute by minute: {points}"
    );
    assert!(
        html.contains("<li>overcurrent_a 5.5</li>"),
        "numbers stay in the details"
    );
}

#[tokio::test]
async fn stations_show_an_offline_pile_stale_data_and_a_sockets_history() {
    let s = setup();
    let (_, html) = page(&s.app, "/stations").await;
    assert!(
        html.contains("充电桩 pile-1 离线：no answer after 3 tries"),
        "{html}"
    );
    assert!(html.contains("网关 gw-1 无数据"), "{html}");
    assert!(html.contains("数据已停止更新"), "{html}");
    let href = "/stations/socket?site=yard-a&amp;gateway=gw-1&amp;device=pile-1&amp;socket=2";
    assert!(html.contains(href), "{html}");
    let (status, socket) = page(&s.app, &href.replace("&amp;", "&")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        socket.matches("<svg class=\"chart\"").count(),
        2,
        "power and current; no temperature was read"
    );
    assert!(socket.contains("(UTC+8)") && !socket.contains(":00Z"));
    let (status, _) = page(
        &s.app,
        "/stations/socket?site=yard-c&gateway=gw-1&device=pile-1&socket=2",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_users_language_wins_over_the_browsers_and_a_choice_over_both() {
    let s = setup();
    let (_, html) = page_as(&s.app, "/alerts", "rose").await;
    assert!(
        html.contains("<html lang=\"en\">"),
        "rose's language is English"
    );
    assert!(html.contains("What to do") || html.contains("Alerts"));
    let (_, html) = page_as(&s.app, "/alerts?lang=zh-CN", "rose").await;
    assert!(
        html.contains("<html lang=\"zh-CN\">"),
        "her choice on the page wins"
    );
    let (_, html) = page(&s.app, "/alerts").await;
    assert!(
        html.contains("<html lang=\"zh-CN\">"),
        "wang has none: his browser's"
    );
}

#[tokio::test]
async fn the_alert_page_says_what_to_do_in_the_sites_zone() {
    let s = setup();
    let (_, html) = page(&s.app, &format!("/alerts/{}", s.case)).await;
    assert!(
        html.contains("怎么处理") && html.contains("先远程断电"),
        "{html}"
    );
    assert!(html.contains("(UTC+8)"), "yard-a has no zone of its own");
    let case = s
        .store
        .record(
            &Alert {
                site: "yard-b".into(),
                ..overcurrent("yard-b/gw-2/pile-1#1", NOW_MS)
            },
            &AlertsConfig::default(),
        )
        .unwrap()
        .id;
    let (_, html) = page_as(&s.app, &format!("/alerts/{case}"), "rose").await;
    assert!(
        html.contains("(UTC+7)") && !html.contains("(UTC+8)"),
        "{html}"
    );
}
