//! Correlator throughput: events per second through aggregation, dedup and the spam filter on one core,
//! for the three paths an event can take. Run with `taskset -c 0 cargo bench -p eventer --bench correlator`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventer::correlator::{CorrelatorOptions, EventCorrelator};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};

const BATCH: usize = 10_000;

fn event(object: usize, reason: &str, message: String) -> Event {
    Event {
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some("default".into()),
            name: Some(format!("web-{object}")),
            uid: Some(format!("0b9c5f4e-{object:08}")),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some("Normal".into()),
        count: Some(1),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some("node-1".into()),
        }),
        ..Event::default()
    }
}

fn run(c: &mut Criterion, name: &str, events: Vec<Event>) {
    let mut group = c.benchmark_group("correlator");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || (EventCorrelator::new(CorrelatorOptions::default()), events.clone()),
            |(mut correlator, events)| {
                let mut now = Timestamp::from_second(1_700_000_000).unwrap();
                for e in events {
                    now = now.checked_add(SignedDuration::from_millis(1)).unwrap();
                    black_box(correlator.correlate(e, now));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    // Repeats of the same 100 events: the dedup path (a count and a patch each), mostly spam-filtered.
    run(
        c,
        "repeats",
        (0..BATCH)
            .map(|i| event(i % 100, "Started", "Started container web".into()))
            .collect(),
    );
    // Every event on another object: cache misses and LRU evictions past 4096 objects.
    run(
        c,
        "unique",
        (0..BATCH)
            .map(|i| event(i, "Scheduled", format!("Assigned default/web-{i} to node-1")))
            .collect(),
    );
    // Distinct messages on the same 100 objects: the aggregation path.
    run(
        c,
        "similar",
        (0..BATCH)
            .map(|i| event(i % 100, "BackOff", format!("Back-off {i}s restarting")))
            .collect(),
    );
}

criterion_group!(correlator, benches);
criterion_main!(correlator);
