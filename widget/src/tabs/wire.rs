//! What the rep's tabs say to each other over the channel `cti-tabs:<rep>`.
//!
//! During a deploy an old tab and a new one can share the channel, and the two may not read each
//! other's messages the same way. So every message carries [`VERSION`], and a tab ignores the
//! messages of another version rather than misreading them: until the other tab goes away it
//! keeps waiting for a leader's view it can read, which is better than showing a wrong one.

use serde::{Deserialize, Serialize};

use super::election::Signal;
use crate::ui::{UiAction, ViewModel};

/// The version of these messages. Raise it with any change a tab of the previous version would
/// misread. Messages without a version are from before it existed (version 1). Version 3: the
/// status line's reasons travel as reasons, not English words, and a problem may carry the
/// message id of its words, so that each tab says them in its rep's language. Version 4: the
/// message travels under `message` and enums are tagged by their variant's name as the key
/// (serde's default), so a message is read in one pass without being buffered first: that
/// took about a tenth off the widget's code.
pub const VERSION: u32 = 4;

/// What a leader shows, as followers mirror it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Mirror {
    pub view: ViewModel,
    /// Where click-to-dial requests may come from (the leader learnt it at `welcome`): a
    /// follower judges the requests posted into its own frame.
    pub host_origins: Vec<String>,
}

/// Everything the rep's tabs say to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TabMessage {
    /// The fallback election (browsers without Web Locks).
    Election { signal: Signal },
    /// A follower asks the leader for its view.
    Hello,
    /// The leader's view.
    Mirror { mirror: Box<Mirror> },
    /// A follower's click, for the leader to carry out.
    Action { action: UiAction },
}

#[derive(Serialize)]
struct Outgoing<'a> {
    version: u32,
    message: &'a TabMessage,
}

/// A message of another version fails to read or is refused for its version: ignored alike.
#[derive(Deserialize)]
struct Incoming {
    version: u32,
    message: TabMessage,
}

/// The message as it travels.
pub fn encode(message: &TabMessage) -> Option<String> {
    serde_json::to_string(&Outgoing {
        version: VERSION,
        message,
    })
    .ok()
}

/// The message in `text`, when it is one of this version.
pub fn decode(text: &str) -> Option<TabMessage> {
    let incoming: Incoming = serde_json::from_str(text).ok()?;
    (incoming.version == VERSION).then_some(incoming.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ConnectionStatus;
    use crate::state::Problem;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn messages_read_back_as_sent() {
        let mirror = Mirror {
            view: ViewModel {
                status: ConnectionStatus::Connected,
                agent: Some("alice@example.com".into()),
                problem: Some(Problem {
                    code: "unknown_call".into(),
                    message: "No such call".into(),
                    key: None,
                }),
                dispositions: vec!["Interested".into()],
                v2_connected: Some(false),
                ..ViewModel::default()
            },
            host_origins: vec!["https://*.crm.cloud.sap".into()],
        };
        for message in [
            TabMessage::Hello,
            TabMessage::Mirror {
                mirror: Box::new(mirror),
            },
            TabMessage::Action {
                action: UiAction::Dismiss("c1".into()),
            },
        ] {
            let text = encode(&message).expect("encodes");
            assert!(text.contains(&format!("\"version\":{VERSION}")), "{text}");
            assert_eq!(decode(&text), Some(message));
        }
    }

    #[wasm_bindgen_test]
    fn another_version_is_ignored() {
        assert_eq!(
            decode(r#"{"type":"hello"}"#),
            None,
            "unversioned: version 1"
        );
        assert_eq!(
            decode(r#"{"version":3,"type":"hello"}"#),
            None,
            "the previous version"
        );
        assert_eq!(
            decode(r#"{"version":3,"message":"hello"}"#),
            None,
            "the previous version's number"
        );
        assert_eq!(decode(r#"{"version":5,"message":"hello"}"#), None);
        assert_eq!(
            decode(&format!(r#"{{"version":{VERSION},"message":"hello"}}"#)),
            Some(TabMessage::Hello)
        );
        assert_eq!(decode("not json"), None);
    }

    #[wasm_bindgen_test]
    fn a_mirror_carries_no_tab_own_parts() {
        let view = ViewModel {
            host_warning: crate::host::HostTarget::UnknownOrigin.warning(),
            ignored_host_requests: 3,
            ..ViewModel::default()
        };
        let message = TabMessage::Mirror {
            mirror: Box::new(Mirror {
                view,
                host_origins: Vec::new(),
            }),
        };
        let Some(TabMessage::Mirror { mirror }) = decode(&encode(&message).expect("encodes"))
        else {
            panic!("a mirror reads back as one");
        };
        assert_eq!(mirror.view, ViewModel::default());
    }
}
