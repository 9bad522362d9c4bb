//! One lock per call, so the changes to a call's legs happen one at a time.
//!
//! Events of a call, the rep's requests on it and the activity's status all read a leg, change
//! it and publish it; two of them interleaving would publish a stale copy after a newer one.
//! Calls hash onto a fixed set of async locks: unrelated calls rarely wait for each other, and
//! the set never grows. The locks are this process's only: another instance changing the same
//! call is caught by the store, which saves a leg only over the revision it was read at.

use std::hash::{Hash, Hasher};

use tokio::sync::Mutex;

#[derive(Debug)]
pub struct Stripes(Vec<Mutex<()>>);

/// Enough that unrelated calls seldom share a lock on a busy instance.
const STRIPES: usize = 64;

impl Default for Stripes {
    fn default() -> Self {
        Stripes((0..STRIPES).map(|_| Mutex::new(())).collect())
    }
}

impl Stripes {
    /// The lock that serializes changes to `call_id`'s legs.
    pub fn of(&self, tenant: &str, call_id: &str) -> &Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (tenant, call_id).hash(&mut hasher);
        &self.0[(hasher.finish() as usize) % self.0.len()]
    }
}
