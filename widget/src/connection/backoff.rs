//! How long to wait before the next connection attempt.
//!
//! Exponential backoff with full jitter: the wait is drawn uniformly between zero and an
//! exponentially growing ceiling. When a relay instance restarts, every rep's widget loses its
//! socket at the same moment; the jitter spreads their returns instead of having them knock
//! together at 0.5 s, 1 s, 2 s ... The random value is passed in so the arithmetic is testable.

/// The retry policy: the ceiling starts at `base_ms` and doubles per attempt up to `cap_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 500,
            cap_ms: 30_000,
        }
    }
}

/// A connection must stay up this long before its drop counts as a fresh start: a relay or
/// proxy that accepts and then drops every connection at once would otherwise be hammered at the
/// base delay forever.
pub const STABLE_MS: u64 = 60_000;

/// The backoff exponent for the retry after a drop: back to 0 when the connection that dropped
/// had lasted `connected_for_ms` of at least a stable minute, else `failures` (the attempts made
/// since the last stable connection). None: the socket never got as far as `welcome`.
pub fn exponent_after_drop(failures: u32, connected_for_ms: Option<u64>) -> u32 {
    match connected_for_ms {
        Some(lasted) if lasted >= STABLE_MS => 0,
        _ => failures,
    }
}

impl Backoff {
    /// The largest wait before retry number `attempt` (0 for the first retry).
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        let factor = 1u64.checked_shl(attempt).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// The wait before retry number `attempt`, for a `random` value in `[0, 1)` (such as
    /// `Math.random()`). Values outside that range are clamped, so the result never exceeds
    /// the ceiling.
    pub fn delay_ms(&self, attempt: u32, random: f64) -> u64 {
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let ceiling = self.ceiling_ms(attempt);
        // The product is within [0, ceiling], so the conversion back cannot overflow.
        ((ceiling as f64 * random).floor() as u64).min(ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn ceiling_doubles_from_the_base_up_to_the_cap() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..8).map(|n| backoff.ceiling_ms(n)).collect();
        assert_eq!(
            ceilings,
            vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        assert_eq!(backoff.ceiling_ms(63), 30_000);
        assert_eq!(backoff.ceiling_ms(64), 30_000);
        assert_eq!(backoff.ceiling_ms(u32::MAX), 30_000);
    }

    #[wasm_bindgen_test]
    fn only_a_stable_minute_resets_the_backoff() {
        let backoff = Backoff::default();
        // A socket that never got welcomed, again and again: the ceiling keeps growing.
        assert_eq!(exponent_after_drop(5, None), 5);
        // Welcomed, then dropped within the minute (a proxy that accepts and cuts): the same.
        assert_eq!(exponent_after_drop(5, Some(59_999)), 5);
        assert_eq!(
            backoff.ceiling_ms(exponent_after_drop(5, Some(59_999))),
            16_000
        );
        // Up for a minute: the next drop starts over at the base delay.
        assert_eq!(exponent_after_drop(5, Some(STABLE_MS)), 0);
        assert_eq!(
            backoff.ceiling_ms(exponent_after_drop(5, Some(STABLE_MS))),
            500
        );
    }

    #[wasm_bindgen_test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay_ms(0, 0.0), 0);
        assert_eq!(backoff.delay_ms(0, 0.5), 250);
        assert_eq!(backoff.delay_ms(0, 0.999_999), 499);
        assert_eq!(backoff.delay_ms(3, 0.25), 1_000);
        assert_eq!(
            backoff.delay_ms(20, 0.0),
            0,
            "even capped attempts may retry at once"
        );
        assert_eq!(backoff.delay_ms(20, 0.999_999), 29_999);
    }

    #[wasm_bindgen_test]
    fn delay_stays_within_bounds_for_any_random_value() {
        let backoff = Backoff::default();
        for attempt in 0..40 {
            let ceiling = backoff.ceiling_ms(attempt);
            for random in [
                0.0,
                0.1,
                0.5,
                0.9,
                0.999_999_9,
                1.0,
                1.5,
                -0.5,
                f64::NAN,
                f64::INFINITY,
            ] {
                let delay = backoff.delay_ms(attempt, random);
                assert!(
                    delay <= ceiling,
                    "attempt {attempt}, random {random}: {delay}"
                );
                assert!(delay <= 30_000);
            }
        }
    }

    #[wasm_bindgen_test]
    fn real_random_values_cover_the_range() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..400)
            .map(|_| backoff.delay_ms(4, js_sys::Math::random()))
            .collect();
        assert!(delays.iter().all(|d| *d < 8_000));
        // Full jitter, not "ceiling plus a little": both halves of the range are used.
        assert!(delays.iter().any(|d| *d < 4_000));
        assert!(delays.iter().any(|d| *d >= 4_000));
    }
}
