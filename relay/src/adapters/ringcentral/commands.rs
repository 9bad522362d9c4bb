//! Call controls and click-to-dial through RingCentral's Call Control API, on the rep's party.

use axum::http::Method;
use cti_protocol::ws::CallCommand;
use serde_json::{Value, json};

use super::mapping::{self, PendingConsult};
use super::{Inner, rejected, shared};
use crate::adapters::CommandError;
use crate::calls::Leg;
use crate::secret::mask_number;

impl Inner {
    /// The rep's party on the call: as seen, else as RingCentral has it now (after a restart).
    async fn party(
        &self,
        call: &str,
        rep: &str,
        own_session: bool,
        action: &'static str,
    ) -> Result<(String, String), CommandError> {
        if let Some(found) = self.tracker().party_of(call, rep, own_session) {
            return Ok(found);
        }
        let ext = self
            .extension_of_rep(rep)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: format!("{rep} has no RingCentral extension"),
            })?;
        let sid = if own_session {
            call.to_string()
        } else {
            self.tracker()
                .consult_of(call, &ext.id)
                .ok_or_else(|| CommandError::Rejected {
                    action,
                    status: 409,
                    message: "no consultation on this call".into(),
                })?
        };
        let session = self
            .api
            .call(
                Method::GET,
                &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}"),
                None,
            )
            .await
            .map_err(|e| rejected(action, e))?;
        session["parties"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["extensionId"].as_str() == Some(ext.id.as_str())
                    && !matches!(
                        p.pointer("/status/code").and_then(Value::as_str),
                        Some("Disconnected" | "Gone")
                    )
            })
            .and_then(|p| p["id"].as_str())
            .map(|pid| (sid.clone(), pid.to_string()))
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 409,
                message: format!("{rep} is not on this call"),
            })
    }

    /// The rep's party in the call's own session, else in a session standing for it (the
    /// colleague's leg of a consult lives in the consult session).
    async fn any_party(
        &self,
        call: &str,
        rep: &str,
        action: &'static str,
    ) -> Result<(String, String), CommandError> {
        let seen_here = self.tracker().party_of(call, rep, true);
        if let Some(found) = seen_here {
            return Ok(found);
        }
        let seen_there = self.tracker().party_of(call, rep, false);
        if let Some(found) = seen_there {
            return Ok(found);
        }
        self.party(call, rep, true, action).await
    }

    async fn party_post(
        &self,
        sid: &str,
        pid: &str,
        verb: &str,
        body: Option<&Value>,
        action: &'static str,
    ) -> Result<(), CommandError> {
        self.api
            .call(
                Method::POST,
                &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}/{verb}"),
                Some(body.unwrap_or(&json!({}))),
            )
            .await
            .map(|_| ())
            .map_err(|e| rejected(action, e))
    }

    /// The body of a transfer to `target`: a rep's extension number, else a phone number.
    fn transfer_body(&self, target: &str) -> Result<Value, CommandError> {
        if let Some(ext) = self.extension_of_rep(target) {
            return Ok(json!({"extensionNumber": ext.number}));
        }
        if target.starts_with('+') && target.len() > 4 {
            return Ok(json!({"phoneNumber": target}));
        }
        Err(CommandError::Rejected {
            action: "transfer",
            status: 400,
            message: "the target is neither a rep with an extension nor an E.164 number".into(),
        })
    }

    pub(super) async fn command(
        &self,
        call: &Leg,
        command: &CallCommand,
    ) -> Result<(), CommandError> {
        let rep = call.agent.as_str();
        let action = command.name();
        if self.extensions().all.is_empty() {
            // An instance that does not hold the subscription has not read the directory yet.
            self.load_directory()
                .await
                .map_err(|e| rejected(action, e))?;
        }
        // The call's parties as any instance heard them (this one may have heard none).
        shared::load_call(&self.shared, &self.tracker, &call.id).await;
        match command {
            CallCommand::Answer => {
                let (sid, pid) = self.any_party(&call.id, rep, action).await?;
                let body = self.device_of(rep).map(|d| json!({"deviceId": d}));
                self.party_post(&sid, &pid, "answer", body.as_ref(), action)
                    .await
            }
            CallCommand::Decline => {
                let (sid, pid) = self.any_party(&call.id, rep, action).await?;
                self.tracker().declined.insert(pid.clone());
                shared::note(&self.shared, &pid, "declined", "1").await;
                self.party_post(&sid, &pid, "reject", None, action).await
            }
            CallCommand::Hold | CallCommand::Resume => {
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                let verb = if matches!(command, CallCommand::Hold) {
                    "hold"
                } else {
                    "unhold"
                };
                self.party_post(&sid, &pid, verb, None, action).await
            }
            CallCommand::Hangup => {
                let (sid, pid) = self.any_party(&call.id, rep, action).await?;
                self.api
                    .call(
                        Method::DELETE,
                        &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}/parties/{pid}"),
                        None,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| rejected(action, e))
            }
            CallCommand::Transfer { target } => {
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                let body = self.transfer_body(target)?;
                self.tracker()
                    .transfer_targets
                    .insert(pid.clone(), target.to_lowercase());
                shared::note(&self.shared, &pid, "target", &target.to_lowercase()).await;
                self.party_post(&sid, &pid, "transfer", Some(&body), action)
                    .await
            }
            CallCommand::Consult { target } => self.consult(call, rep, target).await,
            CallCommand::CompleteTransfer => {
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                let (consult, own) = self.party(&call.id, rep, false, action).await?;
                let body = json!({"telephonySessionId": consult, "partyId": own});
                self.party_post(&sid, &pid, "bridge", Some(&body), action)
                    .await
            }
            CallCommand::CancelConsult => {
                let (consult, _) = self.party(&call.id, rep, false, action).await?;
                self.api
                    .call(
                        Method::DELETE,
                        &format!("/restapi/v1.0/account/~/telephony/sessions/{consult}"),
                        None,
                    )
                    .await
                    .map_err(|e| rejected(action, e))?;
                let (sid, pid) = self.party(&call.id, rep, true, action).await?;
                self.party_post(&sid, &pid, "unhold", None, action).await
            }
            _ => Err(CommandError::Rejected {
                action,
                status: 501,
                message: "RingCentral has no such call control here".into(),
            }),
        }
    }

    /// Consult: the caller is held and the rep's phone calls the colleague (a call-out from the
    /// rep's device, a session of its own that stands for this call).
    async fn consult(&self, call: &Leg, rep: &str, target: &str) -> Result<(), CommandError> {
        let action = "consult";
        let refuse = |status: u16, message: String| CommandError::Rejected {
            action,
            status,
            message,
        };
        let device = self
            .device_of(rep)
            .ok_or_else(|| refuse(409, format!("{rep} has no device id for a consult call")))?;
        let own = self
            .extension_of_rep(rep)
            .ok_or_else(|| refuse(404, format!("{rep} has no RingCentral extension")))?;
        let colleague = self
            .extension_of_rep(target)
            .ok_or_else(|| refuse(404, "the target has no RingCentral extension".into()))?;
        let (sid, pid) = self.party(&call.id, rep, true, action).await?;
        if call.state != cti_protocol::ws::CallState::Held {
            self.party_post(&sid, &pid, "hold", None, action).await?;
        }
        // Registered before the call-out, whose first notification may come before its answer.
        let pending = PendingConsult {
            call: call.id.clone(),
            rep_extension: own.id.clone(),
            target_extension: colleague.id.clone(),
        };
        shared::consult_asked(&self.shared, &pending).await;
        self.tracker().pending.push(pending.clone());
        let body =
            json!({"from": {"deviceId": device}, "to": {"extensionNumber": colleague.number}});
        let answer = self
            .api
            .call(
                Method::POST,
                "/restapi/v1.0/account/~/telephony/call-out",
                Some(&body),
            )
            .await;
        self.tracker()
            .pending
            .retain(|p| !(p.call == call.id && p.rep_extension == own.id));
        shared::consult_settled(&self.shared, &pending).await;
        let answer = answer.map_err(|e| rejected(action, e))?;
        if let Some(consult) = answer.pointer("/session/id").and_then(Value::as_str) {
            let alias = mapping::Alias {
                call: call.id.clone(),
                rep_extension: own.id,
            };
            self.tracker()
                .aliases
                .insert(consult.to_string(), alias.clone());
            shared::aliased(&self.shared, consult, &alias).await;
        }
        Ok(())
    }

    pub(super) async fn dial(&self, rep: &str, e164: &str) -> Result<Option<String>, CommandError> {
        let action = "dial";
        if self.extensions().all.is_empty() {
            self.load_directory()
                .await
                .map_err(|e| rejected(action, e))?;
        }
        let ext = self
            .extension_of_rep(rep)
            .ok_or_else(|| CommandError::Rejected {
                action,
                status: 404,
                message: format!("{rep} has no RingCentral extension"),
            })?;
        tracing::info!(tenant = %self.tenant, to = %mask_number(e164), "dialling through RingCentral");
        if let Some(device) = self.device_of(rep) {
            let body = json!({"from": {"deviceId": device}, "to": {"phoneNumber": e164}});
            let answer = self
                .api
                .call(
                    Method::POST,
                    "/restapi/v1.0/account/~/telephony/call-out",
                    Some(&body),
                )
                .await
                .map_err(|e| rejected(action, e))?;
            return Ok(answer
                .pointer("/session/id")
                .and_then(Value::as_str)
                .map(str::to_string));
        }
        // RingOut: RingCentral calls the rep's own phone first, then the number; its answer names
        // no telephony session, the notifications bring it.
        let phone = ext.phone.ok_or_else(|| CommandError::Rejected {
            action,
            status: 409,
            message: format!("{rep} has neither a device id nor a business phone for RingOut"),
        })?;
        let body = json!({"from": {"phoneNumber": phone}, "to": {"phoneNumber": e164},
                          "playPrompt": false});
        self.api
            .call(
                Method::POST,
                &format!("/restapi/v1.0/account/~/extension/{}/ring-out", ext.id),
                Some(&body),
            )
            .await
            .map_err(|e| rejected(action, e))?;
        Ok(None)
    }
}
