//! Hearing the other relay instances' call messages (with Redis), so a call reaches the rep's
//! widget whichever instance took the provider's webhook.
//!
//! [`follow`] listens for as long as the relay runs and re-subscribes after a break; whatever
//! was published meanwhile is in the shared log, so the widgets here are told to resync.
//! [`Fanout`] says where that stands, for readiness.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::Hub;
use super::redis_replay;

/// Where this instance's subscription to the other instances' messages stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutState {
    /// Not subscribed yet: a fresh instance takes no traffic it could not deliver.
    Connecting,
    Listening,
    /// The subscription broke and is being made again; messages meanwhile are replayed.
    Reconnecting,
}

/// A [`FanoutState`] shared between the listener and the readiness check.
#[derive(Debug, Default)]
pub struct Fanout(AtomicU8);

impl Fanout {
    pub fn state(&self) -> FanoutState {
        match self.0.load(Ordering::SeqCst) {
            0 => FanoutState::Connecting,
            1 => FanoutState::Listening,
            _ => FanoutState::Reconnecting,
        }
    }

    fn set(&self, state: FanoutState) {
        let value = match state {
            FanoutState::Connecting => 0,
            FanoutState::Listening => 1,
            FanoutState::Reconnecting => 2,
        };
        self.0.store(value, Ordering::SeqCst);
    }
}

/// How long a broken subscription waits before subscribing again.
const RETRY: Duration = Duration::from_secs(1);

/// Listens on the push channel until the task is dropped, delivering every instance's messages
/// to this instance's sessions.
pub async fn follow(url: &str, hub: &Hub, fanout: &Fanout) {
    let mut broken = false;
    loop {
        let result = redis_replay::listen(
            url,
            || {
                fanout.set(FanoutState::Listening);
                if broken {
                    // What other instances published while this one was not listening is in
                    // the log: have the widgets here reconnect and fetch it.
                    tracing::info!("call fan-out channel back; widgets resync");
                    hub.resync_all();
                }
            },
            |published| hub.deliver(&published.tenant, published.pushed),
        )
        .await;
        if let Err(err) = &result {
            tracing::warn!(%err, "call fan-out channel unavailable; retrying");
        }
        broken = true;
        fanout.set(FanoutState::Reconnecting);
        tokio::time::sleep(RETRY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_reads_back_as_set() {
        let fanout = Fanout::default();
        assert_eq!(fanout.state(), FanoutState::Connecting);
        for state in [
            FanoutState::Listening,
            FanoutState::Reconnecting,
            FanoutState::Connecting,
        ] {
            fanout.set(state);
            assert_eq!(fanout.state(), state);
        }
    }
}
