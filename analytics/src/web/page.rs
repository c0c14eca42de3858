//! The page frame, the badge palette and HTML escaping shared by the
//! dashboard's pages.
//!
//! The frame is laid out for a phone first: nothing is wider than a 360 px
//! screen, every link, button and field in it is at least 44 px in both
//! directions (a thumb's width), and the badge colours keep a contrast of at
//! least 4.5:1 with their white text (a test computes it).

use crate::i18n::{local_time, Lang};
use crate::lifecycle::state_name;
use gridwatch_telemetry::{AlertState, Severity, Timestamp};

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

/// Badge background per severity, white text on each; see the contrast test.
pub const PALETTE: [(Severity, &str); 3] = [
    (Severity::Critical, "#b3001b"),
    (Severity::Major, "#9a4a00"),
    (Severity::Minor, "#4a5a68"),
];

const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif;font-size:16px;margin:0;color:#1a1a1a;line-height:1.5}\
header{background:#123;color:#fff;padding:0 .5em;display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center}\
header a,header button{color:#fff}header nav,header .who{display:flex;flex-wrap:wrap;align-items:center;gap:0 .2em}\
header button{background:transparent;border:1px solid #fff}\
main{padding:.6em;max-width:60em;margin:auto;overflow-wrap:anywhere}\
a,button,select,input,summary{min-height:44px;min-width:44px}\
a{display:inline-flex;align-items:center;padding:0 .3em;color:#0a4fa8}\
table{border-collapse:collapse;width:100%}td,th{padding:.4em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.sev{display:inline-block;font-weight:bold;padding:0 .4em;border-radius:3px;color:#fff;white-space:nowrap}\
.critical{background:#b3001b}.major{background:#9a4a00}.minor{background:#4a5a68}\
.card{border:1px solid #ccc;border-radius:6px;padding:.4em .6em;margin:.6em 0}\
.card.critical,.card.major,.card.minor{background:#fff}\
.card.critical{border-left:6px solid #b3001b}.card.major{border-left:6px solid #9a4a00}.card.minor{border-left:6px solid #4a5a68}\
.card a.title{display:flex;padding:0;font-weight:bold}\
.filters{display:flex;flex-wrap:wrap;gap:.4em;align-items:flex-end}.filters label{flex:1 1 8em}\
.counts{display:flex;flex-wrap:wrap;gap:.4em;margin:.4em 0}\
.chart{width:100%;height:auto;max-width:600px}form{margin:.6em 0}\
textarea,select,input{font-size:1em;width:100%;margin:.2em 0}\
button{font-size:1em;padding:.4em 1em}.muted{color:#555;font-size:.9em}.err{color:#b3001b}.ok{color:#1a6b2a}\
figure.chart-box{margin:.8em 0;max-width:100%}figure.chart-box figcaption{margin-bottom:.2em}\
summary{line-height:44px;cursor:pointer}ol.trail{padding-left:1.2em}ol.trail li{margin:.4em 0}\
.actions{display:flex;flex-wrap:wrap;gap:.4em;align-items:center}.actions form{margin:0}\
a.button{border:1px solid #0a4fa8;border-radius:3px;padding:0 1em;text-decoration:none}\
.danger{background:#b3001b;color:#fff;border:1px solid #b3001b}a.button.danger{color:#fff}\
.photos{display:flex;flex-wrap:wrap;gap:.6em}.photos figure{margin:0;max-width:100%}\
.photos img{display:block;width:280px;max-width:100%;height:auto}\
fieldset{border:1px solid #ccc;border-radius:6px;margin:.6em 0}label{display:block;margin:.4em 0}\
label.choice{display:flex;align-items:center;gap:.4em;margin:0}label.choice input{width:44px;flex:none;margin:0}\
.receipt{font-size:1.6em;letter-spacing:.1em}";

/// A whole page in `lang`: title, the user's name with a log-out button,
/// a link to the other language, and `body`.
pub fn layout(lang: Lang, title: &str, user: Option<&str>, body: &str) -> String {
    let who = match user {
        Some(u) => format!(
            "<span class=\"who\">{} <form method=\"post\" action=\"/logout\" style=\"display:inline;margin:0\"><button>{}</button></form></span>",
            escape(u),
            lang.t("nav.logout")
        ),
        None => String::new(),
    };
    let other = match lang {
        Lang::ZhCn => "en",
        Lang::En => "zh-CN",
    };
    format!(
        "<!doctype html><html lang=\"{tag}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · {app}</title><style>{STYLE}</style></head><body>\
         <header><nav><a href=\"/alerts\"><strong>{app}</strong></a><a href=\"/alerts\">{}</a><a href=\"/stations\">{}</a><a href=\"/report\">{}</a>\
         <a href=\"?lang={other}\" hreflang=\"{other}\">{}</a></nav>{who}</header><main>{body}</main></body></html>",
        escape(title),
        lang.t("nav.alerts"),
        lang.t("nav.stations"),
        lang.t("nav.report"),
        lang.t("nav.other_lang"),
        tag = lang.tag(),
        app = lang.t("app.name"),
    )
}

/// A number for people: at most two decimals, no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A number with one decimal at most (`7.1`, `5`), as a title shows it.
pub fn short(v: f64) -> String {
    let s = format!("{v:.1}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The name of a severity in `lang`.
pub fn severity_name(lang: Lang, s: Severity) -> &'static str {
    match s {
        Severity::Critical => lang.t("sev.critical"),
        Severity::Major => lang.t("sev.major"),
        Severity::Minor => lang.t("sev.minor"),
    }
}

/// A severity badge.
pub fn severity(lang: Lang, s: Severity) -> String {
    format!(
        "<span class=\"sev {}\">{}</span>",
        s.as_str(),
        severity_name(lang, s)
    )
}

/// A state for people, in `lang`.
pub fn state(lang: Lang, s: AlertState) -> String {
    lang.find(&format!("state.{}", state_name(s)))
        .map_or_else(|| state_name(s).replace('_', " "), str::to_owned)
}

/// A rule's name for people, or its id when the catalogue lacks it.
pub fn rule_name(lang: Lang, rule: &str) -> String {
    lang.find(&format!("rule.{rule}"))
        .map_or_else(|| rule.replace('_', " "), str::to_owned)
}

/// A time on a page: the site's local time with its zone.
pub fn when(ts: Timestamp, offset_min: i32) -> String {
    format!("<time>{}</time>", local_time::format(ts, offset_min))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2 relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn contrast_formula_matches_known_pairs() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        // The old yellow `major` badge, measured at 2.76:1 by a reviewer.
        assert!((contrast("#dd8800", "#ffffff") - 2.76).abs() < 0.01);
    }

    #[test]
    fn every_badge_has_white_text_at_4_5_to_1_or_better() {
        for (sev, bg) in PALETTE {
            let c = contrast(bg, "#ffffff");
            assert!(c >= 4.5, "{sev:?} badge {bg}: {c:.2}:1");
            assert!(
                STYLE.contains(&format!(".{}{{background:{bg}}}", sev.as_str())),
                "the stylesheet uses {bg} for {sev:?}"
            );
        }
    }

    #[test]
    fn text_colours_have_4_5_to_1_on_white() {
        for fg in ["#1a1a1a", "#555555", "#0a4fa8", "#b3001b", "#1a6b2a"] {
            assert!(contrast(fg, "#ffffff") >= 4.5, "{fg}");
        }
    }

    #[test]
    fn pages_say_which_language_they_are_in() {
        assert!(layout(Lang::ZhCn, "t", None, "").contains("<html lang=\"zh-CN\">"));
        assert!(layout(Lang::En, "t", None, "").contains("<html lang=\"en\">"));
    }
}
