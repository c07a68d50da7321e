//! The kubelet's CrashLoopBackOff (`flowcontrol.Backoff` as `kuberuntime` uses it): the first restart is
//! immediate, then a container waits 10 s after its end, doubling up to 5 minutes; an entry not renewed
//! for twice the maximum (10 minutes of running) starts over. Times are the containers' recorded ends,
//! wall-clock, as they survive an agent restart on disk.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Default)]
pub struct Backoff {
    delay: Option<Duration>,
    last_update: Option<Timestamp>,
}

impl Backoff {
    /// The current delay (the initial one before any restart).
    pub fn delay(&self) -> Duration {
        self.delay.unwrap_or(INITIAL)
    }

    /// How long a container that ended at `finished` must still wait; `None` when it may start now.
    pub fn remaining(&self, finished: Timestamp) -> Option<Duration> {
        self.remaining_at(finished, Timestamp::now())
    }

    fn remaining_at(&self, finished: Timestamp, now: Timestamp) -> Option<Duration> {
        let (delay, last) = (self.delay?, self.last_update?);
        if expired(finished, last) {
            return None;
        }
        let until = finished + SignedDuration::try_from(delay).ok()?;
        (now < until).then(|| Duration::try_from(until.duration_since(now)).unwrap_or_default())
    }

    /// Records a restart of a container that ended at `finished`.
    pub fn next(&mut self, finished: Timestamp) {
        self.next_at(finished, Timestamp::now());
    }

    fn next_at(&mut self, finished: Timestamp, now: Timestamp) {
        self.delay = Some(match (self.delay, self.last_update) {
            (Some(delay), Some(last)) if !expired(finished, last) => (delay * 2).min(MAX),
            _ => INITIAL,
        });
        self.last_update = Some(now);
    }
}

fn expired(event: Timestamp, last_update: Timestamp) -> bool {
    event.duration_since(last_update) > SignedDuration::try_from(MAX * 2).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediate_then_doubling_to_the_cap() {
        let mut b = Backoff::default();
        let mut t = Timestamp::from_second(1_000_000).unwrap();
        assert_eq!(b.remaining_at(t, t), None, "the first restart is immediate");
        b.next_at(t, t);
        let mut delays = Vec::new();
        for _ in 0..7 {
            // The container runs a second and crashes again.
            t += SignedDuration::from_secs(1);
            let wait = b.remaining_at(t, t).unwrap();
            delays.push(wait.as_secs());
            t += SignedDuration::try_from(wait).unwrap();
            assert_eq!(
                b.remaining_at(t - SignedDuration::try_from(wait).unwrap(), t),
                None
            );
            b.next_at(t - SignedDuration::try_from(wait).unwrap(), t);
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn ten_minutes_of_running_start_over() {
        let mut b = Backoff::default();
        let t = Timestamp::from_second(1_000_000).unwrap();
        b.next_at(t, t);
        b.next_at(t, t);
        assert_eq!(b.delay(), Duration::from_secs(20));
        let later = t + SignedDuration::from_secs(601);
        assert_eq!(b.remaining_at(later, later), None);
        b.next_at(later, later);
        assert_eq!(b.delay(), INITIAL);
    }
}
