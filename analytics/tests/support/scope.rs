//! The directory, alerts and app the API scope tests share: two grid staff
//! in neighbouring cells, a property manager of one yard and an admin, each
//! with a token.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::alerts::route::{CellRouter, CellsConfig};
use gridwatch_analytics::api::AppState;
use gridwatch_analytics::lifecycle::AlertsConfig;
use gridwatch_analytics::store::stations::Stations;
use gridwatch_analytics::store::Store;
use gridwatch_telemetry::alert::Sample;
use gridwatch_telemetry::{Alert, AlertState, Evidence, ManualClock, Severity, Timestamp};
use gridwatch_telemetry::{DeviceKind, Reading};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

pub const WANG: &str = "token-wang"; // grid staff, cell-07
pub const LI: &str = "token-li"; // grid staff, cell-08
pub const CHEN: &str = "token-chen"; // property manager, greenleaf (yard-a)
pub const ROOT: &str = "token-root"; // admin

pub fn directory() -> Directory {
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

pub fn alert(site: &str, cell: &str, n: i64) -> Alert {
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
pub fn app() -> (Router, Store) {
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
    (gridwatch_analytics::http::router(state), store)
}

/// Directory routing: yard-a in cell-07, yard-c in cell-08.
pub fn cells() -> CellsConfig {
    let mut c = CellsConfig::default();
    directory().route_into(&mut c).unwrap();
    c
}

pub fn socket_reading(site: &str, ts: i64) -> Reading {
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
pub fn stations() -> Stations {
    let s = Stations::new(100);
    s.observe(&socket_reading("yard-a", 1000));
    s.observe(&socket_reading("yard-c", 1000));
    s
}

pub async fn call(
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
