//! Whether a call's recording may be kept: the tenant's jurisdiction policy, per country.
//!
//! Two-party (all-party) consent jurisdictions such as Switzerland and Germany require every
//! party's consent before a recording may be kept; one-party ones such as US federal law need
//! only the rep's. A call touches two jurisdictions, the tenant's (where the rep works) and the
//! remote party's; the stricter applies. Where consent is required, the recording link reaches
//! the activity only after the rep confirmed the caller agreed; who and when is stamped on it.
//! This is a tool for a tenant's policy, not legal advice: tenants set their own countries.

use std::collections::HashMap;

use cti_protocol::ws::Consent;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentRule {
    OneParty,
    TwoParty,
}

impl std::str::FromStr for ConsentRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "one_party" => Ok(ConsentRule::OneParty),
            "two_party" => Ok(ConsentRule::TwoParty),
            other => Err(format!(
                "unknown consent rule {other:?} (expected one_party or two_party)"
            )),
        }
    }
}

/// Countries the relay knows without configuration; a tenant's own entries win.
const BUILT_IN: &[(&str, ConsentRule)] = &[
    ("CH", ConsentRule::TwoParty),
    ("DE", ConsentRule::TwoParty),
    ("AT", ConsentRule::TwoParty),
    ("US", ConsentRule::OneParty),
    ("GB", ConsentRule::OneParty),
];

/// A tenant's policy: a rule per country, and one for every other country.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConsentPolicy {
    /// For countries not listed (and numbers whose country is unknown). The safe side by default.
    #[serde(default = "two_party")]
    pub default: ConsentRule,
    /// ISO 3166 region -> rule.
    #[serde(default)]
    pub countries: HashMap<String, ConsentRule>,
}

fn two_party() -> ConsentRule {
    ConsentRule::TwoParty
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        ConsentPolicy {
            default: ConsentRule::TwoParty,
            countries: HashMap::new(),
        }
    }
}

impl ConsentPolicy {
    /// `default=two_party,US=one_party,FR=two_party` (the environment's form).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut policy = ConsentPolicy::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, rule) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not COUNTRY=rule"))?;
            let rule: ConsentRule = rule.parse()?;
            let key = key.trim();
            if key.eq_ignore_ascii_case("default") {
                policy.default = rule;
            } else if key.len() == 2 && key.chars().all(|c| c.is_ascii_alphabetic()) {
                policy.countries.insert(key.to_ascii_uppercase(), rule);
            } else {
                return Err(format!("{key:?} is not an ISO 3166 country code"));
            }
        }
        Ok(policy)
    }

    pub fn rule_for(&self, region: Option<&str>) -> ConsentRule {
        let Some(region) = region.map(str::to_ascii_uppercase) else {
            return self.default;
        };
        if let Some(rule) = self.countries.get(&region) {
            return *rule;
        }
        BUILT_IN
            .iter()
            .find(|(code, _)| *code == region)
            .map_or(self.default, |(_, rule)| *rule)
    }

    /// What a new call needs: the tenant's country and the remote party's both apply.
    pub fn decide(&self, tenant_region: &str, remote_region: Option<&str>) -> Consent {
        let places = [remote_region, Some(tenant_region)];
        let strict = places
            .iter()
            .find(|place| self.rule_for(**place) == ConsentRule::TwoParty);
        let jurisdiction = match strict {
            Some(place) => place.unwrap_or("unknown"),
            None => remote_region.unwrap_or(tenant_region),
        };
        Consent {
            required: strict.is_some(),
            jurisdiction: jurisdiction.to_ascii_uppercase(),
            confirmed_by: None,
            confirmed_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stricter_jurisdiction_applies() {
        let policy = ConsentPolicy::default();
        let us_to_us = policy.decide("US", Some("US"));
        assert!(!us_to_us.required);
        assert_eq!(us_to_us.jurisdiction, "US");
        let ch_rep_us_caller = policy.decide("CH", Some("US"));
        assert!(ch_rep_us_caller.required);
        assert_eq!(ch_rep_us_caller.jurisdiction, "CH");
        let us_rep_de_caller = policy.decide("US", Some("DE"));
        assert!(us_rep_de_caller.required);
        assert_eq!(us_rep_de_caller.jurisdiction, "DE");
        assert!(
            policy.decide("US", None).required,
            "unknown country: the safe side"
        );
    }

    #[test]
    fn tenants_set_countries_and_the_default() {
        let policy =
            ConsentPolicy::parse("default=one_party, ch=one_party,FR=two_party").expect("valid");
        assert!(!policy.decide("CH", Some("IT")).required);
        assert!(policy.decide("CH", Some("FR")).required);
        assert!(
            policy.decide("DE", Some("IT")).required,
            "built-in DE still applies"
        );
        for bad in ["US", "US=maybe", "USA=one_party"] {
            assert!(ConsentPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
