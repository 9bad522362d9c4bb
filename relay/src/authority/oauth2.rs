//! The rep's own OAuth sign-in (SAP Cloud Identity Services, authorization code with PKCE).
//!
//! The widget starts it (`POST /v1/agent/v2-connect` with the rep's token, in a new window); the
//! relay sends the browser to the identity provider with a PKCE challenge and a `state` that is
//! the pending sign-in itself, sealed with the token key (so any instance can finish it and
//! nobody can forge or read it); the provider returns to `GET /v1/agent/v2-callback` with a code,
//! which the relay exchanges with the verifier. The refresh token is sealed into the vault; access
//! tokens stay in memory and are refreshed a minute before they expire (a rotated refresh token
//! replaces the old one).

use serde::{Deserialize, Serialize};

use super::sealed_state::{StateError, digest as challenge, random_b64, same_browser};
use super::{Authority, AuthorityError};
use crate::config::OAuthSettings;
use crate::secret::Secret;

/// How long a started sign-in may take.
const PENDING_MS: u64 = 10 * 60 * 1000;
/// Access tokens are not used in their last minute.
const MARGIN_MS: u64 = 60_000;
/// How often a refresh waiting for another instance's lease looks again.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(50);
/// The vault's owner for sealed `state` values (no rep has this name: it has no `@`... and a NUL).
const STATE_OWNER: &str = "\u{0}oauth-state";

#[derive(Serialize, Deserialize)]
struct Pending {
    tenant: String,
    rep: String,
    verifier: String,
    redirect_uri: String,
    expires_ms: u64,
    /// Sent to the provider and expected back in the ID token.
    #[serde(default)]
    nonce: String,
    /// The SHA-256 of the cookie set in the browser that started the sign-in: a state carried
    /// to another browser (a link sent to a colleague) is refused there.
    #[serde(default)]
    browser: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl From<StateError> for AuthorityError {
    fn from(err: StateError) -> Self {
        match err {
            StateError::NoTokenKey => AuthorityError::NoTokenKey,
            StateError::Invalid => AuthorityError::InvalidState,
            StateError::Encode(err) => AuthorityError::PendingState(err),
            StateError::Seal(err) => AuthorityError::Vault(err),
        }
    }
}

fn cache_key(tenant: &str, rep: &str) -> (String, String) {
    (tenant.to_string(), rep.to_lowercase())
}

impl Authority {
    fn identity_provider(&self, tenant: &str) -> Result<&OAuthSettings, AuthorityError> {
        self.identity_providers
            .get(tenant)
            .ok_or(AuthorityError::NoIdentityProvider)
    }

    fn sealer(&self) -> Result<&super::vault::Sealer, AuthorityError> {
        self.sealer.as_ref().ok_or(AuthorityError::NoTokenKey)
    }

    /// A random value for the browser that starts a sign-in to keep (as a cookie) and show
    /// again when the provider sends it back.
    pub fn browser_binding() -> String {
        super::sealed_state::browser_binding()
    }

    /// Where to send the rep's browser to sign in; it comes back to `redirect_uri`, in the
    /// browser that holds `browser` (from [`Authority::browser_binding`]).
    pub fn authorize_url(
        &self,
        tenant: &str,
        rep: &str,
        redirect_uri: &str,
        browser: &str,
    ) -> Result<String, AuthorityError> {
        let settings = self.identity_provider(tenant)?;
        let verifier = random_b64(32);
        let nonce = random_b64(16);
        let pending = Pending {
            tenant: tenant.to_string(),
            rep: rep.to_string(),
            verifier: verifier.clone(),
            redirect_uri: redirect_uri.to_string(),
            expires_ms: self.clock.now_ms() + PENDING_MS,
            nonce: nonce.clone(),
            browser: challenge(browser),
        };
        let state = self.seal_state(STATE_OWNER, &pending)?;
        let url = reqwest::Url::parse_with_params(
            &settings.authorize_url,
            &[
                ("response_type", "code"),
                ("client_id", settings.client_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("scope", settings.scope.as_str()),
                ("code_challenge", challenge(&verifier).as_str()),
                ("code_challenge_method", "S256"),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("login_hint", rep),
            ],
        )
        .map_err(|e| AuthorityError::AuthorizeUrl(e.into()))?;
        Ok(url.into())
    }

    /// Finishes a sign-in the provider sent back to the browser holding `browser`: exchanges
    /// the code, checks that the rep who started it is who signed in, keeps the tokens. Returns
    /// the tenant and rep it was for.
    pub async fn complete(
        &self,
        code: &str,
        sealed_state: &str,
        browser: Option<&str>,
    ) -> Result<(String, String), AuthorityError> {
        let pending: Pending = self.open_state(STATE_OWNER, sealed_state)?;
        if pending.expires_ms < self.clock.now_ms()
            || !self.identity_providers.contains_key(&pending.tenant)
            || pending.nonce.is_empty()
        {
            return Err(AuthorityError::InvalidState);
        }
        if !same_browser(browser, &pending.browser) {
            return Err(AuthorityError::OtherBrowser);
        }
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let answer = self.token_request(&pending.tenant, &form).await?;
        let id_token = answer.id_token.as_deref().ok_or_else(|| {
            AuthorityError::IdToken("the provider sent none (is `openid` among the scopes?)".into())
        })?;
        let settings = self.identity_provider(&pending.tenant)?;
        let signed_in = self
            .id_keys
            .subject(
                &self.http,
                settings,
                id_token,
                &pending.nonce,
                self.clock.now_ms(),
            )
            .await?;
        if crate::identity::rep_id(&signed_in) != crate::identity::rep_id(&pending.rep) {
            tracing::warn!(
                tenant = %pending.tenant,
                "a V2 sign-in for one rep came back signed in as another; nothing kept"
            );
            return Err(AuthorityError::WrongIdentity {
                signed_in,
                rep: pending.rep,
            });
        }
        self.keep(&pending.tenant, &pending.rep, answer).await?;
        tracing::info!(tenant = %pending.tenant, "a rep connected V2 with their own sign-in");
        Ok((pending.tenant, pending.rep))
    }

    /// Whether the relay holds the rep's sign-in: a current access token or a sealed refresh
    /// token. A refresh token the provider later refuses is removed then, so this turns false at
    /// the first write that finds out.
    pub async fn is_connected(&self, tenant: &str, rep: &str) -> Result<bool, AuthorityError> {
        let now = self.clock.now_ms();
        let cached = self
            .access_tokens
            .lock()
            .get(&cache_key(tenant, rep))
            .is_some_and(|(_, expires)| *expires > now);
        if cached {
            return Ok(true);
        }
        Ok(self.vault.get(tenant, rep).await?.is_some())
    }

    /// The rep's access token, refreshed when it is about to expire.
    pub async fn access_token(&self, tenant: &str, rep: &str) -> Result<Secret, AuthorityError> {
        if let Some(token) = self.cached_access_token(tenant, rep) {
            return Ok(token);
        }
        // One refresh per rep at a time: in this process by the rep's turn, across instances by
        // the vault's lease. Whoever waited finds the token the one before them got.
        let turn = {
            let mut turns = self.refreshing.lock();
            // Turns nobody holds go, so reps who stopped working leave nothing behind (a turn
            // somebody holds or waits on is shared, and stays).
            turns.retain(|_, turn| std::sync::Arc::strong_count(turn) > 1);
            turns.entry(cache_key(tenant, rep)).or_default().clone()
        };
        let _turn = turn.lock().await;
        if let Some(token) = self.cached_access_token(tenant, rep) {
            return Ok(token);
        }
        self.take_lease(tenant, rep).await?;
        let refreshed = self.refresh(tenant, rep).await;
        if let Err(err) = self.vault.release(tenant, rep, &self.holder).await {
            // It expires on its own; another instance waits until then.
            tracing::warn!(%err, "cannot give back a rep's refresh lease");
        }
        refreshed
    }

    fn cached_access_token(&self, tenant: &str, rep: &str) -> Option<Secret> {
        let now = self.clock.now_ms();
        self.access_tokens
            .lock()
            .get(&cache_key(tenant, rep))
            .filter(|(_, expires)| *expires > now + MARGIN_MS)
            .map(|(token, _)| token.clone())
    }

    /// Waits for the rep's refresh lease; a holder that died frees it when it expires.
    async fn take_lease(&self, tenant: &str, rep: &str) -> Result<(), AuthorityError> {
        while !self
            .vault
            .lease(tenant, rep, &self.holder, self.lease_ms)
            .await?
        {
            tokio::time::sleep(LEASE_POLL).await;
        }
        Ok(())
    }

    /// Renews with the refresh token the vault holds now (another instance may have rotated it
    /// while this one waited for the lease).
    async fn refresh(&self, tenant: &str, rep: &str) -> Result<Secret, AuthorityError> {
        let not_connected = || AuthorityError::NotConnected {
            rep: rep.to_string(),
        };
        let mut sealed = self
            .vault
            .get(tenant, rep)
            .await?
            .ok_or_else(not_connected)?;
        let opened = self.sealer()?.unseal(tenant, rep, &sealed)?;
        let refresh = opened.secret;
        if opened.stale {
            // Sealed under the key being rotated out: sealed again under the new one (this
            // instance holds the rep's refresh lease), so the old key can go.
            let resealed = self.sealer()?.seal(tenant, rep, refresh.expose())?;
            match self.vault.put(tenant, rep, &resealed).await {
                Ok(()) => sealed = resealed,
                Err(err) => {
                    tracing::warn!(%err, "cannot seal a rep's refresh token again under the new key")
                }
            }
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
        ];
        match self.token_request(tenant, &form).await {
            Ok(answer) => self.keep(tenant, rep, answer).await,
            Err(AuthorityError::Refused(reason)) => {
                // The provider no longer honours it (revoked, expired): the rep must sign in
                // again, unless the vault holds a newer sign-in than the one refused.
                let _ = self.vault.remove_if(tenant, rep, &sealed).await;
                tracing::info!(%reason, "a rep's V2 sign-in was refused; they need to connect again");
                Err(not_connected())
            }
            Err(err) => Err(err),
        }
    }

    /// Seals the refresh token (when the provider sent one), caches the access token.
    async fn keep(
        &self,
        tenant: &str,
        rep: &str,
        answer: TokenAnswer,
    ) -> Result<Secret, AuthorityError> {
        if let Some(refresh) = &answer.refresh_token {
            let sealed = self.sealer()?.seal(tenant, rep, refresh)?;
            self.vault.put(tenant, rep, &sealed).await?;
        }
        let token = Secret::new(answer.access_token);
        let now = self.clock.now_ms();
        let expires = super::expiry_ms(now, answer.expires_in.unwrap_or(300));
        let mut cached = self.access_tokens.lock();
        // Expired tokens go as new ones come, so reps who stopped working leave nothing behind.
        cached.retain(|_, (_, until)| *until > now);
        cached.insert(cache_key(tenant, rep), (token.clone(), expires));
        Ok(token)
    }

    async fn token_request(
        &self,
        tenant: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, AuthorityError> {
        let settings = self.identity_provider(tenant)?;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("client_id", settings.client_id.as_str()));
        let mut request = self.http.post(&settings.token_url).form(&fields);
        if let Some(secret) = &settings.client_secret {
            request = request.basic_auth(&settings.client_id, Some(secret.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| AuthorityError::TokenEndpointUnreachable(e.without_url()))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(AuthorityError::Refused(refusal(response).await));
        }
        if !status.is_success() {
            return Err(AuthorityError::TokenEndpointFailed(status));
        }
        response
            .json()
            .await
            .map_err(|e| AuthorityError::TokenAnswer(e.without_url()))
    }
}

/// Why an OAuth token endpoint refused (a 4xx): its status with the `error_description`, else
/// the `error`, RFC 6749's error answer (5.2).
pub(super) async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let reason = body["error_description"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or("refused");
    format!("{status}: {reason}")
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::Arc;

    use axum::extract::{Form, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use parking_lot::Mutex;

    use super::*;
    use crate::authority::vault::{MemoryVault, TokenVault};
    use crate::clock::SystemClock;
    use crate::config::{AuthMode, Config, TokenKey};

    /// An identity provider that rotates refresh tokens and refuses one used before, as SAP
    /// Cloud Identity Services can; it answers after a short while, as a real one does.
    #[derive(Default)]
    struct Provider {
        valid: Mutex<HashSet<String>>,
        issued: Mutex<u32>,
        refused: Mutex<u32>,
        /// Answers without a new refresh token: the one presented stays valid.
        keeps_refresh_tokens: Mutex<bool>,
    }

    async fn token(
        State(provider): State<Arc<Provider>>,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let presented = form.get("refresh_token").cloned().unwrap_or_default();
        if !provider.valid.lock().remove(&presented) {
            *provider.refused.lock() += 1;
            let body = serde_json::json!({"error": "invalid_grant"});
            return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
        }
        let n = {
            let mut issued = provider.issued.lock();
            *issued += 1;
            *issued
        };
        if *provider.keeps_refresh_tokens.lock() {
            provider.valid.lock().insert(presented);
            return axum::Json(serde_json::json!({
                "access_token": format!("at-{n}"), "expires_in": 3600
            }))
            .into_response();
        }
        provider.valid.lock().insert(format!("rt-{n}"));
        axum::Json(serde_json::json!({
            "access_token": format!("at-{n}"), "refresh_token": format!("rt-{n}"),
            "expires_in": 3600
        }))
        .into_response()
    }

    /// An authority for the demo tenant in `oauth2` mode at a provider of its own, with Alice's
    /// sign-in (refresh token `rt-0`) in `vault`.
    async fn signed_in(vault: Arc<dyn TokenVault>) -> (Arc<Authority>, Arc<Provider>) {
        let (authority, provider, _) = signed_in_with(vault).await;
        (authority, provider)
    }

    /// [`signed_in`], and the configuration the authority was made from.
    async fn signed_in_with(vault: Arc<dyn TokenVault>) -> (Arc<Authority>, Arc<Provider>, Config) {
        let provider = Arc::new(Provider::default());
        provider.valid.lock().insert("rt-0".into());
        let app = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .with_state(provider.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut config = Config::demo("http://127.0.0.1:9");
        let key =
            TokenKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").expect("key");
        config.token_key = Some(key);
        config.tenants[0].auth = AuthMode::OAuth2;
        config.tenants[0].oauth = Some(OAuthSettings {
            authorize_url: format!("{url}/authorize"),
            token_url: format!("{url}/token"),
            client_id: "cti".into(),
            client_secret: None,
            scope: "openid offline_access".into(),
            issuer: None,
            jwks_url: None,
        });
        let authority = Authority::new(
            &config,
            reqwest::Client::new(),
            vault,
            None,
            Arc::new(SystemClock),
            "this-instance",
        );
        let sealed = authority
            .sealer()
            .expect("key")
            .seal("demo", "alice@x", "rt-0")
            .expect("sealed");
        authority
            .vault
            .put("demo", "alice@x", &sealed)
            .await
            .expect("kept");
        (Arc::new(authority), provider, config)
    }

    /// Key rotation: with a new `CTI_TOKEN_KEY` and the old one as `CTI_TOKEN_KEY_PREVIOUS`, a
    /// refresh token sealed under the old key still renews the rep's access, and what the vault
    /// holds afterwards opens under the new key alone (the provider here keeps its refresh
    /// tokens, so it is the relay that sealed it again).
    #[tokio::test]
    async fn a_refresh_token_sealed_under_the_previous_key_still_works_and_is_sealed_again() {
        let vault: Arc<dyn TokenVault> = Arc::new(MemoryVault::default());
        let (_, provider, mut config) = signed_in_with(vault.clone()).await;
        *provider.keeps_refresh_tokens.lock() = true;
        let old = config.token_key.take();
        let new =
            TokenKey::from_base64("YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=").expect("key");
        config.token_key = Some(new.clone());
        config.token_key_previous = old;
        let rotated = Authority::new(
            &config,
            reqwest::Client::new(),
            vault.clone(),
            None,
            Arc::new(SystemClock),
            "this-instance",
        );
        let token = rotated
            .access_token("demo", "alice@x")
            .await
            .expect("renewed with the old sealed refresh token");
        assert_eq!(token.expose(), "at-1");
        let stored = vault
            .get("demo", "alice@x")
            .await
            .expect("vault")
            .expect("still connected");
        let opened = super::super::vault::Sealer::new(&new)
            .open("demo", "alice@x", &stored)
            .expect("sealed under the new key");
        assert_eq!(opened.expose(), "rt-0");
    }

    #[tokio::test]
    async fn two_writes_that_need_a_new_access_token_at_once_refresh_once() {
        let (authority, provider) = signed_in(Arc::new(MemoryVault::default())).await;
        let (a, b) = tokio::join!(
            authority.access_token("demo", "alice@x"),
            authority.access_token("demo", "Alice@x"),
        );
        let (a, b) = (a.expect("first"), b.expect("second"));
        assert_eq!(a.expose(), b.expose(), "one refresh, shared");
        assert_eq!(*provider.issued.lock(), 1);
        assert_eq!(*provider.refused.lock(), 0);
        assert!(
            authority
                .is_connected("demo", "alice@x")
                .await
                .expect("vault")
        );
    }

    /// Review F16: access tokens that expired go as new ones come.
    #[tokio::test]
    async fn expired_access_tokens_are_not_kept() {
        let (authority, _) = signed_in(Arc::new(MemoryVault::default())).await;
        authority
            .access_tokens
            .lock()
            .insert(cache_key("demo", "bob@x"), (Secret::new("old"), 1));
        authority
            .access_token("demo", "alice@x")
            .await
            .expect("renewed");
        let cached = authority.access_tokens.lock();
        assert!(cached.contains_key(&cache_key("demo", "alice@x")));
        assert!(!cached.contains_key(&cache_key("demo", "bob@x")), "expired");
    }

    /// Review F16: a rep's refresh turn goes once nobody holds it.
    #[tokio::test]
    async fn refresh_turns_nobody_holds_are_not_kept() {
        let (authority, _) = signed_in(Arc::new(MemoryVault::default())).await;
        authority
            .refreshing
            .lock()
            .insert(cache_key("demo", "bob@x"), Arc::default());
        authority
            .access_token("demo", "alice@x")
            .await
            .expect("renewed");
        let turns = authority.refreshing.lock();
        assert!(
            !turns.contains_key(&cache_key("demo", "bob@x")),
            "{turns:?}"
        );
    }

    #[test]
    fn the_pkce_challenge_is_the_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(random_b64(32), random_b64(32));
    }
}
