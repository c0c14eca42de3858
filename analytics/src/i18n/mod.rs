//! The dashboard's words in Chinese and English: one static catalogue per
//! language keyed by message id, so that no page carries a sentence of its
//! own and a missing translation is a failing test, not an English word on a
//! Chinese page.
//!
//! Chinese (zh-CN) is the default: the people who use the dashboard are grid
//! staff and property managers in China. A visitor picks a language with
//! `?lang=en` or `?lang=zh-CN` (remembered in the `gw_lang` cookie); without
//! one, the browser's `Accept-Language` decides.
//!
//! ```
//! use gridwatch_analytics::i18n::Lang;
//! assert_eq!(Lang::ZhCn.t("nav.stations"), "充电站");
//! assert_eq!(Lang::En.fill("list.shown", &[("n", "3".into())]), "3 shown");
//! ```

mod en;
pub mod local_time;
mod zh_cn;
pub mod zones;

/// The cookie that remembers a visitor's language.
pub const COOKIE: &str = "gw_lang";

/// A language the dashboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese, the default.
    #[default]
    ZhCn,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag, as written in `<html lang>` and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language a tag names (`zh`, `zh-CN`, `zh-Hans`, `en`, `en-GB`, …).
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The first language of an `Accept-Language` header the dashboard
    /// speaks, by quality; `None` when it names none of them.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut bits = part.split(';');
            let Some(lang) = bits.next().and_then(Lang::parse) else {
                continue;
            };
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l)
    }

    /// The language of a request: the `lang` query parameter, else the
    /// cookie, else `Accept-Language`, else Chinese.
    pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
        query
            .and_then(Lang::parse)
            .or_else(|| cookie.and_then(Lang::parse))
            .or_else(|| accept.and_then(Lang::from_accept_language))
            .unwrap_or_default()
    }

    fn catalogue(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::ZhCn => zh_cn::MESSAGES,
            Lang::En => en::MESSAGES,
        }
    }

    /// The message `id`; the id itself when the catalogue lacks it (a test
    /// keeps both catalogues complete, so this shows up at once).
    pub fn t(self, id: &'static str) -> &'static str {
        self.find(id).unwrap_or(id)
    }

    /// The message `id` when the catalogue has it: for ids made at run time
    /// (`rule.` + a rule name), where a missing one means "say it as is".
    pub fn find(self, id: &str) -> Option<&'static str> {
        self.catalogue()
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| *v)
    }

    /// The message `id` with each `{name}` replaced by its value.
    pub fn fill(self, id: &'static str, args: &[(&str, String)]) -> String {
        let mut out = self.t(id).to_owned();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(l: Lang) -> BTreeSet<&'static str> {
        l.catalogue().iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let (zh, en) = (keys(Lang::ZhCn), keys(Lang::En));
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh-CN: {only_zh:?}; only in en: {only_en:?}"
        );
        assert_eq!(
            zh.len(),
            Lang::ZhCn.catalogue().len(),
            "a key twice in zh-CN"
        );
        assert_eq!(en.len(), Lang::En.catalogue().len(), "a key twice in en");
    }

    #[test]
    fn placeholders_match_between_languages() {
        let names = |s: &str| -> BTreeSet<String> {
            s.split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
                .collect()
        };
        for (k, zh) in Lang::ZhCn.catalogue() {
            assert_eq!(names(zh), names(Lang::En.t(k)), "placeholders of {k}");
        }
    }

    #[test]
    fn chinese_unless_asked_otherwise() {
        assert_eq!(Lang::negotiate(None, None, None), Lang::ZhCn);
        assert_eq!(Lang::negotiate(None, None, Some("fr-FR,fr")), Lang::ZhCn);
        assert_eq!(
            Lang::negotiate(None, None, Some("fr;q=1, en-GB;q=0.8, zh;q=0.5")),
            Lang::En
        );
        assert_eq!(Lang::negotiate(None, Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN"), Some("en"), None), Lang::ZhCn);
    }
}
