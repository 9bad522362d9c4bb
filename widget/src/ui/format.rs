//! How times, durations, amounts and numbers read on the card.
//!
//! Pure functions, so the card's wording is tested without rendering. Dates stay in the form the
//! relay sends (RFC 3339, the telephony source's clock); the card never needs time zones beyond
//! the offset in the string.

use cti_protocol::{CallState, CallView, Direction, EndReason};

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

/// `24 Nov 2026` for the date part of an RFC 3339 time; the text itself if it is not one.
pub fn date(text: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts = text.get(..10).map(|day| {
        let mut fields = day.split('-');
        (fields.next(), fields.next(), fields.next())
    });
    if let Some((Some(year), Some(month), Some(day))) = parts
        && year.len() == 4
        && let (Ok(month), Ok(day)) = (month.parse::<usize>(), day.parse::<u32>())
        && let Some(name) = month.checked_sub(1).and_then(|i| MONTHS.get(i))
    {
        return format!("{day} {name} {year}");
    }
    text.to_owned()
}

/// `12,500 EUR` or `980.50 CHF`: grouped thousands, cents only when there are any.
pub fn amount(value: f64, currency: Option<&str>) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let cents = (value.abs() * 100.0).round() as u64;
    let (whole, fraction) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && cents > 0 { "-" } else { "" };
    let number = if fraction == 0 {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{fraction:02}")
    };
    match currency.map(str::trim).filter(|c| !c.is_empty()) {
        Some(currency) => format!("{number} {currency}"),
        None => number,
    }
}

/// The remote party's number as people read it, with the extension if the provider gave one.
pub fn remote_number(call: &CallView) -> String {
    let number = if call.remote_display.trim().is_empty() {
        call.remote()
    } else {
        call.remote_display.as_str()
    };
    match call.remote_extension.as_deref().map(str::trim) {
        Some(extension) if !extension.is_empty() => format!("{number} ext. {extension}"),
        _ => number.to_owned(),
    }
}

/// The `data-state` of the call-state element: the wire name of the state.
pub fn state_name(state: CallState) -> &'static str {
    match state {
        CallState::Ringing => "ringing",
        CallState::Connected => "connected",
        CallState::Held => "held",
        CallState::Transferred => "transferred",
        CallState::Ended => "ended",
        _ => "unknown",
    }
}

/// The words for the state at the top of the card.
pub fn state_label(state: CallState, direction: Direction) -> &'static str {
    match (state, direction) {
        (CallState::Ringing, Direction::Inbound) => "Incoming call",
        (CallState::Ringing, Direction::Outbound) => "Calling…",
        (CallState::Connected, _) => "Connected",
        (CallState::Held, _) => "On hold",
        (CallState::Transferred, _) => "Call transferred",
        (CallState::Ended, _) => "Call ended",
        _ => "Call",
    }
}

/// Why the call ended, as the summary says it.
pub fn end_reason(call: &CallView) -> &'static str {
    if call.state == CallState::Transferred {
        return "Transferred";
    }
    match call.end_reason {
        Some(EndReason::Completed) => "Completed",
        Some(EndReason::Missed) => "Missed",
        Some(EndReason::Declined) => "Declined",
        Some(EndReason::Failed) => "Failed",
        _ => "Ended",
    }
}

/// The talk time of a finished call, or `None` if it was never answered.
pub fn talk_time(call: &CallView) -> Option<String> {
    let answered = parse_rfc3339_ms(call.answered_at.as_deref()?)?;
    let ended = parse_rfc3339_ms(call.ended_at.as_deref()?)?;
    Some(duration(ended - answered))
}

/// An id for `aria-labelledby`, safe whatever characters the provider put in its call id.
pub(crate) fn heading_id(call_id: &str) -> String {
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("caller-{safe}")
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
        assert_eq!(date("2026-11-24T10:00:00Z"), "24 Nov 2026");
        assert_eq!(date("2026-01-05"), "5 Jan 2026");
        assert_eq!(date("last week"), "last week");
        assert_eq!(date("2026-13-05"), "2026-13-05");
    }

    #[wasm_bindgen_test]
    fn amounts() {
        assert_eq!(amount(12_500.0, Some("EUR")), "12,500 EUR");
        assert_eq!(amount(980.5, Some("CHF")), "980.50 CHF");
        assert_eq!(amount(1_234_567.891, None), "1,234,567.89");
        assert_eq!(amount(0.0, Some(" ")), "0");
        assert_eq!(amount(-1500.0, Some("USD")), "-1,500 USD");
        assert_eq!(amount(f64::NAN, Some("USD")), "0 USD");
    }
}
