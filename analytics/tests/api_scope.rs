//! The HTTP API against a real store: who sees and changes what, the life
//! cycle over HTTP, and the OpenAPI document matching the routes. The
//! dashboard's side is in dashboard_scope.rs.

#[path = "support/scope.rs"]
mod scope;

use axum::http::{Method, StatusCode};
use gridwatch_analytics::store::Scope;
use gridwatch_telemetry::AlertState;
use serde_json::json;

use scope::*;

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
