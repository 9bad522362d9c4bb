//! Whether V2 holds the rep's own sign-in, told to the widget as it changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::identity::AgentIdentity;
use crate::state::AppState;

/// Follows whether V2 holds the rep's own sign-in (tenants in `oauth2` mode), so the widget
/// learns that "Connect V2" worked, or that it is needed again. The sign-in completes in
/// another window and maybe on another instance, so the session looks at the shared vault:
/// often while the rep is not connected, rarely once they are.
pub(crate) struct SignInWatch<'a> {
    state: &'a Arc<AppState>,
    who: &'a AgentIdentity,
    /// What the widget was last told; `None` before the first look.
    told: Option<bool>,
    next: Option<Instant>,
}

const SIGN_IN_CHECK_NOT_CONNECTED: Duration = Duration::from_secs(2);
const SIGN_IN_CHECK_CONNECTED: Duration = Duration::from_secs(30);

impl<'a> SignInWatch<'a> {
    pub(crate) fn new(state: &'a Arc<AppState>, who: &'a AgentIdentity) -> Self {
        let watched = state
            .tenant(&who.tenant)
            .is_some_and(|t| t.auth == crate::authority::AuthMode::OAuth2);
        SignInWatch {
            state,
            who,
            told: None,
            next: watched.then(Instant::now),
        }
    }

    /// Never fires for tenants that do not use the reps' own sign-in.
    pub(crate) async fn due(&self) {
        match self.next {
            Some(at) => sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// The status to send, when it is new.
    pub(crate) async fn check(&mut self) -> Option<bool> {
        self.next?;
        let tenant = self.state.tenant(&self.who.tenant)?;
        let looked = self
            .state
            .authority
            .is_connected(&tenant.config.id, &self.who.agent)
            .await;
        let connected = match looked {
            Ok(connected) => connected,
            Err(err) => {
                // Unknown is not news: keep what the widget was told and look again soon.
                tracing::warn!(%err, "cannot tell whether the rep connected V2");
                self.next = Some(Instant::now() + SIGN_IN_CHECK_NOT_CONNECTED);
                return None;
            }
        };
        let every = if connected {
            SIGN_IN_CHECK_CONNECTED
        } else {
            SIGN_IN_CHECK_NOT_CONNECTED
        };
        self.next = Some(Instant::now() + every);
        (self.told != Some(connected)).then(|| {
            self.told = Some(connected);
            connected
        })
    }
}
