//! The page frame and HTML escaping shared by the dashboard's pages.

use crate::alerts::lifecycle::state_name;
use gridwatch_telemetry::{AlertState, Severity};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222}\
header{background:#123;color:#fff;padding:.6em 1em;display:flex;justify-content:space-between;align-items:center}\
header a{color:#fff}main{padding:1em;max-width:60em;margin:auto}\
table{border-collapse:collapse;width:100%}td,th{padding:.4em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.sev{font-weight:bold;padding:0 .4em;border-radius:3px;color:#fff}.critical{background:#b00}.major{background:#d80}.minor{background:#678}\
.chart{width:100%;height:auto;max-width:600px}form{margin:.6em 0}textarea,select,input{font-size:1em;width:100%;box-sizing:border-box;margin:.2em 0}\
button{font-size:1em;padding:.5em 1em}.muted{color:#666;font-size:.9em}.err{color:#b00}\
@media (max-width:600px){td.wide,th.wide{display:none}}";

/// A whole page: title, the user's name with a log-out button, and `body`.
pub fn layout(title: &str, user: Option<&str>, body: &str) -> String {
    let who = match user {
        Some(u) => format!(
            "<span>{} <form method=\"post\" action=\"/logout\" style=\"display:inline\"><button>Log out</button></form></span>",
            escape(u)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Gridwatch</title><style>{STYLE}</style></head><body>\
         <header><nav><a href=\"/alerts\"><strong>Gridwatch</strong></a> · <a href=\"/stations\">Stations</a></nav>{who}</header><main>{body}</main></body></html>",
        escape(title)
    )
}

/// A number for people: at most two decimals, no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A severity badge.
pub fn severity(s: Severity) -> String {
    format!("<span class=\"sev {0}\">{0}</span>", s.as_str())
}

/// A state for people: `in progress` rather than `in_progress`.
pub fn state(s: AlertState) -> String {
    state_name(s).replace('_', " ")
}
