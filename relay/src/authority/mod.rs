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

pub mod destination;
pub mod oauth2;
pub mod user_tokens;
pub mod vault;

use std::sync::Arc;

use crate::state::{AppState, Tenant};
use crate::v2::V2Client;

pub use crate::config::AuthMode;
pub use destination::DestinationService;
pub use user_tokens::UserTokens;

#[derive(Debug, Clone, thiserror::Error)]
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
    #[error("V2 sign-in: {0}")]
    OAuth(String),
    /// The identity provider said no to a token request (a 4xx).
    #[error("V2 sign-in refused: {0}")]
    Refused(String),
}

/// A V2 client that acts for `rep` in `tenant`, as the tenant's mode says.
pub async fn client_for(
    state: &Arc<AppState>,
    tenant: &Tenant,
    rep: &str,
) -> Result<V2Client, AuthorityError> {
    match &tenant.auth {
        AuthMode::Basic => Ok(tenant.v2.clone()),
        AuthMode::Destination { name } => {
            let service = state
                .destinations
                .as_ref()
                .ok_or(AuthorityError::NoDestinationService)?;
            let now_ms = state.clock.now_ms();
            let user_token = state
                .user_tokens
                .get(&tenant.config.id, rep, now_ms)
                .await
                .ok_or_else(|| AuthorityError::NoUserToken {
                    rep: rep.to_string(),
                })?;
            let target = service
                .resolve(name, &tenant.config.id, rep, &user_token, now_ms)
                .await?;
            Ok(V2Client::new(
                &target.url,
                crate::v2::client::V2Auth::Bearer {
                    token: target.token,
                },
                state.config.v2_timeout,
            ))
        }
        AuthMode::OAuth2 => {
            let token = oauth2::access_token(state, tenant, rep).await?;
            Ok(V2Client::new(
                &tenant.config.v2_url,
                crate::v2::client::V2Auth::Bearer { token },
                state.config.v2_timeout,
            ))
        }
    }
}
