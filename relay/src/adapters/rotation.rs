//! Changing a provider's webhook secret without losing deliveries: Webex's signing secret,
//! Graph's `clientState` and RingCentral's verification token each have a `_previous` setting
//! beside them, as the generic webhook has `webhook_secret_previous`.
//!
//! During a rotation the relay takes a delivery proven with either secret and registers its
//! webhook or subscription with the new one only. Deliveries already under way (the provider's
//! retries, a subscription made before the restart, another instance not yet restarted) still
//! carry the old one; once none can, the previous setting is removed and the old secret is
//! refused (docs/security.md, "Secrets").

use std::collections::HashSet;
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::secret::Secret;

/// Which of a tenant's secrets a delivery's proof fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    Current,
    /// The secret being replaced: taken, with a warning once per tenant and setting.
    Previous,
}

/// Which secret `proven` accepts: the current one, else (during a rotation) the previous one;
/// None when neither. `setting` names the previous secret's tenant key in the warning.
pub(crate) fn fit(
    tenant: &str,
    setting: &'static str,
    current: &Secret,
    previous: Option<&Secret>,
    proven: impl Fn(&str) -> bool,
) -> Option<Fit> {
    if proven(current.expose()) {
        return Some(Fit::Current);
    }
    previous.filter(|p| proven(p.expose()))?;
    if first_time(tenant, setting) {
        tracing::warn!(
            tenant = ?tenant,
            setting,
            "a delivery proven with the previous secret: taken during the rotation; remove \
             {setting} once the provider uses the new one"
        );
    }
    Some(Fit::Previous)
}

/// Whether this (tenant, setting) has not been reported yet in this process: the warning says
/// a rotation is under way, not each delivery.
fn first_time(tenant: &str, setting: &'static str) -> bool {
    static SEEN: OnceLock<Mutex<HashSet<(String, &'static str)>>> = OnceLock::new();
    SEEN.get_or_init(Mutex::default)
        .lock()
        .insert((tenant.to_string(), setting))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_secret_is_taken_only_when_set_and_only_after_the_current() {
        let current = Secret::new("the-new-secret-0123");
        let previous = Secret::new("the-old-secret-0123");
        let is = |want: &'static str| move |s: &str| s == want;
        assert_eq!(
            fit(
                "t",
                "x_previous",
                &current,
                Some(&previous),
                is("the-new-secret-0123")
            ),
            Some(Fit::Current)
        );
        assert_eq!(
            fit(
                "t",
                "x_previous",
                &current,
                Some(&previous),
                is("the-old-secret-0123")
            ),
            Some(Fit::Previous)
        );
        assert_eq!(
            fit("t", "x_previous", &current, None, is("the-old-secret-0123")),
            None
        );
        assert_eq!(
            fit(
                "t",
                "x_previous",
                &current,
                Some(&previous),
                is("a-third-one")
            ),
            None
        );
    }
}
