//! The `application/dialog-info+xml` documents of RFC 4235 (reference 5.1), read with the
//! workspace's small XML reader.
//!
//! Only what the relay maps is kept: each dialog's ids, direction, state (with its `event`),
//! both identities, both targets' `+sip.rendering`, and whether it replaces another dialog or
//! was referred. A NOTIFY without a body (what Kamailio sends for a rep without calls,
//! reference 5.6), an empty `<dialog-info/>` and a document whose only dialogs are terminated
//! all mean the same: the rep is idle.

use crate::adapters::finesse::xml::{self, Element, XmlError};

/// `state="full"` or `state="partial"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    Full,
    Partial,
}

/// One dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    pub version: Option<u64>,
    pub state: Completeness,
    pub entity: String,
    pub dialogs: Vec<Dialog>,
}

/// A dialog's state value (RFC 4235 section 3.7.1); anything else is kept as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Trying,
    Proceeding,
    Early,
    Confirmed,
    Terminated,
    Unknown,
}

impl State {
    fn parse(text: &str) -> State {
        // Kamailio writes `Trying` with a capital T for the caller's side (reference 5.6).
        match text.trim().to_ascii_lowercase().as_str() {
            "trying" => State::Trying,
            "proceeding" => State::Proceeding,
            "early" => State::Early,
            "confirmed" => State::Confirmed,
            "terminated" => State::Terminated,
            _ => State::Unknown,
        }
    }
}

/// Who set up the dialog, seen from the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The entity called out.
    Initiator,
    /// The entity was called.
    Recipient,
    /// The notifier did not say.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub id: String,
    pub call_id: Option<String>,
    pub direction: Role,
    pub state: State,
    /// Why it terminated: `cancelled`, `rejected`, `replaced`, `local-bye`, `remote-bye`,
    /// `error`, `timeout`.
    pub event: Option<String>,
    pub code: Option<u16>,
    /// The other party's identity URI (the caller of an inbound call).
    pub remote: Option<String>,
    /// The other party's target URI (their user agent's Contact).
    pub remote_target: Option<String>,
    pub local: Option<String>,
    /// `+sip.rendering` of the entity's own target: `no` means the entity holds the call.
    pub local_rendering: Option<bool>,
    /// `+sip.rendering` of the remote target: `no` means the other party holds.
    pub remote_rendering: Option<bool>,
    /// The Call-ID of the dialog this one replaces (an attended transfer's new dialog).
    pub replaces: Option<String>,
    /// The transferor, on a dialog set up by a REFER.
    pub referred_by: Option<String>,
}

impl Dialog {
    /// The SIP call this dialog belongs to: its Call-ID, else its id.
    pub fn call(&self) -> &str {
        self.call_id.as_deref().unwrap_or(&self.id)
    }
}

impl DialogInfo {
    /// The document of a NOTIFY without a body: nothing going on.
    pub fn idle() -> DialogInfo {
        DialogInfo {
            version: None,
            state: Completeness::Full,
            entity: String::new(),
            dialogs: Vec::new(),
        }
    }
}

/// Reads a NOTIFY body; an empty body is [`DialogInfo::idle`].
pub fn parse(body: &str) -> Result<DialogInfo, XmlError> {
    if body.trim().is_empty() {
        return Ok(DialogInfo::idle());
    }
    let root = xml::parse(body)?;
    if root.name != "dialog-info" {
        return Err(XmlError(format!(
            "expected <dialog-info>, got <{}>",
            root.name
        )));
    }
    let version = match root.attr("version") {
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| XmlError(format!("version {v:?} is not a number")))?,
        ),
        None => None,
    };
    let state = match root.attr("state").map(str::trim) {
        Some("partial") => Completeness::Partial,
        _ => Completeness::Full,
    };
    let dialogs = root.children_named("dialog").filter_map(dialog).collect();
    Ok(DialogInfo {
        version,
        state,
        entity: root.attr("entity").unwrap_or("").trim().to_string(),
        dialogs,
    })
}

fn dialog(element: &Element) -> Option<Dialog> {
    let id = element
        .attr("id")
        .map(str::trim)
        .filter(|i| !i.is_empty())?;
    let state = element.child("state");
    let nonempty = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Some(Dialog {
        id: id.to_string(),
        call_id: nonempty(element.attr("call-id")),
        direction: match element.attr("direction").map(str::trim) {
            Some("initiator") => Role::Initiator,
            Some("recipient") => Role::Recipient,
            _ => Role::Unknown,
        },
        state: state.map_or(State::Unknown, |s| State::parse(&s.text)),
        event: nonempty(state.and_then(|s| s.attr("event"))).map(|e| e.to_ascii_lowercase()),
        code: state
            .and_then(|s| s.attr("code"))
            .and_then(|c| c.trim().parse().ok()),
        remote: element.child("remote").and_then(identity),
        remote_target: element
            .child("remote")
            .and_then(|r| r.child("target"))
            .and_then(|t| t.attr("uri"))
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty()),
        local: element.child("local").and_then(identity),
        local_rendering: element.child("local").and_then(rendering),
        remote_rendering: element.child("remote").and_then(rendering),
        replaces: nonempty(element.child("replaces").and_then(|r| r.attr("call-id"))),
        referred_by: element
            .child("referred-by")
            .map(|r| r.text.trim().to_string())
            .filter(|r| !r.is_empty()),
    })
}

/// A participant's identity URI, else its target's.
fn identity(participant: &Element) -> Option<String> {
    let identity = participant.text_of("identity");
    if !identity.is_empty() {
        return Some(identity);
    }
    participant
        .child("target")
        .and_then(|t| t.attr("uri"))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
}

/// `<target><param pname="+sip.rendering" pvalue="yes|no"/></target>`.
fn rendering(participant: &Element) -> Option<bool> {
    let target = participant.child("target")?;
    target
        .children_named("param")
        .find(|p| p.attr("pname").map(str::trim) == Some("+sip.rendering"))
        .and_then(|p| match p.attr("pvalue").map(str::trim) {
            Some("no") => Some(false),
            Some("yes") => Some(true),
            _ => None,
        })
}

/// The user part of a SIP or tel URI (`sip:+41441234567@pbx;user=phone` -> `+41441234567`),
/// the number as the PBX gave it; the relay normalizes it with the tenant's region.
pub fn user_of(uri: &str) -> String {
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    if let Ok(parsed) = rsip::Uri::try_from(uri) {
        if let Some(auth) = parsed.auth {
            return auth.user;
        }
        if parsed.scheme == Some(rsip::Scheme::Other("tel".into())) {
            return parsed.host_with_port.host.to_string();
        }
        return String::new();
    }
    // A `tel:` URI or something rsip does not read: what sits before `@` and after the scheme.
    let rest = uri.split_once(':').map_or(uri, |(_, rest)| rest);
    rest.split(['@', ';']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kamailios_dialogs_are_read() {
        let body = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:1001@127.0.0.1">
  <dialog id="padi-1" call-id="abc@127.0.0.1" local-tag="lt" remote-tag="rt" direction="recipient">
    <state event="cancelled" code="487">terminated</state>
    <remote><identity display="Caller">sip:+41441234567@127.0.0.1</identity><target uri="sip:+41441234567@127.0.0.1"><param pname="+sip.rendering" pvalue="yes"/></target></remote>
    <local><identity>sip:1001@127.0.0.1</identity><target uri="sip:1001@127.0.0.1:5070"><param pname="+sip.rendering" pvalue="no"/></target></local>
    <replaces call-id="old@127.0.0.1" local-tag="a" remote-tag="b"/>
    <referred-by>sip:1002@127.0.0.1</referred-by>
  </dialog>
  <dialog id="padi-2" direction="initiator"><state>Trying</state></dialog>
</dialog-info>"#;
        let info = parse(body).expect("parses");
        assert_eq!(info.version, Some(3));
        assert_eq!(info.state, Completeness::Full);
        assert_eq!(info.entity, "sip:1001@127.0.0.1");
        let d = &info.dialogs[0];
        assert_eq!(d.call(), "abc@127.0.0.1");
        assert_eq!(d.direction, Role::Recipient);
        assert_eq!(d.state, State::Terminated);
        assert_eq!(d.event.as_deref(), Some("cancelled"));
        assert_eq!(d.code, Some(487));
        assert_eq!(d.remote.as_deref(), Some("sip:+41441234567@127.0.0.1"));
        assert_eq!(d.local_rendering, Some(false));
        assert_eq!(d.remote_rendering, Some(true));
        assert_eq!(d.replaces.as_deref(), Some("old@127.0.0.1"));
        assert_eq!(d.referred_by.as_deref(), Some("sip:1002@127.0.0.1"));
        let d = &info.dialogs[1];
        assert_eq!(
            (d.call(), d.state, d.direction),
            ("padi-2", State::Trying, Role::Initiator)
        );
    }

    #[test]
    fn empty_documents_and_bodies_are_idle() {
        assert!(parse("").expect("empty").dialogs.is_empty());
        let info = parse(r#"<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="partial" entity="sip:9999@wdd.cc"/>"#).expect("parses");
        assert_eq!((info.version, info.state), (Some(0), Completeness::Partial));
        assert!(info.dialogs.is_empty());
        assert!(parse("<dialog-info version='x'/>").is_err());
        assert!(parse("<presence/>").is_err());
        assert!(parse("<dialog-info").is_err());
    }

    #[test]
    fn numbers_come_from_the_uris_user_part() {
        assert_eq!(user_of("sip:+41441234567@127.0.0.1"), "+41441234567");
        assert_eq!(
            user_of("<sip:0441234567@pbx.example.com;user=phone>"),
            "0441234567"
        );
        assert_eq!(user_of("tel:+41441234567"), "+41441234567");
        assert_eq!(user_of("sip:pbx.example.com"), "");
    }
}
