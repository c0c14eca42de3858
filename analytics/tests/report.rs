//! The assessment report: exact counts, medians and false-alarm rates from
//! cases made through the store at known times; scoping of the page and the
//! CSV (grid staff see their own cells only); the CSV's BOM and header.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use gridwatch_analytics::alerts::directory::{hex, Directory};
use gridwatch_analytics::alerts::route::{CellRouter, CellsConfig};
use gridwatch_analytics::api::{self, AppState};
use gridwatch_analytics::i18n::local_time::Date;
use gridwatch_analytics::lifecycle::{Action, AlertsConfig, Disposition};
use gridwatch_analytics::store::stations::Stations;
use gridwatch_analytics::store::{ReportPeriod, Scope, Store};
use gridwatch_telemetry::{Alert, AlertState, Evidence, ManualClock, Severity, Timestamp};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower::ServiceExt;

const MIN: i64 = 60_000;
const H: i64 = 60 * MIN;
const D: i64 = 24 * H;
const SHANGHAI: i32 = 480;

/// 2026-12-05 00:00 in Shanghai.
fn t0() -> i64 {
    Date::parse("2026-12-05").unwrap().start(SHANGHAI).0
}

fn alert(rule: &str, entity: &str, cell: &str, ts: i64) -> Alert {
    Alert {
        schema: 1,
        id: format!("{rule}:{entity}:{ts}"),
        rule: rule.into(),
        entity: entity.into(),
        cell: cell.into(),
        site: entity.split('/').next().unwrap().into(),
        severity: Severity::Critical,
        state: AlertState::Open,
        ts: Timestamp(ts),
        title: rule.into(),
        summary: String::new(),
        evidence: Evidence::default(),
    }
}

fn act(store: &Store, id: i64, action: Action, at: i64) {
    store
        .act(&Scope::All, id, "wang", &action, Timestamp(at), D)
        .unwrap();
}

fn close(store: &Store, id: i64, d: Disposition, at: i64) {
    let action = Action::Close {
        disposition: d,
        note: "checked".into(),
        photos: vec![],
    };
    act(store, id, action, at);
}

/// cell-07: three group-rental cases and one overheat case in December;
/// cell-08: one group-rental case; one cell-07 case in November (outside).
fn filled() -> Store {
    let s = Store::open_in_memory().unwrap();
    let c = AlertsConfig::default();
    let t = t0();
    let rec = |rule: &str, entity: &str, cell: &str, at: i64| {
        s.record(&alert(rule, entity, cell, at), &c).unwrap().id
    };
    // Acknowledged in 5 min (in time for critical, 10 min), rectified in 1 day.
    let a = rec("group_rental", "yard-a/0301", "cell-07", t);
    act(&s, a, Action::Acknowledge, t + 5 * MIN);
    close(&s, a, Disposition::Rectified, t + D);
    // Acknowledged in 20 min (late), a false alarm closed after 9 days.
    let b = rec("group_rental", "yard-a/0302", "cell-07", t + H);
    act(&s, b, Action::Acknowledge, t + H + 20 * MIN);
    close(&s, b, Disposition::FalsePositive, t + H + 9 * D);
    // Never handled: overdue at t + 10 days.
    rec("group_rental", "yard-a/0303", "cell-07", t + 2 * H);
    // Closed without access in 2 h, never acknowledged.
    let d = rec("overheat", "yard-a/gw-1/pile-1#1", "cell-07", t);
    close(&s, d, Disposition::NoAccess, t + 2 * H);
    rec("group_rental", "yard-c/0101", "cell-08", t + 3 * H);
    rec("group_rental", "yard-a/0401", "cell-07", t - 20 * D);
    s
}

fn december(now: i64) -> ReportPeriod {
    ReportPeriod {
        from: Date::parse("2026-12-01").unwrap().start(SHANGHAI),
        to: Date::parse("2026-12-31").unwrap().end(SHANGHAI),
        now: Timestamp(now),
    }
}

#[test]
fn counts_medians_and_false_alarm_rate_are_exact() {
    let s = filled();
    let rows = s
        .report(
            &Scope::Cells(vec!["cell-07".into()]),
            &december(t0() + 10 * D),
            &AlertsConfig::default(),
        )
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let g = &rows[0];
    assert_eq!(
        (g.cell.as_str(), g.rule.as_str()),
        ("cell-07", "group_rental")
    );
    assert_eq!(g.found, 3, "the November case is outside the period");
    assert_eq!(g.acknowledged_in_time, 1);
    assert_eq!(g.closed_in_time, 1, "9 days is past the 7-day limit");
    assert_eq!(g.overdue, 1);
    assert_eq!(g.median_ack_s, Some(750.0), "median of 300 s and 1200 s");
    assert_eq!(
        g.median_close_s,
        Some(5.0 * 86_400.0),
        "median of 1 d and 9 d"
    );
    assert_eq!((g.false_alarms, g.judged), (1, 2));
    assert_eq!(g.false_alarm_rate, Some(0.5));
    let o = &rows[1];
    assert_eq!(o.rule, "overheat");
    assert_eq!(
        (o.found, o.acknowledged_in_time, o.closed_in_time, o.overdue),
        (1, 0, 1, 0)
    );
    assert_eq!(o.median_ack_s, None);
    assert_eq!(o.median_close_s, Some(7200.0));
    assert_eq!(o.judged, 0, "no access says nothing about the rule");
    assert_eq!(o.false_alarm_rate, None);
}

#[test]
fn the_close_limit_comes_from_the_config() {
    let s = filled();
    let config = AlertsConfig {
        close_within_s: 10 * 86_400,
        ..AlertsConfig::default()
    };
    let rows = s
        .report(&Scope::All, &december(t0() + 10 * D), &config)
        .unwrap();
    let g = &rows[0];
    assert_eq!((g.closed_in_time, g.overdue), (2, 0), "{g:?}");
}

#[test]
fn a_cells_staff_see_only_their_cells_rows() {
    let s = filled();
    let rows = s
        .report(
            &Scope::Cells(vec!["cell-08".into()]),
            &december(t0() + 10 * D),
            &AlertsConfig::default(),
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].cell, "cell-08");
    assert_eq!(rows[0].overdue, 1);
}

const WANG: &str = "report-token-wang";
const LI: &str = "report-token-li";

fn app() -> Router {
    let h = |t: &str| hex(&Sha256::digest(t.as_bytes()));
    let text = format!(
        "[[cells]]\nid = \"cell-07\"\non_duty = [\"wang\"]\n\
         [[cells]]\nid = \"cell-08\"\non_duty = [\"li\"]\n\
         [[sites]]\nid = \"yard-a\"\ncell = \"cell-07\"\n\
         [[sites]]\nid = \"yard-c\"\ncell = \"cell-08\"\n\
         [[users]]\nname = \"wang\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n\
         [[users]]\nname = \"li\"\nrole = \"grid_staff\"\ntoken_sha256 = \"{}\"\n",
        h(WANG),
        h(LI)
    );
    gridwatch_analytics::http::router(AppState {
        store: filled(),
        directory: Arc::new(Directory::from_toml_str(&text, "directory.toml").unwrap()),
        alerts: AlertsConfig::default(),
        clock: Arc::new(ManualClock::new(Timestamp(t0() + 10 * D))),
        stations: Stations::new(10),
        cells: Arc::new(CellRouter::new(&CellsConfig::default())),
        zones: gridwatch_analytics::i18n::zones::SiteZones::uniform(SHANGHAI),
        history: Default::default(),
        commands: None,
    })
}

async fn get(app: &Router, uri: &str, token: &str) -> (StatusCode, Option<String>, String) {
    let req = Request::get(uri)
        .header(header::COOKIE, format!("{}={token}", api::auth::COOKIE))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_csv_has_a_bom_a_header_and_only_the_callers_cells() {
    let app = app();
    // No dates: the current month (the clock is in December 2026).
    let (status, ctype, text) = get(&app, "/report.csv", WANG).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype.as_deref(), Some("text/csv; charset=utf-8"));
    let rest = text
        .strip_prefix('\u{feff}')
        .expect("a UTF-8 byte-order mark");
    let lines: Vec<Vec<&str>> = rest.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(lines[0][0], "开始日期", "a Chinese header by default");
    assert_eq!(lines[0].len(), 14);
    assert_eq!(lines.len(), 3, "header + 2 rows: {rest}");
    for row in &lines[1..] {
        assert_eq!(row.len(), 14, "{row:?}");
        assert_eq!(&row[..3], ["2026-12-01", "2026-12-31", "cell-07"]);
    }
    assert_eq!(
        &lines[1][3..],
        [
            "group_rental",
            lines[1][4],
            "3",
            "1",
            "1",
            "1",
            "750",
            "432000",
            "1",
            "2",
            "0.5"
        ]
    );

    let (_, _, text) = get(&app, "/report.csv?from=2026-12-01&to=2026-12-31", LI).await;
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].contains(",cell-08,"), "{}", rows[0]);
}

#[tokio::test]
async fn the_page_is_chinese_scoped_and_refuses_bad_dates() {
    let app = app();
    let (status, _, html) = get(&app, "/report", WANG).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("考核报表"));
    assert!(html.contains("cell-07") && !html.contains("cell-08"));
    assert!(html.contains("50%（1/2）"), "false-alarm rate shown");
    let (status, _, html) = get(&app, "/report?from=2026-13-01", WANG).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("from") && html.contains("2026-13-01"),
        "{html}"
    );
    let (status, _, _) = get(&app, "/report?from=2026-12-31&to=2026-12-01", WANG).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
