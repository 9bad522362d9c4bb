//! Everything the widget knows and decides, in one value: [`Model::update`] takes what happened
//! ([`Msg`]) and returns what to do about it ([`Effect`]), in the order it must be done.
//!
//! It holds the calls ([`WidgetState`]), where the connection stands, whether this tab leads the
//! rep's tabs or mirrors the leader, the notes drafts the tabs share, and the click-to-dial
//! requests refused. It is pure (no socket, storage, window or clock), so the rules that cross
//! those (a reload never pops twice, a follower's click is carried out by the leader, a click
//! without a connection is reported) are tested here without a page. The controller only carries
//! the effects out and feeds back what the browser answered.

use std::rc::Rc;

use cti_protocol::host::HostMessage;
use cti_protocol::{ClientMessage, Control, ErrorCode, ServerMessage};

use crate::connection::{ConnectionStatus, SignedOut};
use crate::dial;
use crate::history::{History, history_key};
use crate::host::{Frame, HostTarget};
use crate::notes::Drafts;
use crate::posted::PostedSet;
use crate::state::WidgetState;
use crate::tabs::{Mirror, TabMessage};
use crate::token;
use crate::ui::{CallItem, UiAction, ViewModel};

/// Where the posted set is kept, shared by the rep's tabs (`cti.posted:<rep>`).
pub const POSTED_KEY: &str = "cti.posted";

/// The relay's redirect to the identity provider's sign-in page.
pub const SIGN_IN_PATH: &str = "/v1/agent/sign-in";

const NOT_CONNECTED: &str =
    "Not connected to the phone system. Try again once the status shows Connected.";

const NOT_DIALLED: &str = "Not connected to the phone system, so the number was not dialled. \
                           Try again once the status shows Connected.";

const NO_V2_WINDOW: &str =
    "Could not open the V2 sign-in window. Allow pop-ups for this page and try again.";

/// The key of the posted set the rep's tabs share.
pub fn posted_key(rep: &str) -> String {
    format!("{POSTED_KEY}:{rep}")
}

/// The key of the notes drafts the rep's tabs share.
pub fn notes_key(rep: &str) -> String {
    format!("cti.notes:{rep}")
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// The page opened, with the sign-in token it found (if any).
    Start {
        token: Option<String>,
    },
    /// This tab joined the rep's tabs, whose notes drafts are these.
    Joined {
        drafts: Drafts,
    },
    /// This tab now leads, starting from what the rep's tabs already popped and the calls they
    /// already listed.
    Lead {
        posted: PostedSet,
        history: History,
    },
    /// Another tab leads.
    Follow,
    /// Another tab said something.
    Tab(TabMessage),
    Status(ConnectionStatus),
    Server(Box<ServerMessage>),
    /// The rep clicked, in this tab.
    Ui(UiAction),
    /// Whether a message from [`Effect::Send`] went out.
    Sent {
        message: ClientMessage,
        delivered: bool,
    },
    /// Whether [`Effect::OpenV2Connect`] opened its window.
    V2Connect {
        opened: bool,
    },
    /// A message posted into this frame: `data` as JSON text, `from_parent` when it came from the
    /// window hosting the widget.
    HostPosted {
        origin: String,
        from_parent: bool,
        data: String,
    },
    /// The notes drafts in shared storage changed (another tab wrote them).
    Drafts(Drafts),
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Join the rep's group of tabs, then answer [`Msg::Joined`].
    JoinTabs {
        rep: String,
    },
    /// Send to the relay, then answer [`Msg::Sent`].
    Send(ClientMessage),
    /// Post a CTI payload to the host window.
    PostHost {
        origin: String,
        message: Box<HostMessage>,
    },
    /// Store a value the rep's tabs share; `failure` is the warning if the browser refuses.
    Persist {
        key: String,
        json: String,
        failure: &'static str,
    },
    Broadcast(TabMessage),
    /// Connect to the relay; the connection asks [`Model::last_seq`] at every `hello`.
    Connect {
        token: String,
    },
    Disconnect,
    /// End a reconnect's backoff wait now.
    RetryNow,
    Navigate(&'static str),
    /// Start the rep's V2 sign-in in a new window, then answer [`Msg::V2Connect`].
    OpenV2Connect {
        token: String,
    },
    /// Drop the stored token: the relay refused it.
    ForgetToken,
    Render(Rc<ViewModel>),
    /// For the console.
    Warn(String),
    /// For the console.
    Info(&'static str),
}

/// The widget's state. See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    state: WidgetState,
    status: ConnectionStatus,
    frame: Frame,
    /// Decided at each `welcome`, when the allowed host origins are known.
    host: Option<HostTarget>,
    /// This tab's sign-in token, used when it leads.
    token: Option<String>,
    /// Who the token names: the key of the rep's group of tabs and of what they share.
    rep: String,
    /// In the rep's group of tabs (a page without a token is alone).
    in_group: bool,
    leader: bool,
    /// A follower's copy of the leader's view.
    mirror: Option<Mirror>,
    drafts: Drafts,
    /// The rep's recent calls; the leader records and stores them.
    history: History,
    /// Click-to-dial requests refused (foreign origin, malformed), for the console and tests.
    ignored_requests: u32,
}

impl Model {
    /// A page framed as `frame` says.
    pub fn new(frame: Frame) -> Model {
        Model {
            state: WidgetState::new(PostedSet::default()),
            status: ConnectionStatus::Connecting,
            frame,
            host: None,
            token: None,
            rep: String::new(),
            in_group: false,
            leader: false,
            mirror: None,
            drafts: Drafts::default(),
            history: History::default(),
            ignored_requests: 0,
        }
    }

    /// The highest `seq` applied, which a reconnect's `hello` carries.
    pub fn last_seq(&self) -> Option<u64> {
        self.state.last_seq()
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Start { token } => self.start(token),
            Msg::Joined { drafts } => {
                self.in_group = true;
                self.drafts = drafts;
                let mut effects = Vec::new();
                if !self.leader {
                    effects.push(Effect::Broadcast(TabMessage::Hello));
                }
                self.rendered(effects)
            }
            Msg::Lead { posted, history } => self.lead(posted, history),
            Msg::Follow => {
                self.leader = false;
                self.host = None;
                self.rendered(vec![
                    Effect::Disconnect,
                    Effect::Broadcast(TabMessage::Hello),
                ])
            }
            Msg::Tab(message) => self.heard(message),
            Msg::Status(status) => {
                let mut effects = Vec::new();
                if matches!(status, ConnectionStatus::SignedOut { .. }) {
                    effects.push(Effect::ForgetToken);
                }
                self.status = status;
                self.rendered(effects)
            }
            Msg::Server(message) => self.apply(*message),
            Msg::Ui(action) => self.act(action),
            Msg::Sent { message, delivered } => {
                match (message, delivered) {
                    (ClientMessage::Command { call_id, .. }, true) => {
                        self.state.command_sent(&call_id);
                    }
                    (_, true) => {}
                    (ClientMessage::Dial { .. }, false) => {
                        self.not_connected(Some("problem-not-dialled"), NOT_DIALLED);
                    }
                    (_, false) => self.not_connected(None, NOT_CONNECTED),
                }
                self.rendered(Vec::new())
            }
            Msg::V2Connect { opened } => {
                if !opened {
                    self.state.report(
                        ErrorCode::V2Connect.as_str(),
                        Some("problem-no-v2-window"),
                        NO_V2_WINDOW,
                    );
                }
                self.rendered(Vec::new())
            }
            Msg::HostPosted {
                origin,
                from_parent,
                data,
            } => self.host_posted(&origin, from_parent, &data),
            Msg::Drafts(drafts) => {
                self.drafts = drafts;
                self.rendered(Vec::new())
            }
        }
    }

    /// What the panel shows. A follower shows the leader's view (before the first one arrives,
    /// that it waits), with its own count of refused requests; notes come from the drafts the
    /// tabs share.
    pub fn view(&self) -> ViewModel {
        let mut view = if self.leader || !self.in_group {
            self.own_view()
        } else {
            let mut view = self
                .mirror
                .as_ref()
                .map(|mirror| mirror.view.clone())
                .unwrap_or_default();
            view.host_warning = None;
            view
        };
        view.ignored_host_requests = self.ignored_requests;
        // The draft wins (it may hold what the relay has not confirmed yet); without one, what
        // the relay saved (typed in another browser, or before this storage was cleared).
        for item in &mut view.calls {
            let draft = self.drafts.get(&item.call.id);
            item.notes = if draft.is_empty() {
                item.call.wrap_up.notes.clone()
            } else {
                draft.to_owned()
            };
        }
        view
    }

    fn own_view(&self) -> ViewModel {
        let state = &self.state;
        ViewModel {
            status: self.status.clone(),
            agent: state.session().map(|session| session.agent.clone()),
            calls: state
                .visible_calls()
                .map(|call| CallItem {
                    call: call.clone(),
                    pending: state.is_pending(&call.id),
                    notes: String::new(),
                    record_link: state.created_link(&call.id).map(str::to_owned),
                })
                .collect(),
            problem: state.problem().cloned(),
            dispositions: state
                .session()
                .map(|session| session.dispositions.clone())
                .unwrap_or_default(),
            controls: state
                .session()
                .map_or_else(|| Control::ALL.to_vec(), |session| session.controls.clone()),
            v2_connected: state.v2_sign_in(),
            host_warning: self.host.as_ref().and_then(HostTarget::warning),
            ignored_host_requests: self.ignored_requests,
            history: self.history.entries().to_vec(),
            search: state.search().cloned(),
        }
    }

    /// `effects`, then the new view: to the other tabs when this one leads, and to the panel.
    fn rendered(&self, mut effects: Vec<Effect>) -> Vec<Effect> {
        let view = self.view();
        if self.leader && self.in_group {
            effects.push(Effect::Broadcast(TabMessage::Mirror {
                mirror: Box::new(Mirror {
                    view: view.clone(),
                    host_origins: self.session_origins(),
                }),
            }));
        }
        effects.push(Effect::Render(Rc::new(view)));
        effects
    }

    fn session_origins(&self) -> Vec<String> {
        self.state
            .session()
            .map(|session| session.host_origins.clone())
            .unwrap_or_default()
    }

    fn start(&mut self, token: Option<String>) -> Vec<Effect> {
        match token {
            None => {
                self.status = ConnectionStatus::SignedOut {
                    reason: SignedOut::NoToken,
                };
                self.rendered(Vec::new())
            }
            Some(token) => {
                self.rep = token::subject(&token).unwrap_or_else(|| "unknown".to_owned());
                self.token = Some(token);
                vec![Effect::JoinTabs {
                    rep: self.rep.clone(),
                }]
            }
        }
    }

    /// Starts over from what the rep's tabs already popped and listed, and connects.
    fn lead(&mut self, posted: PostedSet, history: History) -> Vec<Effect> {
        self.leader = true;
        self.mirror = None;
        self.state = WidgetState::new(posted);
        self.history = history;
        self.status = ConnectionStatus::Connecting;
        let connect = self
            .token
            .clone()
            .map(|token| Effect::Connect { token })
            .into_iter()
            .collect();
        self.rendered(connect)
    }

    fn heard(&mut self, message: TabMessage) -> Vec<Effect> {
        match message {
            TabMessage::Election { .. } => Vec::new(),
            TabMessage::Hello => self.rendered(Vec::new()),
            TabMessage::Mirror { mirror } => {
                if !self.leader {
                    self.mirror = Some(*mirror);
                }
                self.rendered(Vec::new())
            }
            TabMessage::Action { action } if self.leader => self.perform(action),
            TabMessage::Action { .. } => self.rendered(Vec::new()),
        }
    }

    /// Persists the posted set before the payloads it records leave: a crash in between loses
    /// a pop rather than doubling it.
    fn apply(&mut self, message: ServerMessage) -> Vec<Effect> {
        let welcome = matches!(message, ServerMessage::Welcome { .. });
        // Only a view newer than any applied may change the history: a stale one (a replay the
        // widget already had) must not roll a row back.
        let listed = match &message {
            ServerMessage::Call { seq, call } if self.state.last_seq().is_none_or(|l| *seq > l) => {
                self.history.record(call)
            }
            ServerMessage::Welcome { tenant, .. } => self.history.for_tenant(tenant),
            _ => false,
        };
        let posts = self.state.apply(message);
        let mut effects = Vec::new();
        if listed && self.leader {
            effects.push(Effect::Persist {
                key: history_key(&self.rep),
                json: self.history.to_json(),
                failure: "could not store the call history; it holds for this page only",
            });
        }
        if welcome {
            let target = self.frame.target(&self.session_origins());
            if target == HostTarget::NotFramed {
                effects.push(Effect::Info(
                    "not inside a host page: screen pop payloads are not posted",
                ));
            }
            self.host = Some(target);
        }
        if !posts.is_empty() {
            effects.push(Effect::Persist {
                key: posted_key(&self.rep),
                json: self.state.posted().to_json(),
                failure: "could not store the record of screen pops; a reload may pop again",
            });
            if let Some(HostTarget::Parent(origin)) = &self.host {
                effects.extend(posts.into_iter().map(|message| Effect::PostHost {
                    origin: origin.clone(),
                    message: Box::new(message),
                }));
            }
        }
        self.rendered(effects)
    }

    /// A click in this tab: carried out here when this tab leads, else by the leader.
    fn act(&mut self, action: UiAction) -> Vec<Effect> {
        match action {
            // Signing in happens in this frame, whoever leads: the sign-in page returns here.
            UiAction::SignIn => vec![Effect::Navigate(SIGN_IN_PATH)],
            // Also in this frame, with this tab's token: the click's user activation lets the
            // window open.
            UiAction::ConnectV2 => match self.token.clone() {
                Some(token) => vec![Effect::OpenV2Connect { token }],
                None => self.update(Msg::V2Connect { opened: false }),
            },
            // Notes are drafts every tab of the rep shares: written here, whoever leads.
            UiAction::EditNotes { call_id, text } => {
                self.drafts.set(&call_id, &text);
                self.rendered(vec![Effect::Persist {
                    key: notes_key(&self.rep),
                    json: self.drafts.to_json(),
                    failure: "could not save the notes draft; it may be lost on reload",
                }])
            }
            action if !self.leader && self.in_group => {
                vec![Effect::Broadcast(TabMessage::Action { action })]
            }
            action => self.perform(action),
        }
    }

    /// Carries out a click in the leader tab (or in a page that is alone).
    fn perform(&mut self, action: UiAction) -> Vec<Effect> {
        let message = match action {
            UiAction::Command { call_id, command } => ClientMessage::Command { call_id, command },
            UiAction::ChooseMatch { call_id, record_id } => {
                ClientMessage::ChooseMatch { call_id, record_id }
            }
            UiAction::SaveWrapUp {
                call_id,
                notes,
                disposition,
            } => ClientMessage::SaveWrapUp {
                call_id,
                notes,
                disposition,
            },
            UiAction::RetryActivity { call_id } => ClientMessage::RetryActivity { call_id },
            UiAction::ConfirmConsent { call_id } => ClientMessage::ConfirmConsent { call_id },
            UiAction::Dial { number } => ClientMessage::Dial { number },
            UiAction::SearchRecords { query } => {
                let request_id = self.state.start_search(&query);
                let mut effects = self.rendered(Vec::new());
                effects.insert(
                    0,
                    Effect::Send(ClientMessage::SearchRecords { request_id, query }),
                );
                return effects;
            }
            UiAction::PickRecord {
                call_id,
                kind,
                record_id,
            } => ClientMessage::PickRecord {
                call_id,
                kind,
                record_id,
            },
            UiAction::CreateRecord {
                call_id,
                kind,
                fields,
            } => ClientMessage::CreateRecord {
                call_id,
                kind,
                fields,
            },
            UiAction::RefreshMatches { call_id } => ClientMessage::RefreshMatches { call_id },
            UiAction::Dismiss(call_id) => {
                self.state.dismiss(&call_id);
                return self.rendered(Vec::new());
            }
            UiAction::DismissProblem => {
                self.state.dismiss_problem();
                return self.rendered(Vec::new());
            }
            UiAction::RetryNow => return self.rendered(vec![Effect::RetryNow]),
            // Done in the tab where they were clicked.
            UiAction::EditNotes { .. } | UiAction::SignIn | UiAction::ConnectV2 => {
                return self.rendered(Vec::new());
            }
        };
        vec![Effect::Send(message)]
    }

    fn not_connected(&mut self, key: Option<&str>, message: &str) {
        self.state
            .report(ErrorCode::NotConnected.as_str(), key, message);
    }

    /// Click-to-dial, when the message is one from the V2 host. A follower judges it against the
    /// origins its leader learnt.
    fn host_posted(&mut self, origin: &str, from_parent: bool, data: &str) -> Vec<Effect> {
        let allowed = match &self.mirror {
            Some(mirror) if !self.leader => mirror.host_origins.clone(),
            _ => self.session_origins(),
        };
        match dial::judge(origin, from_parent, &allowed, data) {
            dial::Verdict::NotForUs => Vec::new(),
            dial::Verdict::Ignored(reason) => {
                self.ignored_requests += 1;
                self.rendered(vec![Effect::Warn(format!(
                    "ignored a click-to-dial request: {reason}"
                ))])
            }
            dial::Verdict::Dial(number) => self.act(UiAction::Dial { number }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::call;
    use crate::state::Problem;
    use cti_protocol::{CallCommand, CallState};
    use wasm_bindgen_test::wasm_bindgen_test;

    const HOST: &str = "https://t.crm.cloud.sap";

    /// A token naming alice; only its claims are read.
    fn token() -> String {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"sub":"alice@example.com"}"#);
        format!("header.{claims}.signature")
    }

    fn framed() -> Frame {
        Frame {
            framed: true,
            ancestor_origin: Some(HOST.to_owned()),
            referrer: None,
        }
    }

    fn welcome() -> Msg {
        Msg::Server(Box::new(ServerMessage::Welcome {
            agent: "alice@example.com".into(),
            tenant: "t1".into(),
            seq: 0,
            heartbeat_secs: 20,
            host_origins: vec!["https://*.crm.cloud.sap".into()],
            dispositions: vec!["Interested".into()],
            custom_1: true,
            controls: Control::ALL.to_vec(),
        }))
    }

    fn ringing(seq: u64, id: &str) -> Msg {
        Msg::Server(Box::new(ServerMessage::Call {
            seq,
            call: call(id, CallState::Ringing),
        }))
    }

    fn command(id: &str) -> UiAction {
        UiAction::Command {
            call_id: id.into(),
            command: CallCommand::Answer,
        }
    }

    /// Each effect's kind, which is what the order rules are about.
    fn kinds(effects: &[Effect]) -> Vec<&'static str> {
        effects
            .iter()
            .map(|effect| match effect {
                Effect::JoinTabs { .. } => "join",
                Effect::Send(_) => "send",
                Effect::PostHost { .. } => "post",
                Effect::Persist { .. } => "persist",
                Effect::Broadcast(TabMessage::Hello) => "hello",
                Effect::Broadcast(TabMessage::Mirror { .. }) => "mirror",
                Effect::Broadcast(TabMessage::Action { .. }) => "forward",
                Effect::Broadcast(TabMessage::Election { .. }) => "election",
                Effect::Connect { .. } => "connect",
                Effect::Disconnect => "disconnect",
                Effect::RetryNow => "retry",
                Effect::Navigate(_) => "navigate",
                Effect::OpenV2Connect { .. } => "v2_connect",
                Effect::ForgetToken => "forget",
                Effect::Render(_) => "render",
                Effect::Warn(_) => "warn",
                Effect::Info(_) => "info",
            })
            .collect()
    }

    /// The view of the last render.
    fn rendered(effects: &[Effect]) -> ViewModel {
        effects
            .iter()
            .rev()
            .find_map(|effect| match effect {
                Effect::Render(view) => Some((**view).clone()),
                _ => None,
            })
            .expect("renders")
    }

    fn problem(effects: &[Effect]) -> Option<Problem> {
        rendered(effects).problem
    }

    /// A tab that joined its group and leads it, welcomed by the relay.
    fn leader() -> Model {
        let mut model = Model::new(framed());
        assert_eq!(
            model.update(Msg::Start {
                token: Some(token())
            }),
            vec![Effect::JoinTabs {
                rep: "alice@example.com".into()
            }]
        );
        let effects = model.update(Msg::Lead {
            posted: PostedSet::default(),
            history: History::default(),
        });
        assert_eq!(kinds(&effects), vec!["connect", "render"]);
        assert_eq!(
            effects[0],
            Effect::Connect { token: token() },
            "the tab's own token"
        );
        let effects = model.update(Msg::Joined {
            drafts: Drafts::default(),
        });
        assert_eq!(kinds(&effects), vec!["mirror", "render"]);
        model.update(welcome());
        model
    }

    /// A tab that joined its group while another leads.
    fn follower() -> Model {
        let mut model = Model::new(framed());
        model.update(Msg::Start {
            token: Some(token()),
        });
        let effects = model.update(Msg::Joined {
            drafts: Drafts::default(),
        });
        assert_eq!(kinds(&effects), vec!["hello", "render"], "asks for a view");
        assert_eq!(rendered(&effects), ViewModel::default(), "waits for it");
        model
    }

    #[wasm_bindgen_test]
    fn the_posted_set_is_stored_before_the_host_hears() {
        let mut model = leader();
        let effects = model.update(ringing(1, "c1"));
        assert_eq!(kinds(&effects), vec!["persist", "post", "mirror", "render"]);
        let Effect::Persist { key, json, .. } = &effects[0] else {
            panic!("persists first");
        };
        assert_eq!(key, "cti.posted:alice@example.com");
        assert!(
            PostedSet::from_json(json)
                .expect("reads")
                .contains("c1", cti_protocol::host::HostAction::Notify)
        );
        let Effect::PostHost { origin, message } = &effects[1] else {
            panic!("then posts");
        };
        assert_eq!(origin, HOST);
        assert_eq!(message.payload.action, "NOTIFY");
        // The same message again: nothing to store, nothing to post.
        assert_eq!(
            kinds(&model.update(ringing(1, "c1"))),
            vec!["mirror", "render"]
        );
        assert_eq!(model.last_seq(), Some(1));
    }

    #[wasm_bindgen_test]
    fn a_page_outside_an_allowed_host_stores_but_posts_nothing() {
        let mut model = Model::new(Frame {
            framed: true,
            ancestor_origin: Some("https://evil.example".into()),
            referrer: None,
        });
        model.update(Msg::Start {
            token: Some(token()),
        });
        model.update(Msg::Lead {
            posted: PostedSet::default(),
            history: History::default(),
        });
        model.update(Msg::Joined {
            drafts: Drafts::default(),
        });
        let effects = model.update(welcome());
        let warning = rendered(&effects).host_warning.expect("warns");
        assert_eq!(warning.reason, "origin-not-allowed");
        assert_eq!(
            kinds(&model.update(ringing(1, "c1"))),
            vec!["persist", "mirror", "render"]
        );
    }

    #[wasm_bindgen_test]
    fn a_page_without_a_token_is_signed_out_and_alone() {
        let mut model = Model::new(Frame::default());
        let effects = model.update(Msg::Start { token: None });
        assert_eq!(kinds(&effects), vec!["render"]);
        assert_eq!(rendered(&effects).status.data_state(), "signed_out");
        // A click has no connection to go out on: it is tried, and reported.
        let effects = model.update(Msg::Ui(command("c1")));
        assert_eq!(kinds(&effects), vec!["send"]);
        let Effect::Send(message) = effects[0].clone() else {
            panic!("sends");
        };
        let effects = model.update(Msg::Sent {
            message,
            delivered: false,
        });
        assert_eq!(
            problem(&effects).map(|p| p.code),
            Some("not_connected".to_owned())
        );
        assert_eq!(
            kinds(&model.update(Msg::Ui(UiAction::ConnectV2))),
            vec!["render"],
            "no token to connect V2 with"
        );
        assert_eq!(
            problem(&model.update(Msg::Ui(UiAction::DismissProblem))),
            None
        );
    }

    #[wasm_bindgen_test]
    fn a_command_waits_when_it_went_out_and_is_reported_when_not() {
        let mut model = leader();
        model.update(ringing(1, "c1"));
        let effects = model.update(Msg::Ui(command("c1")));
        let message = ClientMessage::Command {
            call_id: "c1".into(),
            command: CallCommand::Answer,
        };
        assert_eq!(effects, vec![Effect::Send(message.clone())]);
        let effects = model.update(Msg::Sent {
            message: message.clone(),
            delivered: true,
        });
        assert!(rendered(&effects).calls[0].pending);
        assert_eq!(problem(&effects), None);

        let mut model = leader();
        model.update(ringing(1, "c1"));
        let effects = model.update(Msg::Sent {
            message,
            delivered: false,
        });
        assert!(!rendered(&effects).calls[0].pending);
        let problem = problem(&effects).expect("reported");
        assert_eq!(problem.code, ErrorCode::NotConnected.as_str());
        assert_eq!(problem.message, NOT_CONNECTED);
        // A number that was not dialled says so.
        let effects = model.update(Msg::Sent {
            message: ClientMessage::Dial {
                number: "+41441234567".into(),
            },
            delivered: false,
        });
        assert_eq!(
            rendered(&effects).problem.map(|p| p.message),
            Some(NOT_DIALLED.to_owned())
        );
    }

    #[wasm_bindgen_test]
    fn a_follower_shows_the_leader_view_and_sends_its_clicks_there() {
        let mut leader = leader();
        let effects = leader.update(ringing(1, "c1"));
        let mirror = effects
            .iter()
            .find_map(|effect| match effect {
                Effect::Broadcast(message @ TabMessage::Mirror { .. }) => Some(message.clone()),
                _ => None,
            })
            .expect("the leader sends its view");

        let mut follower = follower();
        let effects = follower.update(Msg::Tab(mirror));
        assert_eq!(kinds(&effects), vec!["render"], "a follower sends no view");
        let view = rendered(&effects);
        assert_eq!(view, leader.view());
        assert_eq!(view.calls.len(), 1);

        // Its clicks go to the leader, which carries them out.
        let effects = follower.update(Msg::Ui(command("c1")));
        assert_eq!(
            effects,
            vec![Effect::Broadcast(TabMessage::Action {
                action: command("c1")
            })]
        );
        let Effect::Broadcast(forwarded) = effects[0].clone() else {
            panic!("forwards");
        };
        assert_eq!(kinds(&leader.update(Msg::Tab(forwarded))), vec!["send"]);
        // A leader ignores another tab's view; a follower ignores clicks meant for a leader.
        assert_eq!(
            kinds(&follower.update(Msg::Tab(TabMessage::Action {
                action: command("c1")
            }))),
            vec!["render"]
        );
    }

    #[wasm_bindgen_test]
    fn notes_are_drafts_every_tab_writes_and_reads() {
        let mut follower = follower();
        let mut leader = leader();
        leader.update(ringing(1, "c1"));
        let Some(Effect::Broadcast(mirror)) = leader
            .update(Msg::Tab(TabMessage::Hello))
            .into_iter()
            .find(|effect| matches!(effect, Effect::Broadcast(TabMessage::Mirror { .. })))
        else {
            panic!("a leader answers hello with its view");
        };
        follower.update(Msg::Tab(mirror));
        // Typed in the follower: stored and shown there, not sent to the leader.
        let effects = follower.update(Msg::Ui(UiAction::EditNotes {
            call_id: "c1".into(),
            text: "Wants a quote".into(),
        }));
        assert_eq!(kinds(&effects), vec!["persist", "render"]);
        let Effect::Persist { key, json, .. } = &effects[0] else {
            panic!("persists");
        };
        assert_eq!(key, "cti.notes:alice@example.com");
        assert_eq!(rendered(&effects).calls[0].notes, "Wants a quote");
        // The leader hears of it through storage.
        let effects = leader.update(Msg::Drafts(Drafts::from_json(json)));
        assert_eq!(rendered(&effects).calls[0].notes, "Wants a quote");
    }

    #[wasm_bindgen_test]
    fn a_leader_that_steps_down_disconnects_and_asks_for_the_view() {
        let mut model = leader();
        let effects = model.update(Msg::Follow);
        assert_eq!(kinds(&effects), vec!["disconnect", "hello", "render"]);
        assert_eq!(rendered(&effects), ViewModel::default());
        // Leading again starts over from the posted set the tabs share, and reconnects.
        model.update(ringing(1, "c1"));
        let effects = model.update(Msg::Lead {
            posted: PostedSet::default(),
            history: History::default(),
        });
        assert_eq!(kinds(&effects), vec!["connect", "mirror", "render"]);
        assert_eq!(model.last_seq(), None, "the next hello asks for a snapshot");
        assert_eq!(rendered(&effects).status, ConnectionStatus::Connecting);
    }

    #[wasm_bindgen_test]
    fn a_refused_token_is_forgotten_before_the_panel_says_so() {
        let mut model = leader();
        let effects = model.update(Msg::Status(ConnectionStatus::SignedOut {
            reason: SignedOut::Refused,
        }));
        assert_eq!(kinds(&effects), vec!["forget", "mirror", "render"]);
    }

    /// Review F8: while the relay cannot check tokens (it closed with 1013 and the connection
    /// is retrying) the token is kept: no effect forgets it, only a refusal does.
    #[wasm_bindgen_test]
    fn a_connection_retrying_after_a_try_again_close_keeps_the_token() {
        let mut model = leader();
        let effects = model.update(Msg::Status(ConnectionStatus::Reconnecting {
            retry_at_ms: 1_000,
            reason: crate::connection::close_reason(1013, "cannot check the token now"),
        }));
        assert!(
            !kinds(&effects).contains(&"forget"),
            "{:?}",
            kinds(&effects)
        );
        assert_eq!(kinds(&effects), vec!["mirror", "render"]);
    }

    #[wasm_bindgen_test]
    fn click_to_dial_is_counted_when_refused_and_dialled_when_allowed() {
        let request = r#"{"Direction":"OUT","PhoneNumber":"+41 44 123 45 67"}"#;
        let mut model = leader();
        let effects = model.update(Msg::HostPosted {
            origin: "https://evil.example".into(),
            from_parent: true,
            data: request.into(),
        });
        assert_eq!(kinds(&effects), vec!["warn", "mirror", "render"]);
        assert_eq!(rendered(&effects).ignored_host_requests, 1);
        assert_eq!(
            model.update(Msg::HostPosted {
                origin: HOST.into(),
                from_parent: true,
                data: r#"{"hello":"world"}"#.into(),
            }),
            Vec::new(),
            "not a request at all"
        );
        assert_eq!(
            model.update(Msg::HostPosted {
                origin: HOST.into(),
                from_parent: true,
                data: request.into(),
            }),
            vec![Effect::Send(ClientMessage::Dial {
                number: "+41 44 123 45 67".into()
            })]
        );
        // A follower judges with the origins its leader learnt, and hands the number over.
        let mut follower = follower();
        let refused = follower.update(Msg::HostPosted {
            origin: HOST.into(),
            from_parent: true,
            data: request.into(),
        });
        assert_eq!(kinds(&refused), vec!["warn", "render"], "no origins yet");
        follower.update(Msg::Tab(TabMessage::Mirror {
            mirror: Box::new(Mirror {
                view: ViewModel::default(),
                host_origins: vec!["https://*.crm.cloud.sap".into()],
            }),
        }));
        assert_eq!(
            kinds(&follower.update(Msg::HostPosted {
                origin: HOST.into(),
                from_parent: true,
                data: request.into(),
            })),
            vec!["forward"]
        );
    }

    #[wasm_bindgen_test]
    fn sign_in_and_v2_connect_happen_in_the_tab_clicked() {
        let mut model = follower();
        assert_eq!(
            model.update(Msg::Ui(UiAction::SignIn)),
            vec![Effect::Navigate(SIGN_IN_PATH)]
        );
        assert_eq!(
            model.update(Msg::Ui(UiAction::ConnectV2)),
            vec![Effect::OpenV2Connect { token: token() }]
        );
        let mut model = leader();
        model.update(Msg::Ui(UiAction::ConnectV2));
        let effects = model.update(Msg::V2Connect { opened: false });
        assert_eq!(
            problem(&effects).map(|p| p.code),
            Some(ErrorCode::V2Connect.as_str().to_owned())
        );
    }

    #[wasm_bindgen_test]
    fn a_finished_call_joins_the_history_the_leader_stores_and_every_tab_shows() {
        let mut model = leader();
        assert_eq!(
            kinds(&model.update(ringing(1, "c1"))),
            vec!["persist", "post", "mirror", "render"]
        );
        let mut missed = call("c1", CallState::Ended);
        missed.end_reason = Some(cti_protocol::EndReason::Missed);
        let effects = model.update(Msg::Server(Box::new(ServerMessage::Call {
            seq: 2,
            call: missed.clone(),
        })));
        let stored = effects
            .iter()
            .find_map(|effect| match effect {
                Effect::Persist { key, json, .. } if key == "cti.history:alice@example.com" => {
                    Some(json.clone())
                }
                _ => None,
            })
            .expect("the history is stored");
        let stored = History::from_json(&stored).expect("reads");
        assert_eq!(stored.entries().len(), 1);
        assert_eq!(stored.entries()[0].outcome_name(), "missed");
        let view = rendered(&effects);
        assert_eq!(view.history, stored.entries());

        // A stale view of the same call (a replay already applied) changes nothing.
        let mut stale = missed.clone();
        stale.end_reason = Some(cti_protocol::EndReason::Completed);
        let effects = model.update(Msg::Server(Box::new(ServerMessage::Call {
            seq: 2,
            call: stale,
        })));
        assert_eq!(kinds(&effects), vec!["mirror", "render"]);
        assert_eq!(rendered(&effects).history[0].outcome_name(), "missed");

        // A follower shows the leader's history, and its call back goes to the leader.
        let mirror = effects
            .iter()
            .find_map(|effect| match effect {
                Effect::Broadcast(message @ TabMessage::Mirror { .. }) => Some(message.clone()),
                _ => None,
            })
            .expect("mirrored");
        let mut follower = follower();
        assert_eq!(
            rendered(&follower.update(Msg::Tab(mirror))).history.len(),
            1
        );
        let dial = UiAction::Dial {
            number: view.history[0].number.clone(),
        };
        assert_eq!(
            follower.update(Msg::Ui(dial.clone())),
            vec![Effect::Broadcast(TabMessage::Action {
                action: dial.clone()
            })]
        );
        assert_eq!(
            model.update(Msg::Tab(TabMessage::Action { action: dial })),
            vec![Effect::Send(ClientMessage::Dial {
                number: "+41441234567".into()
            })]
        );

        // A new leader starts from what is stored.
        let mut next = Model::new(framed());
        next.update(Msg::Start {
            token: Some(token()),
        });
        let effects = next.update(Msg::Lead {
            posted: PostedSet::default(),
            history: stored,
        });
        assert_eq!(rendered(&effects).history.len(), 1);
    }

    #[wasm_bindgen_test]
    fn dismissing_and_retrying_are_the_leader_own() {
        let mut model = leader();
        model.update(Msg::Server(Box::new(ServerMessage::Call {
            seq: 1,
            call: call("c1", CallState::Ended),
        })));
        let effects = model.update(Msg::Ui(UiAction::Dismiss("c1".into())));
        assert!(rendered(&effects).calls.is_empty());
        assert_eq!(
            kinds(&model.update(Msg::Ui(UiAction::RetryNow))),
            vec!["retry", "mirror", "render"]
        );
    }
}
