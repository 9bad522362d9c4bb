//! Posting the V2 CTI payloads to the window that hosts the widget.
//!
//! In Agent Desktop, V2 itself pops the customer record when the widget posts
//! `{"payload":{"Type":"CALL","Action":"NOTIFY",...}}` to `window.parent`. Because that payload
//! opens an interaction in the tenant, it is posted with the parent's exact origin as
//! `targetOrigin` (never `"*"`, so the browser drops it if the frame was navigated elsewhere) and
//! only when that origin is one the relay allows.
//!
//! The parent's origin comes from `location.ancestorOrigins` where the browser has it (Chromium,
//! WebKit), else from `document.referrer`, which the host page's navigation of the iframe sets.

use cti_protocol::host::HostMessage;
use wasm_bindgen::JsValue;

use crate::origin::{origin_allowed, origin_of_url};

/// Where the host payloads go, decided once per `welcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTarget {
    /// Post to the parent with this exact `targetOrigin`.
    Parent(String),
    /// The widget is the top window (opened directly): there is nobody to tell.
    NotFramed,
    /// Framed, but the browser does not tell by whom: posting blind is not an option.
    UnknownOrigin,
    /// Framed by a page the relay does not allow.
    NotAllowed(String),
}

impl HostTarget {
    /// The `data-reason` of the warning the rep sees, or `None` when nothing is wrong.
    pub fn warning(&self) -> Option<HostWarning> {
        match self {
            HostTarget::Parent(_) | HostTarget::NotFramed => None,
            HostTarget::UnknownOrigin => Some(HostWarning {
                reason: "unknown-origin",
                origin: None,
            }),
            HostTarget::NotAllowed(origin) => Some(HostWarning {
                reason: "origin-not-allowed",
                origin: Some(origin.clone()),
            }),
        }
    }
}

/// Why payloads are not reaching the host, for the small warning under the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostWarning {
    pub reason: &'static str,
    /// The parent's origin, when it is known but not allowed.
    pub origin: Option<String>,
}

impl HostWarning {
    /// The message id of the warning's words (`host-warning-<reason>`), with `$origin`.
    pub fn message_id(&self) -> String {
        format!("host-warning-{}", self.reason)
    }
}

/// Decides the target from what the browser tells about the parent. Pure, so the rules are
/// tested without building frames.
pub fn choose_target(
    framed: bool,
    ancestor_origin: Option<&str>,
    referrer: Option<&str>,
    allowed: &[String],
) -> HostTarget {
    if !framed {
        return HostTarget::NotFramed;
    }
    let from_ancestors = ancestor_origin.and_then(origin_of_url);
    let parent = from_ancestors.or_else(|| referrer.and_then(origin_of_url));
    match parent {
        None => HostTarget::UnknownOrigin,
        Some(origin) if origin_allowed(allowed, &origin) => HostTarget::Parent(origin),
        Some(origin) => HostTarget::NotAllowed(origin),
    }
}

/// What the browser tells about the window hosting this page. It cannot change while the page
/// lives, so it is read once and the target decided from it at each `welcome`, without the
/// browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub framed: bool,
    pub ancestor_origin: Option<String>,
    pub referrer: Option<String>,
}

impl Frame {
    /// This page's frame.
    pub fn read() -> Frame {
        let Some(window) = web_sys::window() else {
            return Frame::default();
        };
        let framed = match window.parent() {
            Ok(Some(parent)) => !js_sys::Object::is(&parent, &window),
            _ => false,
        };
        Frame {
            framed,
            ancestor_origin: first_ancestor_origin(&window),
            referrer: window.document().map(|document| document.referrer()),
        }
    }

    /// The target against the allowed patterns.
    pub fn target(&self, allowed: &[String]) -> HostTarget {
        choose_target(
            self.framed,
            self.ancestor_origin.as_deref(),
            self.referrer.as_deref(),
            allowed,
        )
    }
}

/// `location.ancestorOrigins[0]`, read reflectively because Firefox does not have it and the
/// typed binding would throw there.
fn first_ancestor_origin(window: &web_sys::Window) -> Option<String> {
    let location: JsValue = window.location().into();
    let list = js_sys::Reflect::get(&location, &JsValue::from_str("ancestorOrigins")).ok()?;
    if list.is_undefined() || list.is_null() {
        return None;
    }
    js_sys::Reflect::get(&list, &JsValue::from_f64(0.0))
        .ok()?
        .as_string()
}

/// Posts one payload to the parent window.
pub fn post(target_origin: &str, message: &HostMessage) -> Result<(), String> {
    let window = web_sys::window().ok_or("no window")?;
    let parent = window.parent().ok().flatten().ok_or("no parent window")?;
    let json = serde_json::to_string(message).map_err(|err| err.to_string())?;
    // A plain object, the shape V2's listener reads, rather than a JSON string.
    let payload = js_sys::JSON::parse(&json).map_err(|_| "payload is not JSON".to_owned())?;
    parent
        .post_message(&payload, target_origin)
        .map_err(|_| "the browser refused to post to the host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn allowed() -> Vec<String> {
        vec![
            "https://*.crm.cloud.sap".into(),
            "http://127.0.0.1:8090".into(),
        ]
    }

    #[wasm_bindgen_test]
    fn top_window_posts_nothing() {
        assert_eq!(
            choose_target(false, Some("https://t.crm.cloud.sap"), None, &allowed()),
            HostTarget::NotFramed
        );
    }

    #[wasm_bindgen_test]
    fn ancestor_origin_wins_over_the_referrer() {
        assert_eq!(
            choose_target(
                true,
                Some("https://t.crm.cloud.sap"),
                Some("https://evil.example/page"),
                &allowed()
            ),
            HostTarget::Parent("https://t.crm.cloud.sap".into())
        );
    }

    #[wasm_bindgen_test]
    fn referrer_origin_is_the_fallback() {
        assert_eq!(
            choose_target(
                true,
                None,
                Some("http://127.0.0.1:8090/sim/host?tab=1"),
                &allowed()
            ),
            HostTarget::Parent("http://127.0.0.1:8090".into())
        );
        assert_eq!(
            choose_target(
                true,
                Some("null"),
                Some("https://t.crm.cloud.sap/"),
                &allowed()
            ),
            HostTarget::Parent("https://t.crm.cloud.sap".into())
        );
    }

    #[wasm_bindgen_test]
    fn unknown_or_foreign_parents_are_refused() {
        assert_eq!(
            choose_target(true, None, Some(""), &allowed()),
            HostTarget::UnknownOrigin
        );
        assert_eq!(
            choose_target(true, Some("https://evil.example"), None, &allowed()),
            HostTarget::NotAllowed("https://evil.example".into())
        );
        assert_eq!(
            choose_target(true, Some("https://t.crm.cloud.sap"), None, &[]),
            HostTarget::NotAllowed("https://t.crm.cloud.sap".into())
        );
    }

    #[wasm_bindgen_test]
    fn warnings_only_when_something_is_wrong() {
        assert_eq!(HostTarget::NotFramed.warning(), None);
        assert_eq!(
            HostTarget::Parent("https://t.crm.cloud.sap".into()).warning(),
            None
        );
        let warning = HostTarget::NotAllowed("https://evil.example".into())
            .warning()
            .expect("warns");
        assert_eq!(warning.reason, "origin-not-allowed");
        assert_eq!(warning.origin.as_deref(), Some("https://evil.example"));
        let unknown = HostTarget::UnknownOrigin.warning().expect("warns");
        for lang in crate::i18n::Lang::ALL {
            let known = crate::i18n::message_ids(lang.resource()).expect("parses");
            for id in [warning.message_id(), unknown.message_id()] {
                assert!(known.contains(&id), "{}.ftl lacks {id}", lang.code());
            }
        }
    }

    #[wasm_bindgen_test]
    fn the_test_page_is_not_framed() {
        // The browser test runner loads the tests as a top-level page.
        assert_eq!(Frame::read().target(&allowed()), HostTarget::NotFramed);
    }
}
