//! `gridwatch-sim demo` as a visitor runs it: besides the pile fault, the
//! simulated district's alerts (group rental, indoor charging) reach the demo
//! grid staff member through the dashboard's API within a minute of start.

use gridwatch_simulators::demo::{self, DemoFault, DemoOptions};
use serde_json::Value;
use std::time::{Duration, Instant};

// The demo's console, readable while the demo writes to it.
use gridwatch_tests::SharedBuffer as Console;

/// The dashboard URL and the grid staff token the demo printed.
fn url_and_staff_token(text: &str) -> Option<(String, String)> {
    let url = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("dashboard"))?
        .split_whitespace()
        .next()?
        .trim_end_matches('/')
        .to_owned();
    let token = text
        .lines()
        .find(|l| l.contains("demo.staff") && l.contains("token"))?
        .split_whitespace()
        .last()?
        .to_owned();
    Some((url, token))
}

fn is_district(a: &Value) -> bool {
    let rule = a["rule"].as_str().unwrap_or("");
    a["site"] == "s01" && (rule.starts_with("group_rental") || rule.starts_with("indoor_"))
}

/// Polls (at most 60 s from `started`) until the staff member's alert list
/// holds a district alert; returns it.
async fn wait_for_district_alert(console: &Console, started: Instant) -> Value {
    let http = reqwest::Client::new();
    let until = started + Duration::from_secs(60);
    let mut last = Value::Null;
    loop {
        assert!(
            Instant::now() < until,
            "no district alert for demo.staff within 60 s; last list {last}\nconsole:\n{}",
            console.text()
        );
        if let Some((url, token)) = url_and_staff_token(&console.text()) {
            if let Ok(r) = http
                .get(format!("{url}/api/v1/alerts"))
                .bearer_auth(&token)
                .send()
                .await
            {
                assert_eq!(r.status().as_u16(), 200, "alert list for demo.staff");
                let body = r.bytes().await.expect("alert list body");
                last = serde_json::from_slice(&body).expect("alert list JSON");
                if let Some(a) = last
                    .as_array()
                    .and_then(|l| l.iter().find(|a| is_district(a)))
                {
                    return a.clone();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_district_raises_alerts_the_staff_member_sees_within_a_minute() {
    let opts = DemoOptions {
        fault: DemoFault::Overcurrent,
        socket: 2,
        fault_after_s: 2,
        speed: 30.0,
        timeout_s: 60,
        keep_running: false,
        exit_after_alert: true,
        dashboard_port: 0,
        no_dashboard: false,
        no_district: false,
        status_every_s: 5,
        verbose: false,
    };
    let console = Console::default();
    let started = Instant::now();
    let mut out = console.clone();
    let (outcome, alert) = tokio::join!(
        demo::run(&opts, &mut out),
        wait_for_district_alert(&console, started)
    );
    let outcome = outcome.unwrap_or_else(|e| panic!("demo failed: {e:#}\n{}", console.text()));
    assert_eq!(alert["cell"], "cell-demo", "{alert}");
    let first = outcome
        .time_to_district_alert
        .expect("the demo saw a district alert on the broker");
    assert!(first < Duration::from_secs(60), "{first:?}");
    // The console showed it too, and the pile fault still raised its own.
    assert!(outcome
        .alerts
        .iter()
        .any(|a| a.site == "s01" && a.rule == alert["rule"]));
    assert!(outcome
        .alerts
        .iter()
        .any(|a| a.site == "demo-yard" && a.rule == "socket_overcurrent"));
    let text = console.text();
    assert!(text.contains("simulated district"), "{text}");
    assert!(text.contains("district: "), "{text}");
    // The district's recording played beside the live yard raises no
    // no-data alert (its meters are not silent, only played fast).
    assert!(
        !outcome.alerts.iter().any(|a| a.rule.ends_with("no_data")),
        "{text}"
    );
    assert_console_is_for_people(&text, &outcome);
}

/// Most lines a console may have in a run of these tests: a header of about
/// 15, the alerts (about a dozen), a status line every 5 s and a few more.
/// The console that printed every tag sighting had over 350.
const MAX_CONSOLE_LINES: usize = 80;

/// The console shows the yard's alert as one line, the timing line names
/// the yard's rule (not a district alert's), and no debug output.
fn assert_console_is_for_people(text: &str, outcome: &demo::DemoOutcome) {
    let rule = outcome
        .first_yard_rule
        .as_deref()
        .expect("the yard's first alert");
    assert!(rule.starts_with("socket_"), "{rule}\n{text}");
    assert!(
        text.lines().any(|l| l.contains("告警")
            && l.contains("(socket_overcurrent)")
            && l.contains("demo-yard/")
            && l.contains("(UTC+8)")),
        "no line for the yard's overcurrent alert:\n{text}"
    );
    let timing = text
        .lines()
        .find(|l| l.starts_with("Demo finished:"))
        .unwrap_or_else(|| panic!("no timing line:\n{text}"));
    assert!(
        timing.contains(&format!("the yard's first ({rule}")),
        "{timing}"
    );
    // Debug output: Rust `{:?}` of events, multi-line alert renderings,
    // tracing lines. None of it belongs on the console by default.
    let debug: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains(" { ")
                || l.trim_start().starts_with("where:")
                || l.trim_start().starts_with("measured:")
                || [" DEBUG ", " INFO ", " TRACE "]
                    .iter()
                    .any(|m| l.contains(m))
        })
        .collect();
    assert!(debug.is_empty(), "debug lines on the console: {debug:?}");
    let lines = text.lines().count();
    assert!(
        lines < MAX_CONSOLE_LINES,
        "{lines} console lines, at most {MAX_CONSOLE_LINES} expected:\n{text}"
    );
    assert!(text.contains("status: "), "no status line:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_district_the_demo_raises_only_the_yards_alerts() {
    let opts = DemoOptions {
        fault: DemoFault::Overcurrent,
        socket: 2,
        fault_after_s: 1,
        speed: 30.0,
        timeout_s: 60,
        keep_running: false,
        exit_after_alert: true,
        dashboard_port: 0,
        no_dashboard: true,
        no_district: true,
        status_every_s: 5,
        verbose: false,
    };
    let mut out = Vec::new();
    let outcome = demo::run(&opts, &mut out).await.expect("demo runs");
    let text = String::from_utf8_lossy(&out);
    assert!(!outcome.alerts.is_empty(), "{text}");
    assert!(
        outcome.alerts.iter().all(|a| a.site == "demo-yard"),
        "{text}"
    );
    assert!(outcome.time_to_district_alert.is_none());
    assert!(!text.contains("simulated district"), "{text}");
    assert_console_is_for_people(&text, &outcome);
}
