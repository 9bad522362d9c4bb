//! Writes due outbox entries to V2, exactly once per call, and tells the reps how it went.
//!
//! Exactly once: before creating, the writer looks the call up by `externalId.displayId` (the
//! reference the widget gave V2 for the call), so the record Agent Desktop created from the
//! widget's payload, or one the relay created just before a crash, a timeout or a lost answer,
//! is updated instead of a second one created. Later changes (notes after the call, a late
//! recording link) become a merge PATCH with If-Match; a 412 re-reads and recomputes the patch. Failures
//! V2 may recover from (429 with its Retry-After, 5xx, timeouts, auth) are retried with an
//! exponential back-off; validation errors are parked with V2's message until the rep retries.

use std::sync::Arc;
use std::time::Duration;

use cti_protocol::ws::ActivityStatus;

use super::Activities;
use super::outbox::{Entry, Next};
use crate::authority::{Authority, AuthorityError};
use crate::calls::{CallStore, Stripes};
use crate::clock::SharedClock;
use crate::config::{Config, TenantConfig};
use crate::metrics::Metrics;
use crate::numbers::TenantNumbers;
use crate::push::Hub;
use crate::v2::client::Collection;
use crate::v2::{V2Client, V2Error, Versioned, phone_call};

/// Entries written at once per tenant.
const BATCH: usize = 16;
/// How often the writer looks for due entries when nobody woke it.
const POLL: Duration = Duration::from_millis(500);
/// PATCHes that may meet a 412 in one attempt before it counts as a failure.
const CONFLICT_ROUNDS: usize = 3;

/// What the writer works with: the outbox, the reps' authority, the legs it shows statuses on,
/// and each tenant's V2.
#[derive(Debug)]
pub struct Writer {
    pub activity: Arc<Activities>,
    pub authority: Arc<Authority>,
    pub calls: Arc<dyn CallStore>,
    pub stripes: Arc<Stripes>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub settings: WriterSettings,
    pub tenants: Vec<WriterTenant>,
}

/// A tenant as the writer sees it.
#[derive(Debug)]
pub struct WriterTenant {
    pub config: TenantConfig,
    /// The tenant's V2 with its technical user (the authority may write as the rep instead).
    pub v2: V2Client,
    /// Who of the reps V2 knows as employees, for the activity's owner.
    pub numbers: Arc<TenantNumbers>,
}

#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// How long a claimed entry is this writer's.
    pub lease_ms: u64,
    /// How long one attempt may take: shorter than the lease, so the lease never runs out while
    /// V2 is still being written (another instance would claim the entry and write it twice).
    pub attempt_ms: u64,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// How long a stopping relay keeps writing due activities before it gives up.
    pub drain_ms: u64,
}

/// What the lease has beyond the attempt's deadline: the give-back's own round trip.
const LEASE_MARGIN_MS: u64 = 5_000;

impl WriterSettings {
    pub fn from_config(config: &Config) -> Self {
        // An attempt is a few V2 requests, each bounded by the timeout; past the deadline it is
        // abandoned and retried (the next attempt finds what it created by the call id). A
        // crashed instance's entries come back after the lease.
        let attempt_ms = (config.v2_timeout.as_millis() as u64 * 4).max(1_000);
        WriterSettings {
            lease_ms: attempt_ms + LEASE_MARGIN_MS,
            attempt_ms,
            retry_base_ms: config.activity_retry_base.as_millis() as u64,
            retry_max_ms: config.activity_retry_max.as_millis() as u64,
            drain_ms: config.drain.as_millis() as u64,
        }
    }
}

/// Runs until `stopping` resolves (rounds under way finish); [`drain`] takes over from there.
///
/// Each tenant has a loop of its own, all polled together: a tenant whose V2 hangs holds up only
/// its own activities (each of its attempts until its deadline), never another tenant's.
pub async fn run(writer: Writer, stopping: impl std::future::Future<Output = ()>) {
    use futures_util::FutureExt as _;
    let stopping = stopping.shared();
    let loops = writer
        .tenants
        .iter()
        .map(|tenant| write_tenant(&writer, tenant, stopping.clone()));
    futures_util::future::join_all(loops).await;
}

/// One tenant's writer loop: rounds while there is work, else a wait for a wake-up, the next
/// poll or the stop.
async fn write_tenant(
    writer: &Writer,
    tenant: &WriterTenant,
    stopping: impl std::future::Future<Output = ()> + Clone,
) {
    use futures_util::FutureExt as _;
    let mut wakes = writer.activity.wakes();
    loop {
        if stopping.clone().now_or_never().is_some() {
            return;
        }
        if !write_due(writer, tenant).await {
            tokio::select! {
                _ = wakes.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stopping.clone() => return,
            }
        }
    }
}

/// The relay stops: writes what is due until nothing is or the drain time (on the relay's clock)
/// is up (a round still under way then is cut off: its leases run out, its entries stay queued),
/// then names at error level every call whose activity only this process held and that is
/// not in V2: those are lost (memory outbox without a journal, or memory during a Redis outage).
/// Tenants drain side by side, so one whose V2 hangs does not use up the others' time.
pub async fn drain(writer: &Writer) {
    let deadline = writer
        .clock
        .now_ms()
        .saturating_add(writer.settings.drain_ms);
    // What would be lost gets one more try now, whatever its back-off said.
    for tenant in &writer.tenants {
        let tid = tenant.config.id.as_str();
        for call in writer.activity.outbox.at_risk(tid).await {
            if let Err(err) = writer
                .activity
                .outbox
                .retry(tid, &call, writer.clock.now_ms())
                .await
            {
                tracing::warn!(%err, call = %call, "cannot try the activity once more");
            }
        }
    }
    let drain_tenant = |tenant| async move {
        loop {
            let left = deadline.saturating_sub(writer.clock.now_ms());
            if left == 0 {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(left), write_due(writer, tenant)).await
            {
                Ok(true) => continue,
                Ok(false) | Err(_) => break,
            }
        }
    };
    futures_util::future::join_all(writer.tenants.iter().map(drain_tenant)).await;
    for tenant in &writer.tenants {
        let tid = tenant.config.id.as_str();
        let lost = writer.activity.outbox.at_risk(tid).await;
        if !lost.is_empty() {
            tracing::error!(
                tenant = %tid, calls = ?lost,
                "stopping with activities not yet in V2 that only this process held: they are lost"
            );
        }
    }
}

/// One round for one tenant; true when it found work.
pub async fn write_due(state: &Writer, tenant: &WriterTenant) -> bool {
    let tid = tenant.config.id.as_str();
    legs_written_back(state, tid).await;
    let now = state.clock.now_ms();
    let lease_ms = state.settings.lease_ms;
    let entries = match state
        .activity
        .outbox
        .claim_due(tid, now, lease_ms, BATCH)
        .await
    {
        Ok(entries) => entries,
        Err(err) => {
            tracing::warn!(%err, tenant = %tid, "activity outbox unavailable; retrying");
            return false;
        }
    };
    if entries.is_empty() {
        return false;
    }
    let attempts = entries
        .into_iter()
        .map(|entry| attempt(state, tenant, entry));
    futures_util::future::join_all(attempts).await;
    if let Ok(backlog) = state.activity.outbox.backlog(tid).await {
        state
            .metrics
            .activity_backlog
            .get_or_create(&crate::metrics::TenantLabels { tenant: tid.into() })
            .set(backlog as i64);
    }
    true
}

/// Legs kept in memory while Redis failed go back to Redis once it answers, whether or not
/// their call is read again. A finished call among them is queued again from what it now is:
/// memory may have built its leg without the call's history (its first event here came
/// mid-call during the outage), which the write-back completed from Redis's copy.
async fn legs_written_back(state: &Writer, tenant: &str) {
    for leg in state.calls.write_back(tenant).await {
        if !leg.state.is_final() {
            continue;
        }
        let _serial = state.stripes.of(tenant, &leg.id).lock().await;
        let queued = match state.calls.get(tenant, &leg.id, &leg.agent).await {
            Ok(Some(now)) => {
                state
                    .activity
                    .queue_if_finished(state.calls.as_ref(), tenant, &now, state.clock.now_ms())
                    .await
            }
            Ok(None) => Ok(false),
            Err(err) => Err(err.into()),
        };
        if let Err(err) = queued {
            tracing::warn!(%err, call = %leg.id, "activity of a call written back to Redis not queued again");
        }
    }
}

/// What one attempt did in V2.
enum Wrote {
    Created,
    Updated,
    Unchanged,
}

/// Why an attempt failed: V2 said so, or the relay could not act for the rep.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    V2(#[from] V2Error),
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error("V2 did not finish within {0:?}")]
    Deadline(Duration),
}

async fn attempt(state: &Writer, tenant: &WriterTenant, mut entry: Entry) {
    let tid = tenant.config.id.as_str();
    let shown = super::status_of(&entry, &tenant.config.v2_url);
    let fields = written_fields(&tenant.config);
    let deadline = Duration::from_millis(state.settings.attempt_ms);
    let work = async {
        match state
            .authority
            .client_for(&tenant.config, &tenant.v2, &entry.log.owner)
            .await
        {
            Ok(v2) => write(&v2, tenant, &mut entry).await.map_err(Failure::from),
            Err(err) => Err(Failure::from(err)),
        }
    };
    let result = match tokio::time::timeout(deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Deadline(deadline)),
    };
    let now = state.clock.now_ms();
    let (next, outcome) = match result {
        Ok(wrote) => {
            entry.progress.written_version = entry.version;
            entry.progress.written_notes = Some(entry.log.notes.clone());
            entry.progress.attempts = 0;
            entry.progress.last_error = None;
            entry.progress.parked = false;
            let word = match wrote {
                Wrote::Created => "created",
                Wrote::Updated => "updated",
                Wrote::Unchanged => "unchanged",
            };
            tracing::info!(tenant = %tid, call = %entry.call_id, outcome = word, "activity written");
            (Next::Done, word)
        }
        Err(err) => {
            entry.progress.attempts = entry.progress.attempts.saturating_add(1);
            entry.progress.last_error = Some(describe(&err, &fields));
            if refused(&err) {
                entry.progress.parked = true;
                tracing::warn!(tenant = %tid, call = %entry.call_id, %err, "V2 refused the activity; parked");
                (Next::Parked, "parked")
            } else {
                entry.progress.parked = false;
                let at = now + wait_ms(&state.settings, &err, entry.progress.attempts);
                tracing::info!(
                    tenant = %tid, call = %entry.call_id, attempts = entry.progress.attempts,
                    retry_in_ms = at - now, %err, "activity not written yet; will retry"
                );
                (Next::RetryAt(at), "retry")
            }
        }
    };
    state.metrics.activity_write(tid, outcome);
    match state.activity.outbox.finish(tid, &entry, next, now).await {
        Ok(true) => {}
        Ok(false) => {
            // Another writer has the entry now; what it records stands.
            tracing::warn!(call = %entry.call_id, "the activity's lease ran out during the attempt; its outcome is discarded");
            return;
        }
        Err(err) => {
            // The lease runs out and another attempt finds the activity by its call id.
            tracing::warn!(%err, call = %entry.call_id, "could not record the activity's progress");
        }
    }
    entry.due = matches!(next, Next::RetryAt(_));
    let status = super::status_of(&entry, &tenant.config.v2_url);
    if status != shown {
        show(state, tenant, &entry.call_id, status).await;
    }
}

/// Shows the activity's new status on every leg of the call: each rep who had it sees it. Under
/// the call's stripe, so a leg's newer state is never overtaken by this older copy of it.
async fn show(state: &Writer, tenant: &WriterTenant, call_id: &str, status: ActivityStatus) {
    let tid = tenant.config.id.as_str();
    let _serial = state.stripes.of(tid, call_id).lock().await;
    match state.calls.legs(tid, call_id).await {
        Ok(legs) => {
            for leg in legs {
                state.hub.publish(tid, leg.view(Some(status.clone()))).await;
            }
        }
        Err(err) => tracing::warn!(%err, call = %call_id, "cannot show the activity's status"),
    }
}

async fn write(v2: &V2Client, tenant: &WriterTenant, entry: &mut Entry) -> Result<Wrote, V2Error> {
    let known = match &entry.progress.v2_id {
        Some(id) => v2.get(Collection::PhoneCalls, id).await?,
        None => None,
    };
    let found = match known {
        Some(found) => Some(found),
        None => {
            v2.find(
                Collection::PhoneCalls,
                &phone_call::by_call_filter(&entry.call_id),
            )
            .await?
        }
    };
    let employee = |rep: &str| tenant.numbers.employee_id(rep);
    let mapping = &tenant.config.activity_fields;
    let Some(mut current) = found else {
        entry.progress.created_from_mid_call |= entry.log.from_mid_call;
        let body = phone_call::create_body(&entry.log, mapping, &employee);
        let created = v2.create(Collection::PhoneCalls, &body).await?;
        remember_ids(entry, &created);
        return Ok(Wrote::Created);
    };
    remember_ids(entry, &current);
    if entry.log.from_mid_call && !entry.progress.created_from_mid_call {
        // The call's history here begins mid-call (an `ended` redelivered or replayed after a
        // restart that forgot the call): its log knows less than the activity V2 holds, which
        // this entry did not make from such a log, and would only downgrade it (review F5).
        tracing::info!(call = %entry.call_id, "activity left as V2 has it: this log of the call begins mid-call");
        return Ok(Wrote::Unchanged);
    }
    for round in 0..CONFLICT_ROUNDS {
        let Some(patch) = phone_call::update_patch(&current.record, &entry.log, mapping, &employee)
        else {
            return Ok(if round == 0 {
                Wrote::Unchanged
            } else {
                Wrote::Updated
            });
        };
        let id = entry.progress.v2_id.clone().unwrap_or_default();
        match v2
            .patch(Collection::PhoneCalls, &id, &current.etag, &patch)
            .await
        {
            Ok(_) => return Ok(Wrote::Updated),
            Err(V2Error::Status { status: 412, .. }) => {
                // Someone edited it in V2 since we read it: read again and merge into theirs.
                match v2.get(Collection::PhoneCalls, &id).await? {
                    Some(again) => current = again,
                    None => {
                        entry.progress.v2_id = None;
                        return Err(V2Error::Decode {
                            path: format!("phone call {id}"),
                            reason: "deleted in V2 while being updated".into(),
                        });
                    }
                }
            }
            Err(err) => return Err(err),
        }
    }
    Err(V2Error::Status {
        status: 412,
        path: "phone call".into(),
        code: "conflict".into(),
        message: format!("still changing in V2 after {CONFLICT_ROUNDS} attempts"),
        retry_after: None,
    })
}

fn remember_ids(entry: &mut Entry, record: &Versioned) {
    let text = |key: &str| {
        record
            .record
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    if let Some(id) = text("id") {
        entry.progress.v2_id = Some(id);
    }
    if let Some(display) = text("displayId") {
        entry.progress.display_id = Some(display);
    }
}

/// Errors no retry fixes: V2 understood the request and said no.
fn refused(err: &Failure) -> bool {
    matches!(
        err,
        Failure::V2(V2Error::Status {
            status: 400 | 409 | 413 | 415 | 422,
            ..
        })
    )
}

/// The phone-call fields the writer may send for the tenant, as V2 would name them.
fn written_fields(config: &TenantConfig) -> Vec<String> {
    let mut fields = vec![
        phone_call::TRANSCRIPT.to_string(),
        phone_call::EXTERNAL_ID.to_string(),
    ];
    fields.extend(config.activity_fields.values().cloned());
    fields
}

/// The field V2's refusal names, of those the writer sends. V2's messages name the property
/// (`Data is required or invalid -> transcript`); which spelling (`/` or `.`) is inferred, so
/// both are looked for, the longest path first.
fn refused_field(message: &str, fields: &[String]) -> Option<String> {
    let mut fields: Vec<&String> = fields.iter().collect();
    fields.sort_by_key(|f| std::cmp::Reverse(f.len()));
    fields
        .into_iter()
        .find(|f| message.contains(f.as_str()) || message.contains(&f.replace('/', ".")))
        .cloned()
        .or_else(|| {
            // Not one of ours: the property V2 names after its arrow or after "property".
            let after = message
                .split_once("->")
                .or_else(|| message.split_once("property "))?
                .1;
            after.split_whitespace().next().map(str::to_string)
        })
}

/// What the rep reads about a failed attempt; a validation error names the refused field.
fn describe(err: &Failure, fields: &[String]) -> String {
    let err = match err {
        Failure::V2(err) => err,
        Failure::Authority(err) => return err.to_string(),
        Failure::Deadline(_) => return err.to_string(),
    };
    match err {
        V2Error::Status {
            status: status @ (400 | 415 | 422),
            code,
            message,
            ..
        } => match refused_field(message, fields) {
            Some(field) => {
                format!("V2 refused the field {field} ({status} {code}): {message}")
            }
            None => format!("V2 answered {status} ({code}): {message}"),
        },
        V2Error::Status {
            status,
            code,
            message,
            ..
        } => format!("V2 answered {status} ({code}): {message}"),
        V2Error::Transport { reason, .. } => format!("V2 unreachable: {reason}"),
        V2Error::Decode { reason, .. } => format!("unexpected answer from V2: {reason}"),
    }
}

/// The back-off before attempt `attempts + 1`: doubling from the configured base up to the
/// maximum, and never sooner than V2's Retry-After.
fn wait_ms(settings: &WriterSettings, err: &Failure, attempts: u32) -> u64 {
    let (base, max) = (settings.retry_base_ms, settings.retry_max_ms);
    let backoff = base
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(max);
    match err {
        Failure::V2(V2Error::Status {
            retry_after: Some(secs),
            ..
        }) => backoff.max(secs.saturating_mul(1000)),
        // Waiting for the rep to sign in costs V2 nothing: look again soon.
        Failure::Authority(
            AuthorityError::NoUserToken { .. } | AuthorityError::NotConnected { .. },
        ) => backoff.min(5_000),
        _ => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_error(status: u16, retry_after: Option<u64>) -> Failure {
        Failure::V2(V2Error::Status {
            status,
            path: "/p".into(),
            code: "c".into(),
            message: "m".into(),
            retry_after,
        })
    }

    #[test]
    fn validation_errors_park_and_the_rest_retry() {
        assert!(refused(&status_error(422, None)));
        assert!(refused(&status_error(400, None)));
        for retried in [408, 429, 500, 502, 503, 401, 403, 412] {
            assert!(!refused(&status_error(retried, None)), "{retried}");
        }
        assert!(!refused(&Failure::V2(V2Error::Transport {
            path: "/p".into(),
            reason: "refused".into()
        })));
        assert!(!refused(&Failure::Authority(AuthorityError::NoUserToken {
            rep: "alice".into()
        })));
    }

    #[test]
    fn a_refusal_names_the_field() {
        let mut config = crate::config::Config::demo("http://127.0.0.1:1");
        let mut tenant = config.tenants.remove(0);
        tenant
            .activity_fields
            .insert("direction".into(), "extensions/CtiDirection".into());
        let fields = written_fields(&tenant);
        let refusal = |message: &str| {
            Failure::V2(V2Error::Status {
                status: 422,
                path: "/p".into(),
                code: "phoneCall.1001".into(),
                message: message.into(),
                retry_after: None,
            })
        };
        let line = describe(
            &refusal("Invalid value -> extensions.CtiDirection"),
            &fields,
        );
        assert!(line.contains("field extensions/CtiDirection"), "{line}");
        let line = describe(&refusal("Text too long -> transcript"), &fields);
        assert!(line.contains("field transcript"), "{line}");
        let line = describe(&refusal("the property foo does not exist"), &fields);
        assert!(line.contains("field foo"), "{line}");
    }

    #[test]
    fn every_mappable_field_has_a_value() {
        let log = crate::calls::log::CallLog {
            call_id: "c".into(),
            direction: crate::calls::log::LogDirection::Inbound,
            outcome: cti_protocol::event::EndReason::Completed,
            started_at: "2026-11-25T10:00:00Z".into(),
            answered_at: None,
            ended_at: "2026-11-25T10:00:10Z".into(),
            talk_secs: 0,
            total_secs: 10,
            from: "+1".into(),
            to: "+2".into(),
            remote: "+1".into(),
            reps: vec!["a".into()],
            owner: "a".into(),
            record: Some(crate::calls::log::LoggedRecord {
                kind: cti_protocol::ws::RecordKind::Account,
                id: "r".into(),
                account_id: Some("r".into()),
            }),
            notes: String::new(),
            disposition: Some("d".into()),
            recording_url: Some("u".into()),
            consent: Some(cti_protocol::ws::Consent {
                required: true,
                jurisdiction: "CH".into(),
                confirmed_by: Some("a".into()),
                confirmed_at: Some("t".into()),
            }),
            from_mid_call: false,
        };
        for name in crate::config::MAPPABLE_ACTIVITY_FIELDS {
            let value = phone_call::mapped_value(name, &log, &|_| Some("e".into()));
            assert!(value.is_some(), "{name}");
        }
    }

    /// A writer for `config`'s tenants on a memory outbox, and that outbox's activities.
    fn writer_for(config: &crate::config::Config, clock: SharedClock) -> (Writer, Arc<Activities>) {
        let http = reqwest::Client::builder()
            .timeout(config.v2_timeout)
            .build()
            .expect("a client");
        let activity = Arc::new(Activities::new(Arc::new(
            crate::activity::MemoryOutbox::default(),
        )));
        let tenants = config
            .tenants
            .iter()
            .map(|t| {
                let v2 = V2Client::with_http(
                    http.clone(),
                    &t.v2_url,
                    crate::v2::client::V2Auth::Basic {
                        user: t.v2_user.clone(),
                        password: t.v2_password.clone(),
                    },
                );
                WriterTenant {
                    config: t.clone(),
                    numbers: Arc::new(TenantNumbers::new(
                        &t.id,
                        v2.clone(),
                        t.region.clone(),
                        crate::numbers::budget::DailyBudget::new(None, clock.clone()),
                    )),
                    v2,
                }
            })
            .collect();
        let writer = Writer {
            activity: activity.clone(),
            authority: Arc::new(Authority::new(
                config,
                http,
                Arc::new(crate::authority::vault::MemoryVault::default()),
                None,
                clock.clone(),
                "this-instance",
            )),
            calls: Arc::new(crate::calls::MemoryCallStore::default()),
            stripes: Arc::default(),
            hub: Arc::new(Hub::new(16, clock.clone())),
            metrics: Arc::new(Metrics::default()),
            clock: clock.clone(),
            settings: WriterSettings::from_config(config),
            tenants,
        };
        (writer, activity)
    }

    /// Review F23: tenant A's V2 takes connections and never answers; tenant B's activity is
    /// written all the same, while A's attempt still waits.
    #[tokio::test]
    async fn a_tenant_whose_v2_hangs_does_not_hold_up_another() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        // A's V2: accepts, reads nothing, answers nothing; says when the writer reached it.
        let hanging = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let hanging_url = format!("http://{}", hanging.local_addr().expect("an address"));
        let (reached, mut reached_rx) = tokio::sync::mpsc::unbounded_channel();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = hanging.accept().await {
                open.push(socket);
                let _ = reached.send(());
            }
        });

        let mut config = crate::config::Config::demo(&sim.url());
        // Long enough that A's attempt outlasts the test: only B's own loop can write B.
        config.v2_timeout = Duration::from_secs(600);
        let mut slow = config.tenants[0].clone();
        slow.id = "slow".into();
        slow.v2_url = hanging_url;
        config.tenants.push(slow);
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let (writer, activity) = writer_for(&config, clock.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(run(writer, async move {
            let _ = stopped.await;
        }));

        let outbox = activity.outbox.clone();
        let now = clock.now_ms();
        outbox
            .put(
                "slow",
                &crate::activity::outbox::tests::log("call-a", ""),
                now,
            )
            .await
            .expect("queued for A");
        activity.wake();
        reached_rx.recv().await.expect("the writer asks A's V2");

        outbox
            .put(
                "demo",
                &crate::activity::outbox::tests::log("call-b", ""),
                now,
            )
            .await
            .expect("queued for B");
        activity.wake();
        let written = async {
            let mut pause = Duration::from_millis(5);
            while outbox.backlog("demo").await.expect("the backlog") > 0 {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        };
        tokio::time::timeout(Duration::from_secs(30), written)
            .await
            .expect("B's activity is written while A's V2 hangs");
        let b = outbox
            .get("demo", "call-b")
            .await
            .expect("the outbox")
            .expect("B's entry");
        assert!(b.progress.v2_id.is_some(), "{:?}", b.progress);
        assert_eq!(outbox.backlog("slow").await.expect("the backlog"), 1);

        let _ = stop.send(());
        writer.abort();
        held.abort();
        sim.abort();
    }

    /// Review F12: the deadline of one attempt is shorter than the lease, whatever V2's
    /// timeout, with room left for the give-back; so the lease does not run out while V2 is
    /// still being written.
    #[test]
    fn an_attempts_deadline_is_shorter_than_the_lease() {
        for secs in [0, 1, 10, 60, 600] {
            let mut config = crate::config::Config::demo("http://127.0.0.1:1");
            config.v2_timeout = Duration::from_secs(secs);
            let settings = WriterSettings::from_config(&config);
            assert!(
                settings.attempt_ms >= config.v2_timeout.as_millis() as u64,
                "an attempt has at least one request's time ({secs} s)"
            );
            assert!(
                settings.attempt_ms + LEASE_MARGIN_MS <= settings.lease_ms,
                "{settings:?}"
            );
        }
    }

    /// Review F12: an attempt whose V2 takes the request and never answers stops at its
    /// deadline (far short of V2's own timeout here): the entry comes back with the reason and a
    /// retry, recorded under the writer's lease, while V2 still holds the request open.
    #[tokio::test]
    async fn an_attempt_stops_at_its_deadline_and_gives_the_entry_back() {
        let hanging = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let hanging_url = format!("http://{}", hanging.local_addr().expect("an address"));
        let (reached, mut reached_rx) = tokio::sync::mpsc::unbounded_channel();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = hanging.accept().await {
                open.push(socket);
                let _ = reached.send(());
            }
        });
        let mut config = crate::config::Config::demo(&hanging_url);
        config.tenants[0].v2_url = hanging_url.clone();
        // V2's own timeout would end the request only long after the test: the deadline must.
        config.v2_timeout = Duration::from_secs(600);
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let (mut writer, activity) = writer_for(&config, clock.clone());
        writer.settings.attempt_ms = 200;
        writer.settings.lease_ms = writer.settings.attempt_ms + LEASE_MARGIN_MS;
        let tenant_id = config.tenants[0].id.clone();
        activity
            .outbox
            .put(
                &tenant_id,
                &crate::activity::outbox::tests::log("call-a", ""),
                clock.now_ms(),
            )
            .await
            .expect("queued");

        let round = write_due(&writer, &writer.tenants[0]);
        assert!(
            tokio::time::timeout(Duration::from_secs(30), round)
                .await
                .expect("the round ends at the attempt's deadline, not at V2's timeout"),
            "the round found the entry"
        );
        reached_rx.try_recv().expect("the attempt reached V2");
        let entry = activity
            .outbox
            .get(&tenant_id, "call-a")
            .await
            .expect("the outbox")
            .expect("the entry stays queued");
        assert_eq!(entry.progress.attempts, 1, "{:?}", entry.progress);
        assert!(!entry.progress.parked, "{:?}", entry.progress);
        assert!(entry.progress.v2_id.is_none(), "{:?}", entry.progress);
        let reason = entry.progress.last_error.unwrap_or_default();
        assert!(reason.contains("did not finish within"), "{reason}");
        assert!(!held.is_finished(), "V2 still holds the request");
        held.abort();
    }

    #[test]
    fn back_off_doubles_to_the_maximum_and_honours_retry_after() {
        let mut config = crate::config::Config::demo("http://127.0.0.1:1");
        config.activity_retry_base = Duration::from_millis(1000);
        config.activity_retry_max = Duration::from_secs(30);
        let settings = WriterSettings::from_config(&config);
        let err = status_error(503, None);
        let waits: Vec<u64> = (1..=7).map(|n| wait_ms(&settings, &err, n)).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(
            wait_ms(&settings, &status_error(429, Some(120)), 1),
            120_000
        );
        assert_eq!(wait_ms(&settings, &status_error(429, Some(1)), 4), 8000);
    }
}
