//! The browser's wall clock, the one every timer, deadline and timestamp in the widget reads, so
//! that times compared across modules (a retry deadline, a heartbeat, an election) agree.

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
