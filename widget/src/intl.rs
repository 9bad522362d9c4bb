//! Times, durations and amounts the locale's way, for any view that shows them.
//!
//! Dates stay in the form the relay sends (RFC 3339, the telephony source's clock); nothing
//! needs time zones beyond the offset in the string, except a call's time of day, which is the
//! rep's. Dates and numbers are written by the browser's `Intl`, which costs the wasm nothing.
//! Below [`crate::i18n`], which hands these its language's locale.

/// Milliseconds since the Unix epoch for an RFC 3339 time such as `2026-11-24T10:00:05.250Z` or
/// `2026-11-24T11:00:05+01:00`; `None` for anything else.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.trim().as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let separators_ok = bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        && bytes.get(13) == Some(&b':')
        && bytes.get(16) == Some(&b':');
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut index = 19;
    let mut millis = 0;
    if bytes.get(index) == Some(&b'.') {
        let start = index + 1;
        let mut end = start;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        // Milliseconds from the first three fraction digits, padded on the right.
        let fraction: String = text.trim()[start..end.min(start + 3)].to_owned();
        millis = format!("{fraction:0<3}").parse().ok()?;
        index = end;
    }
    let offset_minutes = match bytes.get(index)? {
        b'Z' | b'z' if index + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if index + 6 == bytes.len() && bytes.get(index + 3) == Some(&b':') => {
            let hours = digits(index + 1..index + 3)?;
            let minutes = digits(index + 4..index + 6)?;
            let total = hours * 60 + minutes;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil-days algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `m:ss`, or `h:mm:ss` from an hour on; negative spans (clock skew) read as zero.
pub fn duration(millis: i64) -> String {
    let total = millis.max(0) / 1_000;
    let (hours, minutes, seconds) = (total / 3_600, (total % 3_600) / 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// The date part of an RFC 3339 time (`2026-11-24T10:00:00Z`) as the locale writes it, e.g.
/// `24 Nov 2026` (en-GB), `24. Nov. 2026` (de-DE), `24 nov. 2026` (fr-FR); the text itself if it
/// does not start with a date. The date is taken as written, in no time zone, the way the relay
/// sent it: formatting in UTC keeps the browser's zone from moving it a day.
pub fn date(text: &str, locale: &str) -> String {
    let parts = text.get(..10).map(|day| {
        let mut fields = day.split('-');
        (fields.next(), fields.next(), fields.next())
    });
    if let Some((Some(year), Some(month), Some(day))) = parts
        && year.len() == 4
        && let (Ok(year), Ok(month), Ok(day)) = (
            year.parse::<i64>(),
            month.parse::<i64>(),
            day.parse::<i64>(),
        )
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
    {
        let millis = days_from_civil(year, month, day) * 86_400_000;
        let options = intl_options([
            ("day", "numeric".into()),
            ("month", "short".into()),
            ("year", "numeric".into()),
            ("timeZone", "UTC".into()),
        ]);
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
        return String::from(date.to_locale_date_string(locale, &options));
    }
    text.to_owned()
}

/// When a call started, as the locale writes a day and a time of day (`24 Nov, 10:05`,
/// `24. Nov., 10:05`, `24 nov., 10:05`), in `zone` or else the browser's own time zone: unlike
/// a record's dates, the time of a call is the rep's wall-clock time. The text itself if it is
/// not an RFC 3339 time.
pub fn date_time(text: &str, locale: &str, zone: Option<&str>) -> String {
    let Some(millis) = parse_rfc3339_ms(text) else {
        return text.to_owned();
    };
    let mut fields = vec![
        ("day", "numeric".into()),
        ("month", "short".into()),
        ("hour", "2-digit".into()),
        ("minute", "2-digit".into()),
    ];
    if let Some(zone) = zone {
        fields.push(("timeZone", zone.into()));
    }
    let options = intl_options(fields);
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    String::from(date.to_locale_string(locale, &options))
}

/// An amount with the locale's grouping and decimal signs, cents only when there are any, then
/// the currency code as the record gave it: `12,500 EUR`, `980.50 CHF` (en-GB), `12.500 EUR`
/// (de-DE). The code rather than a symbol, because a record's currency may be one `Intl` does
/// not know, and a rep comparing deals reads codes at a glance.
pub fn amount(value: f64, currency: Option<&str>, locale: &str) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let cents = (value.abs() * 100.0).round();
    let digits = if cents % 100.0 == 0.0 { 0 } else { 2 };
    let rounded = if value < 0.0 && cents > 0.0 {
        -cents / 100.0
    } else {
        cents / 100.0
    };
    let options = intl_options(
        ["minimumFractionDigits", "maximumFractionDigits"].map(|name| (name, digits.into())),
    );
    let locales = js_sys::Array::of1(&locale.into());
    let formatter = js_sys::Intl::NumberFormat::new(&locales, &options);
    let number = formatter
        .format()
        .call1(&wasm_bindgen::JsValue::NULL, &rounded.into())
        .ok()
        .and_then(|text| text.as_string())
        .unwrap_or_else(|| rounded.to_string());
    match currency.map(str::trim).filter(|c| !c.is_empty()) {
        Some(currency) => format!("{number} {currency}"),
        None => number,
    }
}

/// The options object an `Intl` formatter takes, from its fields.
fn intl_options<'a>(
    fields: impl IntoIterator<Item = (&'a str, wasm_bindgen::JsValue)>,
) -> js_sys::Object {
    let options = js_sys::Object::new();
    for (name, value) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = js_sys::Reflect::set(&options, &name.into(), &value);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn parses_rfc3339_like_the_browser() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-11-24T10:00:05Z",
            "2026-11-24T10:00:05.250Z",
            "2026-11-24T11:00:05+01:00",
            "2026-11-24T04:30:05-05:30",
            "2000-02-29T23:59:59.9Z",
            "2024-12-31t23:59:59z",
        ] {
            let ours = parse_rfc3339_ms(text).expect(text);
            let browser = js_sys::Date::parse(&text.to_uppercase());
            assert_eq!(ours as f64, browser, "{text}");
        }
    }

    #[wasm_bindgen_test]
    fn rejects_what_is_not_rfc3339() {
        for text in [
            "",
            "yesterday",
            "2026-11-24",
            "2026-11-24T10:00:05",
            "2026-13-01T00:00:00Z",
            "2026-11-24T10:00:05+0100",
            "2026-11-24T10:00:05.Z",
            "2026-11-24T10:00:05Zjunk",
        ] {
            assert_eq!(parse_rfc3339_ms(text), None, "{text}");
        }
    }

    #[wasm_bindgen_test]
    fn durations() {
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(59_999), "0:59");
        assert_eq!(duration(61_000), "1:01");
        assert_eq!(duration(3_600_000 + 62_000), "1:01:02");
        assert_eq!(duration(-5_000), "0:00");
    }

    #[wasm_bindgen_test]
    fn dates() {
        assert_eq!(date("2026-11-24T10:00:00Z", "en-GB"), "24 Nov 2026");
        assert_eq!(date("2026-01-05", "en-GB"), "5 Jan 2026");
        assert_eq!(date("2026-11-24T23:30:00-05:00", "de-DE"), "24. Nov. 2026");
        assert_eq!(date("2026-11-24", "fr-FR"), "24 nov. 2026");
        assert_eq!(date("last week", "en-GB"), "last week");
        assert_eq!(date("2026-13-05", "de-DE"), "2026-13-05");
    }

    #[wasm_bindgen_test]
    fn times_of_day() {
        let en = date_time("2026-11-24T10:05:00Z", "en-GB", Some("UTC"));
        assert!(en.contains("24 Nov") && en.contains("10:05"), "{en}");
        let de = date_time("2026-11-24T11:05:00+01:00", "de-DE", Some("UTC"));
        assert!(de.contains("24. Nov") && de.contains("10:05"), "{de}");
        let zurich = date_time("2026-11-24T10:05:00Z", "fr-FR", Some("Europe/Zurich"));
        assert!(
            zurich.contains("nov") && zurich.contains("11:05"),
            "{zurich}"
        );
        assert_eq!(date_time("yesterday", "en-GB", None), "yesterday");
    }

    #[wasm_bindgen_test]
    fn amounts() {
        assert_eq!(amount(12_500.0, Some("EUR"), "en-GB"), "12,500 EUR");
        assert_eq!(amount(980.5, Some("CHF"), "en-GB"), "980.50 CHF");
        assert_eq!(amount(1_234_567.891, None, "en-GB"), "1,234,567.89");
        assert_eq!(amount(0.0, Some(" "), "en-GB"), "0");
        assert_eq!(amount(-1500.0, Some("USD"), "en-GB"), "-1,500 USD");
        assert_eq!(amount(f64::NAN, Some("USD"), "en-GB"), "0 USD");
        assert_eq!(amount(12_500.0, Some("EUR"), "de-DE"), "12.500 EUR");
        assert_eq!(amount(1_234_567.891, None, "de-DE"), "1.234.567,89");
        assert_eq!(amount(980.5, Some("CHF"), "fr-FR"), "980,50 CHF");
        assert_eq!(amount(12_500.0, Some("EUR"), "fr-FR"), "12\u{202f}500 EUR");
    }
}
