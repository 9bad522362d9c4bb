//! Turning whatever users and PBXs type into E.164, the only form the index and V2 match on.
//!
//! Built on `rlibphonenumber`, a port of Google's libphonenumber: it agrees with the reference
//! implementation where the older `phonenumber` crate mis-normalizes numbers that carry another
//! country code than the default region (it strips that region's trunk prefix from them).

use std::str::FromStr;

use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumberFormat, Region};

/// A number in E.164 with what was split off it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// `+<country code><national number>`: the matching key.
    pub e164: String,
    /// For people: `+41 44 123 45 67`.
    pub international: String,
    /// Shown on the card, never matched on.
    pub extension: Option<String>,
    /// The ISO 3166 region the number belongs to (`CH`), when its numbering plan says so
    /// (non-geographic numbers shared by several regions have none).
    pub region: Option<String>,
}

/// Why a string is not a phone number, in terms a data steward can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNumber {
    #[error("empty")]
    Empty,
    #[error("not a number")]
    NotANumber,
    #[error("invalid country code")]
    InvalidCountryCode,
    #[error("too short")]
    TooShort,
    #[error("too long")]
    TooLong,
    #[error("not a valid number for its country")]
    NotValid,
    #[error("unknown default region {0:?}")]
    UnknownRegion(String),
}

impl InvalidNumber {
    /// The stable reason code (`too_short`, `not_valid`, ...) used in CLI output and reports.
    pub fn code(&self) -> &'static str {
        match self {
            // Google's libphonenumber reports an empty string as not a number.
            InvalidNumber::Empty | InvalidNumber::NotANumber => "not_a_number",
            InvalidNumber::InvalidCountryCode => "invalid_country_code",
            InvalidNumber::TooShort => "too_short",
            InvalidNumber::TooLong => "too_long",
            InvalidNumber::NotValid => "not_valid",
            InvalidNumber::UnknownRegion(_) => "unknown_region",
        }
    }
}

/// A tenant's default region, parsed once from its ISO 3166 code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRegion(Region);

impl DefaultRegion {
    pub fn parse(code: &str) -> Result<Self, InvalidNumber> {
        Region::from_str(&code.trim().to_ascii_uppercase())
            .ok()
            // Only regions with a calling code can resolve national numbers (not `ZZ`, `XX`).
            .filter(|r| PHONE_NUMBER_UTIL.get_country_code_for_region(*r).is_some())
            .map(DefaultRegion)
            .ok_or_else(|| InvalidNumber::UnknownRegion(code.to_string()))
    }
}

/// Normalizes `input` with `region` as the default for numbers written nationally.
pub fn normalize(input: &str, region: &DefaultRegion) -> Result<Normalized, InvalidNumber> {
    let (number, extension) = parse_valid(input, region)?;
    Ok(Normalized {
        e164: PHONE_NUMBER_UTIL
            .format(&number, PhoneNumberFormat::E164)
            .into_owned(),
        international: PHONE_NUMBER_UTIL
            .format(&number, PhoneNumberFormat::International)
            .into_owned(),
        region: PHONE_NUMBER_UTIL
            .get_region_for_number(&number)
            .map(|region| region.to_string()),
        extension,
    })
}

/// Only the matching key: [`normalize`] without the formatting for people, which costs as much
/// as the rest together. For bulk work (index builds, the `normalize` command).
pub fn to_e164(input: &str, region: &DefaultRegion) -> Result<String, InvalidNumber> {
    let (number, _) = parse_valid(input, region)?;
    Ok(PHONE_NUMBER_UTIL
        .format(&number, PhoneNumberFormat::E164)
        .into_owned())
}

/// Parses and validates; the number comes back without its extension, which is returned apart.
fn parse_valid(
    input: &str,
    region: &DefaultRegion,
) -> Result<(rlibphonenumber::PhoneNumber, Option<String>), InvalidNumber> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(InvalidNumber::Empty);
    }
    let mut number = PHONE_NUMBER_UTIL
        .parse(trimmed, Some(region.0))
        .map_err(|err| {
            use rlibphonenumber::ParseError;
            match err {
                ParseError::InvalidCountryCode => InvalidNumber::InvalidCountryCode,
                ParseError::TooShortAfterIdd | ParseError::TooShortNsn => InvalidNumber::TooShort,
                ParseError::TooLongNsn => InvalidNumber::TooLong,
                _ => InvalidNumber::NotANumber,
            }
        })?;
    if !PHONE_NUMBER_UTIL.is_valid_number(&number) {
        return Err(InvalidNumber::NotValid);
    }
    let extension = number.extension.take().filter(|e| !e.is_empty());
    Ok((number, extension))
}

/// True for a string already in E.164 form (`+` and 3 to 20 digits), as V2 stores normalised
/// numbers. The lengths are those of the keys [`normalize`] can give, not ITU's 8 to 15:
/// libphonenumber's plans have valid numbers with national parts of 2 to 17 digits after a
/// country code of 1 to 3 (German numbers of 6 digits in all, and of 16 and more), and a stored
/// key the relay would itself produce must not be called invalid (found by fuzzing).
pub fn looks_like_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (3..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch() -> DefaultRegion {
        DefaultRegion::parse("CH").expect("CH is a region")
    }

    #[test]
    fn national_with_trunk_prefix() {
        let n = normalize("044 123 45 67", &ch()).expect("valid");
        assert_eq!(n.e164, "+41441234567");
        assert_eq!(n.international, "+41 44 123 45 67");
        assert_eq!(n.region.as_deref(), Some("CH"));
    }

    #[test]
    fn other_country_keeps_its_own_digits() {
        // The regression that rules out the `phonenumber` crate.
        let n = normalize("+33 1 23 45 67 89", &ch()).expect("valid");
        assert_eq!(n.e164, "+33123456789");
        let n = normalize("0033 1 23 45 67 89", &ch()).expect("valid");
        assert_eq!(n.e164, "+33123456789");
    }

    #[test]
    fn extensions_are_kept_apart() {
        let us = DefaultRegion::parse("us").expect("region");
        let n = normalize("+1 212 555 0147 ext. 12", &us).expect("valid");
        assert_eq!(n.e164, "+12125550147");
        assert_eq!(n.extension.as_deref(), Some("12"));
        let n = normalize("tel:+41441234567;ext=55", &ch()).expect("valid");
        assert_eq!(n.e164, "+41441234567");
        assert_eq!(n.extension.as_deref(), Some("55"));
    }

    #[test]
    fn invalid_input_has_a_reason() {
        assert_eq!(normalize("", &ch()), Err(InvalidNumber::Empty));
        assert_eq!(normalize("hello", &ch()), Err(InvalidNumber::NotANumber));
        assert_eq!(
            normalize("+999 1234", &ch()),
            Err(InvalidNumber::InvalidCountryCode)
        );
        assert_eq!(normalize("12", &ch()), Err(InvalidNumber::NotValid));
        assert!(DefaultRegion::parse("XX").is_err());
        assert!(DefaultRegion::parse("ZZ").is_err());
        assert!(DefaultRegion::parse("Switzerland").is_err());
    }

    #[test]
    fn the_bulk_path_agrees_with_the_full_one() {
        for input in [
            "044 123 45 67",
            "+1 212 555 0147 ext. 12",
            "0033 1 23 45 67 89",
            "12",
            "x",
        ] {
            assert_eq!(
                to_e164(input, &ch()),
                normalize(input, &ch()).map(|n| n.e164),
                "{input}"
            );
        }
    }

    #[test]
    fn e164_shape() {
        assert!(looks_like_e164("+41441234567"));
        assert!(!looks_like_e164("41441234567"));
        assert!(!looks_like_e164("+41 44"));
        assert!(!looks_like_e164("+41"));
        assert!(!looks_like_e164("+123456789012345678901"));
    }

    /// Fuzzing found keys of valid numbers outside ITU's 8 to 15 digits; every key normalising
    /// gives must have the shape stored keys are checked for, and normalise to itself.
    #[test]
    fn every_key_has_the_stored_shape() {
        let de = DefaultRegion::parse("DE").expect("DE");
        let nu = DefaultRegion::parse("NU").expect("NU");
        for (input, region) in [
            ("+49 38 1234569 30 123", &de),
            ("*1 (640 ", &de),
            ("+683 4002", &nu),
        ] {
            let key = normalize(input, region).expect(input).e164;
            assert!(looks_like_e164(&key), "{input}: {key}");
            assert_eq!(to_e164(&key, region).as_deref(), Ok(key.as_str()));
        }
    }
}
