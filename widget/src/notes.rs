//! The rep's notes on calls, kept as drafts in storage the rep's tabs share.
//!
//! A note typed during a call must survive a reload, a crash of the tab, and a switch to another
//! V2 tab: every keystroke lands in `localStorage`, which every tab of the rep reads (the browser
//! tells the others through the `storage` event). Drafts of the latest calls are kept; the oldest
//! are forgotten beyond that.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Calls whose drafts are kept.
pub const KEPT: usize = 50;
/// The longest note kept (V2's note fields are long, but a draft is not a document store).
pub const MAX_CHARS: usize = 10_000;

/// Drafts by call, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drafts {
    entries: VecDeque<(String, String)>,
}

impl Drafts {
    pub fn from_json(json: &str) -> Drafts {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn get(&self, call_id: &str) -> &str {
        self.entries
            .iter()
            .find(|(id, _)| id == call_id)
            .map_or("", |(_, text)| text.as_str())
    }

    /// Sets a call's draft (an empty one is removed); the call becomes the newest.
    pub fn set(&mut self, call_id: &str, text: &str) {
        self.entries.retain(|(id, _)| id != call_id);
        let text: String = text.chars().take(MAX_CHARS).collect();
        if !text.is_empty() {
            self.entries.push_back((call_id.to_owned(), text));
        }
        while self.entries.len() > KEPT {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn drafts_round_trip_and_stay_bounded() {
        let mut drafts = Drafts::default();
        drafts.set("c1", "Wants a quote");
        drafts.set("c2", "Call back Friday");
        drafts.set("c1", "Wants a quote for 40 units");
        let back = Drafts::from_json(&drafts.to_json());
        assert_eq!(back.get("c1"), "Wants a quote for 40 units");
        assert_eq!(back.get("c2"), "Call back Friday");
        assert_eq!(back.get("c3"), "");
        drafts.set("c2", "");
        assert_eq!(drafts.get("c2"), "");
        for i in 0..(KEPT + 5) {
            drafts.set(&format!("n{i}"), "x");
        }
        assert_eq!(drafts.get("c1"), "", "the oldest are forgotten");
        assert_eq!(drafts.get(&format!("n{}", KEPT + 4)), "x");
        drafts.set("long", &"é".repeat(MAX_CHARS + 10));
        assert_eq!(drafts.get("long").chars().count(), MAX_CHARS);
        assert_eq!(Drafts::from_json("not json"), Drafts::default());
    }
}
