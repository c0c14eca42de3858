//! What the demo prints for people: one line per alert and a short status
//! line, instead of every reading, sighting and log line of the components
//! (those come back with `--verbose` and `RUST_LOG`).

use gridwatch_analytics::i18n::{local_time, Lang};
use gridwatch_analytics::web::{page, title};
use gridwatch_telemetry::{Alert, Reading};
use std::collections::BTreeMap;

/// Offset of the demo's sites from UTC, minutes: analytics' default
/// (Asia/Shanghai), the one its detectors tell night from day by.
pub const SITE_UTC_OFFSET_MIN: i32 = 480;

/// One line for an alert: when (the site's local time with its zone), how
/// bad, the rule in Chinese with its id, where, and the plain title.
///
/// ```text
/// 告警 2026-12-06 11:27 (UTC+8) 紧急 插座过流 (socket_overcurrent) demo-yard: …
/// ```
pub fn alert_line(a: &Alert) -> String {
    let lang = Lang::ZhCn;
    format!(
        "告警 {} {} {} ({}) {}: {}",
        local_time::format(a.ts, SITE_UTC_OFFSET_MIN),
        page::severity_name(lang, a.severity),
        page::rule_name(lang, &a.rule),
        a.rule,
        a.entity,
        title::title(lang, &a.rule, &a.entity, &a.evidence, SITE_UTC_OFFSET_MIN)
    )
}

/// The short status line: counts so far and where to look.
pub fn status_line(readings: u64, alerts: usize, yard_alerts: usize, url: Option<&str>) -> String {
    let mut line = format!(
        "status: {readings} readings, {alerts} alerts so far ({yard_alerts} from the yard)"
    );
    if let Some(url) = url {
        line.push_str(&format!(", dashboard {url}"));
    }
    line
}

/// A socket's state code in words.
fn state_name(code: f64) -> &'static str {
    match code as i64 {
        0 => "idle",
        1 => "plugged",
        2 => "charging",
        3 => "full",
        4 => "finished",
        5 => "fault",
        _ => "?",
    }
}

/// One socket's last reading: `#2 charging 1612 W 7.01 A 25.3 °C`.
pub fn socket_text(socket: u16, r: &Reading) -> String {
    let state = state_name(r.value("state").unwrap_or(-1.0));
    if state == "idle" {
        return format!("#{socket} idle");
    }
    format!(
        "#{socket} {state} {:.0} W {:.2} A {:.1} °C",
        r.value("power_w").unwrap_or(0.0),
        r.value("current_a").unwrap_or(0.0),
        r.value("temperature_c").unwrap_or(0.0)
    )
}

/// Every socket of the pile on one line (the `--verbose` status).
pub fn pile_line(device: &str, latest: &BTreeMap<u16, Reading>) -> String {
    let parts: Vec<String> = latest.iter().map(|(s, r)| socket_text(*s, r)).collect();
    format!("{device}: {}", parts.join(" | "))
}
