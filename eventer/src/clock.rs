//! Wall-clock time that follows `tokio::time`, so tests that pause and advance tokio's clock also move
//! the timestamps the correlator and the TTL compare.

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall: Timestamp,
    mono: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            wall: Timestamp::now(),
            mono: Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = SignedDuration::try_from(self.mono.elapsed()).unwrap_or(SignedDuration::MAX);
        self.wall.saturating_add(elapsed).unwrap_or(Timestamp::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
