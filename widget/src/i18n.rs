//! The widget's languages: English, German and French.
//!
//! The words live in Fluent resources (`widget/locales/*.ftl`), compiled in so the widget needs no
//! second request before it can draw; a translator edits those files, never the code. Which
//! language a tab shows is decided once per page load by [`choose`]: the rep's own pick in the
//! panel (kept in `localStorage`, so every tab of the rep and the next page load follow it), then
//! the language the page hosting the panel asked for in the URL, then the browser's, then English.
//!
//! Dates and numbers go through the browser's `Intl` (no locale data in the wasm); durations read
//! `m:ss` in all three languages.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

use crate::storage;

/// Where the rep's pick is kept, shared by the rep's tabs.
pub const STORAGE_KEY: &str = "cti.lang";

/// URL parameters that may carry the host's language, strongest first. SAP's published V2 CTI
/// material (shared/reference/sap-v2.md) names no language parameter for the CTI URL: these are
/// inferred from SAP UI5's own (`sap-ui-language`, `sap-language`) and the common `lang` and
/// `locale`, so an administrator can add one to the widget URL configured in V2.
pub const URL_PARAMS: [&str; 4] = ["lang", "sap-language", "sap-ui-language", "locale"];

/// A language the widget speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Lang {
    #[default]
    En,
    De,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::De, Lang::Fr];

    /// The BCP 47 language subtag, as stored and as put on `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Fr => "fr",
        }
    }

    /// The language's name in itself, for the picker: a rep who cannot read the current
    /// language still finds their own.
    pub fn endonym(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
            Lang::Fr => "Français",
        }
    }

    /// The locale dates and numbers are formatted for. English uses British conventions (day
    /// before month, as the panel always showed dates): a choice, not something V2 tells us.
    pub fn formatting_locale(self) -> &'static str {
        match self {
            Lang::En => "en-GB",
            Lang::De => "de-DE",
            Lang::Fr => "fr-FR",
        }
    }

    /// The Fluent resource of the language.
    pub fn resource(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en.ftl"),
            Lang::De => include_str!("../locales/de.ftl"),
            Lang::Fr => include_str!("../locales/fr.ftl"),
        }
    }

    /// The language of a tag such as `de`, `de-CH`, `fr_FR` or `EN`, or of SAP's one-letter
    /// logon language codes (`D`, `E`, `F`), which `sap-language` may carry; `None` for a
    /// language the widget does not speak or a tag that is not one.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim();
        match tag {
            "E" | "e" => return Some(Lang::En),
            "D" | "d" => return Some(Lang::De),
            "F" | "f" => return Some(Lang::Fr),
            _ => {}
        }
        let id: LanguageIdentifier = tag.replace('_', "-").parse().ok()?;
        match id.language.as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }
}

/// The language to show: the rep's stored pick, else the first URL parameter of
/// [`URL_PARAMS`] naming a language the widget speaks, else the first such browser language,
/// else English. Pure, so the order is tested without a page.
pub fn choose(stored: Option<&str>, url_params: &[(String, String)], browser: &[String]) -> Lang {
    if let Some(lang) = stored.and_then(Lang::from_tag) {
        return lang;
    }
    for name in URL_PARAMS {
        let found = url_params
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .find_map(|(_, value)| Lang::from_tag(value));
        if let Some(lang) = found {
            return lang;
        }
    }
    browser
        .iter()
        .find_map(|tag| Lang::from_tag(tag))
        .unwrap_or_default()
}

/// The `name=value` pairs of a query string or fragment (`?a=1&b=2`, `#token=x&lang=de`).
pub fn url_params(part: &str) -> Vec<(String, String)> {
    let part = part.trim_start_matches(['?', '#']);
    part.split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(name, value)| {
            let value = cti_protocol::sign_in::percent_decode(&value.replace('+', " "))?;
            Some((name.to_owned(), value))
        })
        .collect()
}

/// The language for this page load, read from storage, the page's URL and the browser.
pub fn from_page() -> Lang {
    let Some(window) = web_sys::window() else {
        return Lang::default();
    };
    let location = window.location();
    let mut params = url_params(&location.search().unwrap_or_default());
    // The host may also put them next to the token in the fragment.
    params.extend(url_params(&location.hash().unwrap_or_default()));
    let browser: Vec<String> = window
        .navigator()
        .languages()
        .iter()
        .filter_map(|tag| tag.as_string())
        .collect();
    let stored = storage::shared_get(STORAGE_KEY);
    choose(stored.as_deref(), &params, &browser)
}

/// Remembers the rep's pick for their other tabs and the next page load. False when the
/// browser refused storage: the pick then holds for this page only.
pub fn remember(lang: Lang) -> bool {
    storage::shared_set(STORAGE_KEY, lang.code())
}

/// The words of one language, with English behind it for any message it lacks.
pub struct I18n {
    lang: Lang,
    bundle: FluentBundle<FluentResource>,
    /// Message ids asked for and not found in this language; tests read them.
    missing: RefCell<BTreeSet<String>>,
}

impl std::fmt::Debug for I18n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I18n").field("lang", &self.lang).finish()
    }
}

/// Yew compares contexts to decide what to redraw: two translators are the same when they
/// speak the same language.
impl PartialEq for I18n {
    fn eq(&self, other: &Self) -> bool {
        self.lang == other.lang
    }
}

thread_local! {
    static BUNDLES: RefCell<HashMap<Lang, Rc<I18n>>> = RefCell::new(HashMap::new());
}

/// A value for a placeable: text or a number (numbers choose plural forms).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Number(i64),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Arg::Text(text.to_owned())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Arg::Text(text)
    }
}

impl From<i64> for Arg {
    fn from(number: i64) -> Self {
        Arg::Number(number)
    }
}

impl I18n {
    /// The translator for `lang`, built once per page.
    pub fn get(lang: Lang) -> Rc<I18n> {
        BUNDLES.with(|bundles| {
            bundles
                .borrow_mut()
                .entry(lang)
                .or_insert_with(|| Rc::new(I18n::build(lang)))
                .clone()
        })
    }

    fn build(lang: Lang) -> I18n {
        let id: LanguageIdentifier = lang.code().parse().unwrap_or_default();
        let mut bundle = FluentBundle::new(vec![id]);
        // No Unicode isolation marks around placeables: all three languages run left to right,
        // and the marks would end up in copied text and in what tests and screen readers read.
        bundle.set_use_isolating(false);
        match parse(lang) {
            Ok(resource) => add(&mut bundle, resource, lang),
            Err(problems) => {
                gloo::console::error!(format!("{}.ftl: {problems}", lang.code()));
            }
        }
        I18n {
            lang,
            bundle,
            missing: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The message `id`, without placeables.
    pub fn t(&self, id: &str) -> String {
        self.t_args(id, &[])
    }

    /// The message `id` with its placeables filled. A message this language lacks comes from
    /// English (and is noted in [`I18n::missing`]); one that English lacks too shows its id, so
    /// a gap is visible instead of blank.
    pub fn t_args(&self, id: &str, args: &[(&str, Arg)]) -> String {
        if let Some(text) = format(&self.bundle, id, args) {
            return text;
        }
        self.missing.borrow_mut().insert(id.to_owned());
        if self.lang != Lang::En
            && let Some(text) = format(&I18n::get(Lang::En).bundle, id, args)
        {
            return text;
        }
        id.to_owned()
    }

    /// Whether the language has message `id` (for messages chosen by a code from elsewhere, such
    /// as the relay's error codes, where a code this build does not know gets other words).
    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id)
    }

    /// The message ids asked for that this language lacks, since the page loaded.
    pub fn missing(&self) -> Vec<String> {
        self.missing.borrow().iter().cloned().collect()
    }

    /// A date (`YYYY-MM-DD…`) the way the language writes it, e.g. `24 Nov 2026`,
    /// `24. Nov. 2026`, `24 nov. 2026`; the text itself if it does not start with a date.
    pub fn date(&self, text: &str) -> String {
        crate::intl::date(text, self.lang.formatting_locale())
    }

    /// An amount with grouped thousands and cents only when there are any, then the currency
    /// code: `12,500 EUR`, `12.500 EUR`, `12 500 EUR`.
    pub fn amount(&self, value: f64, currency: Option<&str>) -> String {
        crate::intl::amount(value, currency, self.lang.formatting_locale())
    }
}

/// The resource of `lang`, or what is wrong with it.
fn parse(lang: Lang) -> Result<FluentResource, String> {
    FluentResource::try_new(lang.resource().to_owned())
        .map_err(|(_, errors)| format!("{} syntax error(s): {errors:?}", errors.len()))
}

fn add(bundle: &mut FluentBundle<FluentResource>, resource: FluentResource, lang: Lang) {
    if let Err(errors) = bundle.add_resource(resource) {
        gloo::console::error!(format!("{}.ftl: {errors:?}", lang.code()));
    }
}

fn format(bundle: &FluentBundle<FluentResource>, id: &str, args: &[(&str, Arg)]) -> Option<String> {
    let pattern = bundle.get_message(id)?.value()?;
    let fluent_args = (!args.is_empty()).then(|| {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            let value = match value {
                Arg::Text(text) => FluentValue::from(text.clone()),
                Arg::Number(number) => FluentValue::from(*number),
            };
            fluent_args.set(name.to_string(), value);
        }
        fluent_args
    });
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, fluent_args.as_ref(), &mut errors);
    if !errors.is_empty() {
        gloo::console::warn!(format!("message {id}: {errors:?}"));
    }
    Some(text.into_owned())
}

/// The message ids a resource defines, in file order (for the tests that compare languages).
pub fn message_ids(source: &str) -> Result<Vec<String>, String> {
    let resource = fluent_syntax::parser::parse(source)
        .map_err(|(_, errors)| format!("{} syntax error(s): {errors:?}", errors.len()))?;
    Ok(resource
        .body
        .iter()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(message) => Some(message.id.name.to_owned()),
            _ => None,
        })
        .collect())
}

/// The translator of the nearest [`yew::ContextProvider`], English without one.
#[yew::hook]
pub fn use_i18n() -> Rc<I18n> {
    yew::use_context::<Rc<I18n>>().unwrap_or_else(|| I18n::get(Lang::En))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[wasm_bindgen_test]
    fn tags_name_languages() {
        assert_eq!(Lang::from_tag("de"), Some(Lang::De));
        assert_eq!(Lang::from_tag("de-CH"), Some(Lang::De));
        assert_eq!(Lang::from_tag("fr_FR"), Some(Lang::Fr));
        assert_eq!(Lang::from_tag("EN"), Some(Lang::En));
        assert_eq!(Lang::from_tag("D"), Some(Lang::De));
        assert_eq!(Lang::from_tag("F"), Some(Lang::Fr));
        assert_eq!(Lang::from_tag("it"), None);
        assert_eq!(Lang::from_tag(""), None);
        assert_eq!(Lang::from_tag("not a tag!"), None);
    }

    #[wasm_bindgen_test]
    fn the_reps_pick_beats_the_host_which_beats_the_browser() {
        let browser = vec!["fr-CH".to_owned(), "en".to_owned()];
        let host = params(&[("token", "x"), ("sap-language", "DE")]);
        assert_eq!(choose(Some("en"), &host, &browser), Lang::En);
        assert_eq!(choose(None, &host, &browser), Lang::De);
        assert_eq!(choose(Some("garbage"), &host, &browser), Lang::De);
        assert_eq!(choose(None, &[], &browser), Lang::Fr);
        assert_eq!(
            choose(None, &params(&[("lang", "it")]), &browser),
            Lang::Fr,
            "a language the widget does not speak is passed over"
        );
        assert_eq!(
            choose(None, &[], &["it".to_owned(), "de-AT".to_owned()]),
            Lang::De
        );
        assert_eq!(choose(None, &[], &["it".to_owned()]), Lang::En);
        // `lang` is the strongest of the URL's parameters, whatever their order.
        let both = params(&[("sap-ui-language", "fr"), ("lang", "de")]);
        assert_eq!(choose(None, &both, &[]), Lang::De);
    }

    #[wasm_bindgen_test]
    fn url_params_are_read_from_query_and_fragment() {
        assert_eq!(
            url_params("?sap-ui-language=de&x"),
            params(&[("sap-ui-language", "de")])
        );
        assert_eq!(
            url_params("#token=a%2Eb&locale=fr%2DFR"),
            params(&[("token", "a.b"), ("locale", "fr-FR")])
        );
        assert!(url_params("").is_empty());
    }

    #[wasm_bindgen_test]
    fn every_language_has_the_same_messages_and_parses_cleanly() {
        let english = message_ids(Lang::En.resource()).expect("en.ftl parses");
        assert!(!english.is_empty());
        let unique: BTreeSet<_> = english.iter().collect();
        assert_eq!(unique.len(), english.len(), "en.ftl repeats an id");
        for lang in Lang::ALL {
            let ids =
                message_ids(lang.resource()).unwrap_or_else(|e| panic!("{}.ftl: {e}", lang.code()));
            let ids: BTreeSet<_> = ids.iter().collect();
            let lacking: Vec<_> = unique.difference(&ids).collect();
            let extra: Vec<_> = ids.difference(&unique).collect();
            assert!(lacking.is_empty(), "{}.ftl lacks {lacking:?}", lang.code());
            assert!(extra.is_empty(), "{}.ftl has extra {extra:?}", lang.code());
        }
    }

    /// Every `t("…")` and `t_args("…", …)` in the widget's source names a message that each
    /// language has. Ids chosen from a code (states, error codes, close codes) are covered by
    /// the tests of the functions that choose them.
    #[wasm_bindgen_test]
    fn every_message_the_code_asks_for_exists_in_every_language() {
        let sources = [
            include_str!("ui/mod.rs"),
            include_str!("ui/status.rs"),
            include_str!("ui/call_card.rs"),
            include_str!("ui/caller.rs"),
            include_str!("ui/controls.rs"),
            include_str!("ui/wrap_up.rs"),
            include_str!("ui/format.rs"),
            include_str!("ui/history.rs"),
            include_str!("app.rs"),
        ];
        let mut used = BTreeSet::new();
        for source in sources {
            for marker in [".t(\"", ".t_args(\""] {
                for (at, _) in source.match_indices(marker) {
                    let rest = &source[at + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        used.insert(rest[..end].to_owned());
                    }
                }
            }
        }
        assert!(used.len() > 40, "found only {used:?}");
        for lang in Lang::ALL {
            let ids: BTreeSet<String> = message_ids(lang.resource())
                .expect("parses")
                .into_iter()
                .collect();
            let lacking: Vec<_> = used.difference(&ids).collect();
            assert!(lacking.is_empty(), "{}.ftl lacks {lacking:?}", lang.code());
        }
    }

    #[wasm_bindgen_test]
    fn placeables_and_plurals_are_filled_in() {
        let en = I18n::get(Lang::En);
        assert_eq!(
            en.t_args("other-matches", &[("count", Arg::Number(1))]),
            "1 other match"
        );
        assert_eq!(
            en.t_args("other-matches", &[("count", Arg::Number(3))]),
            "3 other matches"
        );
        // A translator of its own: the shared one's list of missing ids must stay clean.
        let de = I18n::build(Lang::De);
        assert_eq!(
            de.t_args("other-matches", &[("count", Arg::Number(2))]),
            "2 weitere Treffer"
        );
        assert_eq!(
            de.t_args("status-disconnected", &[("reason", "x".into())]),
            "Getrennt (x)"
        );
        assert_eq!(de.t("no-such-message-anywhere"), "no-such-message-anywhere");
        assert!(
            de.missing()
                .contains(&"no-such-message-anywhere".to_owned())
        );
    }
}
