//! On whose authority the relay writes to V2: the tenant's choice of mode.
//!
//! - `basic`: the tenant's V2 technical user (the one scheme in SAP's published V2 specs); V2
//!   records the writes as that user's.
//! - `destination`: user propagation through the SAP BTP Destination service. The relay keeps the
//!   rep's latest sign-in token (the XSUAA JWT the widget presents), and before writing asks the
//!   Destination service for the tenant's `OAuth2SAMLBearerAssertion` destination with that token
//!   as `X-user-token`; the service exchanges it for a V2 token of the rep. The relay holds no V2
//!   credentials at all.
//!
//! - `oauth2`: the rep's own sign-in at the tenant's identity provider (authorization code with
//!   PKCE, started from the widget); the refresh token is sealed with AES-GCM at rest.
//!
//! The index crawl and caller lookups always use the technical user: they read on the tenant's
//! behalf, not a rep's.
//!
//! [`Authority`] owns everything this takes (the stores of tokens, the key, the caches, one HTTP
//! client) and is built from the configuration and the stores; it needs nothing else of the
//! relay, so the rest of the relay asks it and never reaches into its parts.

pub mod destination;
mod id_token;
pub mod oauth2;
pub mod sealed_state;
pub mod sign_in;
pub mod user_tokens;
pub mod vault;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::clock::SharedClock;
use crate::config::{Config, OAuthSettings, TenantConfig, XsuaaSignIn};
use crate::secret::Secret;
use crate::v2::V2Client;
use crate::v2::client::V2Auth;

pub use crate::config::AuthMode;
pub use destination::DestinationService;
pub use sign_in::{SignInError, SignInPage, SignedIn};
pub use user_tokens::UserTokens;
use vault::{Sealer, TokenVault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error(
        "no current sign-in of {rep} to write on their behalf; it is used as soon as they open the widget again"
    )]
    NoUserToken { rep: String },
    #[error(
        "the BTP Destination service is not configured (CTI_DESTINATION_* or a destination binding)"
    )]
    NoDestinationService,
    #[error("BTP Destination service: {0}")]
    Destination(String),
    #[error("{rep} has not connected V2 yet (\"Connect V2\" in the widget)")]
    NotConnected { rep: String },
    #[error("V2 sign-in: no identity provider is configured")]
    NoIdentityProvider,
    #[error("V2 sign-in: no token key is configured (CTI_TOKEN_KEY)")]
    NoTokenKey,
    #[error("V2 sign-in: the sign-in's state is invalid or expired")]
    InvalidState,
    #[error("V2 sign-in: {0}")]
    PendingState(#[source] serde_json::Error),
    #[error("V2 sign-in: the authorize URL is not a URL: {0}")]
    AuthorizeUrl(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The sealed store of refresh tokens failed (unreachable, or a token that does not open).
    #[error("V2 sign-in: {0}")]
    Vault(#[from] VaultError),
    #[error("V2 sign-in: token endpoint unreachable: {0}")]
    TokenEndpointUnreachable(#[source] reqwest::Error),
    /// The identity provider failed (a 5xx): the sign-in stands, the request may be repeated.
    #[error("V2 sign-in: token endpoint answered {0}")]
    TokenEndpointFailed(reqwest::StatusCode),
    #[error("V2 sign-in: token endpoint: {0}")]
    TokenAnswer(#[source] reqwest::Error),
    /// The identity provider said no to a token request (a 4xx).
    #[error("V2 sign-in refused: {0}")]
    Refused(String),
    #[error("V2 sign-in: the identity provider's ID token does not hold: {0}")]
    IdToken(String),
    #[error("V2 sign-in: the identity provider's keys cannot be read: {0}")]
    IdTokenKeys(#[source] reqwest::Error),
    /// Somebody else than the rep who started the sign-in signed in (a single sign-on session
    /// of another user): nothing is kept.
    #[error(
        "V2 sign-in: {signed_in} signed in, but the sign-in was started for {rep}; sign out of the identity provider and connect again as {rep}"
    )]
    WrongIdentity { signed_in: String, rep: String },
    /// The sign-in came back in another browser than the one that started it.
    #[error("V2 sign-in: this browser did not start the sign-in; start again from the widget")]
    OtherBrowser,
}

/// A token is never believed to live longer than a day, whatever its issuer says.
const MAX_TOKEN_LIFETIME_S: u64 = 24 * 60 * 60;

/// When a token issued at `now_ms` with `lifetime_s` (an identity provider's `expires_in`)
/// stops being used: an absurd lifetime is cut to a day, and nothing wraps around into a
/// token that looks expired at once (a hot loop of renewals) or a panic.
pub(crate) fn expiry_ms(now_ms: u64, lifetime_s: u64) -> u64 {
    now_ms.saturating_add(lifetime_s.min(MAX_TOKEN_LIFETIME_S).saturating_mul(1000))
}

/// One rep's turn to refresh, waited for without blocking the thread.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// Acting for reps in V2: their tokens, the key that seals them, and the services that turn them
/// into V2 access.
#[derive(Debug)]
pub struct Authority {
    /// Tenant id -> its identity provider, for tenants whose reps sign in themselves.
    identity_providers: HashMap<String, OAuthSettings>,
    /// The BTP Destination service, when configured.
    destinations: Option<DestinationService>,
    /// The reps' latest sign-in tokens, for tenants writing on the rep's authority.
    pub user_tokens: UserTokens,
    /// The reps' sealed refresh tokens (`oauth2`), and the key that seals them.
    pub vault: Arc<dyn TokenVault>,
    sealer: Option<Sealer>,
    /// (tenant, rep) -> access token and its expiry (Unix ms), for `oauth2`.
    pub access_tokens: Mutex<HashMap<(String, String), (Secret, u64)>>,
    /// One pool of connections for the identity provider, the Destination service and the
    /// writes as reps (a write is short; a fresh pool for each would mean a TLS handshake each).
    http: reqwest::Client,
    clock: SharedClock,
    /// (tenant, rep) -> the turn to refresh their access token. The provider rotates refresh
    /// tokens and refuses a used one, so two writes renewing at once would have one of them
    /// refused and the rep's sign-in dropped; one at a time, the second finds the first's token.
    refreshing: Mutex<HashMap<(String, String), Turn>>,
    /// The identity providers' keys, for the ID tokens of reps' sign-ins.
    id_keys: id_token::ProviderKeys,
    /// The relay's own sign-in through XSUAA, when configured.
    sign_in: Option<XsuaaSignIn>,
    /// This instance, as the holder of a rep's refresh lease in a shared vault.
    holder: String,
    /// How long a refresh lease lasts: longer than a token request may take.
    lease_ms: u64,
}

impl Authority {
    /// Forgets every token this process holds for the tenant's reps (it unsubscribed): sign-ins,
    /// access tokens and the sealed refresh tokens of the vault.
    pub async fn forget_tenant(&self, tenant: &str) {
        self.user_tokens.forget_tenant(tenant).await;
        self.vault.forget_tenant(tenant).await;
        self.access_tokens.lock().retain(|(t, _), _| t != tenant);
        self.refreshing.lock().retain(|(t, _), _| t != tenant);
    }

    /// From the configuration, the vault of refresh tokens and (with Redis) the store where the
    /// instances share the reps' sign-ins.
    /// `http` is the process's client; `holder` names this process in refresh leases.
    pub fn new(
        config: &Config,
        http: reqwest::Client,
        vault: Arc<dyn TokenVault>,
        shared_sign_ins: Option<Arc<dyn TokenVault>>,
        clock: SharedClock,
        holder: &str,
    ) -> Self {
        let sealer = config
            .token_key
            .as_ref()
            .map(|key| Sealer::rotated(key, config.token_key_previous.as_ref()));
        Authority {
            identity_providers: config
                .tenants
                .iter()
                .filter_map(|t| Some((t.id.clone(), t.oauth.clone()?)))
                .collect(),
            destinations: config
                .destination
                .clone()
                .map(|d| DestinationService::new(d, http.clone())),
            user_tokens: match (shared_sign_ins, &sealer) {
                (Some(shared), Some(sealer)) => UserTokens::shared(shared, sealer.clone()),
                _ => UserTokens::default(),
            },
            vault,
            sealer,
            access_tokens: Mutex::new(HashMap::new()),
            http,
            clock,
            refreshing: Mutex::new(HashMap::new()),
            id_keys: id_token::ProviderKeys::default(),
            sign_in: config.xsuaa_sign_in.clone(),
            holder: holder.to_string(),
            lease_ms: config.v2_timeout.as_millis() as u64 * 2 + 1_000,
        }
    }

    /// A V2 client that acts for `rep` in `tenant`, as the tenant's mode says; `technical` is
    /// the tenant's own (its technical user).
    pub async fn client_for(
        &self,
        tenant: &TenantConfig,
        technical: &V2Client,
        rep: &str,
    ) -> Result<V2Client, AuthorityError> {
        let token = match &tenant.auth {
            AuthMode::Basic => return Ok(technical.clone()),
            AuthMode::Destination { name } => {
                let service = self
                    .destinations
                    .as_ref()
                    .ok_or(AuthorityError::NoDestinationService)?;
                let now_ms = self.clock.now_ms();
                let user_token = self
                    .user_tokens
                    .get(&tenant.id, rep, now_ms)
                    .await
                    .ok_or_else(|| AuthorityError::NoUserToken {
                        rep: rep.to_string(),
                    })?;
                let target = service
                    .resolve(name, &tenant.id, rep, &user_token, now_ms)
                    .await?;
                return Ok(V2Client::with_http(
                    self.http.clone(),
                    &target.url,
                    V2Auth::Bearer {
                        token: target.token,
                    },
                ));
            }
            AuthMode::OAuth2 => self.access_token(&tenant.id, rep).await?,
        };
        Ok(V2Client::with_http(
            self.http.clone(),
            &tenant.v2_url,
            V2Auth::Bearer { token },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::expiry_ms;

    #[test]
    fn a_lifetime_from_outside_neither_wraps_nor_lasts_for_ever() {
        assert_eq!(expiry_ms(1_000, 60), 61_000);
        assert_eq!(expiry_ms(1_000, u64::MAX), 1_000 + 86_400_000);
        assert_eq!(expiry_ms(u64::MAX - 5, 60), u64::MAX);
    }
}
