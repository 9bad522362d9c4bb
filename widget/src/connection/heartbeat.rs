//! Telling a live connection from a dead one.
//!
//! Browsers cannot send WebSocket ping frames, and a socket whose network vanished (laptop sleep,
//! a proxy that silently drops idle connections) may stay "open" for many minutes. So the widget
//! pings at the interval the relay asked for and counts any frame from the relay as a sign of
//! life; two intervals of silence mean the connection is dead. Before `welcome` there is no
//! interval yet, so the handshake gets a fixed deadline instead.
//!
//! The decision is a pure function of the times it is given; the socket module calls
//! [`Heartbeat::tick`] from a timer.

/// What the socket should do at this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Wait,
    /// Send `{"type":"ping","nonce":n}`.
    Ping(u64),
    /// Give up on this connection and reconnect.
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingWelcome { deadline_ms: u64 },
    Running { interval_ms: u64 },
}

/// The liveness of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    phase: Phase,
    last_heard_ms: u64,
    last_ping_ms: u64,
    next_nonce: u64,
}

/// Bounds on the relay's `heartbeat_secs`, so a zero cannot make the widget ping in a loop and a
/// huge value cannot switch dead-connection detection off.
const MIN_INTERVAL_SECS: u64 = 1;
const MAX_INTERVAL_SECS: u64 = 300;

impl Heartbeat {
    /// A connection that was just opened (or is being opened) and must see `welcome` within
    /// `timeout_ms`.
    pub fn awaiting_welcome(now_ms: u64, timeout_ms: u64) -> Self {
        Heartbeat {
            phase: Phase::AwaitingWelcome {
                deadline_ms: now_ms.saturating_add(timeout_ms),
            },
            last_heard_ms: now_ms,
            last_ping_ms: now_ms,
            next_nonce: 1,
        }
    }

    /// `welcome` arrived: from now on, ping every `heartbeat_secs`.
    pub fn welcomed(&mut self, now_ms: u64, heartbeat_secs: u64) {
        let secs = heartbeat_secs.clamp(MIN_INTERVAL_SECS, MAX_INTERVAL_SECS);
        self.phase = Phase::Running {
            interval_ms: secs * 1_000,
        };
        self.last_heard_ms = now_ms;
        self.last_ping_ms = now_ms;
    }

    /// Any frame from the relay arrived.
    pub fn heard(&mut self, now_ms: u64) {
        self.last_heard_ms = self.last_heard_ms.max(now_ms);
    }

    /// Called from a timer that fires more often than the heartbeat interval.
    pub fn tick(&mut self, now_ms: u64) -> Tick {
        match self.phase {
            Phase::AwaitingWelcome { deadline_ms } => {
                if now_ms >= deadline_ms {
                    Tick::Dead
                } else {
                    Tick::Wait
                }
            }
            Phase::Running { interval_ms } => {
                if now_ms.saturating_sub(self.last_heard_ms) >= 2 * interval_ms {
                    Tick::Dead
                } else if now_ms.saturating_sub(self.last_ping_ms) >= interval_ms {
                    self.last_ping_ms = now_ms;
                    let nonce = self.next_nonce;
                    self.next_nonce += 1;
                    Tick::Ping(nonce)
                } else {
                    Tick::Wait
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn handshake_has_a_deadline() {
        let mut hb = Heartbeat::awaiting_welcome(1_000, 10_000);
        assert_eq!(hb.tick(5_000), Tick::Wait);
        // Frames other than welcome do not extend the handshake.
        hb.heard(9_000);
        assert_eq!(hb.tick(10_999), Tick::Wait);
        assert_eq!(hb.tick(11_000), Tick::Dead);
    }

    #[wasm_bindgen_test]
    fn pings_once_per_interval_with_fresh_nonces() {
        let mut hb = Heartbeat::awaiting_welcome(0, 10_000);
        hb.welcomed(1_000, 20);
        assert_eq!(hb.tick(2_000), Tick::Wait);
        assert_eq!(hb.tick(20_999), Tick::Wait);
        assert_eq!(hb.tick(21_000), Tick::Ping(1));
        assert_eq!(hb.tick(22_000), Tick::Wait);
        hb.heard(22_500);
        assert_eq!(hb.tick(41_000), Tick::Ping(2));
    }

    #[wasm_bindgen_test]
    fn two_silent_intervals_mean_dead() {
        let mut hb = Heartbeat::awaiting_welcome(0, 10_000);
        hb.welcomed(0, 20);
        assert_eq!(hb.tick(20_000), Tick::Ping(1));
        assert_eq!(hb.tick(39_999), Tick::Wait);
        assert_eq!(hb.tick(40_000), Tick::Dead);
    }

    #[wasm_bindgen_test]
    fn any_frame_keeps_it_alive() {
        let mut hb = Heartbeat::awaiting_welcome(0, 10_000);
        hb.welcomed(0, 20);
        hb.heard(30_000);
        assert_ne!(hb.tick(40_000), Tick::Dead);
        assert_ne!(hb.tick(69_999), Tick::Dead);
        assert_eq!(hb.tick(70_000), Tick::Dead);
    }

    #[wasm_bindgen_test]
    fn a_clock_jump_after_sleep_is_seen_as_dead() {
        let mut hb = Heartbeat::awaiting_welcome(0, 10_000);
        hb.welcomed(0, 20);
        assert_eq!(hb.tick(3_600_000), Tick::Dead);
    }

    #[wasm_bindgen_test]
    fn the_relay_interval_is_bounded() {
        let mut hb = Heartbeat::awaiting_welcome(0, 10_000);
        hb.welcomed(0, 0);
        assert_eq!(hb.tick(1_000), Tick::Ping(1));
        let mut hb = Heartbeat::awaiting_welcome(0, 10_000);
        hb.welcomed(0, u64::MAX);
        assert_eq!(hb.tick(600_000), Tick::Dead);
    }
}
