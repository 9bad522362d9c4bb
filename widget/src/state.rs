//! What the widget knows, and the host payloads that follow from it.
//!
//! Every server message goes through [`WidgetState::apply`], which is pure: no clock, no storage,
//! no DOM. That makes the two promises the rep relies on checkable in isolation: a message is
//! applied at most once (the relay resends after a reconnect, and may resend what the widget
//! already has), and the V2 host hears about each moment of a call exactly once, however the
//! messages are replayed, repeated or reordered.

use std::collections::{BTreeSet, VecDeque};

use cti_protocol::host::{HostAction, HostMessage, HostSettings};
use cti_protocol::{CallState, CallView, Control, Match, ServerMessage};

use crate::posted::PostedSet;

/// How many dismissed calls are remembered, so that a late update of one does not bring its
/// summary back.
const DISMISSED_CAPACITY: usize = 100;

/// How many links to records created from the widget are kept (one per call on screen at most).
const CREATED_CAPACITY: usize = 20;

/// What `welcome` told the widget about this sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub agent: String,
    pub tenant: String,
    pub heartbeat_secs: u64,
    pub host_origins: Vec<String>,
    pub dispositions: Vec<String>,
    /// The tenant's choice to send `Custom_1`.
    pub custom_1: bool,
    /// The call controls the tenant's phone system offers.
    pub controls: Vec<Control>,
}

/// A failure to show the rep: the relay's `error` message, or one the widget raised itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub code: String,
    /// The relay's words, or the widget's own, in English: the rep reads them only when this
    /// build has no words for `code` (a newer relay's code); otherwise they serve bug reports.
    pub message: String,
    /// The message id of the widget's own wording, for a problem it raised itself where the
    /// code alone says too little (two different "not connected" cases share one code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The rep's latest record search: what they asked, and V2's answer once it is in. Only the
/// answer to the latest request is kept; an older one arriving late is dropped.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Search {
    pub request_id: u64,
    pub query: String,
    /// None while the relay has not answered.
    pub results: Option<Vec<Match>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WidgetState {
    session: Option<Session>,
    /// The highest `seq` applied. It lives as long as the page: after a reload the widget asks
    /// for a fresh snapshot (`last_seq: null`) because its calls are gone from memory.
    last_seq: Option<u64>,
    /// Calls on screen, in the order they were first seen.
    calls: Vec<CallView>,
    dismissed: VecDeque<String>,
    /// Calls with a command on its way, whose buttons wait for the resulting state.
    pending: BTreeSet<String>,
    problem: Option<Problem>,
    posted: PostedSet,
    /// Whether V2 holds the rep's own sign-in; `None` when the tenant does not use it.
    v2_sign_in: Option<bool>,
    search: Option<Search>,
    /// Links to records the rep created from the widget, by call id.
    created: Vec<(String, String)>,
}

impl WidgetState {
    /// A state that already knows what was posted before a reload.
    pub fn new(posted: PostedSet) -> Self {
        WidgetState {
            posted,
            ..WidgetState::default()
        }
    }

    /// Applies one server message and returns the payloads to post to the host, in order. The
    /// pairs returned are already recorded as posted: persist [`Self::posted`] before posting,
    /// so a crash in between loses a pop rather than doubling it.
    pub fn apply(&mut self, message: ServerMessage) -> Vec<HostMessage> {
        match message {
            ServerMessage::Welcome {
                agent,
                tenant,
                seq,
                heartbeat_secs,
                host_origins,
                dispositions,
                custom_1,
                controls,
            } => {
                self.welcome(
                    Session {
                        agent,
                        tenant,
                        heartbeat_secs,
                        host_origins,
                        dispositions,
                        custom_1,
                        controls,
                    },
                    seq,
                );
                Vec::new()
            }
            ServerMessage::Call { seq, call } => self.call(seq, call),
            ServerMessage::Error { code, message } => {
                // The relay does not say which command failed; every waiting button gets a
                // second chance rather than staying dead.
                self.pending.clear();
                self.problem = Some(Problem {
                    code,
                    message,
                    key: None,
                });
                Vec::new()
            }
            ServerMessage::V2SignIn { connected } => {
                self.v2_sign_in = Some(connected);
                Vec::new()
            }
            ServerMessage::Pong { .. } => Vec::new(),
            ServerMessage::SearchResults {
                request_id,
                records,
            } => {
                if let Some(search) = self.search.as_mut().filter(|s| s.request_id == request_id) {
                    search.results = Some(records);
                }
                Vec::new()
            }
            ServerMessage::RecordCreated { call_id, link, .. } => {
                // The record itself comes with the call's next view.
                if let Some(link) = link {
                    self.created.retain(|(call, _)| *call != call_id);
                    self.created.push((call_id, link));
                    if self.created.len() > CREATED_CAPACITY {
                        self.created.remove(0);
                    }
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn welcome(&mut self, session: Session, seq: u64) {
        let same_agent = self
            .session
            .as_ref()
            .is_none_or(|previous| previous.agent == session.agent);
        if !same_agent {
            // Another rep signed in on this page: nothing on screen is theirs.
            self.calls.clear();
            self.dismissed.clear();
            self.last_seq = None;
            self.v2_sign_in = None;
        }
        if self.last_seq.is_some_and(|last| seq < last) {
            // The relay's sequence went backwards: it lost its history (a restart without
            // shared storage). Keeping the old mark would ignore every new message; the posted
            // set still keeps the host from hearing anything twice.
            self.last_seq = None;
        }
        // A command sent before the connection dropped may never have reached the relay.
        self.pending.clear();
        self.session = Some(session);
    }

    fn call(&mut self, seq: u64, call: CallView) -> Vec<HostMessage> {
        if self.last_seq.is_some_and(|last| seq <= last) {
            return Vec::new();
        }
        self.last_seq = Some(seq);
        let effects = self.host_effects(&call);
        self.pending.remove(&call.id);

        if call.state.is_final() && self.dismissed.contains(&call.id) {
            return effects;
        }
        if let Some(shown) = self.calls.iter_mut().find(|shown| shown.id == call.id) {
            *shown = call;
        } else {
            // A new call replaces the summaries of the ones before it.
            self.calls.retain(|shown| !shown.state.is_final());
            self.calls.push(call);
        }
        effects
    }

    /// NOTIFY on the first ringing, ACCEPT on the first connected (or held, which implies it),
    /// END on the first final state. END only follows a NOTIFY or ACCEPT: a call the host never
    /// heard of (say, one that rang and ended while the widget was closed) has no interaction
    /// in V2 to close.
    fn host_effects(&mut self, call: &CallView) -> Vec<HostMessage> {
        // A call that came back to the rep is a new round for V2: its own pop, answer and end.
        // The posted set is keyed by round, not by the reference V2 sees, so what a widget of an
        // earlier release recorded still counts after an update.
        let round = match call.returns {
            0 => call.id.clone(),
            n => format!("{}#{n}", call.id),
        };
        let id = round.as_str();
        let announced = |posted: &PostedSet| {
            posted.contains(id, HostAction::Notify) || posted.contains(id, HostAction::Accept)
        };
        let action = match call.state {
            // A ringing that arrives after the call was accepted or ended is stale: popping
            // again would put an old caller in front of the rep.
            CallState::Ringing
                if !self.posted.contains(id, HostAction::Accept)
                    && !self.posted.contains(id, HostAction::End) =>
            {
                Some(HostAction::Notify)
            }
            CallState::Connected | CallState::Held
                if !self.posted.contains(id, HostAction::End) =>
            {
                Some(HostAction::Accept)
            }
            state if state.is_final() && announced(&self.posted) => Some(HostAction::End),
            _ => None,
        };
        // Until `welcome` says otherwise, V2's own search by `ANI`.
        let settings = HostSettings {
            custom_1: self.session.as_ref().is_some_and(|s| s.custom_1),
        };
        action
            .filter(|action| self.posted.insert(id, *action))
            .map(|action| HostMessage::for_leg(call, action, settings))
            .into_iter()
            .collect()
    }

    /// The rep sent a command for this call: its buttons wait for the state it leads to.
    pub fn command_sent(&mut self, call_id: &str) {
        self.pending.insert(call_id.to_owned());
    }

    /// Takes an ended call's summary off the screen for good.
    pub fn dismiss(&mut self, call_id: &str) {
        let before = self.calls.len();
        self.calls
            .retain(|call| !(call.id == call_id && call.state.is_final()));
        if self.calls.len() < before {
            self.dismissed.push_back(call_id.to_owned());
            while self.dismissed.len() > DISMISSED_CAPACITY {
                self.dismissed.pop_front();
            }
        }
    }

    /// Shows a problem the widget found itself (for example, a command while offline): `key` is
    /// the message id of its words, `message` the same in English.
    pub fn report(&mut self, code: &str, key: Option<&str>, message: &str) {
        self.problem = Some(Problem {
            code: code.to_owned(),
            message: message.to_owned(),
            key: key.map(str::to_owned),
        });
    }

    pub fn dismiss_problem(&mut self) {
        self.problem = None;
    }

    /// A new search: its request id, after which earlier answers are dropped.
    pub fn start_search(&mut self, query: &str) -> u64 {
        let request_id = self.search.as_ref().map_or(1, |s| s.request_id + 1);
        self.search = Some(Search {
            request_id,
            query: query.to_owned(),
            results: None,
        });
        request_id
    }

    pub fn search(&self) -> Option<&Search> {
        self.search.as_ref()
    }

    /// The link to the record the rep created for a call, if they did.
    pub fn created_link(&self, call_id: &str) -> Option<&str> {
        self.created
            .iter()
            .find(|(call, _)| call == call_id)
            .map(|(_, link)| link.as_str())
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Calls on screen: the live ones first (they need the rep), then ended summaries.
    pub fn visible_calls(&self) -> impl Iterator<Item = &CallView> {
        let live = self.calls.iter().filter(|call| !call.state.is_final());
        let ended = self.calls.iter().filter(|call| call.state.is_final());
        live.chain(ended)
    }

    pub fn is_pending(&self, call_id: &str) -> bool {
        self.pending.contains(call_id)
    }

    /// `Some(false)`: the rep should connect V2 for their calls to be logged.
    pub fn v2_sign_in(&self) -> Option<bool> {
        self.v2_sign_in
    }

    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    pub fn posted(&self) -> &PostedSet {
        &self.posted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::call;
    use cti_protocol::host::{external_reference, is_v2_reference};
    use cti_protocol::{EndReason, Handover};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn only_the_latest_search_takes_results_and_a_created_record_keeps_its_link() {
        let mut state = WidgetState::default();
        let first = state.start_search("Anna");
        let second = state.start_search("Anna Muster");
        assert!(second > first);
        let found = |name: &str| Match {
            kind: cti_protocol::RecordKind::Contact,
            id: name.to_lowercase(),
            display_id: String::new(),
            name: name.into(),
            account: None,
            open_opportunities: Vec::new(),
            last_interactions: Vec::new(),
        };
        state.apply(ServerMessage::SearchResults {
            request_id: first,
            records: vec![found("Anna Old")],
        });
        assert_eq!(state.search().and_then(|s| s.results.clone()), None);
        state.apply(ServerMessage::SearchResults {
            request_id: second,
            records: vec![found("Anna Muster")],
        });
        assert_eq!(
            state.search().and_then(|s| s.results.clone()),
            Some(vec![found("Anna Muster")])
        );
        state.apply(ServerMessage::RecordCreated {
            call_id: "c1".into(),
            record: found("Anna Muster"),
            link: Some("https://t/go/detail/mdcontact?nodeid=x".into()),
        });
        assert_eq!(
            state.created_link("c1"),
            Some("https://t/go/detail/mdcontact?nodeid=x")
        );
        assert_eq!(state.created_link("c2"), None);
    }

    fn msg(seq: u64, id: &str, state: CallState) -> ServerMessage {
        ServerMessage::Call {
            seq,
            call: call(id, state),
        }
    }

    fn welcome(agent: &str, seq: u64) -> ServerMessage {
        ServerMessage::Welcome {
            agent: agent.into(),
            tenant: "t1".into(),
            seq,
            heartbeat_secs: 20,
            host_origins: vec!["https://*.crm.cloud.sap".into()],
            dispositions: vec![],
            custom_1: true,
            controls: Control::ALL.to_vec(),
        }
    }

    /// The (call id, CTI action) of each payload, which is what "exactly once" is about.
    fn actions(effects: &[HostMessage]) -> Vec<(String, String)> {
        effects
            .iter()
            .map(|m| {
                (
                    m.payload.external_reference_id.clone(),
                    m.payload.action.clone(),
                )
            })
            .collect()
    }

    fn pair(id: &str, action: &str) -> (String, String) {
        (id.to_owned(), action.to_owned())
    }

    #[wasm_bindgen_test]
    fn a_call_life_posts_notify_accept_end_once_each() {
        let mut state = WidgetState::default();
        assert!(state.apply(welcome("alice", 0)).is_empty());
        let mut all = Vec::new();
        all.extend(state.apply(msg(1, "c1", CallState::Ringing)));
        all.extend(state.apply(msg(2, "c1", CallState::Connected)));
        all.extend(state.apply(msg(3, "c1", CallState::Held)));
        all.extend(state.apply(msg(4, "c1", CallState::Connected)));
        all.extend(state.apply(msg(5, "c1", CallState::Ended)));
        assert_eq!(
            actions(&all),
            vec![
                pair("c1", "NOTIFY"),
                pair("c1", "ACCEPT"),
                pair("c1", "END")
            ]
        );
        // A first leg on an id V2 takes posts what the widget always posted.
        assert_eq!(
            all[0],
            HostMessage::for_call(&call("c1", CallState::Ringing), HostAction::Notify)
        );
        assert_eq!(state.last_seq(), Some(5));
    }

    #[wasm_bindgen_test]
    fn a_call_transferred_back_pops_again_once() {
        let mut state = WidgetState::default();
        state.apply(welcome("alice", 0));
        let mut posted = Vec::new();
        let mut all = Vec::new();
        for (seq, st) in [
            (1, CallState::Ringing),
            (2, CallState::Connected),
            (3, CallState::Transferred),
        ] {
            all.extend(state.apply(msg(seq, "c1", st)));
        }
        let returned = |seq: u64, st: CallState| {
            let mut call = call("c1", st);
            call.returns = 1;
            ServerMessage::Call { seq, call }
        };
        for (seq, st) in [
            (4, CallState::Ringing),
            (5, CallState::Connected),
            (6, CallState::Connected),
            (7, CallState::Ended),
        ] {
            all.extend(state.apply(returned(seq, st)));
        }
        posted.extend(actions(&all));
        let events: Vec<&str> = all.iter().map(|m| m.payload.event_type.as_str()).collect();
        let originals: Vec<Option<&str>> = all
            .iter()
            .map(|m| m.payload.external_original_reference_id.as_deref())
            .collect();
        // The second round is a leg of its own for V2, announced as a transfer of the first.
        let again = external_reference("c1#1");
        assert_eq!(
            posted,
            vec![
                pair("c1", "NOTIFY"),
                pair("c1", "ACCEPT"),
                pair("c1", "END"),
                pair(&again, "NOTIFY"),
                pair(&again, "ACCEPT"),
                pair(&again, "END"),
            ]
        );
        assert_eq!(
            events,
            [
                "INBOUND",
                "INBOUND",
                "UPDATEACTIVITY",
                "TRANSFER",
                "TRANSFER",
                "UPDATEACTIVITY"
            ]
        );
        assert_eq!(originals, [None, None, None, Some("c1"), Some("c1"), None]);
        assert!(state.posted().contains("c1#1", HostAction::Notify));
        // The first round's messages replayed (after the relay lost its numbering) post nothing.
        state.apply(welcome("alice", 0));
        let mut replayed = state.apply(ServerMessage::Call {
            seq: 8,
            call: call("c1", CallState::Connected),
        });
        replayed.extend(state.apply(returned(9, CallState::Ended)));
        assert!(replayed.is_empty());
    }

    #[wasm_bindgen_test]
    fn a_call_handed_over_is_a_transfer_of_the_original_under_a_reference_v2_takes() {
        let mut state = WidgetState::default();
        state.apply(welcome("bob", 0));
        let leg = |seq: u64, st: CallState| {
            let mut call = call("call-7f3a9c", st);
            call.handover = Some(Handover {
                from: "alice@example.com".into(),
                notes: String::new(),
            });
            ServerMessage::Call { seq, call }
        };
        let mut all = Vec::new();
        for (seq, st) in [
            (1, CallState::Ringing),
            (2, CallState::Connected),
            (3, CallState::Ended),
        ] {
            all.extend(state.apply(leg(seq, st)));
        }
        let original = external_reference("call-7f3a9c");
        assert!(is_v2_reference(&original), "{original}");
        let reference = &all[0].payload.external_reference_id;
        assert!(is_v2_reference(reference), "{reference}");
        assert_ne!(reference, &original);
        assert_eq!(
            actions(&all),
            vec![
                pair(reference, "NOTIFY"),
                pair(reference, "ACCEPT"),
                pair(reference, "END")
            ]
        );
        assert_eq!(all[0].payload.event_type, "TRANSFER");
        assert_eq!(all[1].payload.event_type, "TRANSFER");
        assert_eq!(
            all[0].payload.external_original_reference_id.as_deref(),
            Some(original.as_str())
        );
        assert_eq!(all[2].payload.event_type, "UPDATEACTIVITY");
        // What was posted is still recorded under the provider's id.
        for action in [HostAction::Notify, HostAction::Accept, HostAction::End] {
            assert!(state.posted().contains("call-7f3a9c", action));
        }
    }

    #[wasm_bindgen_test]
    fn custom_1_is_sent_only_when_the_tenant_chose_it() {
        let chosen = |custom_1: bool| {
            let mut state = WidgetState::default();
            let mut hello = welcome("alice", 0);
            if let ServerMessage::Welcome { custom_1: slot, .. } = &mut hello {
                *slot = custom_1;
            }
            state.apply(hello);
            let mut ringing = call("c1", CallState::Ringing);
            ringing.pop = ringing.matches.first().cloned();
            let posted = state.apply(ServerMessage::Call {
                seq: 1,
                call: ringing,
            });
            assert_eq!(posted.len(), 1);
            posted[0].payload.custom_1.clone()
        };
        assert_eq!(chosen(true).as_deref(), Some("1001"));
        assert_eq!(chosen(false), None);
        // Before `welcome` (a message replayed early), V2's own search.
        let mut early = WidgetState::default();
        let mut ringing = call("c2", CallState::Ringing);
        ringing.pop = ringing.matches.first().cloned();
        let posted = early.apply(ServerMessage::Call {
            seq: 1,
            call: ringing,
        });
        assert_eq!(posted[0].payload.custom_1, None);
    }

    #[wasm_bindgen_test]
    fn the_v2_sign_in_status_follows_the_relay_and_the_rep() {
        let mut state = WidgetState::default();
        state.apply(welcome("alice", 0));
        assert_eq!(state.v2_sign_in(), None, "until the relay says");
        state.apply(ServerMessage::V2SignIn { connected: false });
        assert_eq!(state.v2_sign_in(), Some(false));
        // A reconnect keeps it (no flicker); the relay says it again anyway.
        state.apply(welcome("alice", 0));
        assert_eq!(state.v2_sign_in(), Some(false));
        state.apply(ServerMessage::V2SignIn { connected: true });
        assert_eq!(state.v2_sign_in(), Some(true));
        // Another rep's sign-in is not alice's.
        state.apply(welcome("bob", 0));
        assert_eq!(state.v2_sign_in(), None);
    }

    #[wasm_bindgen_test]
    fn a_seq_already_applied_is_ignored() {
        let mut state = WidgetState::default();
        state.apply(msg(7, "c1", CallState::Ringing));
        // A stale message with an older seq must not roll the call back.
        assert!(state.apply(msg(6, "c1", CallState::Ended)).is_empty());
        assert!(state.apply(msg(7, "c1", CallState::Ended)).is_empty());
        let shown: Vec<_> = state.visible_calls().map(|c| c.state).collect();
        assert_eq!(shown, vec![CallState::Ringing]);
        assert_eq!(state.last_seq(), Some(7));
    }

    #[wasm_bindgen_test]
    fn replay_after_the_relay_lost_its_history_does_not_repost() {
        let mut state = WidgetState::default();
        state.apply(welcome("alice", 0));
        assert_eq!(
            actions(&state.apply(msg(10, "c1", CallState::Ringing))),
            vec![pair("c1", "NOTIFY")]
        );
        // The relay restarted: its sequence starts over below ours.
        state.apply(welcome("alice", 1));
        assert_eq!(state.last_seq(), None);
        // The same call, replayed with new numbers, applies (the card stays current) ...
        assert!(state.apply(msg(1, "c1", CallState::Ringing)).is_empty());
        // ... and moves on, each moment still posted once.
        assert_eq!(
            actions(&state.apply(msg(2, "c1", CallState::Connected))),
            vec![pair("c1", "ACCEPT")]
        );
        assert!(state.apply(msg(3, "c1", CallState::Connected)).is_empty());
    }

    #[wasm_bindgen_test]
    fn a_reconnect_with_a_higher_relay_seq_keeps_the_mark() {
        let mut state = WidgetState::default();
        state.apply(welcome("alice", 0));
        state.apply(msg(4, "c1", CallState::Ringing));
        state.apply(welcome("alice", 9));
        assert_eq!(state.last_seq(), Some(4));
        assert!(state.apply(msg(4, "c1", CallState::Ringing)).is_empty());
    }

    #[wasm_bindgen_test]
    fn a_reload_does_not_pop_again() {
        let mut before = WidgetState::default();
        before.apply(msg(1, "c1", CallState::Ringing));
        before.apply(msg(2, "c1", CallState::Connected));
        let stored = before.posted().to_json();

        let mut after = WidgetState::new(PostedSet::from_json(&stored).expect("reads"));
        after.apply(welcome("alice", 2));
        // The fresh snapshot after the reload shows the call but tells the host nothing new.
        assert!(after.apply(msg(2, "c1", CallState::Connected)).is_empty());
        assert_eq!(after.visible_calls().count(), 1);
        assert_eq!(
            actions(&after.apply(msg(3, "c1", CallState::Ended))),
            vec![pair("c1", "END")]
        );
    }

    #[wasm_bindgen_test]
    fn out_of_order_states_never_post_backwards() {
        let mut state = WidgetState::default();
        // First seen already connected (the ringing message was lost): ACCEPT, no NOTIFY.
        assert_eq!(
            actions(&state.apply(msg(5, "c1", CallState::Connected))),
            vec![pair("c1", "ACCEPT")]
        );
        // A later ringing for the same call (relay resync) must not pop it again.
        state.apply(welcome("alice", 0));
        assert!(state.apply(msg(1, "c1", CallState::Ringing)).is_empty());
        assert_eq!(
            actions(&state.apply(msg(2, "c1", CallState::Transferred))),
            vec![pair("c1", "END")]
        );
        assert!(state.apply(msg(3, "c1", CallState::Connected)).is_empty());
        assert!(state.apply(msg(4, "c1", CallState::Ended)).is_empty());
    }

    #[wasm_bindgen_test]
    fn missed_call_posts_notify_then_end_without_accept() {
        let mut state = WidgetState::default();
        let mut all = state.apply(msg(1, "c1", CallState::Ringing));
        all.extend(state.apply(msg(2, "c1", CallState::Ended)));
        assert_eq!(actions(&all), vec![pair("c1", "NOTIFY"), pair("c1", "END")]);
    }

    #[wasm_bindgen_test]
    fn a_call_first_seen_ended_tells_the_host_nothing_but_is_shown() {
        let mut state = WidgetState::default();
        assert!(state.apply(msg(1, "c1", CallState::Ended)).is_empty());
        assert_eq!(state.visible_calls().count(), 1);
    }

    #[wasm_bindgen_test]
    fn concurrent_calls_are_tracked_apart() {
        let mut state = WidgetState::default();
        let mut all = state.apply(msg(1, "c1", CallState::Ringing));
        all.extend(state.apply(msg(2, "c2", CallState::Ringing)));
        all.extend(state.apply(msg(3, "c1", CallState::Connected)));
        all.extend(state.apply(msg(4, "c2", CallState::Ended)));
        assert_eq!(
            actions(&all),
            vec![
                pair("c1", "NOTIFY"),
                pair("c2", "NOTIFY"),
                pair("c1", "ACCEPT"),
                pair("c2", "END")
            ]
        );
        let ids: Vec<_> = state.visible_calls().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["c1", "c2"]);
    }

    #[wasm_bindgen_test]
    fn the_latest_view_of_a_call_wins() {
        let mut state = WidgetState::default();
        state.apply(msg(1, "c1", CallState::Ringing));
        let mut answered = call("c1", CallState::Connected);
        answered.answered_at = Some("2026-11-24T10:00:05Z".into());
        state.apply(ServerMessage::Call {
            seq: 2,
            call: answered.clone(),
        });
        let shown: Vec<_> = state.visible_calls().cloned().collect();
        assert_eq!(shown, vec![answered]);
    }

    #[wasm_bindgen_test]
    fn an_ended_call_stays_as_a_summary_until_the_next_call() {
        let mut state = WidgetState::default();
        state.apply(msg(1, "c1", CallState::Ringing));
        let mut ended = call("c1", CallState::Ended);
        ended.end_reason = Some(EndReason::Completed);
        state.apply(ServerMessage::Call {
            seq: 2,
            call: ended,
        });
        let shown: Vec<_> = state
            .visible_calls()
            .map(|c| (c.id.as_str(), c.state))
            .collect();
        assert_eq!(shown, vec![("c1", CallState::Ended)]);

        state.apply(msg(3, "c2", CallState::Ringing));
        let shown: Vec<_> = state.visible_calls().map(|c| c.id.as_str()).collect();
        assert_eq!(shown, vec!["c2"]);
    }

    #[wasm_bindgen_test]
    fn dismiss_removes_only_ended_calls_and_they_stay_gone() {
        let mut state = WidgetState::default();
        state.apply(msg(1, "c1", CallState::Ringing));
        state.dismiss("c1");
        assert_eq!(
            state.visible_calls().count(),
            1,
            "a live call cannot be dismissed"
        );
        state.apply(msg(2, "c1", CallState::Ended));
        state.dismiss("c1");
        assert_eq!(state.visible_calls().count(), 0);
        // A late update of the dismissed call (say, its recording link) stays off screen.
        state.apply(msg(3, "c1", CallState::Ended));
        assert_eq!(state.visible_calls().count(), 0);
    }

    #[wasm_bindgen_test]
    fn pending_commands_wait_for_the_next_state_or_an_error() {
        let mut state = WidgetState::default();
        state.apply(msg(1, "c1", CallState::Ringing));
        state.command_sent("c1");
        assert!(state.is_pending("c1"));
        state.apply(msg(2, "c1", CallState::Connected));
        assert!(!state.is_pending("c1"));

        state.command_sent("c1");
        state.apply(ServerMessage::Error {
            code: "provider_failed".into(),
            message: "The phone system refused".into(),
        });
        assert!(!state.is_pending("c1"));
        assert_eq!(
            state.problem().map(|p| p.code.as_str()),
            Some("provider_failed")
        );
        state.dismiss_problem();
        assert_eq!(state.problem(), None);

        state.command_sent("c1");
        state.apply(welcome("alice", 2));
        assert!(!state.is_pending("c1"), "a reconnect releases the buttons");
    }

    #[wasm_bindgen_test]
    fn welcome_keeps_the_session_and_another_agent_starts_over() {
        let mut state = WidgetState::default();
        state.apply(welcome("alice", 0));
        assert_eq!(state.session().map(|s| s.agent.as_str()), Some("alice"));
        state.apply(msg(3, "c1", CallState::Ringing));
        state.apply(welcome("bob", 5));
        assert_eq!(state.visible_calls().count(), 0);
        assert_eq!(state.last_seq(), None);
        assert_eq!(state.session().map(|s| s.tenant.as_str()), Some("t1"));
    }

    #[wasm_bindgen_test]
    fn pong_changes_nothing() {
        let mut state = WidgetState::default();
        state.apply(msg(1, "c1", CallState::Ringing));
        let before = state.clone();
        assert!(state.apply(ServerMessage::Pong { nonce: 3 }).is_empty());
        assert_eq!(state, before);
    }
}
