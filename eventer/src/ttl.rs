//! Event TTL: events are deleted one TTL (default an hour, kube-apiserver's `--event-ttl`) after their
//! last write, as the API server's etcd leases do (`spec/events.md` §4: every write re-arms the full TTL).
//!
//! It watches events, notes when each was last written, and sweeps the expired ones with a delete that
//! is conditional on the resourceVersion it saw, so an event written again meanwhile survives. A write
//! seen on the watch re-arms the TTL from the moment it is seen; an event first seen in the initial list
//! (written before this process started) counts from the newest of its own timestamps.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::telemetry::{EventExpired, EventerMetrics};

/// Expired events deleted per sweep, at most.
const DELETES_PER_SWEEP: usize = 1000;

/// The TTL's settings.
#[derive(Clone, Debug)]
pub struct EventTtlConfig {
    /// How long an event lives after its last write. Default one hour.
    pub ttl: Duration,
}

impl Default for EventTtlConfig {
    fn default() -> Self {
        EventTtlConfig {
            ttl: Duration::from_secs(3600),
        }
    }
}

impl EventTtlConfig {
    /// How often expired events are looked for: a tenth of the TTL, between 1 s and 60 s, so an event
    /// outlives its TTL by at most that.
    pub fn sweep_interval(&self) -> Duration {
        (self.ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Runs until `shutdown`.
    pub async fn run(self, client: kube::Client, metrics: EventerMetrics, shutdown: CancellationToken) {
        let api: Api<Event> = Api::all(client.clone());
        let mut watch = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
        let mut expiries = Expiries::new(self.ttl, Clock::new());
        let mut sweep = tokio::time::interval(self.sweep_interval());
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = watch.next() => match event {
                    Some(Ok(event)) => expiries.observe(event),
                    Some(Err(e)) => tracing::debug!(error = %e, "event TTL watch error"),
                    None => return,
                },
                _ = sweep.tick() => {
                    // A bounded number per sweep, so a backlog (a restart after a long stop) neither
                    // holds up shutdown nor lets the watch fall behind; the next sweep takes the rest.
                    for (key, resource_version) in expiries.expired().into_iter().take(DELETES_PER_SWEEP) {
                        if shutdown.is_cancelled() {
                            return;
                        }
                        delete(&client, &key, resource_version, &mut expiries, &metrics).await;
                    }
                }
            }
        }
    }
}

async fn delete(
    client: &kube::Client,
    key: &Key,
    resource_version: String,
    expiries: &mut Expiries,
    metrics: &EventerMetrics,
) {
    let (namespace, name) = key;
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: Some(resource_version),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {
            expiries.forget(key);
            EventExpired { namespace, name }.emit(metrics);
        }
        Err(kube::Error::Api(status)) if status.code == 404 => expiries.forget(key),
        // Written again since: the watch brings the new write and with it a new expiry.
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => tracing::warn!(namespace, name, error = %e, "deleting an expired event failed"),
    }
}

type Key = (String, String);

struct Entry {
    resource_version: String,
    expires: Timestamp,
}

/// When each known event expires: the TTL's state, fed by the watch.
struct Expiries {
    ttl: SignedDuration,
    clock: Clock,
    entries: HashMap<Key, Entry>,
    /// A relist in progress: the entries it has found so far.
    relisting: Option<HashMap<Key, Entry>>,
    /// Whether a list has completed before: events first seen in a later relist were written while the
    /// watch was broken, so recently.
    listed: bool,
}

impl Expiries {
    fn new(ttl: Duration, clock: Clock) -> Self {
        Expiries {
            ttl: SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX),
            clock,
            entries: HashMap::new(),
            relisting: None,
            listed: false,
        }
    }

    fn observe(&mut self, event: watcher::Event<Event>) {
        match event {
            watcher::Event::Init => self.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(event) => {
                let Some((key, resource_version)) = identity(&event) else {
                    return;
                };
                let expires = match self.entries.get(&key) {
                    Some(known) if known.resource_version == resource_version => known.expires,
                    Some(_) => self.after_now(),
                    None if self.listed => self.after_now(),
                    None => self.after(last_write(&event)),
                };
                self.relisting.get_or_insert_default().insert(
                    key,
                    Entry {
                        resource_version,
                        expires,
                    },
                );
            }
            watcher::Event::InitDone => {
                self.entries = self.relisting.take().unwrap_or_default();
                self.listed = true;
            }
            watcher::Event::Apply(event) => {
                if let Some((key, resource_version)) = identity(&event) {
                    let expires = self.after_now();
                    self.entries.insert(
                        key,
                        Entry {
                            resource_version,
                            expires,
                        },
                    );
                }
            }
            watcher::Event::Delete(event) => {
                if let Some((key, _)) = identity(&event) {
                    self.forget(&key);
                }
            }
        }
    }

    /// The events whose TTL has run out, with the resourceVersion they expire at.
    fn expired(&self) -> Vec<(Key, String)> {
        let now = self.clock.now();
        self.entries
            .iter()
            .filter(|(_, entry)| entry.expires <= now)
            .map(|(key, entry)| (key.clone(), entry.resource_version.clone()))
            .collect()
    }

    fn forget(&mut self, key: &Key) {
        self.entries.remove(key);
    }

    fn after_now(&self) -> Timestamp {
        self.after(self.clock.now())
    }

    fn after(&self, t: Timestamp) -> Timestamp {
        t.saturating_add(self.ttl).unwrap_or(Timestamp::MAX)
    }
}

fn identity(event: &Event) -> Option<(Key, String)> {
    let meta = &event.metadata;
    Some((
        (meta.namespace.clone()?, meta.name.clone()?),
        meta.resource_version.clone()?,
    ))
}

/// The newest time an event says it was written at.
fn last_write(event: &Event) -> Timestamp {
    [
        event.last_timestamp.as_ref().map(|t| t.0),
        event.first_timestamp.as_ref().map(|t| t.0),
        event.event_time.as_ref().map(|t| t.0),
        event
            .series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref())
            .map(|t| t.0),
        event.metadata.creation_timestamp.as_ref().map(|t| t.0),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn event(name: &str, rv: &str, last: Timestamp) -> Event {
        Event {
            metadata: ObjectMeta {
                namespace: Some("default".into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            last_timestamp: Some(Time(last)),
            ..Event::default()
        }
    }

    fn names(expired: Vec<(Key, String)>) -> Vec<String> {
        let mut names: Vec<String> = expired.into_iter().map(|((_, name), _)| name).collect();
        names.sort();
        names
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_seen_on_the_watch_rearms_the_full_ttl() {
        let clock = Clock::new();
        let mut e = Expiries::new(Duration::from_secs(3600), clock);
        e.observe(watcher::Event::Init);
        e.observe(watcher::Event::InitDone);
        e.observe(watcher::Event::Apply(event("a", "1", clock.now())));
        tokio::time::advance(Duration::from_secs(3000)).await;
        e.observe(watcher::Event::Apply(event("a", "2", clock.now())));
        tokio::time::advance(Duration::from_secs(3000)).await;
        assert!(e.expired().is_empty(), "the second write gave it another hour");
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(e.expired(), vec![(("default".into(), "a".into()), "2".into())]);
        e.observe(watcher::Event::Delete(event("a", "2", clock.now())));
        assert!(e.expired().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn events_from_before_the_start_count_from_their_own_timestamps() {
        let clock = Clock::new();
        let mut e = Expiries::new(Duration::from_secs(3600), clock);
        let ago = |s: i64| clock.now().checked_sub(SignedDuration::from_secs(s)).unwrap();
        e.observe(watcher::Event::Init);
        e.observe(watcher::Event::InitApply(event("old", "1", ago(4000))));
        e.observe(watcher::Event::InitApply(event("recent", "2", ago(60))));
        e.observe(watcher::Event::InitDone);
        assert_eq!(names(e.expired()), ["old"]);
        tokio::time::advance(Duration::from_secs(3540)).await;
        assert_eq!(names(e.expired()), ["old", "recent"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_relist_keeps_what_it_knew_and_rearms_what_changed_while_away() {
        let clock = Clock::new();
        let mut e = Expiries::new(Duration::from_secs(3600), clock);
        e.observe(watcher::Event::Init);
        e.observe(watcher::Event::InitApply(event("same", "1", clock.now())));
        e.observe(watcher::Event::InitApply(event("changed", "2", clock.now())));
        e.observe(watcher::Event::InitApply(event("gone", "3", clock.now())));
        e.observe(watcher::Event::InitDone);
        tokio::time::advance(Duration::from_secs(1800)).await;
        // The watch broke; meanwhile "changed" was written, "gone" deleted and "new" created.
        e.observe(watcher::Event::Init);
        e.observe(watcher::Event::InitApply(event("same", "1", clock.now())));
        e.observe(watcher::Event::InitApply(event("changed", "4", clock.now())));
        let long_ago = Timestamp::UNIX_EPOCH;
        e.observe(watcher::Event::InitApply(event("new", "5", long_ago)));
        e.observe(watcher::Event::InitDone);
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert_eq!(names(e.expired()), ["same"]);
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert_eq!(names(e.expired()), ["changed", "new", "same"]);
    }

    #[test]
    fn the_sweep_interval_follows_the_ttl_within_bounds() {
        let interval = |s| {
            EventTtlConfig {
                ttl: Duration::from_secs(s),
            }
            .sweep_interval()
        };
        assert_eq!(interval(3600), Duration::from_secs(60));
        assert_eq!(interval(100), Duration::from_secs(10));
        assert_eq!(interval(3), Duration::from_secs(1));
    }
}
