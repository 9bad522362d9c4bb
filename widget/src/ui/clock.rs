//! A ticking clock for the parts of the card that show elapsed or remaining time.

use gloo::timers::callback::Interval;
use yew::prelude::*;

/// The current time in Unix milliseconds, refreshed every `period_ms`. Only the component that
/// calls it re-renders on each tick, so the timer does not redraw the whole card.
#[hook]
pub fn use_now(period_ms: u32) -> u64 {
    let now = use_state(|| js_sys::Date::now() as u64);
    {
        let now = now.clone();
        use_effect_with(period_ms, move |period| {
            let interval = Interval::new(*period, move || now.set(js_sys::Date::now() as u64));
            move || drop(interval)
        });
    }
    *now
}
