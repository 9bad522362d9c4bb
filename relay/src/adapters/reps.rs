//! Which rep a provider's user is, and the other way round.
//!
//! Providers tell agents apart by their own user ids (a Genesys user's UUID, a RingCentral
//! extension id); the relay knows reps by their V2 login, the e-mail in their token. A provider's
//! user API gives each user's e-mail, which is the usual bridge; where a provider's e-mail is not
//! the rep's login (an alias, a shared mailbox), the tenant's override table (`agents` in the
//! provider's settings, provider user id to rep) wins. Answers from the provider are cached here
//! for the adapter, which decides when to ask again.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

/// A tenant's provider users and reps, both ways.
#[derive(Debug, Default)]
pub struct Reps {
    overrides: BTreeMap<String, String>,
    learnt: Mutex<HashMap<String, String>>,
}

impl Reps {
    /// E-mails are compared without case, as mail systems do; overrides are kept as written.
    pub fn new(overrides: BTreeMap<String, String>) -> Self {
        let overrides = overrides
            .into_iter()
            .map(|(user, rep)| (user.trim().to_string(), rep.trim().to_lowercase()))
            .filter(|(user, rep)| !user.is_empty() && !rep.is_empty())
            .collect();
        Reps {
            overrides,
            learnt: Mutex::new(HashMap::new()),
        }
    }

    fn learnt(&self) -> parking_lot::MutexGuard<'_, HashMap<String, String>> {
        self.learnt.lock()
    }

    /// The rep behind a provider user: the override, else what the provider's directory said.
    pub fn rep_of(&self, user_id: &str) -> Option<String> {
        self.overrides
            .get(user_id)
            .cloned()
            .or_else(|| self.learnt().get(user_id).cloned())
    }

    /// The provider user of a rep: an override naming them, else the directory's.
    pub fn user_of(&self, rep: &str) -> Option<String> {
        let rep = rep.trim().to_lowercase();
        if let Some((user, _)) = self.overrides.iter().find(|(_, r)| **r == rep) {
            return Some(user.clone());
        }
        self.learnt()
            .iter()
            .find(|(user, r)| **r == rep && !self.overrides.contains_key(*user))
            .map(|(user, _)| user.clone())
    }

    /// What the provider's user API said of one user (its e-mail as the rep).
    pub fn remember(&self, user_id: &str, rep: &str) {
        let rep = rep.trim().to_lowercase();
        if !user_id.trim().is_empty() && !rep.is_empty() {
            self.learnt().insert(user_id.trim().to_string(), rep);
        }
    }

    /// The provider's whole directory, read again: users that left are forgotten.
    pub fn replace_all(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        let fresh: HashMap<String, String> = pairs
            .into_iter()
            .map(|(user, rep)| (user.trim().to_string(), rep.trim().to_lowercase()))
            .filter(|(user, rep)| !user.is_empty() && !rep.is_empty())
            .collect();
        *self.learnt() = fresh;
    }

    /// Every provider user mapped to a rep (overrides and the directory), sorted, e.g. to
    /// subscribe to their calls.
    pub fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .overrides
            .keys()
            .cloned()
            .chain(self.learnt().keys().cloned())
            .collect();
        users.sort();
        users.dedup();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_the_directory_both_ways() {
        let reps = Reps::new(BTreeMap::from([(
            "u-shared".to_string(),
            "Alice@Example.com".to_string(),
        )]));
        reps.replace_all([
            ("u-alice".to_string(), "alice@example.com".to_string()),
            ("u-bob".to_string(), "BOB@example.com".to_string()),
        ]);
        assert_eq!(
            reps.rep_of("u-shared").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(reps.rep_of("u-bob").as_deref(), Some("bob@example.com"));
        assert_eq!(reps.rep_of("u-nobody"), None);
        assert_eq!(
            reps.user_of("alice@example.com").as_deref(),
            Some("u-shared")
        );
        assert_eq!(reps.user_of("bob@EXAMPLE.com").as_deref(), Some("u-bob"));
        assert_eq!(reps.users(), ["u-alice", "u-bob", "u-shared"]);
    }

    #[test]
    fn a_new_directory_forgets_users_that_left() {
        let reps = Reps::new(BTreeMap::new());
        reps.remember("u-carol", "carol@example.com");
        reps.replace_all([("u-dave".to_string(), "dave@example.com".to_string())]);
        assert_eq!(reps.rep_of("u-carol"), None);
        assert_eq!(reps.user_of("dave@example.com").as_deref(), Some("u-dave"));
    }
}
