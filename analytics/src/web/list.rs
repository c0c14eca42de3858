//! The alert list as cards that fit a phone: most urgent first (severity,
//! then the unacknowledged before the acknowledged, the oldest first), with
//! the count per severity and filters by building, rule and state.

use super::page::{escape, layout, rule_name, severity, severity_name, state, when};
use super::title::{building, place, title};
use crate::api::AppState;
use crate::i18n::zones::SiteZones;
use crate::i18n::Lang;
use crate::store::{AlertFilter, AlertSummary};
use gridwatch_telemetry::{AlertState, Evidence, Severity};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt::Write;

/// The list's query: `state` (`active`, `resolved`, `all`), and optionally
/// one `building` and one `rule`; an empty value means any.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    state: Option<String>,
    building: Option<String>,
    rule: Option<String>,
}

impl ListQuery {
    /// The state asked for, if any.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }
}

/// One card: the case and its evidence, for the title.
struct Card {
    case: AlertSummary,
    evidence: Option<Evidence>,
}

/// The order of the list: critical before major before minor; within a
/// severity, cases nobody has acknowledged yet, oldest first.
fn urgency(a: &AlertSummary) -> (std::cmp::Reverse<Severity>, bool, i64) {
    (
        std::cmp::Reverse(a.severity),
        a.state != AlertState::Open,
        a.first_seen.0,
    )
}

/// What a list shows: the cards and their counts, by the query's filters.
pub struct Listing {
    wanted: String,
    buildings: Vec<String>,
    rules: Vec<String>,
    want_b: Option<String>,
    want_r: Option<String>,
    cards: Vec<Card>,
}

/// The cases `q` selects in `scope`, most urgent first.
pub fn select(
    state: &AppState,
    scope: &crate::store::Scope,
    q: &ListQuery,
) -> Result<Listing, crate::store::StoreError> {
    let wanted = q.state.clone().unwrap_or_else(|| "active".into());
    let filter = AlertFilter {
        state: (wanted != "all").then(|| wanted.clone()),
        ..AlertFilter::default()
    };
    let all = state.store.list(scope, &filter)?;
    let buildings: BTreeSet<&str> = all.iter().filter_map(|a| building(&a.entity)).collect();
    let rules: BTreeSet<&str> = all.iter().map(|a| a.rule.as_str()).collect();
    let pick = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (want_b, want_r) = (pick(&q.building), pick(&q.rule));
    let mut cards: Vec<Card> = all
        .iter()
        .filter(|a| {
            want_b
                .as_deref()
                .is_none_or(|b| building(&a.entity) == Some(b))
        })
        .filter(|a| want_r.as_deref().is_none_or(|r| a.rule == r))
        .map(|a| Card {
            case: a.clone(),
            evidence: state.store.get(scope, a.id).ok().map(|c| c.evidence),
        })
        .collect();
    cards.sort_by_key(|c| urgency(&c.case));
    Ok(Listing {
        wanted,
        buildings: buildings.into_iter().map(str::to_owned).collect(),
        rules: rules.into_iter().map(str::to_owned).collect(),
        want_b,
        want_r,
        cards,
    })
}

impl Listing {
    /// What changes the cards: each case's id, state, count and last time.
    pub fn digest(&self) -> Vec<(i64, AlertState, i64, i64)> {
        self.cards
            .iter()
            .map(|c| (c.case.id, c.case.state, c.case.count, c.case.last_seen.0))
            .collect()
    }

    /// The counts and the cards, the part of the page the live list
    /// replaces.
    pub fn cards_html(&self, lang: Lang, zones: &SiteZones) -> String {
        let mut body = String::from("<div class=\"counts\">");
        for sev in [Severity::Critical, Severity::Major, Severity::Minor] {
            let n = self.cards.iter().filter(|c| c.case.severity == sev).count();
            let _ = write!(
                body,
                "<span class=\"sev {}\">{} {n}</span>",
                sev.as_str(),
                severity_name(lang, sev)
            );
        }
        let _ = write!(
            body,
            "<span>{}</span></div>",
            lang.fill("list.shown", &[("n", self.cards.len().to_string())])
        );
        if self.cards.is_empty() {
            let _ = write!(body, "<p>{}</p>", lang.t("list.empty"));
        }
        for c in &self.cards {
            card(&mut body, lang, zones.of(&c.case.site), c);
        }
        body
    }
}

/// Renders the list page for `user`; `Err` carries the store's error. The
/// cards follow `GET /alerts/events` (server-sent events) when the browser
/// runs script, and the page reloads itself every minute when it does not.
pub fn render(
    state: &AppState,
    lang: Lang,
    user: &str,
    scope: &crate::store::Scope,
    q: ListQuery,
    query_string: &str,
) -> Result<String, crate::store::StoreError> {
    let l = select(state, scope, &q)?;
    let mut body = format!("<h1>{}</h1>", lang.t("list.title"));
    fn set(v: &[String]) -> BTreeSet<&str> {
        v.iter().map(String::as_str).collect()
    }
    filters(
        &mut body,
        lang,
        &l.wanted,
        &set(&l.buildings),
        &set(&l.rules),
        &l.want_b,
        &l.want_r,
    );
    let _ = write!(
        body,
        "<p class=\"muted\">{}</p><div id=\"cards\">{}</div>",
        lang.t("list.live"),
        l.cards_html(lang, &state.zones)
    );
    body.push_str(&super::list_events::script(query_string));
    Ok(layout(lang, lang.t("list.title"), Some(user), &body))
}

fn filters(
    out: &mut String,
    lang: Lang,
    wanted: &str,
    buildings: &BTreeSet<&str>,
    rules: &BTreeSet<&str>,
    want_b: &Option<String>,
    want_r: &Option<String>,
) {
    let select = |name: &str, label: &str, options: Vec<(String, String)>, chosen: Option<&str>| {
        let opts: String = options
            .iter()
            .map(|(v, text)| {
                let sel = if Some(v.as_str()) == chosen {
                    " selected"
                } else {
                    ""
                };
                format!(
                    "<option value=\"{}\"{sel}>{}</option>",
                    escape(v),
                    escape(text)
                )
            })
            .collect();
        format!("<label>{label}<select name=\"{name}\">{opts}</select></label>")
    };
    let any = || (String::new(), lang.t("list.any").to_owned());
    let states = [
        ("active", lang.t("list.active")),
        ("resolved", lang.t("list.resolved")),
        ("all", lang.t("list.all")),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let b: Vec<(String, String)> = std::iter::once(any())
        .chain(buildings.iter().map(|b| ((*b).to_owned(), (*b).to_owned())))
        .collect();
    let r: Vec<(String, String)> = std::iter::once(any())
        .chain(rules.iter().map(|r| ((*r).to_owned(), rule_name(lang, r))))
        .collect();
    let _ = write!(
        out,
        "<form class=\"filters\" method=\"get\" action=\"/alerts\">{}{}{}<button>{}</button></form>",
        select("state", lang.t("list.state"), states, Some(wanted)),
        select("building", lang.t("list.building"), b, want_b.as_deref()),
        select("rule", lang.t("list.rule"), r, want_r.as_deref()),
        lang.t("list.filter"),
    );
}

fn card(out: &mut String, lang: Lang, offset_min: i32, c: &Card) {
    let a = &c.case;
    let heading = match &c.evidence {
        Some(ev) => title(lang, &a.rule, &a.entity, ev, offset_min),
        None => a.title.clone(),
    };
    let mut notes = vec![escape(&place(lang, &a.entity)), escape(&a.site)];
    if a.count > 1 {
        notes.push(lang.fill("list.seen_times", &[("n", a.count.to_string())]));
    }
    if let Some(id) = a.inhibited_by {
        notes.push(lang.fill("list.inhibited", &[("id", id.to_string())]));
    }
    let _ = write!(
        out,
        "<div class=\"card {sev}\"><div>{badge} {st}</div>\
         <a class=\"title\" href=\"/alerts/{id}\">{heading}</a>\
         <div class=\"muted\">{notes}</div><div class=\"muted\">{first} · {last}</div></div>",
        sev = a.severity.as_str(),
        badge = severity(lang, a.severity),
        st = state(lang, a.state),
        id = a.id,
        heading = escape(&heading),
        notes = notes.join(" · "),
        first = lang.fill("list.first", &[("time", when(a.first_seen, offset_min))]),
        last = lang.fill("list.last", &[("time", when(a.last_seen, offset_min))]),
    );
}
