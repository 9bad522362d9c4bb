//! The subscription's life: made at start (stale ones to our address deleted first), the calls
//! under way read then, renewed before it expires, watched, and made again when RingCentral no
//! longer has it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use cti_protocol::event::{EventType, TelephonyEvent};
use serde_json::{Value, json};

use super::api::ApiError;
use super::mapping::Source;
use super::{DEFAULT_WATCH_SECS, Inner, MAX_FAILURES, SESSIONS_FILTER};
use crate::adapters::{Link, LinkError};

impl Inner {
    /// Subscriptions to our address left by an earlier run (a crash, a restart): deleted, or
    /// every notification would come once per subscription.
    async fn delete_stale_subscriptions(&self) {
        let Ok(list) = self
            .api
            .call(Method::GET, "/restapi/v1.0/subscription", None)
            .await
        else {
            return;
        };
        for sub in list["records"].as_array().into_iter().flatten() {
            let ours = sub.pointer("/deliveryMode/address").and_then(Value::as_str)
                == Some(self.settings.ringcentral_webhook_url.as_str());
            if let (true, Some(id)) = (ours, sub["id"].as_str()) {
                let gone = self
                    .api
                    .call(
                        Method::DELETE,
                        &format!("/restapi/v1.0/subscription/{id}"),
                        None,
                    )
                    .await;
                if let Err(err) = gone {
                    tracing::warn!(tenant = %self.tenant, %err, "an old RingCentral subscription stays");
                }
            }
        }
    }

    /// The event filters: the account's sessions, or each rep extension's.
    fn event_filters(&self) -> Vec<String> {
        if self.settings.ringcentral_subscription.as_deref() != Some("extensions") {
            return vec![SESSIONS_FILTER.to_string()];
        }
        self.reps
            .users()
            .into_iter()
            .map(|ext| format!("/restapi/v1.0/account/~/extension/{ext}/telephony/sessions"))
            .collect()
    }

    async fn create_subscription(&self) -> Result<(String, u64), ApiError> {
        let body = json!({
            "eventFilters": self.event_filters(),
            "deliveryMode": {
                "transportType": "WebHook",
                "address": self.settings.ringcentral_webhook_url,
                "verificationToken": self.settings.ringcentral_verification_token.expose(),
            },
        });
        let answer = self
            .api
            .call(Method::POST, "/restapi/v1.0/subscription", Some(&body))
            .await?;
        let id = answer["id"].as_str().unwrap_or_default().to_string();
        Ok((id, answer["expiresIn"].as_u64().unwrap_or(900)))
    }

    /// The account's active calls now: every extension's presence names its sessions, which are
    /// read and applied like notifications (deterministic ids: what the relay has is dropped).
    async fn preload(&self, link: &Link) -> Result<(), LinkError> {
        let extensions: Vec<String> = self.extensions().all.iter().map(|e| e.id.clone()).collect();
        let mut sessions: Vec<String> = Vec::new();
        for ext in extensions {
            if self.reps.rep_of(&ext).is_none() {
                continue;
            }
            let presence = self
                .api
                .call(
                    Method::GET,
                    &format!(
                        "/restapi/v1.0/account/~/extension/{ext}/presence?detailedTelephonyState=true&sipData=true"
                    ),
                    None,
                )
                .await
                .map_err(|e| LinkError(format!("reading presence: {e}")))?;
            for call in presence["activeCalls"].as_array().into_iter().flatten() {
                if let Some(sid) = call["telephonySessionId"].as_str()
                    && !sessions.iter().any(|s| s == sid)
                {
                    sessions.push(sid.to_string());
                }
            }
        }
        // The calls the relay holds as live that RingCentral no longer lists: they ended (or
        // changed hands) while nothing was delivered; their sessions say how.
        let mut reps: Vec<String> = self
            .reps
            .users()
            .iter()
            .filter_map(|u| self.reps.rep_of(u))
            .collect();
        reps.sort();
        reps.dedup();
        // A consult session stands for the call it consults on.
        let listed: Vec<String> = {
            let tracker = self.tracker();
            sessions.iter().map(|s| tracker.call_of(s)).collect()
        };
        let gone: Vec<(String, String)> = link
            .live_calls(&reps)
            .await
            .into_iter()
            .filter(|(call, _)| !listed.contains(call))
            .collect();
        for sid in sessions {
            let session = match self
                .api
                .call(
                    Method::GET,
                    &format!("/restapi/v1.0/account/~/telephony/sessions/{sid}"),
                    None,
                )
                .await
            {
                Ok(session) => session,
                // Ended between presence and now: its notifications told or will tell.
                Err(err) if err.status() == Some(404) => continue,
                Err(err) => return Err(LinkError(format!("reading a session: {err}"))),
            };
            for event in self.map_shared(&session, Source::Snapshot).await {
                link.deliver(event)
                    .await
                    .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
            }
        }
        for (call, rep) in gone {
            let events = match self
                .api
                .call(
                    Method::GET,
                    &format!("/restapi/v1.0/account/~/telephony/sessions/{call}"),
                    None,
                )
                .await
            {
                Ok(session) => self.map_shared(&session, Source::Snapshot).await,
                Err(err) if err.status() == Some(404) => Vec::new(),
                Err(err) => return Err(LinkError(format!("reading a session: {err}"))),
            };
            let ended = events.iter().any(|e| {
                e.agent == rep && matches!(e.event_type, EventType::Ended | EventType::Transferred)
            });
            for event in events {
                link.deliver(event)
                    .await
                    .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
            }
            if !ended {
                // RingCentral has no session, or none of the rep's parties in it, any more:
                // the rep's leg is over (how, nobody can tell now).
                link.deliver(self.unseen_end(&call, &rep))
                    .await
                    .map_err(|e| LinkError(format!("the relay did not take a call: {e}")))?;
            }
        }
        Ok(())
    }

    /// The end of a rep's leg RingCentral no longer knows, with an id of its own (once per leg).
    fn unseen_end(&self, call: &str, rep: &str) -> TelephonyEvent {
        TelephonyEvent {
            id: format!("rc:{call}:{rep}:ended-unseen"),
            call_id: call.to_string(),
            event_type: EventType::Ended,
            direction: cti_protocol::event::Direction::Inbound,
            // The relay holds the leg already; its numbers stay as they are.
            from: String::new(),
            to: String::new(),
            agent: rep.to_string(),
            at: self.now(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        }
    }

    /// One run of the subscription's life; returns only when it cannot go on.
    pub(super) async fn run(self: Arc<Self>, link: Link) -> Result<(), LinkError> {
        let watch = Duration::from_secs(
            self.settings
                .ringcentral_watch_secs
                .unwrap_or(DEFAULT_WATCH_SECS)
                .max(1),
        );
        self.load_directory()
            .await
            .map_err(|e| LinkError(format!("reading the extensions: {e}")))?;
        self.delete_stale_subscriptions().await;
        let (mut id, mut expires_in) = self
            .create_subscription()
            .await
            .map_err(|e| LinkError(format!("creating the subscription: {e}")))?;
        tracing::info!(tenant = %self.tenant, subscription = %id, expires_in, "RingCentral subscription created");
        link.up();
        if let Err(err) = self.preload(&link).await {
            link.down();
            return Err(err);
        }
        let mut renew_at = tokio::time::Instant::now() + renew_after(expires_in);
        let mut failures = 0;
        loop {
            let next = (tokio::time::Instant::now() + watch).min(renew_at);
            tokio::time::sleep_until(next).await;
            let renewing = tokio::time::Instant::now() >= renew_at;
            let answer = if renewing {
                self.api
                    .call(
                        Method::POST,
                        &format!("/restapi/v1.0/subscription/{id}/renew"),
                        None,
                    )
                    .await
            } else {
                self.api
                    .call(
                        Method::GET,
                        &format!("/restapi/v1.0/subscription/{id}"),
                        None,
                    )
                    .await
            };
            match answer {
                Ok(sub) => {
                    failures = 0;
                    if renewing {
                        expires_in = sub["expiresIn"].as_u64().unwrap_or(expires_in);
                        renew_at = tokio::time::Instant::now() + renew_after(expires_in);
                    }
                }
                Err(err) if err.status() == Some(404) => {
                    // RingCentral no longer has it (expired, deleted): a new one, and whatever
                    // happened to calls meanwhile read from the sessions.
                    link.down();
                    link.error(&format!(
                        "the subscription is gone ({err}); creating a new one"
                    ));
                    match self.create_subscription().await {
                        Ok((new_id, new_expiry)) => {
                            link.up();
                            id = new_id;
                            expires_in = new_expiry;
                            renew_at = tokio::time::Instant::now() + renew_after(expires_in);
                            tracing::info!(tenant = %self.tenant, subscription = %id, "RingCentral subscription created again");
                            if let Err(err) = self.load_directory().await {
                                link.error(&format!("reading the extensions: {err}"));
                            }
                            if let Err(err) = self.preload(&link).await {
                                link.down();
                                return Err(err);
                            }
                        }
                        Err(err) => {
                            return Err(LinkError(format!(
                                "creating the subscription again: {err}"
                            )));
                        }
                    }
                }
                Err(err) => {
                    failures += 1;
                    link.error(&format!("looking at the subscription: {err}"));
                    if failures >= MAX_FAILURES {
                        link.down();
                        return Err(LinkError(format!("RingCentral does not answer: {err}")));
                    }
                }
            }
        }
    }
}

/// When to renew a subscription that lives `expires_in` seconds: at two thirds of its life.
fn renew_after(expires_in: u64) -> Duration {
    Duration::from_millis(expires_in.max(1) * 2000 / 3)
}
