//! Agent tokens: RS256 JWTs verified against the identity provider's JWKS.
//!
//! The same code checks XSUAA/IAS tokens in production and the simulator's tokens in the demo;
//! only the JWKS URL, issuer and audience differ. The tenant is `app_tid`, else `zid` (XSUAA's
//! identity zone); the rep is `user_name`, else `email`, else `sub`, under the rep id rule
//! ([`super::rep_id`]: trimmed, lower-cased), as the phone system's events are.
//!
//! A token must name the configured issuer (`iss`) and audience (`aud`) and carry an expiry
//! (`exp`); absent claims are refused, not skipped (jsonwebtoken skips absent `iss`/`aud` unless
//! told they are required). `nbf` is checked when present but not required: XSUAA's tokens carry
//! `iat` and `exp` and no `nbf` (reference: SAP V2 notes 6.4, decoded sample tokens), so requiring
//! it would refuse every production token. An agent token must also carry the agent scope (XSUAA
//! puts the role's scopes in a `scope` array, `<xsappname>.Agent`); a V2 events client's token
//! ([`JwtVerifier::verify_client`]) carries its client's scopes instead and is not held to it.
//! With `CTI_JWT_ORIGIN` set, an agent token must also name that identity provider in XSUAA's
//! `origin` claim: a user name is unique only within its identity provider.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::clock::{SharedClock, SystemClock};

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub tenant: String,
    pub agent: String,
    /// When the token stops being valid (Unix seconds).
    pub expires_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token is not a JWT: {0}")]
    Malformed(#[source] jsonwebtoken::errors::Error),
    #[error("token signed with unknown key {0:?}")]
    UnknownKey(String),
    /// A key id not in the cache, while the keys were fetched too recently to fetch them again:
    /// likely a key just rotated in, so worth another try shortly.
    #[error("token signed with key {0:?}, not fetched yet; try again shortly")]
    KeyNotYetFetched(String),
    /// A token of an identity zone the relay has not fetched keys for yet, while another new
    /// zone's keys were fetched too recently: worth another try shortly.
    #[error("the keys of identity zone {0:?} are not fetched yet; try again shortly")]
    ZoneNotYetFetched(String),
    #[error("token rejected: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token names no tenant (app_tid or zid) or no user")]
    MissingIdentity,
    #[error("identity provider keys unavailable: {0}")]
    KeysUnavailable(#[source] reqwest::Error),
    #[error("the token lacks the scope {0:?} that agents are given")]
    MissingScope(String),
    #[error("the token lacks the scope {0:?}")]
    MissingClientScope(String),
    #[error("the token is not a client-credentials token (grant_type {0:?})")]
    NotClientCredentials(Option<String>),
    /// The token names an issuer this relay does not take (or, with zones, one outside the
    /// pattern, or a zone past the bound).
    #[error("the token's issuer {0:?} is not one this relay takes")]
    UnknownIssuer(Option<String>),
    #[error("the token comes from the identity provider {got:?}, not {wanted:?}")]
    WrongOrigin { wanted: String, got: Option<String> },
}

impl AuthError {
    /// Whether a refusal is about this moment (keys unreachable or not fetched yet) rather than
    /// the token: the rep's widget should try again with the same token, not sign out.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AuthError::KeysUnavailable(_)
                | AuthError::KeyNotYetFetched(_)
                | AuthError::ZoneNotYetFetched(_)
        )
    }
}

/// `scope` as XSUAA sends it (an array) or as OAuth 2.0 spells it (one space-separated string).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Spaced(String),
}

impl Scopes {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Scopes::List(list) => list.iter().any(|s| s == wanted),
            Scopes::Spaced(text) => text.split_whitespace().any(|s| s == wanted),
        }
    }
}

/// XSUAA's extension attributes: `zdn` is the zone's subdomain.
#[derive(Debug, Deserialize)]
struct ExtAttr {
    zdn: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    ext_attr: Option<ExtAttr>,
    app_tid: Option<String>,
    zid: Option<String>,
    user_name: Option<String>,
    email: Option<String>,
    sub: Option<String>,
    exp: u64,
    scope: Option<Scopes>,
    /// XSUAA: the identity provider the user signed in with (`sap.default`, `ldap`, ...).
    origin: Option<String>,
    /// XSUAA: how the token was obtained (`client_credentials`, `authorization_code`, ...).
    grant_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

/// Refetching keys for an unknown `kid` at most this often keeps forged tokens from turning the
/// relay into a load generator against the identity provider.
const REFETCH_INTERVAL_MS: u64 = 30_000;

/// Keys older than this are fetched again before use, so a key the identity provider removed
/// (rotated out, or compromised) stops being trusted within minutes. If the fetch fails the cached
/// keys keep working: an outage must not sign reps out.
pub const MAX_KEY_AGE_MS: u64 = 10 * 60 * 1000;

/// The most identity zones whose keys are kept: far more subscribers than one deployment
/// serves, and a bound on what tokens naming made-up zones can make the relay remember.
const MAX_ZONES: usize = 1024;

/// A zone not seen before has its keys fetched at most this often, so tokens naming made-up
/// zones cannot make the relay fetch keys from one address after another.
const NEW_ZONE_INTERVAL_MS: u64 = 250;

/// A URL with one `*` standing for an identity zone's name, as XSUAA names its tenants'
/// issuers (`https://<subdomain>.authentication.<region>.hana.ondemand.com/oauth/token`) and key
/// sets (`…/token_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonePattern {
    before: String,
    after: String,
}

impl ZonePattern {
    /// The pattern in `text`; None unless it holds exactly one `*`.
    pub fn parse(text: &str) -> Option<ZonePattern> {
        let (before, after) = text.split_once('*')?;
        (!after.contains('*')).then(|| ZonePattern {
            before: before.to_string(),
            after: after.to_string(),
        })
    }

    /// The zone `text` names through the pattern: one DNS label (letters, digits, `-`), so a
    /// zone can neither reach into another host nor into another path.
    fn zone<'a>(&self, text: &'a str) -> Option<&'a str> {
        let zone = text.strip_prefix(&self.before)?.strip_suffix(&self.after)?;
        let label = !zone.is_empty()
            && zone.len() <= 63
            && zone.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        label.then_some(zone)
    }

    fn fill(&self, zone: &str) -> String {
        format!("{}{zone}{}", self.before, self.after)
    }
}

/// Whose tokens the relay takes: one issuer with one key set, or (XSUAA with subscribers) any
/// zone's issuer of a pattern, each zone's token checked with that zone's own keys.
#[derive(Debug)]
enum Issuers {
    One {
        issuer: String,
        keys: std::sync::Arc<KeySet>,
    },
    Zones(Box<Zones>),
}

/// The zones of an issuer pattern, and the keys of those seen so far.
#[derive(Debug)]
struct Zones {
    issuer: ZonePattern,
    jwks: ZonePattern,
    keys: RwLock<HashMap<String, std::sync::Arc<KeySet>>>,
    /// When a new zone's keys were last fetched (relay clock, Unix ms): the throttle.
    last_new: Mutex<Option<u64>>,
}

/// One key set (a JWKS URL): the keys, when they were fetched, and the fetch throttle.
#[derive(Debug)]
struct KeySet {
    url: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When a fetch was last tried (relay clock, Unix milliseconds): for the throttle.
    last_fetch: Mutex<Option<u64>>,
    /// When the cached keys were fetched (relay clock, Unix milliseconds): for their age.
    fetched_at: std::sync::atomic::AtomicU64,
}

impl KeySet {
    fn new(url: String) -> Self {
        KeySet {
            url,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            fetched_at: std::sync::atomic::AtomicU64::new(0),
        }
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(kid).cloned()
    }

    /// Fetches the keys again when they are older than [`MAX_KEY_AGE_MS`]; a failure keeps the
    /// cached ones (and is retried at most every 30 s).
    async fn refresh_if_old(&self, http: &reqwest::Client, clock: &SharedClock) {
        let now = clock.now_ms();
        let fetched_at = self.fetched_at.load(std::sync::atomic::Ordering::Relaxed);
        let old = fetched_at != 0 && now.saturating_sub(fetched_at) >= MAX_KEY_AGE_MS;
        if old && let Err(err) = self.refresh(http, clock).await {
            tracing::warn!(%err, "identity provider keys not refreshed; the cached ones stay in use");
        }
    }

    /// Fetches the JWKS, unless it was fetched (or tried) moments ago; whether it fetched. The
    /// keys fetched replace the cached ones, so a key gone from the JWKS is dropped.
    async fn refresh(
        &self,
        http: &reqwest::Client,
        clock: &SharedClock,
    ) -> Result<bool, AuthError> {
        let mut last = self.last_fetch.lock().await;
        let now = clock.now_ms();
        if last.is_some_and(|at| now.saturating_sub(at) < REFETCH_INTERVAL_MS)
            && !self.keys.read().await.is_empty()
        {
            return Ok(false);
        }
        // An attempt counts, so an unreachable JWKS is not asked again on every hello.
        *last = Some(now);
        let unavailable = |e: reqwest::Error| AuthError::KeysUnavailable(e.without_url());
        let jwks: Jwks = http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys.into_iter().filter(|k| k.kty == "RSA") {
            if let (Some(n), Some(e)) = (&jwk.n, &jwk.e)
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(jwk.kid.clone().unwrap_or_default(), key);
            }
        }
        *self.keys.write().await = keys;
        self.fetched_at
            .store(now.max(1), std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}

#[derive(Debug)]
pub struct JwtVerifier {
    issuers: Issuers,
    /// Everything but the issuer, which is set per token (the one, or the token's zone's).
    validation: Validation,
    http: reqwest::Client,
    clock: SharedClock,
    /// The scope an agent token must carry; None: no scope is checked.
    agent_scope: Option<String>,
    /// The identity provider (`origin`) an agent token must name; None: any.
    origin: Option<String>,
}

impl JwtVerifier {
    /// `http` is the process's client (with its timeouts). An `issuer` with one `*` takes
    /// every zone's issuer of that pattern (XSUAA serving subscribers, reference 6.4), checked
    /// with the keys at `jwks_url` with the same zone in place of its `*`.
    pub fn new(
        http: reqwest::Client,
        jwks_url: &str,
        issuer: &str,
        audience: &str,
        agent_scope: Option<String>,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let issuers = match (ZonePattern::parse(issuer), ZonePattern::parse(jwks_url)) {
            (Some(issuer), Some(jwks)) => Issuers::Zones(Box::new(Zones {
                issuer,
                jwks,
                keys: RwLock::new(HashMap::new()),
                last_new: Mutex::new(None),
            })),
            // The configuration refuses a pattern on one side only; taken literally here.
            _ => Issuers::One {
                issuer: issuer.to_string(),
                keys: std::sync::Arc::new(KeySet::new(jwks_url.to_string())),
            },
        };
        JwtVerifier {
            issuers,
            validation,
            http,
            clock: std::sync::Arc::new(SystemClock),
            agent_scope,
            origin: None,
        }
    }

    /// Agent tokens must name this identity provider in `origin` (review F7): a user name is
    /// unique only within its identity provider, so where the subaccount trusts several, the
    /// same name from another one is another person and must not become this rep.
    #[must_use]
    pub fn with_origin(mut self, origin: Option<String>) -> Self {
        self.origin = origin;
        self
    }

    /// The relay's clock, which says when the keys are due to be fetched again.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks a rep's token: everything [`JwtVerifier::verify_client`] checks, the agent scope,
    /// and the identity provider when one is configured.
    pub async fn verify(&self, token: &str) -> Result<AgentIdentity, AuthError> {
        let (identity, scopes, origin) = self.check(token).await?;
        if let Some(wanted) = &self.agent_scope
            && !scopes.is_some_and(|s| s.contains(wanted))
        {
            return Err(AuthError::MissingScope(wanted.clone()));
        }
        if let Some(wanted) = &self.origin
            && origin.as_deref() != Some(wanted.as_str())
        {
            return Err(AuthError::WrongOrigin {
                wanted: wanted.clone(),
                got: origin,
            });
        }
        Ok(identity)
    }

    /// Checks a tenant administrator's token: everything [`JwtVerifier::verify`] checks except
    /// the agent scope, and `scope` (the admin scope, `$XSAPPNAME.Admin`) instead. An admin
    /// is a person signed in like a rep, so the identity provider (`origin`) is held to the
    /// same rule.
    pub async fn verify_scoped(
        &self,
        token: &str,
        scope: &str,
    ) -> Result<AgentIdentity, AuthError> {
        let (identity, scopes, origin) = self.check(token).await?;
        if !scopes.is_some_and(|s| s.contains(scope)) {
            return Err(AuthError::MissingClientScope(scope.to_string()));
        }
        if let Some(wanted) = &self.origin
            && origin.as_deref() != Some(wanted.as_str())
        {
            return Err(AuthError::WrongOrigin {
                wanted: wanted.clone(),
                got: origin,
            });
        }
        Ok(identity)
    }

    /// Checks a service's client-credentials token that must carry `scope`: everything
    /// [`JwtVerifier::verify_client`] checks, XSUAA's `grant_type` claim saying
    /// `client_credentials` (so no user's token opens a service's door, whatever roles the
    /// user was given), and the scope. The SaaS Provisioning service calls the subscription
    /// callbacks with such a token (`$XSAPPNAME.Callback`, granted to it as an authority in
    /// xs-security.json).
    pub async fn verify_service(
        &self,
        token: &str,
        scope: &str,
    ) -> Result<AgentIdentity, AuthError> {
        let (identity, scopes, _, grant) = self.check_all(token).await?;
        if grant.as_deref() != Some("client_credentials") {
            return Err(AuthError::NotClientCredentials(grant));
        }
        if !scopes.is_some_and(|s| s.contains(scope)) {
            return Err(AuthError::MissingClientScope(scope.to_string()));
        }
        Ok(identity)
    }

    /// Checks a client's token (signature, issuer, audience, expiry, not-before): who it names.
    pub async fn verify_client(&self, token: &str) -> Result<AgentIdentity, AuthError> {
        self.check(token).await.map(|(identity, ..)| identity)
    }

    /// The identity zone a token's issuer names through the issuer pattern; None with a single
    /// issuer, or for an issuer outside the pattern. The token is not checked here: ask this
    /// only of a token that [`JwtVerifier::verify`] (or another check) took, where the zone's
    /// own keys signed it.
    pub fn zone_of(&self, token: &str) -> Option<String> {
        match &self.issuers {
            Issuers::One { .. } => None,
            Issuers::Zones(zones) => zones
                .issuer
                .zone(&unverified_issuer(token)?)
                .map(str::to_string),
        }
    }

    /// The token's identity, scopes and origin, once its signature and claims hold.
    async fn check(
        &self,
        token: &str,
    ) -> Result<(AgentIdentity, Option<Scopes>, Option<String>), AuthError> {
        self.check_all(token)
            .await
            .map(|(identity, scopes, origin, _)| (identity, scopes, origin))
    }

    /// The key set a token is checked with and the issuer it must name: the one, or the zone's
    /// its (not yet trusted) `iss` names, whose keys then decide whether it was that zone's.
    async fn key_set(
        &self,
        token: &str,
    ) -> Result<(std::sync::Arc<KeySet>, String, Option<String>), AuthError> {
        let (issuer, jwks, zones, last_new) = match &self.issuers {
            Issuers::One { issuer, keys } => return Ok((keys.clone(), issuer.clone(), None)),
            Issuers::Zones(zones) => (&zones.issuer, &zones.jwks, &zones.keys, &zones.last_new),
        };
        let named = unverified_issuer(token).ok_or(AuthError::UnknownIssuer(None))?;
        let zone = issuer
            .zone(&named)
            .ok_or_else(|| AuthError::UnknownIssuer(Some(named.clone())))?
            .to_string();
        if let Some(keys) = zones.read().await.get(&zone) {
            return Ok((keys.clone(), named, Some(zone)));
        }
        // A zone not seen yet: its keys are fetched (throttled), and kept once they exist.
        let mut last = last_new.lock().await;
        let now = self.clock.now_ms();
        if last.is_some_and(|at| now.saturating_sub(at) < NEW_ZONE_INTERVAL_MS) {
            return Err(AuthError::ZoneNotYetFetched(zone));
        }
        *last = Some(now);
        if zones.read().await.len() >= MAX_ZONES {
            return Err(AuthError::UnknownIssuer(Some(named)));
        }
        let keys = std::sync::Arc::new(KeySet::new(jwks.fill(&zone)));
        keys.refresh(&self.http, &self.clock).await?;
        zones.write().await.insert(zone.clone(), keys.clone());
        Ok((keys, named, Some(zone)))
    }

    /// [`JwtVerifier::check`] with the token's grant type.
    async fn check_all(
        &self,
        token: &str,
    ) -> Result<
        (
            AgentIdentity,
            Option<Scopes>,
            Option<String>,
            Option<String>,
        ),
        AuthError,
    > {
        let header = decode_header(token).map_err(AuthError::Malformed)?;
        let kid = header.kid.unwrap_or_default();
        let (keys, issuer, zone) = self.key_set(token).await?;
        keys.refresh_if_old(&self.http, &self.clock).await;
        let key = match keys.key(&kid).await {
            Some(key) => key,
            None => {
                let fetched = keys.refresh(&self.http, &self.clock).await?;
                keys.key(&kid).await.ok_or_else(|| {
                    if fetched {
                        AuthError::UnknownKey(kid.clone())
                    } else {
                        AuthError::KeyNotYetFetched(kid.clone())
                    }
                })?
            }
        };
        let mut validation = self.validation.clone();
        validation.set_issuer(&[issuer]);
        let data = decode::<Claims>(token, &key, &validation).map_err(AuthError::Invalid)?;
        let claims = data.claims;
        // XSUAA names the zone's subdomain in `ext_attr.zdn` too: where it does, it must be
        // the zone whose keys signed the token.
        if let (Some(zone), Some(zdn)) =
            (&zone, claims.ext_attr.as_ref().and_then(|e| e.zdn.as_ref()))
            && zdn != zone
        {
            return Err(AuthError::UnknownIssuer(Some(format!(
                "{zdn} (zdn) in zone {zone}"
            ))));
        }
        let tenant = claims.app_tid.or(claims.zid).filter(|t| !t.is_empty());
        let agent = claims
            .user_name
            .or(claims.email)
            .or(claims.sub)
            .map(|a| super::rep_id(&a))
            .filter(|a| !a.is_empty());
        match (tenant, agent) {
            (Some(tenant), Some(agent)) => Ok((
                AgentIdentity {
                    tenant,
                    agent,
                    expires_at: claims.exp,
                },
                claims.scope,
                claims.origin,
                claims.grant_type,
            )),
            _ => Err(AuthError::MissingIdentity),
        }
    }

    /// Fetches the single issuer's keys now, unless they were fetched moments ago; whether it
    /// fetched. With zones, each zone's keys are fetched when its first token arrives.
    pub async fn refresh(&self) -> Result<bool, AuthError> {
        match &self.issuers {
            Issuers::One { keys, .. } => keys.refresh(&self.http, &self.clock).await,
            Issuers::Zones(_) => Ok(false),
        }
    }
}

/// The `iss` a token claims, read before its signature is checked: only to choose the keys
/// that will check it.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    async fn with_sim<F, Fut>(test: F)
    where
        F: FnOnce(cti_sim::SimHandle, JwtVerifier) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let verifier = JwtVerifier::new(
            reqwest::Client::new(),
            &format!("{}/sim/jwks.json", sim.url()),
            cti_sim::idp::ISSUER,
            cti_sim::idp::AUDIENCE,
            Some("cti-relay.Agent".into()),
        );
        test(sim, verifier).await;
    }

    /// Review F14: keys are fetched again after ten minutes on the relay's clock, and a key gone
    /// from the JWKS stops being trusted; while the JWKS is unreachable the cached ones keep working.
    #[tokio::test]
    async fn keys_are_refreshed_and_a_key_gone_from_the_jwks_is_dropped() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU8, Ordering};

        with_sim(|sim, _| async move {
            let jwks = sim.sim.idp.jwks().expect("the keys");
            // 0: the keys; 1: unreachable (503); 2: no keys any more.
            let mode = Arc::new(AtomicU8::new(0));
            let served = mode.clone();
            let app = axum::Router::new().route(
                "/jwks.json",
                axum::routing::get(move || {
                    let (jwks, served) = (jwks.clone(), served.clone());
                    async move {
                        match served.load(Ordering::SeqCst) {
                            0 => (axum::http::StatusCode::OK, axum::Json(jwks)),
                            1 => (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                axum::Json(json!({})),
                            ),
                            _ => (axum::http::StatusCode::OK, axum::Json(json!({"keys": []}))),
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            let url = format!(
                "http://{}/jwks.json",
                listener.local_addr().expect("an address")
            );
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let clock = crate::clock::ManualClock::new(now() * 1000);
            let verifier = JwtVerifier::new(
                reqwest::Client::new(),
                &url,
                cti_sim::idp::ISSUER,
                cti_sim::idp::AUDIENCE,
                None,
            )
            .with_clock(Arc::new(clock.clone()));
            let token = sim.sim.idp.issue("alice@example.com", "demo", 3600);
            verifier.verify(&token).await.expect("fetched and valid");

            mode.store(1, Ordering::SeqCst);
            clock.advance_ms(MAX_KEY_AGE_MS);
            verifier
                .verify(&token)
                .await
                .expect("the cached key still works");

            mode.store(2, Ordering::SeqCst);
            clock.advance_ms(REFETCH_INTERVAL_MS);
            let err = verifier.verify(&token).await.expect_err("the key is gone");
            assert!(matches!(err, AuthError::UnknownKey(_)), "{err}");
            server.abort();
            sim.abort();
        })
        .await;
    }

    /// A JWKS server whose key id is `old-key` until `rotated` is set, then the simulator's own
    /// (the key its tokens name): an identity provider rotating a key in. Its URL and handle.
    pub(crate) async fn rotating_jwks(
        sim: &cti_sim::SimHandle,
        rotated: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
        let new = sim.sim.idp.jwks().expect("the keys");
        let mut old = new.clone();
        old["keys"][0]["kid"] = json!("old-key");
        let app = axum::Router::new().route(
            "/sim/jwks.json",
            axum::routing::get(move || {
                let served = if rotated.load(std::sync::atomic::Ordering::SeqCst) {
                    new.clone()
                } else {
                    old.clone()
                };
                async move { axum::Json(served) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        (
            url,
            tokio::spawn(async move { axum::serve(listener, app).await }),
        )
    }

    /// XSUAA serving subscribers: each zone's issuer of the pattern is taken, its token checked
    /// with that zone's own keys (a zone whose keys do not hold the signing key refuses it);
    /// an issuer outside the pattern, a zone that is not one label, or a `zdn` naming another
    /// zone is refused; new zones' keys are fetched at most every 250 ms.
    #[tokio::test]
    async fn each_zone_of_an_issuer_pattern_is_checked_with_its_own_keys() {
        let sim = cti_sim::spawn(cti_sim::SimConfig {
            listen: "127.0.0.1:0".parse().expect("an address"),
            ..cti_sim::SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let keys = sim.sim.idp.jwks().expect("the keys");
        let app = axum::Router::new().route(
            "/zones/{zone}/token_keys",
            axum::routing::get(
                move |axum::extract::Path(zone): axum::extract::Path<String>| {
                    let keys = keys.clone();
                    async move {
                        match zone.as_str() {
                            "acme" | "globex" => Ok(axum::Json(keys)),
                            // A zone of its own keys, none of which signed the tokens here.
                            "evil" => Ok(axum::Json(json!({"keys": []}))),
                            _ => Err(axum::http::StatusCode::NOT_FOUND),
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let base = format!(
            "http://{}/zones",
            listener.local_addr().expect("an address")
        );
        let _server = tokio::spawn(async move { axum::serve(listener, app).await });
        let clock = crate::clock::ManualClock::new(1_000_000);
        let verifier = JwtVerifier::new(
            reqwest::Client::new(),
            &format!("{base}/*/token_keys"),
            &format!("{base}/*/oauth/token"),
            "cti-relay",
            Some("cti-relay.Agent".into()),
        )
        .with_clock(std::sync::Arc::new(clock.clone()));
        let token = |zone: &str, zdn: &str| {
            let mut claims = claims();
            claims["iss"] = json!(format!("{base}/{zone}/oauth/token"));
            claims["zid"] = json!(format!("{zdn}-id"));
            claims["ext_attr"] = json!({"enhancer": "XSUAA", "zdn": zdn});
            sim.sim.idp.sign_claims(&claims)
        };
        let next_zone = || clock.advance_ms(300);

        let acme = verifier
            .verify(&token("acme", "acme"))
            .await
            .expect("acme's rep");
        assert_eq!(acme.tenant, "acme-id");
        // The next new zone within 250 ms waits, and is not refused for good.
        let err = verifier
            .verify(&token("globex", "globex"))
            .await
            .expect_err("too soon");
        assert!(err.is_transient(), "{err}");
        assert!(
            matches!(&err, AuthError::ZoneNotYetFetched(zone) if zone == "globex"),
            "{err}"
        );
        next_zone();
        let globex = verifier
            .verify(&token("globex", "globex"))
            .await
            .expect("globex's rep");
        assert_eq!(globex.tenant, "globex-id");
        // Known zones need no new fetch.
        verifier
            .verify(&token("acme", "acme"))
            .await
            .expect("acme again");

        next_zone();
        let err = verifier
            .verify(&token("evil", "evil"))
            .await
            .expect_err("not evil's key");
        assert!(matches!(err, AuthError::UnknownKey(_)), "{err}");
        let err = verifier
            .verify(&token("acme", "globex"))
            .await
            .expect_err("zdn of another");
        assert!(matches!(err, AuthError::UnknownIssuer(_)), "{err}");
        for outside in ["acme/more", "ac.me", ""] {
            let err = verifier
                .verify(&token(outside, "acme"))
                .await
                .expect_err("outside the pattern");
            assert!(
                matches!(err, AuthError::UnknownIssuer(_)),
                "{outside}: {err}"
            );
        }
        let mut foreign = claims();
        foreign["iss"] = json!("cti-sim");
        let err = verifier
            .verify(&sim.sim.idp.sign_claims(&foreign))
            .await
            .expect_err("another issuer");
        assert!(matches!(err, AuthError::UnknownIssuer(_)), "{err}");
        next_zone();
        let err = verifier
            .verify(&token("nobody", "nobody"))
            .await
            .expect_err("no keys");
        assert!(
            err.is_transient(),
            "a zone whose keys cannot be read: {err}"
        );
    }

    /// Review F8: a token signed with a key the relay's cache does not have yet, moments after
    /// it fetched the keys (a key just rotated in), is refused for now, not for good: the error
    /// is transient, and once the fetch interval has passed the new key is fetched and the same
    /// token verifies.
    #[tokio::test]
    async fn a_key_too_new_to_be_fetched_yet_is_a_refusal_for_now() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        with_sim(|sim, _| async move {
            let rotated = Arc::new(AtomicBool::new(false));
            let (url, server) = rotating_jwks(&sim, rotated.clone()).await;
            let clock = crate::clock::ManualClock::new(now() * 1000);
            let verifier = JwtVerifier::new(
                reqwest::Client::new(),
                &format!("{url}/sim/jwks.json"),
                cti_sim::idp::ISSUER,
                cti_sim::idp::AUDIENCE,
                None,
            )
            .with_clock(Arc::new(clock.clone()));
            assert!(verifier.refresh().await.expect("the old keys"), "fetched");

            rotated.store(true, Ordering::SeqCst);
            let token = sim.sim.idp.issue("alice@example.com", "demo", 3600);
            let err = verifier
                .verify(&token)
                .await
                .expect_err("the new key is not fetched yet");
            assert!(matches!(err, AuthError::KeyNotYetFetched(_)), "{err}");
            assert!(err.is_transient(), "the widget keeps its token");

            clock.advance_ms(REFETCH_INTERVAL_MS);
            let identity = verifier
                .verify(&token)
                .await
                .expect("the new key is fetched and the same token verifies");
            assert_eq!(identity.agent, "alice@example.com");
            server.abort();
            sim.abort();
        })
        .await;
    }

    fn now() -> u64 {
        u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
    }

    fn claims() -> serde_json::Value {
        json!({"iss": "cti-sim", "aud": "cti-relay", "user_name": "alice@example.com",
            "zid": "demo", "iat": now(), "nbf": now(), "exp": now() + 600,
            "scope": ["openid", "cti-relay.Agent"]})
    }

    fn without(field: &str) -> serde_json::Value {
        let mut claims = claims();
        claims.as_object_mut().expect("an object").remove(field);
        claims
    }

    /// Review F20: the rep a token names follows the rep id rule, so it meets the phone
    /// system's events whatever case either side spells it in.
    #[tokio::test]
    async fn the_rep_a_token_names_is_trimmed_and_lower_cased() {
        with_sim(|sim, verifier| async move {
            let mut mixed = claims();
            mixed["user_name"] = json!(" Alice@Example.COM ");
            let identity = verifier
                .verify(&sim.sim.idp.sign_claims(&mixed))
                .await
                .expect("a good token");
            assert_eq!(identity.agent, "alice@example.com");
            let mut blank = claims();
            blank["user_name"] = json!("  ");
            let err = verifier
                .verify(&sim.sim.idp.sign_claims(&blank))
                .await
                .expect_err("a blank rep");
            assert!(matches!(err, AuthError::MissingIdentity), "{err}");
            sim.abort();
        })
        .await;
    }

    /// Review F7: with an identity provider configured, an agent token from another one, or
    /// naming none, is refused for good; without one, any origin is taken.
    #[tokio::test]
    async fn a_token_from_another_identity_provider_is_refused_when_one_is_set() {
        with_sim(|sim, verifier| async move {
            let sign = |claims: serde_json::Value| sim.sim.idp.sign_claims(&claims);
            let from = |origin: &str| {
                let mut claims = claims();
                claims["origin"] = json!(origin);
                sign(claims)
            };
            verifier
                .verify(&from("ldap"))
                .await
                .expect("no origin configured: any");
            let verifier = verifier.with_origin(Some("sap.custom".into()));
            let identity = verifier
                .verify(&from("sap.custom"))
                .await
                .expect("the configured identity provider");
            assert_eq!(identity.agent, "alice@example.com");
            for token in [from("ldap"), sign(claims())] {
                let err = verifier.verify(&token).await.expect_err("another origin");
                assert!(matches!(err, AuthError::WrongOrigin { .. }), "{err}");
                assert!(!err.is_transient(), "a sign-out, not a retry");
            }
            sim.abort();
        })
        .await;
    }

    /// Review F7: each claim the relay relies on must be there and right.
    #[tokio::test]
    async fn a_token_without_audience_issuer_scope_or_before_its_time_is_refused() {
        with_sim(|sim, verifier| async move {
            let sign = |claims: serde_json::Value| sim.sim.idp.sign_claims(&claims);
            let identity = verifier
                .verify(&sign(claims()))
                .await
                .expect("a good token");
            assert_eq!(identity.agent, "alice@example.com");
            // What the simulator issues passes too.
            let issued = sim.sim.idp.issue("bob@example.com", "demo", 60);
            verifier
                .verify(&issued)
                .await
                .expect("the simulator's token");

            for field in ["aud", "iss", "exp"] {
                let err = verifier
                    .verify(&sign(without(field)))
                    .await
                    .expect_err(field);
                assert!(matches!(err, AuthError::Invalid(_)), "{field}: {err}");
            }
            let mut early = claims();
            early["nbf"] = json!(now() + 600);
            let err = verifier
                .verify(&sign(early))
                .await
                .expect_err("not yet valid");
            assert!(matches!(err, AuthError::Invalid(_)), "{err}");

            let err = verifier
                .verify(&sign(without("scope")))
                .await
                .expect_err("no scope");
            assert!(matches!(err, AuthError::MissingScope(_)), "{err}");
            let mut other = claims();
            other["scope"] = json!(["openid", "cti-relay.Admin", "other-app.Agent"]);
            let err = verifier
                .verify(&sign(other))
                .await
                .expect_err("other scopes");
            assert!(matches!(err, AuthError::MissingScope(_)), "{err}");
            let mut spaced = claims();
            spaced["scope"] = json!("openid cti-relay.Agent");
            verifier
                .verify(&sign(spaced))
                .await
                .expect("a spaced scope list");

            // A client's token is not held to the agent scope.
            verifier
                .verify_client(&sign(without("scope")))
                .await
                .expect("a client's token");
            sim.abort();
        })
        .await;
    }
}
