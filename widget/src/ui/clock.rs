//! A ticking clock for the parts of the card that show elapsed or remaining time.

use gloo::timers::callback::Interval;
use yew::prelude::*;

use crate::time::now_ms;

/// The current time in Unix milliseconds, refreshed every `period_ms`. Only the component that
/// calls it re-renders on each tick, so the timer does not redraw the whole card.
#[hook]
pub fn use_now(period_ms: u32) -> u64 {
    let now = use_state(now_ms);
    {
        let now = now.clone();
        use_effect_with(period_ms, move |period| {
            let interval = Interval::new(*period, move || now.set(now_ms()));
            move || drop(interval)
        });
    }
    *now
}
