//! A simulated Webex Calling org: the OAuth token endpoint (refresh-token grant of an
//! integration), the people directory, `telephony_calls` webhooks and their signed deliveries,
//! and the call-control API under `/v1/telephony/calls`.
//!
//! Everything is served under `/sim/webex`, so the relay is configured with one API base,
//! `{sim}/sim/webex`, exactly as it would be with `https://webexapis.com`. The shapes (paths,
//! field names, the `X-Spark-Signature` header) follow the provider reference's section 4.4;
//! where this module decides something the reference does not say, the code says it is inferred.
//!
//! Simulator controls (tests and the demo): `POST /sim/webex/calls {"from","agent","also"?}`
//! rings a rep (and the reps in `also` at once, a hunt group: when one answers, the others' calls
//! end with `completedElsewhere`) and answers `201 {"call_id"}` (the callSessionId) once the relay took the `received` event;
//! `POST /sim/webex/calls/{id}/hangup` is the caller (or far end) hanging up;
//! `POST /sim/webex/calls/{id}/answer` is the far end of an outbound call answering;
//! `POST /sim/webex/calls/{id}/transfer {"agent","destination"?,"reordered"?}` is the rep
//! transferring the call on their phone (the events of a transfer, no API request): blind to
//! `destination` (a colleague, or a number outside, which Webex tells the rep's call as
//! `forwarded`), or without it the consultation the rep made on the phone (attended);
//! `"reordered": true` delivers the transfer's two events the other way round (the rep's call
//! disconnected first), each with the time it happened;
//! `POST /sim/webex/calls/{id}/consult {"agent","destination","reordered"?}` is the rep
//! consulting on their phone: the call held, a call placed to `destination` (no API request);
//! `"reordered": true` delivers the placed call's events before the hold's;
//! `GET /sim/webex/calls` lists the calls' legs, `GET /sim/webex/webhooks` the webhooks;
//! `POST /sim/webex/faults` with `{"delete_webhooks":true}`, `{"revoke_tokens":true}` (every
//! access token issued so far answers 401), `{"duplicate":bool}` or `{"reorder":bool}`.

mod http;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::SimConfig;

pub use http::{WebexError, routes};

/// The refresh token the simulator accepts (a real one comes from an admin's consent in a
/// browser, once, and lives 90 days).
pub const DEMO_REFRESH_TOKEN: &str = "demo-webex-refresh-token";

/// The simulated org's id (base64 of a `ciscospark://` URI, as Webex's ids are).
pub fn org_id() -> String {
    spark_id("ORGANIZATION", "5f1b4c2a-0d7e-4a8b-9b64-1c6f2e0d0001")
}

/// A Webex-style id: `ciscospark://us/{kind}/{uuid}` in base64. Inferred: URL-safe without
/// padding, so the ids travel in paths unescaped (Webex's are plain base64 without padding).
pub fn spark_id(kind: &str, uuid: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("ciscospark://us/{kind}/{uuid}"))
}

/// One Webex Calling user of the org.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub extension: String,
    /// The user's work number (E.164).
    pub number: String,
}

/// The demo reps: alice (101), bob (102), carol (103), dave (104).
pub fn demo_people() -> Vec<Person> {
    ["alice", "bob", "carol", "dave"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let n = 101 + i;
            let mut chars = name.chars();
            let display = chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default();
            Person {
                id: spark_id("PEOPLE", &format!("00000000-0000-4000-8000-000000000{n}")),
                email: format!("{name}@example.com"),
                display_name: display,
                extension: n.to_string(),
                number: format!("+1408555{n:04}"),
            }
        })
        .collect()
}

/// A webhook as the org holds it.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) target_url: String,
    pub(crate) resource: String,
    pub(crate) event: String,
    pub(crate) secret: Option<String>,
    pub(crate) owned_by: String,
    pub(crate) created: String,
}

impl Webhook {
    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "targetUrl": self.target_url,
            "resource": self.resource, "event": self.event, "orgId": org_id(),
            "createdBy": demo_admin_id(), "appId": app_id(), "ownedBy": self.owned_by,
            "status": "active", "created": self.created,
        })
    }

    fn covers(&self, event: &str) -> bool {
        self.resource == "telephony_calls" && (self.event == "all" || self.event == event)
    }
}

/// The integration's admin (who granted the refresh token).
fn demo_admin_id() -> String {
    spark_id("PEOPLE", "00000000-0000-4000-8000-0000000000ad")
}

fn app_id() -> String {
    spark_id("APPLICATION", "00000000-0000-4000-8000-00000000a991")
}

/// One user's call (a leg): Webex gives each user their own `callId`; the legs of one call
/// share its `callSessionId`.
#[derive(Debug, Clone, Serialize)]
pub struct Leg {
    pub call_id: String,
    pub session: String,
    /// The person id of the user whose call this is.
    pub person: String,
    pub personality: String,
    /// alerting, connected, held, disconnected.
    pub state: String,
    pub remote_name: String,
    pub remote_number: String,
    /// internal or external.
    pub remote_call_type: String,
    pub created: String,
    /// Who handed the call to this user (a transfer), as `redirections[].redirectingParty`.
    pub redirecting: Option<Value>,
}

/// What the org holds that changes.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) webhooks: Vec<Webhook>,
    pub(crate) legs: Vec<Leg>,
}

/// One event and where it goes, with a way to tell the control waiting for the relay.
#[derive(Debug)]
struct Outgoing {
    body: Value,
    targets: Vec<(String, Option<String>)>,
    duplicate: bool,
    reorder: bool,
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

/// The simulated Webex org.
#[derive(Debug)]
pub struct Webex {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    token_ttl: AtomicU64,
    pub people: Vec<Person>,
    state: Mutex<State>,
    pub(crate) duplicate: AtomicBool,
    pub(crate) reorder: AtomicBool,
    http: reqwest::Client,
    queue: mpsc::UnboundedSender<Outgoing>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Outgoing>>>,
    /// Webhooks created so far (tests see a recreation by it).
    pub created_webhooks: AtomicU64,
}

/// Attempts per delivery (inferred: Webex retries a failed delivery; the schedule is ours).
const ATTEMPTS: u32 = 3;
/// How long the `reorder` fault holds an event back for the next to overtake it.
const REORDER_WINDOW: Duration = Duration::from_millis(150);

impl Webex {
    pub fn new(config: &SimConfig) -> Self {
        // A fresh connection per delivery, so a relay that restarted is reached as it is now.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let (queue, inbox) = mpsc::unbounded_channel();
        Webex {
            client_id: config.webex_client_id.clone(),
            client_secret: config.webex_client_secret.clone(),
            refresh_token: config.webex_refresh_token.clone(),
            token_ttl: AtomicU64::new(config.webex_token_ttl_secs),
            people: demo_people(),
            state: Mutex::new(State::default()),
            duplicate: AtomicBool::new(false),
            reorder: AtomicBool::new(false),
            http,
            queue,
            inbox: Mutex::new(Some(inbox)),
            created_webhooks: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub fn set_token_ttl(&self, secs: u64) {
        self.token_ttl.store(secs.max(1), Ordering::Relaxed);
    }

    pub(crate) fn issue_token(&self) -> (String, u64) {
        let token = format!("wx-{}", uuid::Uuid::new_v4().simple());
        let ttl = self.token_ttl.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut state = self.lock();
        state.tokens.retain(|_, exp| *exp > now);
        state
            .tokens
            .insert(token.clone(), now + Duration::from_secs(ttl));
        (token, ttl)
    }

    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    pub fn person_by_email(&self, email: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|p| p.email.eq_ignore_ascii_case(email))
    }

    pub fn person_by_id(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    /// A dialled destination that is one of the org's users: extension, work number or SIP
    /// address (`alice@example.com`).
    pub fn person_by_destination(&self, destination: &str) -> Option<&Person> {
        let d = destination.trim().trim_start_matches("sip:");
        self.people
            .iter()
            .find(|p| p.extension == d || p.number == d || p.email.eq_ignore_ascii_case(d))
    }

    /// The ids of the live webhooks.
    pub fn webhooks(&self) -> Vec<String> {
        self.lock().webhooks.iter().map(|w| w.id.clone()).collect()
    }

    /// Gives every live webhook `secret`, as if it had been registered with it before the
    /// receiver's secret changed (a rotation's overlap): deliveries are signed with it from now
    /// on. For tests; the number of webhooks changed.
    pub fn sign_webhooks_with(&self, secret: &str) -> usize {
        let mut state = self.lock();
        for webhook in &mut state.webhooks {
            webhook.secret = Some(secret.to_string());
        }
        state.webhooks.len()
    }

    /// The fault `delete_webhooks`: the org loses them (a user or admin deleted them, or Webex
    /// disabled them after failed deliveries); nothing is delivered, and reads answer 404.
    pub fn delete_webhooks(&self) -> usize {
        let mut state = self.lock();
        let n = state.webhooks.len();
        state.webhooks.clear();
        n
    }

    /// Every leg, live or ended.
    pub fn legs(&self) -> Vec<Leg> {
        self.lock().legs.clone()
    }

    /// The user's legs that have not ended.
    pub(crate) fn live_legs_of(&self, person: &str) -> Vec<Leg> {
        self.lock()
            .legs
            .iter()
            .filter(|l| l.person == person && l.state != "disconnected")
            .cloned()
            .collect()
    }

    /// `redirections` as Webex's call details have it (reason, redirectingParty). Inferred for
    /// a transfer: Webex's redirection reasons name none, so `unknown`.
    fn redirections(leg: &Leg) -> Option<Value> {
        leg.redirecting
            .as_ref()
            .map(|party| json!([{"reason": "unknown", "redirectingParty": party}]))
    }

    /// A leg as `GET /v1/telephony/calls` lists it.
    pub(crate) fn call_json(leg: &Leg) -> Value {
        let mut call = Self::call_json_plain(leg);
        if let (Some(redirections), Some(object)) = (Self::redirections(leg), call.as_object_mut())
        {
            object.insert("redirections".into(), redirections);
        }
        call
    }

    fn call_json_plain(leg: &Leg) -> Value {
        json!({
            "id": leg.call_id, "callSessionId": leg.session, "personality": leg.personality,
            "state": leg.state, "created": leg.created,
            "remoteParty": {"name": leg.remote_name, "number": leg.remote_number,
                            "privacyEnabled": false, "callType": leg.remote_call_type},
            "appearance": 1,
        })
    }

    /// Applies `change` to a leg, then sends its event (`eventType`, the webhook's `event`).
    /// None: no such leg.
    fn change(
        &self,
        call_id: &str,
        change: impl FnOnce(&mut Leg),
        event_type: &str,
        extra: Value,
    ) -> Option<oneshot::Receiver<Result<(), String>>> {
        let leg = {
            let mut state = self.lock();
            let leg = state.legs.iter_mut().find(|l| l.call_id == call_id)?;
            change(leg);
            leg.clone()
        };
        let webhook_event = match event_type {
            "received" | "originated" => "created",
            "disconnected" => "deleted",
            _ => "updated",
        };
        Some(self.emit(&leg, event_type, webhook_event, extra))
    }

    /// Sends one `telephony_calls` event about `leg` to every webhook that covers it.
    fn emit(
        &self,
        leg: &Leg,
        event_type: &str,
        webhook_event: &str,
        extra: Value,
    ) -> oneshot::Receiver<Result<(), String>> {
        let now = now_rfc3339();
        let mut data = json!({
            "callId": leg.call_id, "appearance": 1, "personality": leg.personality,
            "created": leg.created,
            "remoteParty": {"name": leg.remote_name, "privacyEnabled": false,
                            "number": leg.remote_number, "callType": leg.remote_call_type},
            "muteCapable": false, "eventType": event_type, "state": leg.state,
            "callSessionId": leg.session, "muted": false, "eventTimestamp": now,
            "completedElsewhere": false,
        });
        if let (Some(redirections), Some(data)) = (Self::redirections(leg), data.as_object_mut()) {
            data.insert("redirections".into(), redirections);
        }
        if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                data.insert(k.clone(), v.clone());
            }
        }
        let targets: Vec<(Value, String, Option<String>)> = self
            .lock()
            .webhooks
            .iter()
            .filter(|w| w.covers(webhook_event))
            .map(|w| {
                let mut envelope = w.json();
                if let Some(object) = envelope.as_object_mut() {
                    object.insert("event".into(), webhook_event.into());
                    object.insert("actorId".into(), leg.person.clone().into());
                    object.insert("data".into(), data.clone());
                }
                (envelope, w.target_url.clone(), w.secret.clone())
            })
            .collect();
        let (ack, outcome) = oneshot::channel();
        if targets.is_empty() {
            let _ = ack.send(Err("no webhook covers this event".into()));
            return outcome;
        }
        if let Some(inbox) = self.inbox.lock().take() {
            tokio::spawn(run(self.http.clone(), inbox));
        }
        // One body per webhook; the envelope differs only in the webhook's own fields.
        let mut ack = Some(ack);
        let n = targets.len();
        for (i, (body, url, secret)) in targets.into_iter().enumerate() {
            let _ = self.queue.send(Outgoing {
                body,
                targets: vec![(url, secret)],
                duplicate: self.duplicate.load(Ordering::Relaxed),
                reorder: self.reorder.load(Ordering::Relaxed),
                ack: if i + 1 == n { ack.take() } else { None },
            });
        }
        outcome
    }

    fn new_leg(
        &self,
        session: &str,
        person: &Person,
        personality: &str,
        remote: (&str, &str, &str),
    ) -> Leg {
        let leg = Leg {
            call_id: spark_id("CALL", &uuid::Uuid::new_v4().to_string()),
            session: session.to_string(),
            person: person.id.clone(),
            personality: personality.to_string(),
            state: "alerting".into(),
            remote_name: remote.0.to_string(),
            remote_number: remote.1.to_string(),
            remote_call_type: remote.2.to_string(),
            created: now_rfc3339(),
            redirecting: None,
        };
        self.lock().legs.push(leg.clone());
        leg
    }

    /// An outside caller rings `agent`; the callSessionId once the relay took the event.
    pub async fn place_call(&self, from: &str, agent: &str) -> Result<String, WebexError> {
        self.place_group_call(from, &[agent]).await
    }

    /// An outside caller rings every one of `agents` at once (a hunt group, a shared line):
    /// when one answers, the others' calls end with `completedElsewhere`.
    pub async fn place_group_call(
        &self,
        from: &str,
        agents: &[&str],
    ) -> Result<String, WebexError> {
        let people: Vec<Person> = agents
            .iter()
            .map(|agent| {
                self.person_by_email(agent)
                    .cloned()
                    .ok_or_else(|| WebexError::sim(format!("no Webex Calling user {agent:?}")))
            })
            .collect::<Result<_, _>>()?;
        if people.is_empty() {
            return Err(WebexError::sim("nobody to ring".into()));
        }
        let session = new_session();
        let mut outcomes = Vec::new();
        for person in &people {
            let leg = self.new_leg(&session, person, "terminator", ("", from, "external"));
            outcomes.push(self.emit(&leg, "received", "created", json!({})));
        }
        for outcome in outcomes {
            wait(outcome).await?;
        }
        Ok(session)
    }

    /// The outside party of a call hangs up: every live leg of the session ends.
    pub async fn caller_hangup(&self, session: &str) -> Result<(), WebexError> {
        let legs: Vec<String> = {
            let state = self.lock();
            state
                .legs
                .iter()
                .filter(|l| l.session == session && l.state != "disconnected")
                .map(|l| l.call_id.clone())
                .collect()
        };
        if legs.is_empty() {
            return Err(WebexError::not_found("call"));
        }
        let mut last = None;
        for leg in legs {
            last = self.change(
                &leg,
                |l| l.state = "disconnected".into(),
                "disconnected",
                json!({}),
            );
        }
        match last {
            Some(outcome) => wait(outcome).await,
            None => Ok(()),
        }
    }

    /// The far end of an outbound call answers.
    pub async fn remote_answer(&self, session: &str) -> Result<(), WebexError> {
        let leg = self
            .lock()
            .legs
            .iter()
            .find(|l| l.session == session && l.state == "alerting")
            .map(|l| l.call_id.clone())
            .ok_or_else(|| WebexError::not_found("call"))?;
        if let Some(outcome) = self.change(
            &leg,
            |l| l.state = "connected".into(),
            "connected",
            json!({}),
        ) {
            wait(outcome).await?;
        }
        Ok(())
    }

    /// A leg of `person` by its callId, or 404 as Webex answers for a call the user does not have.
    fn own_leg(&self, person: &str, call_id: &str) -> Result<Leg, WebexError> {
        self.lock()
            .legs
            .iter()
            .find(|l| l.call_id == call_id && l.person == person && l.state != "disconnected")
            .cloned()
            .ok_or_else(|| WebexError::not_found("callId"))
    }

    /// The user answers, holds, resumes or hangs up one of their calls.
    pub fn act(&self, person: &str, action: &str, call_id: &str) -> Result<(), WebexError> {
        let leg = self.own_leg(person, call_id)?;
        let bad = |why: &str| WebexError::bad_request(&format!("{action}: {why}"));
        match action {
            "answer" => {
                if leg.state != "alerting" || leg.personality != "terminator" {
                    return Err(bad("the call is not ringing"));
                }
                self.change(
                    call_id,
                    |l| l.state = "connected".into(),
                    "connected",
                    json!({}),
                );
                // The other side of a call between two users hears the answer too.
                self.peer_follow(&leg, "connected");
                // The group's other phones stop ringing: answered elsewhere.
                let others: Vec<String> = self
                    .lock()
                    .legs
                    .iter()
                    .filter(|l| {
                        l.session == leg.session
                            && l.call_id != leg.call_id
                            && l.state == "alerting"
                            && l.personality == "terminator"
                            && leg.remote_call_type == "external"
                    })
                    .map(|l| l.call_id.clone())
                    .collect();
                for other in others {
                    self.change(
                        &other,
                        |l| l.state = "disconnected".into(),
                        "disconnected",
                        json!({"completedElsewhere": true}),
                    );
                }
            }
            "hold" => {
                if leg.state != "connected" {
                    return Err(bad("the call is not connected"));
                }
                self.change(call_id, |l| l.state = "held".into(), "held", json!({}));
            }
            "resume" => {
                if leg.state != "held" {
                    return Err(bad("the call is not held"));
                }
                self.change(
                    call_id,
                    |l| l.state = "connected".into(),
                    "resumed",
                    json!({}),
                );
            }
            "hangup" => {
                self.change(
                    call_id,
                    |l| l.state = "disconnected".into(),
                    "disconnected",
                    json!({}),
                );
                // A call between two users (a consult) ends for both; an outside caller's call
                // ends when no user is left on it.
                self.peer_follow(&leg, "disconnected");
            }
            _ => return Err(WebexError::not_found(action)),
        }
        Ok(())
    }

    /// The other user's leg of a two-user call follows `state` (answered, hung up).
    fn peer_follow(&self, leg: &Leg, state: &str) {
        if leg.remote_call_type != "internal" {
            return;
        }
        let peers: Vec<String> = self
            .lock()
            .legs
            .iter()
            .filter(|l| {
                l.session == leg.session && l.call_id != leg.call_id && l.state != "disconnected"
            })
            .map(|l| l.call_id.clone())
            .collect();
        for peer in peers {
            self.change(&peer, |l| l.state = state.to_string(), state, json!({}));
        }
    }

    /// Click-to-dial (and a consult's second call): the user calls `destination`.
    pub(crate) fn dial(&self, person: &str, destination: &str) -> Result<Leg, WebexError> {
        self.place(person, destination, "clickToDial")
    }

    /// The user calls `destination`, the call's own leg with `personality`.
    fn place(&self, person: &str, destination: &str, personality: &str) -> Result<Leg, WebexError> {
        let me = self
            .person_by_id(person)
            .cloned()
            .ok_or_else(|| WebexError::not_found("personId"))?;
        let destination = destination.trim();
        if destination.is_empty() || destination.len() > 64 {
            return Err(WebexError::bad_request("destination is required"));
        }
        let session = new_session();
        match self.person_by_destination(destination).cloned() {
            Some(colleague) => {
                let leg = self.new_leg(
                    &session,
                    &me,
                    personality,
                    (&colleague.display_name, &colleague.extension, "internal"),
                );
                self.emit(&leg, "originated", "created", json!({}));
                let theirs = self.new_leg(
                    &session,
                    &colleague,
                    "terminator",
                    (&me.display_name, &me.extension, "internal"),
                );
                self.emit(&theirs, "received", "created", json!({}));
                Ok(leg)
            }
            None => {
                if !destination.starts_with('+') || destination.len() < 5 {
                    return Err(WebexError::bad_request("destination is not a valid number"));
                }
                let leg = self.new_leg(&session, &me, personality, ("", destination, "external"));
                self.emit(&leg, "originated", "created", json!({}));
                Ok(leg)
            }
        }
    }

    /// A blind transfer of the user's call `first` to `destination`, asked through the API or
    /// made on the user's phone: the same at Webex. Inferred (the reference lists no transfer
    /// fields): the caller's session goes on, the target's new call joining it with the caller
    /// as its remote party and the transferring user as `redirections[].redirectingParty` (the
    /// shape of Webex's call details); the target's phone rings before the transferring user's
    /// call is disconnected, as a PBX releases the transferor once the target is alerted. To a
    /// number outside the org, the user's call is `forwarded` (state and eventType) with the
    /// number as its `remoteParty`, then disconnected. `reordered` delivers the two events the
    /// other way round, each still with the time it happened.
    fn blind_transfer(
        &self,
        person: &str,
        first: &Leg,
        destination: &str,
        reordered: bool,
    ) -> Result<(), WebexError> {
        let target = self.person_by_destination(destination).cloned();
        if target.is_none() && (!destination.starts_with('+') || destination.len() < 5) {
            return Err(WebexError::bad_request("destination is not a valid number"));
        }
        let happened = now_rfc3339();
        let handed: Box<Told> = match target {
            Some(target) => {
                let redirecting = self.person_by_id(person).map(|me| {
                    json!({"name": me.display_name, "number": me.number, "personId": me.id,
                           "privacyEnabled": false, "callType": "internal"})
                });
                let leg = self.new_leg(
                    &first.session,
                    &target,
                    "terminator",
                    (
                        &first.remote_name,
                        &first.remote_number,
                        &first.remote_call_type,
                    ),
                );
                if let Some(stored) = self
                    .lock()
                    .legs
                    .iter_mut()
                    .find(|l| l.call_id == leg.call_id)
                {
                    stored.redirecting = redirecting.clone();
                }
                let leg = Leg { redirecting, ..leg };
                Box::new(move |wx: &Webex, extra: Value| {
                    wx.emit(&leg, "received", "created", extra);
                })
            }
            None => {
                let call = first.call_id.clone();
                let number = destination.to_string();
                Box::new(move |wx: &Webex, extra: Value| {
                    wx.change(
                        &call,
                        |l| {
                            l.state = "forwarded".into();
                            l.remote_name = String::new();
                            l.remote_number = number.clone();
                            l.remote_call_type = "external".into();
                        },
                        "forwarded",
                        extra,
                    );
                })
            }
        };
        let release = |wx: &Webex| {
            wx.change(
                &first.call_id,
                |l| l.state = "disconnected".into(),
                "disconnected",
                json!({}),
            );
        };
        if reordered {
            release(self);
            handed(self, json!({"eventTimestamp": happened}));
        } else {
            handed(self, json!({}));
            release(self);
        }
        Ok(())
    }

    /// The user's live call of `session`, and the user.
    fn phone_leg(&self, session: &str, agent: &str) -> Result<(Person, Leg), WebexError> {
        let person = self
            .person_by_email(agent)
            .cloned()
            .ok_or_else(|| WebexError::sim(format!("no Webex Calling user {agent:?}")))?;
        let leg = self
            .lock()
            .legs
            .iter()
            .find(|l| l.session == session && l.person == person.id && l.state != "disconnected")
            .cloned()
            .ok_or_else(|| WebexError::not_found("call"))?;
        Ok((person, leg))
    }

    /// The user's phone transfers their call of `session`: to `destination` (the transfer key
    /// and a number), or, without one, to the colleague of the consultation the user placed on
    /// the phone (the transfer key again, attended). No API request, only the events Webex
    /// sends for it.
    pub fn phone_transfer(
        &self,
        session: &str,
        agent: &str,
        destination: Option<&str>,
        reordered: bool,
    ) -> Result<(), WebexError> {
        let (person, first) = self.phone_leg(session, agent)?;
        if !matches!(first.state.as_str(), "connected" | "held") {
            return Err(WebexError::bad_request(
                "transfer: the call is not connected",
            ));
        }
        match destination {
            Some(destination) => self.blind_transfer(&person.id, &first, destination, reordered),
            None => {
                let consultation = self
                    .lock()
                    .legs
                    .iter()
                    .find(|l| {
                        l.person == person.id && l.session != session && l.state != "disconnected"
                    })
                    .map(|l| l.call_id.clone())
                    .ok_or_else(|| {
                        WebexError::sim("transfer: no consultation to hand over to".into())
                    })?;
                self.transfer(&person.id, &first.call_id, Some(&consultation), None)
            }
        }
    }

    /// The user's phone consults about their call of `session`: the call held, then a call placed
    /// to `destination` (a colleague's extension or number, or a number outside) as the phone
    /// places calls (`personality` `originator`, inferred). No API request. `reordered` delivers
    /// the placed call's events before the hold's, the hold still timed when it happened.
    pub fn phone_consult(
        &self,
        session: &str,
        agent: &str,
        destination: &str,
        reordered: bool,
    ) -> Result<Leg, WebexError> {
        let (person, first) = self.phone_leg(session, agent)?;
        let hold = match first.state.as_str() {
            "connected" => true,
            "held" => false,
            _ => {
                return Err(WebexError::bad_request(
                    "consult: the call is not connected",
                ));
            }
        };
        let happened = now_rfc3339();
        let held = |wx: &Webex, extra: Value| {
            if hold {
                wx.change(&first.call_id, |l| l.state = "held".into(), "held", extra);
            }
        };
        if reordered {
            let placed = self.place(&person.id, destination, "originator")?;
            held(self, json!({"eventTimestamp": happened}));
            Ok(placed)
        } else {
            held(self, json!({}));
            self.place(&person.id, destination, "originator")
        }
    }

    /// Blind transfer (`{callId1, destination}`) or the attended one (`{callId1, callId2}`).
    pub(crate) fn transfer(
        &self,
        person: &str,
        call1: &str,
        call2: Option<&str>,
        destination: Option<&str>,
    ) -> Result<(), WebexError> {
        let first = self.own_leg(person, call1)?;
        if !matches!(first.state.as_str(), "connected" | "held") {
            return Err(WebexError::bad_request(
                "transfer: the call is not connected",
            ));
        }
        match (call2, destination) {
            (Some(call2), None) => {
                let second = self.own_leg(person, call2)?;
                // The other user on the second call is handed the first call's far end.
                let colleague = self
                    .lock()
                    .legs
                    .iter()
                    .find(|l| {
                        l.session == second.session
                            && l.call_id != second.call_id
                            && l.state != "disconnected"
                    })
                    .cloned()
                    .ok_or_else(|| WebexError::bad_request("transfer: nobody on callId2"))?;
                self.change(
                    call1,
                    |l| l.state = "disconnected".into(),
                    "disconnected",
                    json!({}),
                );
                self.change(
                    call2,
                    |l| l.state = "disconnected".into(),
                    "disconnected",
                    json!({}),
                );
                // Inferred: the colleague's call joins the first call's session and now shows the
                // caller as its remote party.
                self.change(
                    &colleague.call_id,
                    |l| {
                        l.session = first.session.clone();
                        l.remote_name = first.remote_name.clone();
                        l.remote_number = first.remote_number.clone();
                        l.remote_call_type = first.remote_call_type.clone();
                        l.state = "connected".into();
                    },
                    "connected",
                    json!({}),
                );
                Ok(())
            }
            (None, Some(destination)) => self.blind_transfer(person, &first, destination, false),
            _ => Err(WebexError::bad_request(
                "transfer takes callId2 or destination, exactly one",
            )),
        }
    }
}

/// One event of a transfer, sent with the extra fields it is given (its time, when reordered).
type Told = dyn Fn(&Webex, Value);

fn new_session() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().to_string())
}

async fn wait(outcome: oneshot::Receiver<Result<(), String>>) -> Result<(), WebexError> {
    match outcome.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(WebexError::Undelivered(err)),
        Err(_) => Err(WebexError::Undelivered("the delivery was dropped".into())),
    }
}

/// Hex HMAC-SHA1 of the raw body keyed by the webhook's secret (reference 4.4).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The delivery task: events in order, one at a time, each retried; the faults duplicate or
/// swap them on purpose.
async fn run(http: reqwest::Client, mut inbox: mpsc::UnboundedReceiver<Outgoing>) {
    let mut held: Option<Outgoing> = None;
    loop {
        let next = match &held {
            None => inbox.recv().await,
            Some(_) => match tokio::time::timeout(REORDER_WINDOW, inbox.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Some(late) = held.take() {
                        deliver(&http, late).await;
                    }
                    continue;
                }
            },
        };
        let Some(item) = next else { break };
        if item.reorder && held.is_none() {
            held = Some(item);
            continue;
        }
        deliver(&http, item).await;
        if let Some(late) = held.take() {
            deliver(&http, late).await;
        }
    }
}

async fn deliver(http: &reqwest::Client, item: Outgoing) {
    let mut outcome = Err("no webhook".to_string());
    let times = if item.duplicate { 2 } else { 1 };
    let bytes = serde_json::to_vec(&item.body).unwrap_or_default();
    for (url, secret) in &item.targets {
        for _ in 0..times {
            let mut last = String::new();
            for attempt in 1..=ATTEMPTS {
                let mut request = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(bytes.clone());
                if let Some(secret) = secret {
                    request = request.header("X-Spark-Signature", signature(secret, &bytes));
                }
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        outcome = Ok(());
                        break;
                    }
                    Ok(r) => last = format!("the receiver answered {}", r.status()),
                    Err(e) => last = format!("the receiver is unreachable: {}", e.without_url()),
                }
                tracing::warn!(attempt, %last, "Webex webhook delivery failed");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
            if outcome.is_err() {
                outcome = Err(last);
            }
        }
    }
    if let Some(ack) = item.ack {
        let _ = ack.send(outcome);
    }
}

pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
