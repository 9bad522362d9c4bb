//! What each instance tells the others for the admin page: the reps with a session open on it,
//! the provider connection it holds, and its last number-index build. An administrator asks one
//! instance (whichever the router picks) and should see the whole deployment, not that one.
//!
//! Here are the reports and where instances leave them; `reporting` makes and publishes them
//! (it needs the whole state, which holds the store kept here). Each instance publishes its
//! report per tenant every `report_interval` with a lifetime of three intervals, so the reps of
//! an instance that died drop out by themselves; the instance that answers the page uses its own
//! state as it is now and the others' latest reports. Without Redis there is one instance and
//! nothing to share.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::adapters::connector::{LinkState, Role};
use crate::numbers::refresh::LastBuild;

/// One instance's facts about one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceReport {
    /// Rep -> sessions open on the instance.
    pub reps: BTreeMap<String, usize>,
    /// The tenant's provider connection, when the instance holds it.
    pub link: Option<LinkReport>,
    /// The instance's last completed build of the tenant's number index.
    pub last_build: Option<LastBuild>,
}

/// A held provider connection, as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkReport {
    pub connected: bool,
    pub detail: Option<String>,
    pub reconnects: u64,
}

impl InstanceReport {
    pub fn is_empty(&self) -> bool {
        self.reps.is_empty() && self.link.is_none() && self.last_build.is_none()
    }

    /// The deployment's view: `own` (this instance, current) merged with `others`' reports.
    /// Sessions add up per rep; the provider connection is the holder's; the last build is the
    /// newest any instance finished.
    pub fn merged(own: InstanceReport, others: Vec<InstanceReport>) -> InstanceReport {
        let mut all = own;
        for other in others {
            for (rep, sessions) in other.reps {
                *all.reps.entry(rep).or_default() += sessions;
            }
            if all.link.is_none() {
                all.link = other.link;
            }
            if other.last_build.map(|b| b.finished_at_ms) > all.last_build.map(|b| b.finished_at_ms)
            {
                all.last_build = other.last_build;
            }
        }
        all
    }
}

impl LinkReport {
    /// The connection's state when this instance holds it; nothing otherwise.
    pub fn held(link: &LinkState) -> Option<LinkReport> {
        (link.role == Role::Holder).then(|| LinkReport {
            connected: link.connected,
            detail: link.last_error.clone(),
            reconnects: link.reconnects,
        })
    }
}

/// Why the other instances' reports could not be read or this one's written.
#[derive(Debug, thiserror::Error)]
#[error("the instances' reports are unavailable: {0}")]
pub struct ReportsUnavailable(String);

/// Where instances leave their reports for each other.
#[async_trait]
pub trait ReportStore: Send + Sync + std::fmt::Debug {
    /// Replaces `instance`'s report on `tenant` (None removes it) for `ttl`.
    async fn publish(
        &self,
        tenant: &str,
        instance: &str,
        report: Option<&InstanceReport>,
        ttl: Duration,
    ) -> Result<(), ReportsUnavailable>;
    /// Every other instance's live report on `tenant`.
    async fn others(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Vec<InstanceReport>, ReportsUnavailable>;
}

/// A single instance: there is nobody to tell and nobody to hear from.
#[derive(Debug, Default)]
pub struct SoleInstance;

#[async_trait]
impl ReportStore for SoleInstance {
    async fn publish(
        &self,
        _: &str,
        _: &str,
        _: Option<&InstanceReport>,
        _: Duration,
    ) -> Result<(), ReportsUnavailable> {
        Ok(())
    }

    async fn others(&self, _: &str, _: &str) -> Result<Vec<InstanceReport>, ReportsUnavailable> {
        Ok(Vec::new())
    }
}

/// Reports as JSON under `cti:{tenant}:report:{instance}`, each expiring on its own.
#[derive(Clone)]
pub struct RedisReports {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReports").finish_non_exhaustive()
    }
}

impl RedisReports {
    pub fn with_connection(conn: ConnectionManager) -> Self {
        RedisReports { conn }
    }
}

fn key(tenant: &str, instance: &str) -> String {
    format!("cti:{{{tenant}}}:report:{instance}")
}

fn unavailable(err: impl std::fmt::Display) -> ReportsUnavailable {
    ReportsUnavailable(err.to_string())
}

/// How many reports one read collects at most: far more instances than a deployment runs.
const MAX_INSTANCES: usize = 256;

#[async_trait]
impl ReportStore for RedisReports {
    async fn publish(
        &self,
        tenant: &str,
        instance: &str,
        report: Option<&InstanceReport>,
        ttl: Duration,
    ) -> Result<(), ReportsUnavailable> {
        let mut conn = self.conn.clone();
        let key = key(tenant, instance);
        match report {
            Some(report) => {
                let json = serde_json::to_string(report).map_err(unavailable)?;
                let ms = ttl.as_millis().max(1) as u64;
                conn.pset_ex::<_, _, ()>(key, json, ms)
                    .await
                    .map_err(unavailable)
            }
            None => conn.del::<_, ()>(key).await.map_err(unavailable),
        }
    }

    async fn others(
        &self,
        tenant: &str,
        instance: &str,
    ) -> Result<Vec<InstanceReport>, ReportsUnavailable> {
        let mut conn = self.conn.clone();
        // The pattern escapes the tenant's glob characters; ids cannot hold braces.
        let escaped: String = tenant
            .chars()
            .flat_map(|c| {
                let special = matches!(c, '*' | '?' | '[' | ']' | '\\');
                special
                    .then_some('\\')
                    .into_iter()
                    .chain(std::iter::once(c))
            })
            .collect();
        let pattern = format!("cti:{{{escaped}}}:report:*");
        let own = key(tenant, instance);
        let mut keys: Vec<String> = Vec::new();
        {
            let mut found = conn
                .scan_match::<_, String>(&pattern)
                .await
                .map_err(unavailable)?;
            while let Some(key) = futures_util::StreamExt::next(&mut found).await {
                let key = key.map_err(unavailable)?;
                if key != own && keys.len() < MAX_INSTANCES {
                    keys.push(key);
                }
            }
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(unavailable)?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|json| match serde_json::from_str(&json) {
                Ok(report) => Some(report),
                Err(err) => {
                    // A report of another version of the relay: left out, not fatal.
                    tracing::debug!(%err, "an instance report that does not read");
                    None
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(reps: &[(&str, usize)], link: Option<bool>, built_at: Option<u64>) -> InstanceReport {
        InstanceReport {
            reps: reps.iter().map(|(r, n)| ((*r).to_string(), *n)).collect(),
            link: link.map(|connected| LinkReport {
                connected,
                detail: None,
                reconnects: 0,
            }),
            last_build: built_at.map(|at| LastBuild {
                finished_at_ms: at,
                duration_ms: 10,
                records: 3,
            }),
        }
    }

    /// Sessions add up per rep across instances; the holder's connection is shown wherever
    /// the page asks; the newest build wins.
    #[test]
    fn reports_merge_into_the_deployments_view() {
        let own = report(&[("alice", 1)], None, Some(1_000));
        let others = vec![
            report(&[("alice", 2), ("bob", 1)], Some(true), None),
            report(&[("carol", 1)], None, Some(2_000)),
        ];
        let all = InstanceReport::merged(own, others);
        assert_eq!(
            all.reps,
            BTreeMap::from([
                ("alice".to_string(), 3),
                ("bob".to_string(), 1),
                ("carol".to_string(), 1)
            ])
        );
        assert_eq!(all.link.map(|l| l.connected), Some(true));
        assert_eq!(all.last_build.map(|b| b.finished_at_ms), Some(2_000));
    }

    /// This instance's own connection state stands over another's stale report.
    #[test]
    fn the_own_held_connection_wins() {
        let own = report(&[], Some(false), None);
        let all = InstanceReport::merged(own, vec![report(&[], Some(true), None)]);
        assert_eq!(all.link.map(|l| l.connected), Some(false));
    }
}
