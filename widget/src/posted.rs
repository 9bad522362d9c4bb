//! What the host window has already been told, per call.
//!
//! V2 opens an interaction and pops a record for every NOTIFY or ACCEPT it receives, so a payload
//! posted twice is a second pop in front of the rep. The relay replays messages after a
//! reconnect and the tab may reload mid-call; remembering each (call, action) pair that was
//! posted, across reloads, is what keeps every payload to exactly one.

use std::collections::{HashSet, VecDeque};

use cti_protocol::host::HostAction;

/// How many pairs are remembered. A few hundred calls is far more than one tab sees in a day;
/// the bound keeps the stored JSON small.
pub const CAPACITY: usize = 600;

/// The remembered (call id, action) pairs, oldest forgotten first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostedSet {
    order: VecDeque<(String, HostAction)>,
    index: HashSet<(String, HostAction)>,
}

fn action_name(action: HostAction) -> &'static str {
    match action {
        HostAction::Notify => "notify",
        HostAction::Accept => "accept",
        HostAction::End => "end",
    }
}

fn action_from_name(name: &str) -> Option<HostAction> {
    match name {
        "notify" => Some(HostAction::Notify),
        "accept" => Some(HostAction::Accept),
        "end" => Some(HostAction::End),
        _ => None,
    }
}

impl PostedSet {
    pub fn contains(&self, call_id: &str, action: HostAction) -> bool {
        self.index.contains(&(call_id.to_owned(), action))
    }

    /// Records a pair; true when it was new, i.e. when the payload should be posted now.
    pub fn insert(&mut self, call_id: &str, action: HostAction) -> bool {
        let key = (call_id.to_owned(), action);
        if !self.index.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        while self.order.len() > CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.index.remove(&oldest);
            }
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The stored form: a JSON array of `[call id, action]` pairs, oldest first.
    pub fn to_json(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .order
            .iter()
            .map(|(id, action)| (id.as_str(), action_name(*action)))
            .collect();
        serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Reads the stored form back. Pairs with an unknown action are skipped, so a newer widget's
    /// entries do not make an older one forget everything.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let pairs: Vec<(String, String)> = serde_json::from_str(json)?;
        let mut set = PostedSet::default();
        for (id, name) in pairs {
            if let Some(action) = action_from_name(&name) {
                set.insert(&id, action);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_pair_is_new_only_once() {
        let mut set = PostedSet::default();
        assert!(set.insert("c1", HostAction::Notify));
        assert!(!set.insert("c1", HostAction::Notify));
        assert!(set.insert("c1", HostAction::Accept));
        assert!(set.insert("c2", HostAction::Notify));
        assert!(set.contains("c1", HostAction::Accept));
        assert!(!set.contains("c2", HostAction::End));
        assert_eq!(set.len(), 3);
    }

    #[wasm_bindgen_test]
    fn survives_its_stored_form() {
        let mut set = PostedSet::default();
        set.insert("c1", HostAction::Notify);
        set.insert("c1", HostAction::End);
        let json = set.to_json();
        assert_eq!(json, r#"[["c1","notify"],["c1","end"]]"#);
        let back = PostedSet::from_json(&json).expect("reads back");
        assert_eq!(back, set);
    }

    #[wasm_bindgen_test]
    fn unknown_actions_are_skipped_and_garbage_is_an_error() {
        let set = PostedSet::from_json(r#"[["c1","notify"],["c1","teleport"]]"#).expect("reads");
        assert_eq!(set.len(), 1);
        assert!(PostedSet::from_json("{not json").is_err());
        assert!(PostedSet::from_json(r#"{"c1":"notify"}"#).is_err());
    }

    #[wasm_bindgen_test]
    fn forgets_the_oldest_beyond_capacity() {
        let mut set = PostedSet::default();
        for i in 0..=CAPACITY {
            set.insert(&format!("c{i}"), HostAction::Notify);
        }
        assert_eq!(set.len(), CAPACITY);
        assert!(!set.contains("c0", HostAction::Notify));
        assert!(set.contains("c1", HostAction::Notify));
        assert!(set.contains(&format!("c{CAPACITY}"), HostAction::Notify));
    }
}
