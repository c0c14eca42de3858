//! Every error answer of the API is JSON `{"error": …}` with a documented
//! status, including the ones the framework used to give in plain text, and
//! filters that could only mislead are refused with the valid values.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::alerts::route::{CellRouter, CellsConfig};
use gridwatch_analytics::api::AppState;
use gridwatch_analytics::lifecycle::AlertsConfig;
use gridwatch_analytics::store::stations::Stations;
use gridwatch_analytics::store::Store;
use gridwatch_telemetry::{ManualClock, Timestamp};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower::ServiceExt;

const ROOT: &str = "token-root";
const NOW_MS: i64 = 1_764_000_000_000;

fn app() -> Router {
    let text = format!(
        "[[users]]\nname = \"root\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\n",
        hex(&Sha256::digest(ROOT.as_bytes()))
    );
    let directory = Directory::from_toml_str(&text, "directory.toml").unwrap();
    gridwatch_analytics::http::router(AppState {
        store: Store::open_in_memory().unwrap(),
        directory: Arc::new(directory),
        alerts: AlertsConfig::default(),
        clock: Arc::new(ManualClock::new(Timestamp(NOW_MS))),
        stations: Stations::new(10),
        cells: Arc::new(CellRouter::new(&CellsConfig::default())),
        zones: gridwatch_analytics::i18n::zones::SiteZones::uniform(480),
        history: Default::default(),
        commands: None,
    })
}

/// Sends a request as the admin; `content_type` and `body` as given.
async fn send(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {ROOT}"));
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let resp = app()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ct, json)
}

/// The status and the `error` message, after checking the answer is JSON.
async fn error(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let (status, ct, json) = send(method, uri, content_type, body).await;
    assert_eq!(ct.as_deref(), Some("application/json"), "{uri}: {json}");
    let msg = json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{uri}: no error field in {json}"));
    (status, msg.to_owned())
}

#[tokio::test]
async fn unknown_filter_values_name_the_valid_ones() {
    let (s, m) = error(Method::GET, "/api/v1/alerts?state=opne", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        m.contains("\"opne\"") && m.contains("open, acknowledged, in_progress"),
        "{m}"
    );
    let (s, m) = error(Method::GET, "/api/v1/alerts?severity=fire", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("minor, major, critical"), "{m}");
    for limit in ["0", "1001"] {
        let (s, m) = error(
            Method::GET,
            &format!("/api/v1/alerts?limit={limit}"),
            None,
            "",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(m.contains("1 to 1000"), "{m}");
    }
    let (s, m) = error(Method::GET, "/api/v1/alerts?limit=-3", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{m}");
    let (s, _, v) = send(
        Method::GET,
        "/api/v1/alerts?state=active&limit=1000",
        None,
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn framework_rejections_are_json_with_documented_statuses() {
    let json = Some("application/json");
    let uri = "/api/v1/alerts/1/comments";
    // No content type: 415, not axum's text/plain.
    let (s, m) = error(Method::POST, uri, None, r#"{"text":"x"}"#).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{m}");
    // Syntax error, wrong type, unknown field: 400, not 422.
    for body in ["{", r#"{"text": 5}"#, r#"{"text":"x","extra":1}"#] {
        let (s, m) = error(Method::POST, uri, json, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {m}");
    }
    // A path id that is not an i64.
    let (s, m) = error(Method::GET, "/api/v1/alerts/9223372036854775808", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{m}");
    // A method the path does not have.
    let (s, _) = error(Method::PUT, "/api/v1/alerts", None, "").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn silence_times_are_checked() {
    let json = Some("application/json");
    let body = |starts: i64, ends: i64| {
        format!(r#"{{"starts":{starts},"ends":{ends},"reason":"maintenance"}}"#)
    };
    let (s, m) = error(Method::POST, "/api/v1/silences", json, &body(0, 0)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("end after it starts"), "{m}");
    let (s, m) = error(Method::POST, "/api/v1/silences", json, &body(0, 1000)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("already past"), "{m}");
    let year = 365 * 24 * 3_600_000;
    let (s, m) = error(
        Method::POST,
        "/api/v1/silences",
        json,
        &body(NOW_MS, NOW_MS + year),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(m.contains("at most 30 days"), "{m}");
    let (s, _, v) = send(
        Method::POST,
        "/api/v1/silences",
        json,
        &body(NOW_MS, NOW_MS + 3_600_000),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}
