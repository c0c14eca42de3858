//! What the browser test checks on every page, measured in the browser as a
//! person would meet the page: its language, sideways scroll, tap target
//! sizes, times in the site's zone, the contrast of severity badges (4.5:1 or
//! better) and the charts.

use gridwatch_tests::webdriver::Session;

/// What a page shows a person, measured in the browser.
pub const AUDIT: &str = r#"
const small = [];
for (const e of document.querySelectorAll('a,button,select,input,textarea,summary')) {
  const r = e.getBoundingClientRect();
  if (e.type === 'hidden' || (r.width === 0 && r.height === 0)) continue;
  if (r.width < 44 || r.height < 44) {
    const label = (e.textContent || e.name || '').trim().slice(0, 30);
    small.push(`${e.tagName} "${label}" ${Math.round(r.width)}x${Math.round(r.height)}`);
  }
}
// Severity badges: contrast of their text on their background (WCAG 2).
const lum = c => {
  const v = (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number).map(x => {
    x /= 255;
    return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
};
const badges = [];
for (const e of document.querySelectorAll('.sev')) {
  const st = getComputedStyle(e);
  const fg = lum(st.color), bg = lum(st.backgroundColor);
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  badges.push(`${e.textContent.trim()} ${ratio.toFixed(2)}`);
}
const text = document.body.innerText;
return {
  badges,
  lang: document.documentElement.lang,
  scroll: document.documentElement.scrollWidth,
  inner: window.innerWidth,
  small,
  utc: text.match(/\d\d:\d\d(:\d\d(\.\d+)?)?Z/g) || [],
  times: [...document.querySelectorAll('time')].map(t => t.textContent),
  text,
};
"#;

/// Checks the page on screen: Chinese, no sideways scroll, nothing tappable
/// under 44 px, times local with their zone.
pub async fn check_page(s: &Session<'_>, what: &str, width: u32) {
    let v = s.execute(AUDIT).await.expect("audit script");
    let at = format!("{what} at {width} px");
    assert_eq!(v["lang"], "zh-CN", "{at}: <html lang>");
    assert_eq!(
        v["inner"].as_i64(),
        Some(i64::from(width)),
        "{at}: viewport"
    );
    let (scroll, inner) = (v["scroll"].as_i64().unwrap(), v["inner"].as_i64().unwrap());
    assert!(
        scroll <= inner,
        "{at}: the page scrolls sideways ({scroll} > {inner} px)"
    );
    assert_eq!(
        v["small"],
        serde_json::json!([]),
        "{at}: tap targets under 44 px"
    );
    assert_eq!(
        v["utc"],
        serde_json::json!([]),
        "{at}: times in UTC with a Z"
    );
    for t in v["times"].as_array().expect("times") {
        let t = t.as_str().unwrap_or_default();
        assert!(
            t.ends_with("(UTC+8)") && !t.contains('Z'),
            "{at}: a time not in the site's zone: {t:?}"
        );
    }
    for b in v["badges"].as_array().expect("badges") {
        let b = b.as_str().unwrap_or_default();
        let ratio: f64 = b
            .rsplit(' ')
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0.0);
        assert!(
            ratio >= 4.5,
            "{at}: a severity badge under 4.5:1 contrast: {b}"
        );
    }
    let text = v["text"].as_str().unwrap_or_default();
    assert!(
        !text.contains("at ms"),
        "{at}: a time in milliseconds: {text}"
    );
}

/// The charts on a page, measured in the browser.
pub const CHARTS: &str = r#"
const svgs = [...document.querySelectorAll('svg.chart')];
return {
  count: svgs.length,
  series: document.querySelectorAll('svg.chart .series').length,
  limits: document.querySelectorAll('svg.chart line.limit').length,
  right: Math.max(0, ...svgs.map(e => e.getBoundingClientRect().right)),
  inner: window.innerWidth,
  font: Math.min(99, ...svgs.flatMap(e => [...e.querySelectorAll('text')].map(t => t.getBoundingClientRect().height))),
  labels: svgs.flatMap(e => [...e.querySelectorAll('text')].map(t => t.textContent)),
};
"#;

/// Checks that a page has at least `min` charts, each with a drawn series,
/// inside the screen, with labels a person can read (at least 9 px tall)
/// and times in the site's zone, never UTC with a `Z`; returns how many
/// limit lines they draw.
pub async fn check_charts(s: &Session<'_>, what: &str, width: u32, min: u64) -> u64 {
    let v = s.execute(CHARTS).await.expect("chart script");
    let at = format!("{what} at {width} px");
    let count = v["count"].as_u64().unwrap_or(0);
    assert!(count >= min, "{at}: {count} charts, wanted {min}: {v}");
    assert!(
        v["series"].as_u64().unwrap_or(0) >= count,
        "{at}: a chart without its series: {v}"
    );
    assert!(
        v["right"].as_f64().unwrap_or(f64::MAX) <= v["inner"].as_f64().unwrap_or(0.0),
        "{at}: a chart wider than the screen: {v}"
    );
    if count > 0 {
        assert!(
            v["font"].as_f64().unwrap_or(0.0) >= 9.0,
            "{at}: chart labels too small to read: {v}"
        );
    }
    for label in v["labels"].as_array().expect("labels") {
        let l = label.as_str().unwrap_or_default();
        let utc = l.contains(':') && l.trim_end().ends_with('Z');
        assert!(!utc, "{at}: a chart label in UTC: {l:?}");
    }
    let times: Vec<&str> = v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .filter(|l| l.contains(':') && l.len() >= 16)
        .collect();
    for t in &times {
        assert!(
            t.ends_with("(UTC+8)"),
            "{at}: a chart time without the site's zone: {t:?}"
        );
    }
    v["limits"].as_u64().unwrap_or(0)
}

pub async fn page_text(s: &Session<'_>) -> String {
    let body = s.find("body").await.unwrap();
    s.text(&body).await.unwrap()
}
