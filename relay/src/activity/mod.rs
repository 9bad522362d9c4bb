//! Phone-call activities: every finished call ends as exactly one activity in V2.
//!
//! A finished call's log (`calls::log`, derived from its legs) is kept in the [`outbox`] until V2
//! has it (memory, or Redis in [`redis_outbox`]); [`writer`] writes it on the tenant's
//! authority. Where an activity stands is the outbox's to say ([`status_of`]): legs never hold
//! it, the view a rep sees joins the two when it is published. The field names V2 sees live in
//! `v2::phone_call`.

pub mod fallback;
mod journal;
pub mod outbox;
pub mod redis_outbox;
pub mod writer;

use std::sync::Arc;

use cti_protocol::ws::{ActivityState, ActivityStatus};

pub use fallback::FallbackOutbox;
pub use outbox::{Entry, Failure, MemoryOutbox, Outbox, OutboxError};
pub use redis_outbox::RedisOutbox;

use crate::calls::{CallStore, Leg};

/// The activity side as the rest of the relay sees it: the outbox, and the writer's wake-up
/// call for when something was queued.
#[derive(Debug)]
pub struct Activities {
    pub outbox: Arc<dyn Outbox>,
    /// Counts wake-up calls: each tenant's writer loop watches it, so one call wakes them all
    /// and a call made while a loop is busy is seen when it next waits.
    wake: tokio::sync::watch::Sender<u64>,
}

impl Activities {
    pub fn new(outbox: Arc<dyn Outbox>) -> Self {
        Activities {
            outbox,
            wake: tokio::sync::watch::channel(0).0,
        }
    }

    /// Has the writer look at the outbox now rather than at its next tick.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A watch on [`Activities::wake`]: its `changed()` resolves once per wake-up (or several)
    /// since the watcher last looked.
    pub fn wakes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Queues the call's activity if its legs (with `changed` replacing its stored version) say
    /// the call is over; a call already queued gets its newer log. True when queued. Must
    /// succeed before the change is acknowledged, so an ended call is never forgotten.
    pub async fn queue_if_finished(
        &self,
        calls: &dyn CallStore,
        tenant: &str,
        changed: &Leg,
        now_ms: u64,
    ) -> Result<bool, QueueError> {
        let mut legs = calls.legs(tenant, &changed.id).await?;
        match legs.iter_mut().find(|l| l.agent == changed.agent) {
            Some(leg) => *leg = changed.clone(),
            None => {
                legs.push(changed.clone());
                crate::calls::store::sort_legs(&mut legs);
            }
        }
        if legs.iter().any(|l| l.without_history) {
            // It would log the call from what the outage let this instance see (an answered call
            // as missed, without its notes); it is queued once the leg is completed.
            tracing::info!(call = %changed.id, "activity waits for the call's legs from before the outage");
            return Ok(false);
        }
        let Some(log) = crate::calls::log::completed(&legs) else {
            return Ok(false);
        };
        self.outbox.put(tenant, &log, now_ms).await?;
        self.wake();
        Ok(true)
    }

    /// Where the call's activity stands, for the reps' views; None before the call ended (or
    /// while the outbox cannot be read: the view goes out without it rather than not at all).
    pub async fn status(
        &self,
        tenant: &str,
        call_id: &str,
        v2_url: &str,
    ) -> Option<ActivityStatus> {
        match self.outbox.get(tenant, call_id).await {
            Ok(entry) => entry.map(|entry| status_of(&entry, v2_url)),
            Err(err) => {
                tracing::warn!(%err, call = %call_id, "activity status unavailable for the view");
                None
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Calls(#[from] crate::calls::StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// What the reps see of an outbox entry: logged once V2 holds its latest log, failed while V2's
/// refusal stands (until a retry or a change makes it due again), pending otherwise. The link
/// opens the activity as soon as V2 has one, also while a newer log is on its way.
pub fn status_of(entry: &Entry, v2_url: &str) -> ActivityStatus {
    let state = if entry.is_written() {
        ActivityState::Logged
    } else if entry.progress.parked && !entry.due {
        ActivityState::Failed
    } else {
        ActivityState::Pending
    };
    ActivityStatus {
        state,
        v2_id: entry.progress.v2_id.clone(),
        display_id: entry.progress.display_id.clone(),
        link: entry
            .progress
            .v2_id
            .as_deref()
            .filter(|_| entry.progress.written_version > 0)
            .map(|id| crate::v2::phone_call::ui_link(v2_url, id)),
        reason: entry.progress.last_error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::leg::fixtures::ringing;
    use crate::calls::{MemoryCallStore, transitions};
    use cti_protocol::event::{EventType, TelephonyEvent};

    const V2: &str = "https://tenant.example";

    fn ended(leg: Leg) -> Leg {
        let event = TelephonyEvent {
            id: "e-end".into(),
            call_id: leg.id.clone(),
            event_type: EventType::Ended,
            direction: leg.direction,
            from: leg.from.clone(),
            to: leg.to.clone(),
            agent: leg.agent.clone(),
            at: "2026-12-02T10:01:00Z".into(),
            transfer_to: None,
            reason: None,
            recording_url: None,
        };
        match transitions::apply(leg, &event) {
            transitions::Transition::Changed(leg) => *leg,
            transitions::Transition::Unchanged => panic!("the end changes a ringing leg"),
        }
    }

    #[tokio::test]
    async fn a_leg_built_without_history_does_not_make_the_activity() {
        let calls = MemoryCallStore::default();
        let activities = Activities::new(Arc::new(MemoryOutbox::default()));
        let mut leg = ended(ringing("c-1", "alice"));
        leg.without_history = true;
        assert!(
            !activities
                .queue_if_finished(&calls, "t", &leg, 2)
                .await
                .expect("asked")
        );
        assert_eq!(activities.outbox.get("t", "c-1").await.expect("read"), None);

        leg.without_history = false;
        assert!(
            activities
                .queue_if_finished(&calls, "t", &leg, 3)
                .await
                .expect("queued once completed")
        );
    }

    #[tokio::test]
    async fn an_ended_call_is_queued_once_and_shows_pending_then_logged_then_failed() {
        let calls = MemoryCallStore::default();
        let activities = Activities::new(Arc::new(MemoryOutbox::default()));
        let leg = ringing("c-1", "alice");
        assert!(
            !activities
                .queue_if_finished(&calls, "t", &leg, 1)
                .await
                .expect("queued")
        );
        assert_eq!(activities.status("t", "c-1", V2).await, None);

        let leg = ended(leg);
        assert!(
            activities
                .queue_if_finished(&calls, "t", &leg, 2)
                .await
                .expect("queued")
        );
        let status = activities.status("t", "c-1", V2).await.expect("a status");
        assert_eq!(status.state, ActivityState::Pending);
        assert_eq!(status.link, None);

        let mut entry = activities
            .outbox
            .get("t", "c-1")
            .await
            .expect("read")
            .expect("an entry");
        entry.progress.v2_id = Some("pc-9".into());
        entry.progress.written_version = entry.version;
        entry.due = false;
        let logged = status_of(&entry, V2);
        assert_eq!(logged.state, ActivityState::Logged);
        assert!(logged.link.is_some_and(|l| l.contains("pc-9")));

        // A newer log (notes after the call) keeps the link while it is on its way.
        entry.version += 1;
        entry.due = true;
        let updating = status_of(&entry, V2);
        assert_eq!(updating.state, ActivityState::Pending);
        assert!(updating.link.is_some());

        entry.progress.parked = true;
        entry.progress.last_error = Some("V2 refused it".into());
        assert_eq!(
            status_of(&entry, V2).state,
            ActivityState::Pending,
            "still due"
        );
        entry.due = false;
        let failed = status_of(&entry, V2);
        assert_eq!(failed.state, ActivityState::Failed);
        assert_eq!(failed.reason.as_deref(), Some("V2 refused it"));
    }
}
