//! Telephony sessions and their parties: the state machine the call-control API and the
//! simulator's controls drive, and the notifications each change makes.
//!
//! A session holds the caller's party (no extension of the account) and the reps' parties. Every
//! change of a rep's party is one notification carrying that party, with the party's own
//! `sequence` (monotonic per party, as the reference says the SDK relies on). Parties of numbers
//! outside the account are kept for `GET .../sessions/{sid}` but not notified (simplification: a
//! real account-level subscription notifies them too; the relay ignores parties of no rep).

use std::sync::atomic::Ordering;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::delivery::{Outgoing, Target};
use super::{ACCOUNT_ID, Extension, RcError, RingCentral, State, now_rfc3339};

/// A party's status code, as RingCentral's `status.code`.
pub(crate) type Code = &'static str;

#[derive(Debug, Clone)]
pub(crate) struct Party {
    pub(crate) id: String,
    /// The rep's extension id; None for a number outside the account.
    pub(crate) extension: Option<String>,
    pub(crate) direction: &'static str,
    pub(crate) from: Value,
    pub(crate) to: Value,
    pub(crate) code: Code,
    pub(crate) reason: Option<&'static str>,
    pub(crate) peer: Option<Value>,
    pub(crate) missed: bool,
    pub(crate) sequence: u64,
}

impl Party {
    fn live(&self) -> bool {
        !matches!(self.code, "Disconnected" | "Gone")
    }

    pub(crate) fn json(&self) -> Value {
        let mut status = json!({"code": self.code, "rcc": false});
        if let Some(reason) = self.reason {
            status["reason"] = reason.into();
        }
        if let Some(peer) = &self.peer {
            status["peerId"] = peer.clone();
        }
        let mut party = json!({
            "accountId": ACCOUNT_ID,
            "id": self.id,
            "direction": self.direction,
            "to": self.to,
            "from": self.from,
            "status": status,
            "missedCall": self.missed,
            "standAlone": false,
            "muted": false,
        });
        if let Some(ext) = &self.extension {
            party["extensionId"] = ext.clone().into();
            party["owner"] = json!({"accountId": ACCOUNT_ID, "extensionId": ext});
        }
        party
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    /// The legacy numeric id.
    pub(crate) session_id: String,
    pub(crate) order: u64,
    pub(crate) creation_time: String,
    pub(crate) parties: Vec<Party>,
    /// Whether the call was placed from a rep (call-out, RingOut) and rings a number outside.
    pub(crate) outbound: bool,
    /// The session this one was bridged with (warm transfer): they end together.
    pub(crate) bridged: Option<String>,
}

impl Session {
    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "origin": {"type": "Call"},
            "creationTime": self.creation_time,
            "parties": self.parties.iter().map(Party::json).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn party(&self, pid: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.id == pid)
    }

    fn party_mut(&mut self, pid: &str) -> Option<&mut Party> {
        self.parties.iter_mut().find(|p| p.id == pid)
    }

    fn next_party_id(&self) -> String {
        let hex = self.id.trim_start_matches("s-");
        format!("p-{hex}-{}", self.parties.len() + 1)
    }
}

/// One session as `GET /sim/ringcentral/calls` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub call_id: String,
    pub parties: Vec<PartyInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartyInfo {
    pub id: String,
    pub extension_id: Option<String>,
    pub status: String,
    pub missed: bool,
}

/// What to do with a party once it changed: notify it, optionally telling a waiter.
type Changes = Vec<(String, String)>;

fn ext_party(ext: &Extension) -> Value {
    json!({"phoneNumber": ext.direct_number, "extensionNumber": ext.number,
           "extensionId": ext.id, "name": ext.name})
}

impl RingCentral {
    /// Builds the notifications of changed parties `(sid, pid)` under the state's lock.
    fn notifications(&self, state: &State, changes: &Changes) -> Vec<Outgoing> {
        let now = Instant::now();
        let duplicate = self.duplicate.load(Ordering::Relaxed);
        let reorder = self.reorder.load(Ordering::Relaxed);
        let owner = self
            .extensions
            .first()
            .map(|e| e.id.as_str())
            .unwrap_or_default();
        let mut out = Vec::new();
        for (sid, pid) in changes {
            let Some(session) = state.sessions.get(sid) else {
                continue;
            };
            let Some(party) = session.party(pid) else {
                continue;
            };
            let Some(ext) = &party.extension else {
                continue;
            };
            let targets: Vec<Target> = state
                .subscriptions
                .values()
                .filter(|s| s.live(now))
                .filter_map(|s| {
                    Some(Target {
                        event: s.event_for(Some(ext), owner)?,
                        subscription_id: s.id.clone(),
                        address: s.address.clone(),
                        verification_token: s.verification_token.clone(),
                    })
                })
                .collect();
            let body = json!({
                "uuid": uuid::Uuid::new_v4().as_u128().to_string().chars().take(19).collect::<String>(),
                "timestamp": now_rfc3339(),
                "ownerId": ACCOUNT_ID,
                "body": {
                    "sequence": party.sequence,
                    "sessionId": session.session_id,
                    "telephonySessionId": session.id,
                    "serverId": "10.13.22.241.TAM",
                    "eventTime": now_rfc3339(),
                    "parties": [party.json()],
                    "origin": {"type": "Call"},
                },
            });
            out.push(Outgoing {
                body,
                targets,
                duplicate,
                reorder,
                ack: None,
            });
        }
        out
    }

    /// Applies `change` under the lock, sends its notifications and returns a receiver told when
    /// the last one was taken by a subscriber.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut State) -> Result<(T, Changes), RcError>,
    ) -> Result<(T, oneshot::Receiver<Result<(), String>>), RcError> {
        let (tx, rx) = oneshot::channel();
        let (value, mut outgoing) = {
            let mut state = self.lock();
            let (value, changes) = change(&mut state)?;
            let outgoing = self.notifications(&state, &changes);
            (value, outgoing)
        };
        match outgoing.last_mut() {
            Some(last) => last.ack = Some(tx),
            None => {
                let _ = tx.send(Ok(()));
            }
        }
        self.send(outgoing);
        Ok((value, rx))
    }

    fn new_session(state: &mut State, outbound: bool) -> Session {
        state.next_session += 1;
        let hex = uuid::Uuid::new_v4().simple().to_string();
        Session {
            id: format!("s-{hex}"),
            session_id: format!("{}", 21_529_129_004u64 + state.next_session),
            order: state.next_session,
            creation_time: now_rfc3339(),
            parties: Vec::new(),
            outbound,
            bridged: None,
        }
    }

    /// An inbound call from `from` ringing the rep `agent` (an e-mail).
    pub async fn place_call(&self, from: &str, agent: &str) -> Result<String, RcError> {
        let ext = self
            .extension_by_email(agent)
            .cloned()
            .ok_or_else(|| RcError::sim(format!("no extension for the rep {agent:?}")))?;
        let (sid, delivered) = self.change(|state| {
            let mut session = Self::new_session(state, false);
            let caller = json!({"phoneNumber": from});
            let callee = ext_party(&ext);
            let caller_pid = session.next_party_id();
            session.parties.push(Party {
                id: caller_pid,
                extension: None,
                direction: "Outbound",
                from: caller.clone(),
                to: callee.clone(),
                code: "Answered",
                reason: None,
                peer: None,
                missed: false,
                sequence: 1,
            });
            let pid = session.next_party_id();
            session.parties.push(Party {
                id: pid.clone(),
                extension: Some(ext.id.clone()),
                direction: "Inbound",
                from: caller,
                to: callee,
                code: "Proceeding",
                reason: None,
                peer: None,
                missed: false,
                sequence: 1,
            });
            let sid = session.id.clone();
            state.sessions.insert(sid.clone(), session);
            Ok((sid.clone(), vec![(sid, pid)]))
        })?;
        wait(delivered).await?;
        Ok(sid)
    }

    /// The caller (or the far end of an outbound call) hangs up: every live party of the session
    /// (and of a session bridged with it) is disconnected; a rep still ringing missed the call.
    pub async fn caller_hangup(&self, sid: &str) -> Result<(), RcError> {
        let ((), delivered) = self.change(|state| {
            if !state.sessions.contains_key(sid) {
                return Err(RcError::not_found("telephonySessionId", sid));
            }
            let changes = end_call(state, sid, true);
            if changes.is_empty() {
                return Err(RcError::conflict(format!("session {sid} already ended")));
            }
            Ok(((), changes))
        })?;
        wait(delivered).await
    }

    /// The far end of an outbound call answers.
    pub async fn remote_answer(&self, sid: &str) -> Result<(), RcError> {
        let ((), delivered) = self.change(|state| {
            let session = state
                .sessions
                .get_mut(sid)
                .ok_or_else(|| RcError::not_found("telephonySessionId", sid))?;
            if !session.outbound {
                return Err(RcError::conflict(format!("session {sid} is not outbound")));
            }
            let mut changes = Vec::new();
            for party in &mut session.parties {
                if party.extension.is_some() && matches!(party.code, "Setup" | "Proceeding") {
                    party.code = "Answered";
                    party.sequence += 1;
                    changes.push((sid.to_string(), party.id.clone()));
                } else if party.extension.is_none() && party.live() {
                    party.code = "Answered";
                }
            }
            if changes.is_empty() {
                return Err(RcError::conflict(format!("session {sid} does not ring")));
            }
            Ok(((), changes))
        })?;
        wait(delivered).await
    }

    pub fn session_json(&self, sid: &str) -> Result<Value, RcError> {
        self.lock()
            .sessions
            .get(sid)
            .map(Session::json)
            .ok_or_else(|| RcError::not_found("telephonySessionId", sid))
    }

    pub fn calls(&self) -> Vec<SessionInfo> {
        let state = self.lock();
        let mut sessions: Vec<&Session> = state.sessions.values().collect();
        sessions.sort_by_key(|s| s.order);
        sessions
            .into_iter()
            .map(|s| SessionInfo {
                call_id: s.id.clone(),
                parties: s
                    .parties
                    .iter()
                    .map(|p| PartyInfo {
                        id: p.id.clone(),
                        extension_id: p.extension.clone(),
                        status: p.code.to_string(),
                        missed: p.missed,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Presence of one extension: its active calls.
    pub fn presence(&self, ext: &Extension) -> Value {
        let state = self.lock();
        let mut sessions: Vec<&Session> = state.sessions.values().collect();
        sessions.sort_by_key(|s| s.order);
        let active: Vec<Value> = sessions
            .iter()
            .flat_map(|s| {
                s.parties
                    .iter()
                    .filter(|p| p.live() && p.extension.as_deref() == Some(ext.id.as_str()))
                    .map(|p| {
                        json!({
                            "id": format!("{}-{}", s.session_id, p.id),
                            "direction": p.direction,
                            "from": p.from["phoneNumber"],
                            "to": p.to["phoneNumber"],
                            "telephonyStatus": telephony_status(p.code),
                            "sessionId": s.session_id,
                            "telephonySessionId": s.id,
                            "partyId": p.id,
                        })
                    })
            })
            .collect();
        let status = active
            .first()
            .and_then(|c| c["telephonyStatus"].as_str())
            .unwrap_or("NoCall")
            .to_string();
        json!({
            "uri": format!("/restapi/v1.0/account/{ACCOUNT_ID}/extension/{}/presence", ext.id),
            "extension": {"id": ext.id, "extensionNumber": ext.number},
            "presenceStatus": if active.is_empty() { "Available" } else { "Busy" },
            "telephonyStatus": status,
            "activeCalls": active,
        })
    }

    /// `POST .../parties/{pid}/{action}` and `DELETE .../parties/{pid}`.
    pub fn party_action(
        &self,
        sid: &str,
        pid: &str,
        action: &str,
        body: &Value,
    ) -> Result<Value, RcError> {
        let (party, _) = self.change(|state| {
            let session = state
                .sessions
                .get(sid)
                .ok_or_else(|| RcError::not_found("telephonySessionId", sid))?;
            let party = session
                .party(pid)
                .ok_or_else(|| RcError::not_found("partyId", pid))?
                .clone();
            let changes = match action {
                "answer" => answer(self, state, sid, &party, body)?,
                "hold" => set_code(state, sid, &party, &["Answered"], "Hold")?,
                "unhold" => set_code(state, sid, &party, &["Hold"], "Answered")?,
                "transfer" => transfer(self, state, sid, &party, body)?,
                "bridge" => bridge(state, sid, &party, body)?,
                // Reference 2.3: reject sends a ringing call to voicemail; the simulator has
                // none, so the call ends for the rep (declined, not missed).
                "reject" => {
                    if party.code != "Proceeding" || party.direction != "Inbound" {
                        return Err(RcError::conflict(format!("party {pid} does not ring")));
                    }
                    end_call(state, sid, false)
                }
                "drop" => {
                    if !party.live() {
                        return Err(RcError::conflict(format!("party {pid} is not active")));
                    }
                    end_call(state, sid, false)
                }
                other => return Err(RcError::not_found("action", other)),
            };
            let party = state
                .sessions
                .get(sid)
                .and_then(|s| s.party(pid))
                .map(Party::json)
                .unwrap_or(Value::Null);
            Ok((party, changes))
        })?;
        Ok(party)
    }

    /// `DELETE .../telephony/sessions/{sid}`.
    pub fn drop_session(&self, sid: &str) -> Result<(), RcError> {
        self.change(|state| {
            if !state.sessions.contains_key(sid) {
                return Err(RcError::not_found("telephonySessionId", sid));
            }
            Ok(((), end_call(state, sid, false)))
        })?;
        Ok(())
    }

    /// `call-out` (from a rep's device) and RingOut (from a rep's extension): the rep's party
    /// rings out (Setup then Proceeding); a target that is a rep's extension rings that rep.
    pub fn place_outbound(
        &self,
        ext: &Extension,
        to_number: Option<&str>,
        to_extension: Option<&str>,
        device: Option<&str>,
    ) -> Result<Value, RcError> {
        let target = match to_extension {
            Some(number) => Some(
                self.extension_by_number(number)
                    .cloned()
                    .ok_or_else(|| RcError::invalid("to.extensionNumber", number))?,
            ),
            None => None,
        };
        let (session, _) = self.change(|state| {
            let mut session = Self::new_session(state, target.is_none());
            let mut from = ext_party(ext);
            if let Some(device) = device {
                from["deviceId"] = device.into();
            }
            let to = match &target {
                Some(t) => ext_party(t),
                None => json!({"phoneNumber": to_number.unwrap_or_default()}),
            };
            let pid = session.next_party_id();
            session.parties.push(Party {
                id: pid.clone(),
                extension: Some(ext.id.clone()),
                direction: "Outbound",
                from: from.clone(),
                to: to.clone(),
                code: "Setup",
                reason: None,
                peer: None,
                missed: false,
                sequence: 1,
            });
            let far = session.next_party_id();
            session.parties.push(Party {
                id: far.clone(),
                extension: target.as_ref().map(|t| t.id.clone()),
                direction: "Inbound",
                from,
                to,
                code: "Proceeding",
                reason: None,
                peer: None,
                missed: false,
                sequence: 1,
            });
            let sid = session.id.clone();
            let json = session.json();
            // The rep's line is set up and then rings out, one notification each.
            let mut changes = vec![(sid.clone(), pid.clone())];
            state.sessions.insert(sid.clone(), session);
            let mut later = self.notifications(state, &changes);
            if let Some(party) = state.sessions.get_mut(&sid).and_then(|s| s.party_mut(&pid)) {
                party.code = "Proceeding";
                party.sequence += 1;
            }
            self.send(std::mem::take(&mut later));
            changes.clear();
            changes.push((sid.clone(), pid));
            if target.is_some() {
                changes.push((sid, far));
            }
            Ok((json, changes))
        })?;
        Ok(session)
    }
}

/// Waits for a change's last notification to be taken by a subscriber.
async fn wait(delivered: oneshot::Receiver<Result<(), String>>) -> Result<(), RcError> {
    delivered
        .await
        .unwrap_or_else(|_| Err("the delivery task stopped".into()))
        .map_err(RcError::Undelivered)
}

fn telephony_status(code: &str) -> &'static str {
    match code {
        "Setup" | "Proceeding" => "Ringing",
        "Hold" => "OnHold",
        "Answered" => "CallConnected",
        _ => "NoCall",
    }
}

fn bump(state: &mut State, sid: &str, pid: &str, update: impl FnOnce(&mut Party)) {
    if let Some(party) = state.sessions.get_mut(sid).and_then(|s| s.party_mut(pid)) {
        update(party);
        party.sequence += 1;
    }
}

fn set_code(
    state: &mut State,
    sid: &str,
    party: &Party,
    from: &[&str],
    to: Code,
) -> Result<Changes, RcError> {
    if !from.contains(&party.code) {
        return Err(RcError::conflict(format!(
            "party {} is {}, not {}",
            party.id,
            party.code,
            from.join(" or ")
        )));
    }
    bump(state, sid, &party.id, |p| p.code = to);
    Ok(vec![(sid.to_string(), party.id.clone())])
}

fn answer(
    rc: &RingCentral,
    state: &mut State,
    sid: &str,
    party: &Party,
    body: &Value,
) -> Result<Changes, RcError> {
    if party.direction != "Inbound" || party.code != "Proceeding" {
        return Err(RcError::conflict(format!(
            "party {} does not ring",
            party.id
        )));
    }
    if let Some(device) = body.get("deviceId") {
        let own = party
            .extension
            .as_deref()
            .and_then(|e| rc.extension_by_id(e))
            .map(|e| e.device_id.as_str());
        if device.as_str().is_none() || device.as_str() != own {
            return Err(RcError::invalid("deviceId", &device.to_string()));
        }
    }
    let mut changes = set_code(state, sid, party, &["Proceeding"], "Answered")?;
    // The caller's side is connected too (a rep calling a rep: their outbound party).
    let others: Vec<String> = state
        .sessions
        .get(sid)
        .map(|s| {
            s.parties
                .iter()
                .filter(|p| p.id != party.id && matches!(p.code, "Setup" | "Proceeding"))
                .map(|p| p.id.clone())
                .collect()
        })
        .unwrap_or_default();
    for other in others {
        let notify = state
            .sessions
            .get(sid)
            .and_then(|s| s.party(&other))
            .is_some_and(|p| p.extension.is_some());
        bump(state, sid, &other, |p| p.code = "Answered");
        if notify {
            changes.push((sid.to_string(), other));
        }
    }
    Ok(changes)
}

/// Blind transfer: a new party rings at the target and the rep's party is Gone, its `peerId`
/// pointing at the new party. The reason `BlindTransfer` is inferred (the reference lists Gone's
/// reasons for attended transfer, conference, supervising and pickup, not for a blind one).
fn transfer(
    rc: &RingCentral,
    state: &mut State,
    sid: &str,
    party: &Party,
    body: &Value,
) -> Result<Changes, RcError> {
    let targets: Vec<&str> = ["phoneNumber", "extensionNumber", "voicemail", "parkOrbit"]
        .into_iter()
        .filter(|k| body.get(*k).is_some())
        .collect();
    if targets.len() != 1 {
        return Err(RcError::invalid(
            "body",
            "exactly one of phoneNumber, extensionNumber, voicemail, parkOrbit",
        ));
    }
    if !matches!(party.code, "Answered" | "Hold") {
        return Err(RcError::conflict(format!(
            "party {} is {}, not connected",
            party.id, party.code
        )));
    }
    let value = body[targets[0]].as_str().unwrap_or_default().to_string();
    let (extension, to) = match targets[0] {
        "extensionNumber" => {
            let ext = rc
                .extension_by_number(&value)
                .ok_or_else(|| RcError::invalid("extensionNumber", &value))?;
            (Some(ext.id.clone()), ext_party(ext))
        }
        "phoneNumber" if value.starts_with('+') && value.len() > 4 => {
            (None, json!({"phoneNumber": value}))
        }
        "phoneNumber" => return Err(RcError::invalid("phoneNumber", &value)),
        other => {
            return Err(RcError::invalid(
                other,
                "not supported by the simulator (phoneNumber or extensionNumber)",
            ));
        }
    };
    let session = state
        .sessions
        .get_mut(sid)
        .ok_or_else(|| RcError::not_found("telephonySessionId", sid))?;
    let new_pid = session.next_party_id();
    let caller = session
        .parties
        .iter()
        .find(|p| p.extension.is_none())
        .map(|p| p.from.clone())
        .unwrap_or_else(|| party.from.clone());
    session.parties.push(Party {
        id: new_pid.clone(),
        extension: extension.clone(),
        direction: "Inbound",
        from: caller,
        to,
        code: "Proceeding",
        reason: None,
        peer: None,
        missed: false,
        sequence: 1,
    });
    let peer =
        json!({"telephonySessionId": sid, "sessionId": session.session_id, "partyId": new_pid});
    bump(state, sid, &party.id, |p| {
        p.code = "Gone";
        p.reason = Some("BlindTransfer");
        p.peer = Some(peer);
    });
    // The rep's party is Gone, then the new party rings (order inferred).
    let mut changes = vec![(sid.to_string(), party.id.clone())];
    if extension.is_some() {
        changes.push((sid.to_string(), new_pid));
    }
    Ok(changes)
}

/// Warm transfer: the rep's party here and their party in the consult session leave; the caller
/// and the consulted party talk. Both of the rep's parties are Gone with reason
/// `AttendedTransfer` and a `peerId` naming the party they were connected to now.
/// (The endpoint is from memory of the API reference, as the reference marks it: inferred.)
fn bridge(state: &mut State, sid: &str, party: &Party, body: &Value) -> Result<Changes, RcError> {
    let other_sid = body
        .get("telephonySessionId")
        .and_then(Value::as_str)
        .ok_or_else(|| RcError::invalid("telephonySessionId", "missing"))?
        .to_string();
    let other_pid = body
        .get("partyId")
        .and_then(Value::as_str)
        .ok_or_else(|| RcError::invalid("partyId", "missing"))?
        .to_string();
    if other_sid == sid {
        return Err(RcError::invalid("telephonySessionId", &other_sid));
    }
    let other = state
        .sessions
        .get(&other_sid)
        .ok_or_else(|| RcError::not_found("telephonySessionId", &other_sid))?
        .clone();
    let other_party = other
        .party(&other_pid)
        .ok_or_else(|| RcError::not_found("partyId", &other_pid))?;
    for p in [party, other_party] {
        if !matches!(p.code, "Answered" | "Hold") {
            return Err(RcError::conflict(format!(
                "party {} is {}, not connected",
                p.id, p.code
            )));
        }
    }
    let remote_here = state
        .sessions
        .get(sid)
        .and_then(|s| s.parties.iter().find(|p| p.id != party.id && p.live()))
        .map(|p| p.id.clone())
        .ok_or_else(|| RcError::conflict(format!("nobody else is on {sid}")))?;
    let remote_there = other
        .parties
        .iter()
        .find(|p| p.id != other_pid && p.live())
        .map(|p| p.id.clone())
        .ok_or_else(|| RcError::conflict(format!("nobody else is on {other_sid}")))?;
    let here_session_id = state
        .sessions
        .get(sid)
        .map(|s| s.session_id.clone())
        .unwrap_or_default();
    bump(state, sid, &party.id, |p| {
        p.code = "Gone";
        p.reason = Some("AttendedTransfer");
        p.peer = Some(
            json!({"telephonySessionId": other_sid, "sessionId": other.session_id,
                             "partyId": remote_there}),
        );
    });
    bump(state, &other_sid, &other_pid, |p| {
        p.code = "Gone";
        p.reason = Some("AttendedTransfer");
        p.peer = Some(
            json!({"telephonySessionId": sid, "sessionId": here_session_id,
                             "partyId": remote_here}),
        );
    });
    if let Some(s) = state.sessions.get_mut(sid) {
        s.bridged = Some(other_sid.clone());
    }
    if let Some(s) = state.sessions.get_mut(&other_sid) {
        s.bridged = Some(sid.to_string());
    }
    Ok(vec![
        (sid.to_string(), party.id.clone()),
        (other_sid, other_pid),
    ])
}

/// Ends a call: every live party of the session and of the session bridged with it. A rep party
/// still ringing when the caller gives up is a missed call.
fn end_call(state: &mut State, sid: &str, by_caller: bool) -> Changes {
    let mut sids = vec![sid.to_string()];
    if let Some(other) = state.sessions.get(sid).and_then(|s| s.bridged.clone()) {
        sids.push(other);
    }
    let mut changes = Vec::new();
    for sid in sids {
        let Some(session) = state.sessions.get_mut(&sid) else {
            continue;
        };
        let inbound = !session.outbound;
        for party in session.parties.iter_mut().filter(|p| p.live()) {
            if party.extension.is_some() {
                party.missed = by_caller
                    && inbound
                    && party.direction == "Inbound"
                    && party.code == "Proceeding";
                party.sequence += 1;
                changes.push((sid.clone(), party.id.clone()));
            }
            party.code = "Disconnected";
        }
    }
    changes
}
