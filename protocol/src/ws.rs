//! Messages on the widget's WebSocket, `GET /v1/agent/ws`.
//!
//! Text frames carry one JSON object each, tagged by `type`. The client opens with `hello`; the
//! relay answers `welcome` and then pushes `call` messages whenever a call of that rep changes.
//! Each `call` message carries the whole call view rather than a delta, so a widget that missed
//! one message is repaired by the next, and every `call` carries a per-rep sequence number so a
//! reconnecting widget can ask for what it missed.

use serde::{Deserialize, Serialize};

use crate::event::{Direction, EndReason};

/// What the widget sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// Must be the first frame. `last_seq` is the highest `seq` the widget has applied, or null
    /// on a first connection.
    Hello {
        token: String,
        last_seq: Option<u64>,
    },
    /// A call control for one of the rep's calls.
    Command {
        call_id: String,
        #[serde(flatten)]
        command: CallCommand,
    },
    /// Click-to-dial: call `number` (as V2 or the rep wrote it; the relay normalizes it with the
    /// tenant's region) from the rep's line.
    Dial { number: String },
    /// The rep says the caller is another of the call's matches: it becomes the call's record,
    /// and the relay remembers the choice for this rep and number.
    ChooseMatch { call_id: String, record_id: String },
    /// The rep's notes and disposition for one of their calls, during or after it. The whole
    /// text each time (the relay keeps the last), so a resend after a reconnect is harmless.
    SaveWrapUp {
        call_id: String,
        notes: String,
        #[serde(default)]
        disposition: Option<String>,
    },
    /// Try writing a call's activity again now (after V2 refused it and the cause was fixed).
    RetryActivity { call_id: String },
    /// The rep confirms the caller agreed to the recording (where the policy requires it).
    ConfirmConsent { call_id: String },
    /// Find V2 records by name (accounts, contacts, individual customers) for the rep to pick.
    /// The relay answers `search_results` with the same `request_id`, so the widget can drop
    /// answers to searches it no longer shows. Limits: [`crate::lookup`].
    SearchRecords { request_id: u64, query: String },
    /// The rep picked a record found by search: it becomes the call's record, as with
    /// `choose_match`, after the relay has read it from V2.
    PickRecord {
        call_id: String,
        kind: RecordKind,
        record_id: String,
    },
    /// Create a record for the call's (unknown) caller in V2, carrying the call's number, and
    /// make it the call's record. The relay answers `record_created`, or an error naming the field.
    CreateRecord {
        call_id: String,
        kind: RecordKind,
        fields: NewRecordFields,
    },
    /// Look the call's number up again, in V2 itself: for a record created in V2 meanwhile.
    RefreshMatches { call_id: String },
    /// Application-level heartbeat (browsers cannot send WebSocket ping frames).
    Ping {
        #[serde(default)]
        nonce: u64,
    },
}

/// A call control, forwarded by the relay to the provider that owns the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallCommand {
    Answer,
    Decline,
    Hold,
    Resume,
    Hangup,
    /// Blind transfer: the call goes to `target` at once.
    Transfer {
        target: String,
    },
    /// Consult transfer, step one: the caller is held and `target` is rung on the same call.
    Consult {
        target: String,
    },
    /// Consult transfer, step two: the call goes to the consulted rep.
    CompleteTransfer,
    /// The consultation is over without a transfer: the consulted rep drops off, the caller
    /// is back with the rep.
    CancelConsult,
}

impl CallCommand {
    /// The action's wire name, as used in the `action` tag and in provider requests.
    pub fn name(&self) -> &'static str {
        match self {
            CallCommand::Answer => "answer",
            CallCommand::Decline => "decline",
            CallCommand::Hold => "hold",
            CallCommand::Resume => "resume",
            CallCommand::Hangup => "hangup",
            CallCommand::Transfer { .. } => "transfer",
            CallCommand::Consult { .. } => "consult",
            CallCommand::CompleteTransfer => "complete_transfer",
            CallCommand::CancelConsult => "cancel_consult",
        }
    }
}

/// A kind of call control a phone system lets the relay perform. Not every provider has every
/// one (Microsoft Graph has no hold; a SIP PBX's calls are answered and transferred on the
/// phone), so the relay names the tenant's in `welcome` and the widget offers only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Control {
    /// Answer a ringing call.
    Answer,
    /// Decline a ringing call.
    Decline,
    /// Hold and resume.
    Hold,
    /// Hang up (or cancel an outbound call that still rings).
    Hangup,
    /// Blind transfer.
    Transfer,
    /// Consult transfer: consult, then complete or cancel.
    Consult,
    /// Click-to-dial.
    Dial,
    /// A control a newer relay names that this build does not know: ignored.
    #[serde(other)]
    Unknown,
}

impl Control {
    /// Every control this build knows: what a provider offers unless it says otherwise, and
    /// what an older relay's `welcome` (without `controls`) is taken to mean.
    pub const ALL: &'static [Control] = &[
        Control::Answer,
        Control::Decline,
        Control::Hold,
        Control::Hangup,
        Control::Transfer,
        Control::Consult,
        Control::Dial,
    ];

    /// The control a command belongs to: resume is part of hold, completing or cancelling a
    /// consultation part of consult.
    pub fn of(command: &CallCommand) -> Control {
        match command {
            CallCommand::Answer => Control::Answer,
            CallCommand::Decline => Control::Decline,
            CallCommand::Hold | CallCommand::Resume => Control::Hold,
            CallCommand::Hangup => Control::Hangup,
            CallCommand::Transfer { .. } => Control::Transfer,
            CallCommand::Consult { .. }
            | CallCommand::CompleteTransfer
            | CallCommand::CancelConsult => Control::Consult,
        }
    }

    /// The control's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            Control::Answer => "answer",
            Control::Decline => "decline",
            Control::Hold => "hold",
            Control::Hangup => "hangup",
            Control::Transfer => "transfer",
            Control::Consult => "consult",
            Control::Dial => "dial",
            Control::Unknown => "unknown",
        }
    }

    fn all() -> Vec<Control> {
        Control::ALL.to_vec()
    }
}

/// What the relay sends.
#[expect(
    clippy::large_enum_variant,
    reason = "`Call` dwarfs the other variants, but messages are serialized right after \
              construction and never stored in bulk, so boxing would buy nothing"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The answer to a valid `hello`. `seq` is the rep's newest sequence number at this moment;
    /// `heartbeat_secs` tells the widget how often to ping.
    Welcome {
        agent: String,
        tenant: String,
        seq: u64,
        heartbeat_secs: u64,
        /// Origin patterns of the V2 host windows the widget may post CTI payloads to and accept
        /// click-to-dial requests from, e.g. `https://*.crm.cloud.sap`.
        #[serde(default)]
        host_origins: Vec<String>,
        /// The tenant's call dispositions, in the order the widget offers them.
        #[serde(default)]
        dispositions: Vec<String>,
        /// Whether `NOTIFY` and `ACCEPT` carry `Custom_1` (the chosen record's display id) for
        /// V2's customer identification by call attached data. Which identifier V2 matches there
        /// is not published, so it is the tenant's choice; absent (an older relay) leaves V2's
        /// own search by `ANI`.
        #[serde(default)]
        custom_1: bool,
        /// The call controls the tenant's phone system offers through the relay; absent (an
        /// older relay) means all of them.
        #[serde(default = "Control::all")]
        controls: Vec<Control>,
    },
    /// A call of this rep changed (or is replayed after a reconnect).
    Call { seq: u64, call: CallView },
    /// Whether V2 holds the rep's own sign-in, for tenants whose activities are written with
    /// it: sent after `welcome` and again whenever it changes. While `connected` is false the
    /// rep's activities wait, and the widget offers "Connect V2" (a form posting the rep's
    /// token to `POST /v1/agent/v2-connect` in a new window).
    V2SignIn { connected: bool },
    Pong {
        #[serde(default)]
        nonce: u64,
    },
    /// The answer to `search_records`: at most [`crate::lookup::RESULTS_PER_KIND`] records of
    /// each kind, best first within a kind (V2's ranking).
    SearchResults {
        request_id: u64,
        records: Vec<Match>,
    },
    /// The answer to `create_record`: the new record, now the call's record, and a link that
    /// opens it in V2 where one is known.
    RecordCreated {
        call_id: String,
        record: Match,
        #[serde(default)]
        link: Option<String>,
    },
    /// Something the widget asked for failed; the connection stays open. `code` is one of
    /// [`crate::ErrorCode`]'s strings.
    Error { code: String, message: String },
}

impl ServerMessage {
    /// A refusal with one of the codes both ends know.
    pub fn error(code: crate::ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code: code.as_str().to_owned(),
            message: message.into(),
        }
    }
}

/// Where a call stands, from the rep's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallState {
    Ringing,
    Connected,
    Held,
    Transferred,
    Ended,
}

impl CallState {
    /// True once nothing more can happen to the call on this rep's side.
    pub fn is_final(self) -> bool {
        matches!(self, CallState::Ended | CallState::Transferred)
    }
}

/// Everything the widget needs to show one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    pub id: String,
    pub direction: Direction,
    pub state: CallState,
    /// E.164 when the number could be normalized, otherwise as the provider sent it.
    pub from: String,
    pub to: String,
    /// The remote party's number formatted for people (international format), for the card.
    #[serde(default)]
    pub remote_display: String,
    /// An extension the provider attached to the remote number, shown but never matched on.
    #[serde(default)]
    pub remote_extension: Option<String>,
    pub agent: String,
    /// Every record that carries the remote number, best first.
    pub matches: Vec<Match>,
    /// The record to pop: the first match, or null for an unknown caller.
    pub pop: Option<Match>,
    /// RFC 3339 times from the source's clock.
    pub started_at: String,
    #[serde(default)]
    pub answered_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub end_reason: Option<EndReason>,
    /// When the relay received the first event of this call (Unix milliseconds), so that
    /// ring-to-pop can be measured end to end.
    #[serde(default)]
    pub received_at_ms: u64,
    #[serde(default)]
    pub recording_url: Option<String>,
    /// On a transferred call's new leg: who handed it over and their notes so far.
    #[serde(default)]
    pub handover: Option<Handover>,
    /// While this rep consults a colleague about the call: who, and how far their leg is.
    #[serde(default)]
    pub consult: Option<ConsultView>,
    /// The rep's after-call work on this leg, and where the call's activity in V2 stands.
    #[serde(default)]
    pub wrap_up: WrapUp,
    /// How often the call came back to this rep after their leg had ended (transferred back to
    /// them, consulted again). Each return is a new ring for the rep and for V2.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub returns: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The colleague a rep is consulting before completing a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultView {
    pub agent: String,
    pub state: CallState,
}

/// The context a rep receives with a transferred call (the caller's matches and chosen record
/// come in the view itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The rep who had the call before.
    pub from: String,
    /// Their notes, as last saved.
    #[serde(default)]
    pub notes: String,
}

/// What the rep adds to a call, and the fate of the phone-call activity it ends up in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WrapUp {
    /// The rep's notes as the relay last saved them (the widget keeps its draft until they match).
    #[serde(default)]
    pub notes: String,
    /// One of the tenant's dispositions (`welcome.dispositions`), or none yet.
    #[serde(default)]
    pub disposition: Option<String>,
    /// Where this call's activity stands in V2; none while the call is in progress.
    #[serde(default)]
    pub activity: Option<ActivityStatus>,
    /// Whether the call's recording needs the caller's consent, and who confirmed it.
    #[serde(default)]
    pub consent: Option<Consent>,
}

/// Recording consent for one call, under the tenant's jurisdiction policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The caller must agree before the recording may be kept with the call.
    pub required: bool,
    /// The country whose rule decided (ISO 3166).
    pub jurisdiction: String,
    /// The rep who confirmed the caller agreed, and when (RFC 3339).
    #[serde(default)]
    pub confirmed_by: Option<String>,
    #[serde(default)]
    pub confirmed_at: Option<String>,
}

impl Consent {
    /// Whether the recording link may be stored.
    pub fn allows_recording(&self) -> bool {
        !self.required || self.confirmed_by.is_some()
    }
}

/// Where a finished call's phone-call activity stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityStatus {
    pub state: ActivityState,
    /// The activity's V2 id and display id once V2 has it.
    #[serde(default)]
    pub v2_id: Option<String>,
    #[serde(default)]
    pub display_id: Option<String>,
    /// A link that opens the activity in V2, once logged.
    #[serde(default)]
    pub link: Option<String>,
    /// Why the last attempt failed (V2's own message where it sent one).
    #[serde(default)]
    pub reason: Option<String>,
}

impl ActivityStatus {
    /// Queued, nothing known of V2's record yet.
    pub fn pending() -> Self {
        ActivityStatus {
            state: ActivityState::Pending,
            v2_id: None,
            display_id: None,
            link: None,
            reason: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityState {
    /// Queued or being retried (V2 busy or away); it will be written without anyone's help.
    Pending,
    /// In V2; later notes go to the same activity.
    Logged,
    /// V2 refused it (a validation error); it waits for the rep's retry after the cause is fixed.
    Failed,
}

impl CallView {
    /// The number of the party on the other end of the line.
    pub fn remote(&self) -> &str {
        match self.direction {
            Direction::Inbound => &self.from,
            Direction::Outbound => &self.to,
        }
    }
}

/// What the rep typed for a new record. Which fields count depends on the kind: a person (contact,
/// individual customer) has a given and a family name, an account a name; a contact may belong to
/// an account the rep picked through the search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewRecordFields {
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    /// An account's name (V2's `firstLineName`).
    #[serde(default)]
    pub name: String,
    /// A contact's account (its V2 id).
    #[serde(default)]
    pub account_id: Option<String>,
}

/// The V2 record types a number can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordKind {
    Contact,
    IndividualCustomer,
    Account,
}

impl RecordKind {
    /// How people call this kind of record in the card.
    pub fn label(self) -> &'static str {
        match self {
            RecordKind::Contact => "Contact",
            RecordKind::IndividualCustomer => "Individual customer",
            RecordKind::Account => "Account",
        }
    }
}

/// A V2 record that carries the caller's number, with what the caller card shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    pub kind: RecordKind,
    /// The V2 UUID.
    pub id: String,
    #[serde(default)]
    pub display_id: String,
    pub name: String,
    /// The account the record belongs to (for a contact) or is (for an account).
    #[serde(default)]
    pub account: Option<AccountRef>,
    #[serde(default)]
    pub open_opportunities: Vec<Opportunity>,
    #[serde(default)]
    pub last_interactions: Vec<Interaction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub amount: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    /// For example `phone_call`, `visit`, `email`.
    pub kind: String,
    pub subject: String,
    /// RFC 3339.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_with_null_last_seq() {
        let msg: ClientMessage =
            serde_json::from_str(r#"{"type":"hello","token":"t","last_seq":null}"#)
                .expect("parses");
        assert_eq!(
            msg,
            ClientMessage::Hello {
                token: "t".into(),
                last_seq: None
            }
        );
    }

    #[test]
    fn command_is_flat_on_the_wire() {
        let msg = ClientMessage::Command {
            call_id: "c1".into(),
            command: CallCommand::Transfer {
                target: "bob@example.com".into(),
            },
        };
        let json = serde_json::to_value(&msg).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"type":"command","call_id":"c1","action":"transfer","target":"bob@example.com"})
        );
        let back: ClientMessage = serde_json::from_value(json).expect("parses");
        assert_eq!(back, msg);
        let hold: ClientMessage =
            serde_json::from_str(r#"{"type":"command","call_id":"c1","action":"hold"}"#)
                .expect("parses");
        assert_eq!(
            hold,
            ClientMessage::Command {
                call_id: "c1".into(),
                command: CallCommand::Hold
            }
        );
    }

    #[test]
    fn a_welcome_names_the_controls_and_an_older_one_means_all() {
        let older: ServerMessage = serde_json::from_str(
            r#"{"type":"welcome","agent":"a","tenant":"t","seq":0,"heartbeat_secs":20}"#,
        )
        .expect("parses");
        let ServerMessage::Welcome { controls, .. } = older else {
            panic!("a welcome: {older:?}");
        };
        assert_eq!(controls, Control::ALL);

        let newer: ServerMessage = serde_json::from_str(
            r#"{"type":"welcome","agent":"a","tenant":"t","seq":0,"heartbeat_secs":20,
                "controls":["hangup","transfer","record"]}"#,
        )
        .expect("an unknown control does not spoil the welcome");
        let ServerMessage::Welcome { controls, .. } = newer else {
            panic!("a welcome: {newer:?}");
        };
        assert_eq!(
            controls,
            [Control::Hangup, Control::Transfer, Control::Unknown]
        );
    }

    #[test]
    fn resume_and_the_consultation_steps_belong_to_their_control() {
        assert_eq!(Control::of(&CallCommand::Resume), Control::Hold);
        assert_eq!(
            Control::of(&CallCommand::CompleteTransfer),
            Control::Consult
        );
        assert_eq!(Control::of(&CallCommand::CancelConsult), Control::Consult);
        assert_eq!(
            Control::of(&CallCommand::Transfer { target: "b".into() }),
            Control::Transfer
        );
        for control in Control::ALL {
            assert_eq!(
                serde_json::to_value(control).expect("serializes"),
                control.name()
            );
        }
    }

    #[test]
    fn the_sign_in_status_is_named_for_v2() {
        let json =
            serde_json::to_value(ServerMessage::V2SignIn { connected: false }).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"type":"v2_sign_in","connected":false})
        );
    }

    #[test]
    fn a_new_record_travels_with_its_kind_and_fields() {
        let msg: ClientMessage = serde_json::from_value(serde_json::json!({
            "type": "create_record", "call_id": "c1", "kind": "contact",
            "fields": {"given_name": "Anna", "family_name": "Muster"}}))
        .expect("parses");
        let ClientMessage::CreateRecord {
            call_id,
            kind,
            fields,
        } = msg
        else {
            panic!("a create: {msg:?}");
        };
        assert_eq!((call_id.as_str(), kind), ("c1", RecordKind::Contact));
        assert_eq!(fields.family_name, "Muster");
        assert_eq!(fields.account_id, None);
        assert!(
            serde_json::from_str::<ClientMessage>(
                r#"{"type":"create_record","call_id":"c1","kind":"lead","fields":{}}"#
            )
            .is_err(),
            "a kind the relay cannot create"
        );
        let search: ClientMessage =
            serde_json::from_str(r#"{"type":"search_records","request_id":3,"query":"Anna"}"#)
                .expect("parses");
        assert_eq!(
            search,
            ClientMessage::SearchRecords {
                request_id: 3,
                query: "Anna".into()
            }
        );
    }

    #[test]
    fn unknown_message_type_is_an_error() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"launch"}"#).is_err());
    }
}
