//! Who may open a widget connection that has not signed in yet.
//!
//! Before `hello` a connection is anonymous, and each may hold a frame of up to the message
//! limit while the relay waits for it: a few hundred of them would fill a small instance. So
//! connections still waiting for their `hello` are counted, in all and per client address, and
//! one over either cap is refused before the WebSocket is opened. A [`Pending`] ticket counts
//! one; the session gives it back as soon as the rep is signed in (or the connection ends),
//! after which only the rep's own limits apply.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The counts of connections waiting for `hello`.
#[derive(Debug)]
pub struct PendingHellos {
    total: usize,
    per_client: usize,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// Which cap turned a connection away (the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `pending_hellos`: too many anonymous connections in all.
    Total,
    /// `pending_hellos_per_client`: too many from this address.
    Client,
}

impl Full {
    pub fn label(self) -> &'static str {
        match self {
            Full::Total => "pending_hellos",
            Full::Client => "pending_hellos_per_client",
        }
    }
}

impl PendingHellos {
    pub fn new(total: usize, per_client: usize) -> Self {
        PendingHellos {
            total,
            per_client,
            counts: Arc::default(),
        }
    }

    /// A ticket for one more connection from `client` (None: the address is not known, which
    /// only the in-process tests' connections are), or which cap is reached.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<Pending, Full> {
        let mut counts = self.counts.lock();
        if counts.total >= self.total {
            return Err(Full::Total);
        }
        if let Some(client) = client {
            let from_client = counts.by_client.entry(client).or_default();
            if *from_client >= self.per_client {
                return Err(Full::Client);
            }
            *from_client += 1;
        }
        counts.total += 1;
        Ok(Pending {
            client,
            counts: Some(self.counts.clone()),
        })
    }

    /// Connections waiting for `hello` now.
    pub fn waiting(&self) -> usize {
        self.counts.lock().total
    }
}

/// One connection counted as waiting for `hello`, until dropped.
#[derive(Debug)]
pub struct Pending {
    client: Option<IpAddr>,
    counts: Option<Arc<Mutex<Counts>>>,
}

impl Pending {
    /// A ticket that counts nothing, for sessions driven without a socket.
    pub fn untracked() -> Self {
        Pending {
            client: None,
            counts: None,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(counts) = self.counts.take() else {
            return;
        };
        let mut counts = counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(client) = self.client
            && let Some(n) = counts.by_client.get_mut(&client)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_client.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn a_client_gets_its_share_and_everyone_the_total() {
        let pending = PendingHellos::new(3, 2);
        let a1 = pending.admit(ip("203.0.113.1")).expect("first");
        let _a2 = pending.admit(ip("203.0.113.1")).expect("second");
        assert_eq!(
            pending.admit(ip("203.0.113.1")).err(),
            Some(Full::Client),
            "a third from the same address"
        );
        let _b = pending.admit(ip("203.0.113.2")).expect("another address");
        assert_eq!(pending.admit(ip("203.0.113.3")).err(), Some(Full::Total));
        assert_eq!(pending.waiting(), 3);

        drop(a1);
        assert_eq!(pending.waiting(), 2);
        pending
            .admit(ip("203.0.113.1"))
            .expect("room again once one signed in");
    }

    #[test]
    fn an_untracked_ticket_counts_nothing() {
        let pending = PendingHellos::new(1, 1);
        drop(Pending::untracked());
        let _only = pending.admit(None).expect("the one place");
        assert_eq!(pending.admit(None).err(), Some(Full::Total));
    }
}
